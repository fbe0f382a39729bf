"""The video render end to end: real media made by ffmpeg in tmp_path, real EfficientNet-Lite0
weights with tiny settings (1 octave, 1 iteration, frames of at most 64 px), the CLI in-process.

Each output is decoded back and checked: frame count, size, frame rate, audio. Errors must be one
line on stderr with exit code 2 and leave nothing behind.
"""

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import cv2
import numpy as np
import pytest

import dreamvid.engine.dreamer as dreamer_module
import dreamvid.pipeline.video as render_module
from conftest import decode_audio, ffmpeg, make_video
from dreamvid.__main__ import main
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import DreamvidError
from dreamvid.temporal.carry import estimate_flows
from dreamvid.temporal.flow import FlowEstimator
from dreamvid.io.ffmpeg import probe
from dreamvid.io.images import read_image, write_image
from dreamvid.io.sources import open_source
from dreamvid.temporal.metrics import temporal_stats
from dreamvid.config.presets import settings_from_preset
from dreamvid.pipeline.video import dream_video, next_schedule
from dreamvid.config.settings import RunOptions, VideoSettings

NTSC = Fraction(30000, 1001)
BASE = ["--iterations", "1", "--octaves", "1", "--device", "cpu", "--quiet"]
TINY = [*BASE, "--max-side", "64"]
TONE = "0.5*sin(2*PI*440*t):c=stereo"


@pytest.fixture(scope="module")
def tiny_dreamer():
    """One real dreamer (offline EfficientNet-Lite0) shared by the library-level tests."""
    return Dreamer(settings_from_preset(None, iterations=1, octaves=1), "cpu")


def cli(*args) -> int:
    return main([str(a) for a in args])


def listing(root) -> dict:
    """{relative path: bytes} of every file under root (to see that nothing was added or changed)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def frames_of(path):
    return list(open_source(str(path)).frames())


def audio_seconds(path) -> float:
    return len(decode_audio(str(path))) / 48000


def check_video(path, n, size, fps=None, audio_s=None):
    """Decode `path` back: n frames of size (w, h) at exactly `fps`; audio of audio_s seconds
    (within a frame and a half: AAC/Opus pad to whole packets), or none when audio_s is None."""
    src = open_source(str(path))
    assert (src.num_frames, (src.width, src.height)) == (n, size)
    assert len(list(src.frames())) == n
    if fps is not None:
        assert src.fps == fps and isinstance(src.fps, Fraction)
    if audio_s is None:
        assert not probe(str(path)).has_audio
    else:
        assert probe(str(path)).has_audio
        assert abs(audio_seconds(path) - audio_s) < 1.5 / float(src.fps), audio_seconds(path)


def steps_video(tmp_path, frames, audio=None, name="steps.mp4"):
    """A real H.264 video (25 fps, 64x48) whose frame k is a texture brightened by 8·k: every frame
    is told apart from its neighbours at a glance, even through a dream and two lossy encodes."""
    folder = tmp_path / "steps"
    folder.mkdir()
    base = textured(64, 48).astype(np.int16) // 2 + 40
    for k in range(frames):
        write_image(str(folder / f"{k:03d}.png"), (base + 8 * k).astype(np.uint8))
    args = ["-framerate", "25", "-i", str(folder / "%03d.png")]
    if audio:
        args += ["-f", "lavfi", "-i", f"aevalsrc={audio}:s=48000", "-shortest", "-c:a", "aac"]
    out = str(tmp_path / name)
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p", out)
    return out


def nearest_input_frames(src, out):
    """For each frame of `out`, the index of the frame of `src` it is closest to."""
    ins = [f.astype(np.float32) for f in frames_of(src)]
    return [int(np.argmin([np.abs(o.astype(np.float32) - i).mean() for i in ins])) for o in frames_of(out)]


def textured(w, h, seed=0):
    """Smooth random RGB texture, uint8 (h, w, 3)."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.normal(size=(h, w, 3)).astype(np.float32), (0, 0), 2.0)
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------ library level

