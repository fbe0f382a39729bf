"""Streamed outputs: finished frames encoded in chunks as the render goes, joined at the end.

Real processes killed with SIGKILL at seeded random moments, real ffmpeg, real checkpoints.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import make_video
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import Cancelled, DreamvidError
from dreamvid.io.ffmpeg import probe
from dreamvid.io.sinks import FfmpegSink
from dreamvid.io.sources import open_source
from dreamvid.pipeline.video import dream_video, render_segment
from dreamvid.store.checkpoint import checkpoint_folder

FRAMES = 10
CHUNK = 3
FLAGS = ["--iterations", "1", "--octaves", "1", "--device", "cpu", "-q", "--chunk-frames", str(CHUNK)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    return make_video(root, "in.mp4", size="96x64", frames=FRAMES, audio="0.3*sin(2*PI*330*t):c=stereo")


@pytest.fixture(scope="module")
def dreamer():
    return Dreamer(settings_from_preset(None, iterations=1, octaves=1), "cpu")


def frames_of(path):
    return list(open_source(str(path)).frames())


def cli(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "dreamvid", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_at_random_moments_gives_the_uninterrupted_output(clip, tmp_path):
    ref = tmp_path / "ref.mp4"
    p = cli([clip, "-o", str(ref), *FLAGS], tmp_path)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    started = time.monotonic()
    p = cli([clip, "-o", str(tmp_path / "timing.mp4"), *FLAGS], tmp_path)
    p.communicate(timeout=300)
    whole = time.monotonic() - started  # how long one uninterrupted run takes here, now

    out = tmp_path / "out.mp4"
    rng = random.Random(7)
    kills = 0
    for attempt in range(12):  # killed at random points until a run gets to the end
        p = cli([clip, "-o", str(out), *FLAGS], tmp_path)
        try:
            p.wait(timeout=rng.uniform(0.3, 1.0) * whole)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            continue
        assert p.returncode == 0, p.stderr.read()
        break
    else:
        p = cli([clip, "-o", str(out), *FLAGS], tmp_path)
        assert p.wait(timeout=300) == 0
    assert kills >= 1
    a, b = frames_of(out), frames_of(ref)
    assert len(a) == len(b) == FRAMES and all(np.array_equal(x, y) for x, y in zip(a, b))
    # x264 is deterministic: the file itself is the same, audio included.
    assert out.read_bytes() == ref.read_bytes()
    assert not os.path.exists(checkpoint_folder(str(out)))
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


#: The one-step carry reads back only the last saved frame; with an anchor (the default) the frames
#: back to it stay too (FrameJob.carry_frames; tests/test_detail.py covers that path).
ONE_STEP = VideoSettings(carry_anchor=0)


def test_disk_holds_one_open_chunk_of_pngs(clip, tmp_path, dreamer):
    out = tmp_path / "o.mp4"
    folder = checkpoint_folder(str(out))
    seen = []

    def count(e):
        if e.kind == "frame":
            names = os.listdir(folder)
            seen.append((e.index, sum(n.endswith(".png") for n in names), sum(n.startswith("chunk_") for n in names)))

    # Sequential: a frame's event then comes after its save and chunk encode (overlapped, the event
    # comes at the hand-over to the background writer, which saves it a moment later).
    dream_video(clip, str(out), video=ONE_STEP, run=RunOptions(device="cpu", chunk_frames=CHUNK, overlap=False),
                dreamer=dreamer, on_event=count)
    for index, pngs, chunks in seen:
        # a chunk is encoded as soon as its frames are saved (the last, short one too)
        assert chunks == (index + 1) // CHUNK + (index + 1 == FRAMES and FRAMES % CHUNK > 0)
        assert pngs <= CHUNK  # the open chunk's frames, or the last frame kept for the carry
    assert max(p for _, p, _ in seen) == CHUNK - 1  # seen after each frame: its chunk is encoded by then
    assert len(frames_of(out)) == FRAMES


def test_half_written_chunk_and_lost_carry_frame_are_redone(clip, tmp_path, dreamer):
    run = RunOptions(device="cpu", chunk_frames=CHUNK, keep_frames=True)
    ref = tmp_path / "ref.mp4"
    dream_video(clip, str(ref), run=RunOptions(device="cpu", chunk_frames=CHUNK), dreamer=dreamer)

    out = tmp_path / "o.mp4"
    folder = checkpoint_folder(str(out))
    calls = []

    class StopAtFrame7:
        def is_set(self):
            return len(calls) >= 7

    from dreamvid.errors import Cancelled
    with pytest.raises(Cancelled):
        dream_video(clip, str(out), run=run, dreamer=dreamer, cancel=StopAtFrame7(),
                    on_event=lambda e: calls.append(1) if e.kind == "frame" else None)
    assert sorted(n for n in os.listdir(folder) if n.startswith("chunk_")) == ["chunk_000000.mp4", "chunk_000001.mp4"]
    # A killed encoder's half-written chunk (a hidden temporary) is dropped; frames 5 and 6 lost
    # (the last of chunk 1, the carry's start for frame 6, and frame 6): chunk 1 is redone from
    # its kept PNGs 3 and 4.
    with open(os.path.join(folder, ".chunk_000002.mp4.tmp-99999.mp4"), "wb") as f:
        f.write(b"\0" * 100)
    for i in range(5, 7):
        os.remove(os.path.join(folder, f"frame_{i:06d}.png"))
    events = []
    dream_video(clip, str(out), run=run, dreamer=dreamer, on_event=events.append)
    assert [e.text for e in events if e.kind == "message"] == ["resuming at frame 5 of 10"]
    assert not [n for n in os.listdir(folder) if ".tmp-" in n]
    a, b = frames_of(out), frames_of(ref)
    assert len(a) == FRAMES and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_without_kept_frames_a_lost_carry_frame_redoes_what_it_must(clip, tmp_path, dreamer):
    run = RunOptions(device="cpu", chunk_frames=CHUNK)
    out = tmp_path / "o.mp4"
    folder = checkpoint_folder(str(out))
    frames = []

    class StopAtFrame4:
        def is_set(self):
            return len(frames) >= 4

    from dreamvid.errors import Cancelled
    with pytest.raises(Cancelled):  # frames 0..3 saved: chunk 0 encoded, PNG 3 the only one left
        dream_video(clip, str(out), video=ONE_STEP, run=run, dreamer=dreamer, cancel=StopAtFrame4(),
                    on_event=lambda e: frames.append(1) if e.kind == "frame" else None)
    assert sorted(n for n in os.listdir(folder) if n.endswith((".png", ".mp4"))) == ["chunk_000000.mp4", "frame_000003.png"]
    # Lose PNG 3, the carry's start: frame 2 (chunk 0's last) is gone too, so chunk 0 is dropped
    # and the render starts over; the result is still the uninterrupted one.
    os.remove(os.path.join(folder, "frame_000003.png"))
    events = []
    dream_video(clip, str(out), video=ONE_STEP, run=run, dreamer=dreamer, on_event=events.append)
    assert [e.text for e in events if e.kind == "message"] == [] and events[0].resumed_at == 0
    ref = tmp_path / "ref.mp4"
    dream_video(clip, str(ref), video=ONE_STEP, run=run, dreamer=dreamer)
    assert out.read_bytes() == ref.read_bytes()


def test_join_keeps_ntsc_fps_and_5_1_audio(tmp_path, dreamer):
    src = make_video(tmp_path, "ntsc.mp4", size="64x48", rate="30000/1001", frames=8,
                     audio="0.2*sin(2*PI*440*t)|0.2*sin(2*PI*550*t)|0.1*sin(2*PI*660*t)|0|0.1*sin(2*PI*220*t)|0.1*sin(2*PI*770*t):c=5.1")
    out = tmp_path / "o.mp4"
    dream_video(src, str(out), run=RunOptions(device="cpu", chunk_frames=3), dreamer=dreamer)
    source = open_source(str(out))
    assert source.fps.numerator == 30000 and source.fps.denominator == 1001
    assert source.num_frames == 8
    info = probe(str(out))
    assert info.has_audio and info.audio_layout.startswith("5.1")
    assert abs(info.duration_s - 8 * 1001 / 30000) < 0.05


def test_a_changed_quality_is_refused_on_resume(clip, tmp_path, dreamer):
    out = tmp_path / "o.webm"
    from dreamvid.errors import Cancelled

    class StopAfter4:
        n = 0

        def is_set(self):
            self.n += 1
            return self.n > 4 * 2

    with pytest.raises(Cancelled):
        dream_video(clip, str(out), run=RunOptions(device="cpu", chunk_frames=CHUNK, quality=40), dreamer=dreamer,
                    cancel=StopAfter4())
    with pytest.raises(DreamvidError, match="stream.quality was 40, now 20"):
        dream_video(clip, str(out), run=RunOptions(device="cpu", chunk_frames=CHUNK, quality=20), dreamer=dreamer)
    dream_video(clip, str(out), run=RunOptions(device="cpu", chunk_frames=CHUNK, quality=40), dreamer=dreamer)
    assert len(frames_of(out)) == FRAMES


def _segment(clip, folder, dreamer, chunks, cancel=None, on_event=None, chunk_frames=CHUNK):
    """Frames 2..9 of the clip (warm-up 1) into the segment checkpoint `folder`."""
    run = RunOptions(device="cpu", chunk_frames=chunk_frames)
    return render_segment(clip, str(folder), 2, 10, 1, settings=dreamer.settings, video=ONE_STEP, run=run, dreamer=dreamer,
                          chunks=chunks, cancel=cancel, on_event=on_event)


def test_a_segment_streams_its_span_and_keeps_the_rest_as_png(clip, tmp_path, dreamer):
    """A distributed render's segment: frames 2..5 of its 8 (0 = its first kept frame) are encoded
    in chunks as they are done; the first two (cross-faded at the seam) and the last two (its
    lead-out) stay PNGs for the driver. Stopped and resumed, the files are the same bytes."""
    import threading

    ref = tmp_path / "ref.dreamvid"
    _segment(clip, ref, dreamer, None, chunk_frames=None)  # every frame a PNG
    whole = tmp_path / "whole.dreamvid"
    _segment(clip, whole, dreamer, ("mp4", range(2, 6)))
    names = sorted(os.listdir(whole))
    assert [n for n in names if n.startswith("chunk_")] == ["chunk_000000.mp4", "chunk_000001.mp4"]  # 2-4, 5
    assert [n for n in names if n.startswith("frame_")] == [f"frame_{k:06d}.png" for k in (0, 1, 6, 7)]
    for k in (0, 1, 6, 7):  # the same pixels (stored uncompressed here: they are transient)
        assert np.array_equal(frames_of(whole / f"frame_{k:06d}.png")[0], frames_of(ref / f"frame_{k:06d}.png")[0])
    # Each chunk is the dreamed frames it spans, encoded as any streamed chunk is (x264 is
    # deterministic: the same bytes).
    dreamed = [frames_of(ref / f"frame_{k:06d}.png")[0] for k in range(8)]
    for name, span in (("chunk_000000.mp4", range(2, 5)), ("chunk_000001.mp4", range(5, 6))):
        expect = tmp_path / ("expect-" + name)
        with FfmpegSink(str(expect), "mp4", open_source(clip).fps, 96, 64, chunk=True) as sink:
            for k in span:
                sink.write(dreamed[k])
        assert (whole / name).read_bytes() == expect.read_bytes(), name

    stopped = tmp_path / "stopped.dreamvid"
    stop = threading.Event()
    with pytest.raises(Cancelled):
        _segment(clip, stopped, dreamer, ("mp4", range(2, 6)), cancel=stop,
                 on_event=lambda e: stop.set() if e.kind == "frame" and e.index == 4 else None)
    assert sorted(n for n in os.listdir(stopped) if n.startswith("chunk_")) == ["chunk_000000.mp4"]
    _segment(clip, stopped, dreamer, ("mp4", range(2, 6)))
    for name in names:
        if name.startswith(("chunk_", "frame_")):
            assert (stopped / name).read_bytes() == (whole / name).read_bytes(), name