def test_dream_video_mp4_keeps_audio_and_cleans_up(tmp_path, tiny_dreamer):
    src = steps_video(tmp_path, 6, audio=TONE)
    out = tmp_path / "out.mp4"
    assert dream_video(src, str(out), tiny_dreamer.settings, VideoSettings(), RunOptions(),
                       dreamer=tiny_dreamer) == str(out)
    check_video(out, 6, (64, 48), fps=25, audio_s=6 / 25)
    assert sorted(os.listdir(tmp_path)) == ["out.mp4", "steps", "steps.mp4"]  # no checkpoint, no temp
    # Dreamed (not a copy), but each output frame is still nearest its own input frame.
    assert nearest_input_frames(src, out) == list(range(6))
    ins, outs = frames_of(src), frames_of(out)
    assert min(np.abs(o.astype(float) - i.astype(float)).mean() for i, o in zip(ins, outs)) > 0.5


def test_render_schedule_first_frame_full_then_short(tmp_path, tiny_dreamer, monkeypatch):
    calls = []
    real_call = Dreamer.dream_tensor

    def recording_call(self, x, index=0, on_step=None, octaves=None, iterations=None, **kw):
        calls.append((index, octaves, iterations))
        return real_call(self, x, index, on_step, octaves, iterations, **kw)

    monkeypatch.setattr(Dreamer, "dream_tensor", recording_call)
    src = make_video(tmp_path, size="64x48", frames=8)
    video = VideoSettings(start=2, end=6)
    dream_video(src, os.path.join(str(tmp_path), "out/"), tiny_dreamer.settings, video, RunOptions(),
                dreamer=tiny_dreamer)
    octaves, iterations = next_schedule(tiny_dreamer.settings, video)
    # frame indices are the input's (they seed the jitter), the first gets the preset's schedule
    assert calls == [(2, None, None)] + [(k, octaves, iterations) for k in (3, 4, 5)]
    calls.clear()
    dream_video(src, os.path.join(str(tmp_path), "independent/"), tiny_dreamer.settings,
                VideoSettings(flow="none", end=3), RunOptions(), dreamer=tiny_dreamer)
    assert calls == [(0, None, None), (1, None, None), (2, None, None)]


def test_flows_computed_ahead_are_the_flows_used_inline():
    """The render estimates frame t+1's flows in a worker thread; the result must not differ."""
    big = textured(90, 70, seed=3)
    prev, cur = big[5:53, 5:69], big[8:56, 3:67]  # moved by (2, -3)
    est = FlowEstimator()
    with ThreadPoolExecutor(1) as pool:
        flows = pool.submit(estimate_flows, est, cur, prev).result()
    inline = estimate_flows(est, cur, prev)
    np.testing.assert_array_equal(inline.backward, flows.backward)
    np.testing.assert_array_equal(inline.forward, flows.forward)


def test_source_ending_early_keeps_the_frames_dreamed(tmp_path, tiny_dreamer, monkeypatch):
    """A video that decodes fewer frames than it announced: a one-line error after every frame
    that did decode was dreamed and kept for a resume."""
    src = make_video(tmp_path, size="64x48", frames=6)
    real_open = render_module.open_source

    def short_source(*a, **k):
        source = real_open(*a, **k)
        frames = source.frames
        source.frames = lambda start=0, end=None: itertools.islice(frames(start, end), 4 - start)
        return source

    monkeypatch.setattr(render_module, "open_source", short_source)
    out = tmp_path / "out.mp4"
    with pytest.raises(DreamvidError) as e:
        dream_video(src, str(out), tiny_dreamer.settings, VideoSettings(), RunOptions(),
                    dreamer=tiny_dreamer)
    assert "ended early" in str(e.value) and "\n" not in str(e.value)
    assert not out.exists()
    kept = sorted(f for f in os.listdir(tmp_path / "out.mp4.dreamvid") if f.startswith("frame_"))
    assert kept == [f"frame_{i:06d}.png" for i in range(4)]


def test_scene_cut_is_dreamed_like_a_first_frame(tmp_path, tiny_dreamer, monkeypatch):
    calls = []
    real_call = Dreamer.dream_tensor
    monkeypatch.setattr(Dreamer, "dream_tensor", lambda self, rgb, index=0, on_step=None, octaves=None,
                        iterations=None, **kw: calls.append((index, octaves, iterations))
                        or real_call(self, rgb, index, on_step, octaves, iterations, **kw))
    folder = tmp_path / "shots"
    folder.mkdir()
    a, b = textured(84, 68, seed=1), textured(84, 68, seed=2)
    for k in range(6):  # two shots of a moving texture; the cut is before frame 3
        shot, j = (a, k) if k < 3 else (b, k - 3)
        write_image(str(folder / f"{k}.png"), shot[10 - j:58 - j, 10 - 2 * j:74 - 2 * j])
    video = VideoSettings()
    dream_video(str(folder), os.path.join(str(tmp_path), "out/"), tiny_dreamer.settings, video,
                RunOptions(), dreamer=tiny_dreamer)
    short = next_schedule(tiny_dreamer.settings, video)
    assert calls == [(0, None, None), (1, *short), (2, *short), (3, None, None), (4, *short), (5, *short)]


@pytest.mark.parametrize("flow", ["dis", "static"])
def test_render_carries_the_dream_along_the_motion(tmp_path, flow):
    """Content moves by (dx, dy) px per frame. With next_iterations=0 a later frame is exactly its
    temporal init, so the render shows what it carried: with flow the previous dream residual moved
    with the content (backward warp, right direction), with 'static' it stayed on the screen."""
    dx, dy, w, h = 3, 2, 64, 48
    big = textured(w + 20, h + 20, seed=4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(3):  # frame k = the texture moved by k·(dx, dy)
        write_image(str(folder / f"f{k}.png"), big[10 - k * dy:10 - k * dy + h, 10 - k * dx:10 - k * dx + w])
    settings = settings_from_preset(None, iterations=6, octaves=1)
    blend = 0.9
    video = VideoSettings(flow=flow, blend=blend, next_iterations=0)
    out = os.path.join(str(tmp_path), "out/")
    dream_video(str(folder), out, settings, video, RunOptions(device="cpu"))
    raw = [f.astype(np.float32) / 255 for f in frames_of(folder)]
    res = [f.astype(np.float32) / 255 - r for f, r in zip(frames_of(out), raw)]
    assert np.abs(res[0]).mean() > 0.02  # the first frame really dreamed

    def shifted(a, sx, sy):
        return np.roll(a, (sy, sx), axis=(0, 1))

    m = 8  # compare away from the borders (rolled-in strips, new content)
    for k in (1, 2):
        with_content = shifted(res[k - 1], dx, dy) * blend
        on_screen = res[k - 1] * blend
        wrong_way = shifted(res[k - 1], -dx, -dy) * blend
        err = {name: float(np.mean((res[k] - ref)[m:-m, m:-m] ** 2))
               for name, ref in [("content", with_content), ("screen", on_screen), ("wrong", wrong_way)]}
        best = "content" if flow == "dis" else "screen"
        others = [v for name, v in err.items() if name != best]
        assert err[best] < 0.05 * min(others), err


def test_default_flow_is_stable_and_keeps_dreaming(tmp_path):
    """The tuned defaults on a small moving texture: far less flicker (E_warp) than independent
    frames, about as much dream, and no fading over the clip."""
    w, h, n = 64, 48, 8
    big = textured(w + 3 * n, h + 2 * n, seed=7)
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(n):
        write_image(str(folder / f"{k}.png"), big[2 * n - 2 * k:2 * n - 2 * k + h, 3 * k:3 * k + w])
    settings = settings_from_preset(None, iterations=4, octaves=1)
    dreamer = Dreamer(settings, "cpu")
    stats = {}
    for flow in ("none", "dis"):
        out = os.path.join(str(tmp_path), f"{flow}/")
        dream_video(str(folder), out, settings, VideoSettings(flow=flow), RunOptions(),
                    dreamer=dreamer)
        stats[flow] = temporal_stats(frames_of(folder), frames_of(out))
        per_frame = [np.abs(o.astype(float) - i.astype(float)).mean() / 255
                     for i, o in zip(frames_of(folder), frames_of(out))]
        assert min(per_frame[n // 2:]) > 0.7 * per_frame[0], per_frame  # no fading
    assert stats["dis"].e_warp_output < 0.3 * stats["none"].e_warp_output, stats
    assert stats["dis"].dream_strength > 0.7 * stats["none"].dream_strength, stats


# ------------------------------------------------------------------------------ CLI, outputs

@pytest.mark.parametrize("name,rate,audio", [
    ("out.mp4", "30000/1001", True),
    ("out.webm", "30000/1001", True),
    ("out.gif", "25", False),  # gif carries no audio even when the input has some
    ("out/", "25", False),
])
def test_cli_output_kinds(tmp_path, name, rate, audio):
    src = make_video(tmp_path, size="80x60", rate=rate, frames=5, audio=TONE)
    out = os.path.join(str(tmp_path), name)
    assert cli(src, "-o", out, *TINY) == 0
    fps = Fraction(rate)
    if name.endswith("/"):
        files = sorted(os.listdir(out))
        assert files == [f"frame_{i:06d}.png" for i in range(1, 6)]
        assert read_image(os.path.join(out, files[0])).shape == (48, 64, 3)
    else:
        check_video(out, 5, (64, 48), fps=fps, audio_s=5 / fps if audio else None)
    assert sorted(os.listdir(tmp_path)) == sorted(["in.mp4", name.rstrip("/")])


def test_cli_no_audio_flag_and_silent_input(tmp_path):
    loud = make_video(tmp_path, name="loud.mp4", frames=4, audio=TONE)
    silent = make_video(tmp_path, name="silent.mp4", frames=4)
    assert cli(loud, "-o", tmp_path / "a.mp4", "--no-audio", *TINY) == 0
    check_video(tmp_path / "a.mp4", 4, (64, 48), fps=25, audio_s=None)
    assert cli(silent, "-o", tmp_path / "b.webm", *TINY) == 0
    check_video(tmp_path / "b.webm", 4, (64, 48), fps=25, audio_s=None)


def test_cli_start_end_cuts_frames_and_audio(tmp_path):
    # silence until frame 6 (0.24 s), then a tone: rendering frames 4..8 puts the onset at 0.08 s
    src = steps_video(tmp_path, 12, audio=r"0.5*sin(2*PI*440*t)*gte(t\,0.24):c=stereo")
    out = tmp_path / "cut.mp4"
    assert cli(src, "-o", out, "--start", 4, "--end", 9, *TINY) == 0
    check_video(out, 5, (64, 48), fps=25, audio_s=5 / 25)
    pcm = decode_audio(str(out))
    onset = np.argmax(np.abs(pcm) > 0.05) / 48000
    assert abs(onset - 0.08) < 0.01, onset
    assert nearest_input_frames(src, out) == [4, 5, 6, 7, 8]
    # --end past the end stops at the last frame
    assert cli(src, "-o", os.path.join(str(tmp_path), "tail/"), "--start", 9, "--end", 100, *TINY) == 0
    assert len(os.listdir(tmp_path / "tail")) == 3


def test_cli_odd_input_size(tmp_path):
    src = make_video(tmp_path, size="97x73", frames=4)  # yuv444p: odd sizes stay odd
    assert cli(src, "-o", tmp_path / "odd.webm", "--max-side", 65, *BASE) == 0
    check_video(tmp_path / "odd.webm", 4, (65, 49), fps=25)  # 97x73 shrunk to 65 px: 65x49
    assert cli(src, "-o", tmp_path / "odd.mp4", *BASE) == 0
    check_video(tmp_path / "odd.mp4", 4, (98, 74), fps=25)  # mp4 needs even: padded by one pixel


def test_cli_frame_folder_natural_order_with_fps(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    base = textured(64, 48).astype(np.int16)
    for k in (1, 2, 3, 10, 11):  # plain text order would be 1, 10, 11, 2, 3
        write_image(str(folder / f"frame{k}.png"), np.clip(base - 60 + 10 * k, 0, 255).astype(np.uint8))
    (folder / "notes.txt").write_text("not a frame")
    out = tmp_path / "out.mp4"
    assert cli(folder, "-o", out, "--fps", "30000/1001", *TINY) == 0
    check_video(out, 5, (64, 48), fps=NTSC, audio_s=None)
    brightness = [f.mean() for f in frames_of(out)]
    assert brightness == sorted(brightness) and brightness[-1] - brightness[0] > 50


def test_cli_glob_input(tmp_path):
    for k in range(4):
        write_image(str(tmp_path / f"shot_{k}.png"), textured(64, 48, seed=k))
    write_image(str(tmp_path / "other_0.png"), textured(32, 24))  # not matched (another size)
    out = tmp_path / "out.gif"
    assert cli(str(tmp_path / "shot_*.png"), "-o", out, "--fps", 10, *TINY) == 0
    check_video(out, 4, (64, 48), fps=10)


# ------------------------------------------------------------------------------ CLI, errors

def _error_case(tmp_path, case):
    """(args, output path) for one bad invocation; inputs are made here, outputs pre-exist."""
    good = make_video(tmp_path, name="good.mp4", frames=3)
    out = tmp_path / "out.mp4"
    if case == "missing file":
        return [tmp_path / "nope.mp4", "-o", out], out
    if case == "undecodable file":
        (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
        return [tmp_path / "bad.mp4", "-o", out], out
    if case == "zero-frame video":  # a valid header with a video stream, and no frame
        (tmp_path / "zero.y4m").write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
        return [tmp_path / "zero.y4m", "-o", out], out
    if case == "empty frame folder":
        (tmp_path / "empty").mkdir()
        return [tmp_path / "empty", "-o", out], out
    if case == "frames of different sizes":
        (tmp_path / "mixed").mkdir()
        for k, w in enumerate((64, 64, 62)):
            write_image(str(tmp_path / "mixed" / f"f{k}.png"), textured(w, 48))
        return [tmp_path / "mixed", "-o", out], out
    if case == "unknown output extension":
        out = tmp_path / "out.avi"
        return [good, "-o", out], out
    if case == "--start past the end":
        return [good, "-o", out, "--start", 3], out
    if case == "output folder is a file":
        out = tmp_path / "dreamed"
        return [good, "-o", str(out) + "/"], out
    raise AssertionError(case)


@pytest.mark.parametrize("case", [
    "missing file", "undecodable file", "zero-frame video", "empty frame folder",
    "frames of different sizes", "unknown output extension", "--start past the end",
    "output folder is a file",
])
def test_cli_errors_are_one_line_and_leave_nothing(tmp_path, capfd, case):
    args, out = _error_case(tmp_path, case)
    out.write_bytes(b"an earlier output, to be kept")
    before = listing(tmp_path)
    capfd.readouterr()
    assert cli(*args, *TINY) == 2
    captured = capfd.readouterr()
    err = captured.err
    assert err.startswith("dreamvid: error: ") and err.endswith("\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert captured.out == ""
    assert listing(tmp_path) == before  # nothing added (no temp file, no checkpoint), nothing changed


# ------------------------------------------------------------------------------ model built once

def test_model_is_built_once_per_run(tmp_path, monkeypatch):
    loads, inits = [], []
    real_load, real_init = dreamer_module.load_model, Dreamer.__init__

    def counting_load(*a, **k):
        loads.append(a[0] if a else k.get("name"))
        return real_load(*a, **k)

    def counting_init(self, *a, **k):
        inits.append(1)
        return real_init(self, *a, **k)

    monkeypatch.setattr(dreamer_module, "load_model", counting_load)
    monkeypatch.setattr(Dreamer, "__init__", counting_init)
    src = make_video(tmp_path, size="64x48", frames=5, audio=TONE)
    assert cli(src, "-o", tmp_path / "out.mp4", *TINY) == 0
    assert loads == ["efficientnet_lite0"] and len(inits) == 1
    check_video(tmp_path / "out.mp4", 5, (64, 48), fps=25, audio_s=5 / 25)
