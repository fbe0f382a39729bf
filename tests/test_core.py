"""The render core: events, cancellation, a silent library, segments and joins, per-frame settings.

Real parts throughout: videos made with ffmpeg, the offline EfficientNet-Lite0, real checkpoints.
"""

import os
import threading

import numpy as np
import pytest

from conftest import make_video
from dreamvid import Cancelled
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings, ZoomSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import DreamvidError, SettingError
from dreamvid.io.sources import open_source
from dreamvid.pipeline.image import dream_image
from dreamvid.pipeline.video import dream_video, join_segments, render_segment
from dreamvid.pipeline.zoom import loop_plan, zoom_loop

RUN = RunOptions(device="cpu")
ZOOM = ZoomSettings(frames=4, size=(72, 64), frame_octaves=1, frame_iterations=1)  # 1 octave fits 64 px


@pytest.fixture(scope="module")
def dreamer():
    """One real dreamer with 2 octaves x 2 steps (several steps per frame, for mid-frame stops)."""
    return Dreamer(settings_from_preset(None, iterations=2, octaves=2), "cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip"), size="208x144", frames=10)


@pytest.fixture(scope="module")
def quick():
    """1 octave x 1 step: for what counts frames, not steps (segments, per-frame settings)."""
    return Dreamer(settings_from_preset(None, iterations=1, octaves=1), "cpu")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("small"), size="96x64", frames=10)


def frames_of(path):
    return list(open_source(str(path)).frames())


def kinds(events):
    return [e.kind for e in events]


class StopAfter:
    """A cancel token that turns set on its n-th check (each ascent step and each frame checks)."""

    def __init__(self, n):
        self.n, self.calls, self.after = n, 0, 0

    def is_set(self):
        self.calls += 1
        if self.calls > self.n:
            self.after += 1
        return self.calls >= self.n


# ------------------------------------------------------------------------------------------ events

def test_video_events_kinds_order_counts_and_frames(tmp_path, clip, dreamer):
    events = []
    out = str(tmp_path / "v") + "/"
    dream_video(clip, out, video=VideoSettings(end=5), run=RUN, dreamer=dreamer, on_event=events.append)
    assert kinds(events) == ["start"] + ["frame"] * 5 + ["encode"] * 5 + ["done"]
    start = events[0]
    assert (start.total, start.resumed_at, start.output) == (5, 0, out)
    frames = [e for e in events if e.kind == "frame"]
    assert [e.index for e in frames] == list(range(5)) and {e.total for e in frames} == {5}
    written = frames_of(out)
    for e, f in zip(frames, written):  # .frame is the finished frame, exactly as written
        assert e.frame.dtype == np.uint8 and e.frame.shape == (144, 208, 3)
        np.testing.assert_array_equal(e.frame, f)
    assert [e.index for e in events if e.kind == "encode"] == [1, 2, 3, 4, 5]
    assert events[-1].output == out


def test_zoom_events(tmp_path, dreamer):
    events = []
    out = str(tmp_path / "z") + "/"
    zoom_loop("noise", out, zoom=ZOOM, run=RUN, dreamer=dreamer, on_event=events.append)
    plan = loop_plan(ZOOM.frames, ZOOM.loop, ZOOM.fade)
    assert kinds(events) == ["start"] + ["frame"] * plan.rendered + ["encode"] * ZOOM.frames + ["done"]
    frames = [e.frame for e in events if e.kind == "frame"]
    written = frames_of(out)
    for playing, f in zip(plan.order, written):  # the output plays the rendered frames in plan order
        np.testing.assert_array_equal(frames[playing], f)


def test_image_events(tmp_path, dreamer):
    events = []
    out = tmp_path / "i.png"
    result = dream_image("noise", str(out), max_side=160, dreamer=dreamer, on_event=events.append)
    steps = [e for e in events if e.kind == "step"]
    assert kinds(events) == ["start"] + ["step"] * len(steps) + ["frame", "done"]
    assert events[0].total == len(steps) == 2 * 2  # 2 octaves x 2 iterations
    assert [e.index for e in steps] == [1, 2, 3, 4] and [e.octave for e in steps] == [1, 1, 2, 2]
    np.testing.assert_array_equal(events[-2].frame, result)
    np.testing.assert_array_equal(frames_of(out)[0], result)


def test_the_library_prints_nothing(tmp_path, clip, dreamer, capfd):
    """Captured at the file-descriptor level: not a byte on stdout or stderr, ffmpeg included."""
    dream_video(clip, str(tmp_path / "v.mp4"), video=VideoSettings(end=3), run=RUN, dreamer=dreamer)
    zoom_loop("noise", str(tmp_path / "z.gif"), zoom=ZOOM, run=RUN, dreamer=dreamer)
    dream_image("noise", str(tmp_path / "i.png"), max_side=64, dreamer=dreamer)
    dream_video(clip, str(tmp_path / "v.mp4"), video=VideoSettings(end=3), run=RUN, dreamer=dreamer)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


# ------------------------------------------------------------------------------------ cancellation

def test_cancel_stops_within_one_step_and_the_resume_is_identical(tmp_path, clip, dreamer):
    ref = str(tmp_path / "ref") + "/"
    dream_video(clip, ref, video=VideoSettings(end=6), run=RUN, dreamer=dreamer)

    out = str(tmp_path / "out") + "/"
    # Checks per frame: one before it, then one per ascent step (4 for the first frame, 2 octaves
    # x 1 later). Stop after the first ascent step of frame 2: mid-frame.
    token = StopAfter(5 + 3 + 2)
    with pytest.raises(Cancelled, match=r"stopped at frame 2 of 6; the 2 finished frames are kept") as e:
        dream_video(clip, out, video=VideoSettings(end=6), run=RUN, dreamer=dreamer, cancel=token)
    assert e.value.exit_code == 130
    assert token.after == 0, "nothing more ran after the token was set"
    ckpt = out.rstrip("/") + ".dreamvid"
    assert sorted(n for n in os.listdir(ckpt) if n.startswith("frame_")) == ["frame_000000.png", "frame_000001.png"]
    assert not os.path.exists(out)

    events = []
    dream_video(clip, out, video=VideoSettings(end=6), run=RUN, dreamer=dreamer, on_event=events.append)
    assert [e.text for e in events if e.kind == "message"] == ["resuming at frame 2 of 6"]
    assert events[1].resumed_at == 2
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), frames_of(ref)))
    assert len(frames_of(out)) == 6


def test_cancel_from_another_thread(tmp_path, clip, dreamer):
    """A driver (a web page, a Ray driver) cancels while the render runs in a worker thread."""
    cancel = threading.Event()
    second_frame = threading.Event()
    result = {}

    def on_event(e):
        if e.kind == "frame" and e.index == 1:
            second_frame.set()

    def work():
        try:
            dream_video(clip, str(tmp_path / "t.mp4"), video=VideoSettings(end=10), run=RUN, dreamer=dreamer,
                        on_event=on_event, cancel=cancel)
        except Cancelled as e:
            result["stopped"] = str(e)

    worker = threading.Thread(target=work)
    worker.start()
    assert second_frame.wait(120)
    cancel.set()
    worker.join(120)
    assert not worker.is_alive()
    assert result["stopped"].startswith("stopped at frame ")
    done = len([n for n in os.listdir(tmp_path / "t.mp4.dreamvid") if n.startswith("frame_")])
    assert 2 <= done < 10 and not (tmp_path / "t.mp4").exists()


def test_cancel_while_encoding_keeps_the_frames(tmp_path, clip, dreamer):
    events = []

    class StopAtEncode:
        def is_set(self):
            return any(e.kind == "encode" for e in events)

    out = tmp_path / "e.mp4"
    end_encode = RunOptions(device="cpu", chunk_frames=None)  # one encode at the end (GIFs, loops)
    with pytest.raises(Cancelled, match="stopped while encoding"):
        dream_video(clip, str(out), video=VideoSettings(end=3), run=end_encode, dreamer=dreamer,
                    on_event=events.append, cancel=StopAtEncode())
    assert not out.exists()
    events.clear()
    dream_video(clip, str(out), video=VideoSettings(end=3), run=end_encode, dreamer=dreamer, on_event=events.append)
    assert [e.text for e in events if e.kind == "message"] == ["all 3 frames are in the checkpoint; encoding"]
    assert out.stat().st_size > 0


def test_cancelled_image_writes_nothing(tmp_path, dreamer):
    with pytest.raises(Cancelled, match="nothing was written"):
        dream_image("noise", str(tmp_path / "i.png"), max_side=64, dreamer=dreamer, cancel=StopAfter(2))
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------- segments

def test_segments_joined_equal_renders_of_the_same_ranges(tmp_path, small, quick):
    # A segment's first kept frame is an anchor of the carry (a resume rebuilds from it), so it
    # equals the plain render where that one anchors there too: starts on the anchor grid.
    video = VideoSettings(carry_anchor=4)
    plan = [(0, 4, 0), (4, 8, 2), (8, 10, 3)]  # (start, end, warm-up)
    folders = []
    for a, b, w in plan:
        folder = str(tmp_path / f"seg{a}.dreamvid")
        render_segment(small, folder, a, b, w, video=video, run=RUN, dreamer=quick)
        folders.append(folder)
    out = str(tmp_path / "joined") + "/"
    events = []
    join_segments(small, out, folders, video=video, run=RUN, on_event=events.append)
    joined = frames_of(out)
    assert len(joined) == 10 and kinds(events)[0] == "start" and kinds(events)[-1] == "done"

    for a, b, w in plan:  # each segment = a plain render of [a - w, b) without its first w frames
        ref = str(tmp_path / f"ref{a}") + "/"
        dream_video(small, ref, video=video.replace(start=a - w, end=b), run=RUN, dreamer=quick)
        expected = frames_of(ref)[w:]
        assert all(np.array_equal(x, y) for x, y in zip(joined[a:b], expected)), f"segment {a}..{b}"
    # Warm-up matters: the segment with warm-up differs from a cold start at its first frame.
    cold = str(tmp_path / "cold") + "/"
    dream_video(small, cold, video=video.replace(start=4, end=5), run=RUN, dreamer=quick)
    assert not np.array_equal(frames_of(cold)[0], joined[4])


def test_a_lead_out_is_coasted_along_the_flow_not_dreamed(tmp_path, small, quick):
    """A segment's lead-out (the next segment's cross-fade starts from it) costs a flow a frame:
    the dream of the frame before carried on, undecayed, where the flow is reliable (checked with
    the one-step carry, whose target is carry_one_step's)."""
    import torch
    from dreamvid.core.convert import download, quantize_tensor, upload
    from dreamvid.temporal.carry import carry_one_step, estimate_flows
    from dreamvid.temporal.flow import FlowEstimator
    from dreamvid.temporal.motion import Motion

    video = VideoSettings(carry_anchor=0)
    plain, coast = str(tmp_path / "plain.dreamvid"), str(tmp_path / "coast.dreamvid")
    render_segment(small, plain, 2, 8, 1, video=video, run=RUN, dreamer=quick)
    render_segment(small, coast, 2, 8, 1, video=video, run=RUN, dreamer=quick, leadout=2)
    got = [frames_of(os.path.join(coast, f"frame_{k:06d}.png"))[0] for k in range(6)]
    dreamed = [frames_of(os.path.join(plain, f"frame_{k:06d}.png"))[0] for k in range(6)]
    assert all(np.array_equal(a, b) for a, b in zip(got[:4], dreamed[:4]))  # frames 2..5 dreamed alike
    raw = list(open_source(small).frames(5, 8))
    est, cpu = FlowEstimator("dis"), torch.device("cpu")
    for k in (4, 5):  # frames 6 and 7: carried from the frame before, nothing dreamed
        cur, prev = raw[k - 3], raw[k - 4]
        flows = estimate_flows(est, cur, prev)
        motion = Motion(flows.backward, flows.forward, cur.shape[:2], cpu)
        c = carry_one_step(upload(cur, cpu), upload(prev, cpu), upload(got[k - 1], cpu), motion, video.blend)
        assert np.array_equal(got[k], download(quantize_tensor(c.target)))
        assert not np.array_equal(got[k], dreamed[k])
    with pytest.raises(SettingError, match="leadout"):
        render_segment(small, str(tmp_path / "x.dreamvid"), 2, 4, 0, video=video, run=RUN, dreamer=quick, leadout=2)


def test_a_segment_resumes_exactly_and_joins_refuse_gaps(tmp_path, small, quick):
    video = VideoSettings()
    folder = str(tmp_path / "s.dreamvid")
    ref = str(tmp_path / "r.dreamvid")
    render_segment(small, ref, 3, 8, 2, video=video, run=RUN, dreamer=quick)
    with pytest.raises(Cancelled, match="stopped at frame 5 of 8"):
        render_segment(small, folder, 3, 8, 2, video=video, run=RUN, dreamer=quick, cancel=StopAfter(8))  # mid-frame 5: 2 checks a frame
    events = []
    render_segment(small, folder, 3, 8, 2, video=video, run=RUN, dreamer=quick, on_event=events.append)
    assert [e.text for e in events if e.kind == "message"] == ["resuming at frame 5 of 8"]
    for k in range(5):
        a = frames_of(os.path.join(folder, f"frame_{k:06d}.png"))[0]
        b = frames_of(os.path.join(ref, f"frame_{k:06d}.png"))[0]
        np.testing.assert_array_equal(a, b)

    with pytest.raises(DreamvidError, match="starts at frame 3, expected 0"):
        join_segments(small, str(tmp_path / "j.mp4"), [folder], video=video, run=RUN)
    with pytest.raises(DreamvidError, match="not a dreamvid checkpoint"):
        join_segments(small, str(tmp_path / "j.mp4"), [str(tmp_path / "none.dreamvid")], video=video, run=RUN)
    assert not (tmp_path / "j.mp4").exists()


# ------------------------------------------------------------------------------ per-frame settings

def test_a_frame_varying_step_changes_exactly_its_frames(tmp_path, small, quick):
    video = VideoSettings(flow="none", end=6)  # independent frames: a change cannot spread
    base = str(tmp_path / "base") + "/"
    dream_video(small, base, video=video, run=RUN, dreamer=quick)
    varied = str(tmp_path / "varied") + "/"
    step = quick.settings.step
    dream_video(small, varied, video=video, run=RUN, dreamer=quick,
                vary={"step": lambda t: step * 4 if t in (2, 4) else step})
    same = [np.array_equal(a, b) for a, b in zip(frames_of(base), frames_of(varied))]
    assert same == [True, True, False, True, False, True]


def test_a_layer_weight_varies_per_frame_without_a_new_model(tmp_path, small, quick):
    model = quick.model
    layer = quick.settings.layers[-1][0]
    video = VideoSettings(flow="none", end=4)
    base = str(tmp_path / "base") + "/"
    dream_video(small, base, video=video, run=RUN, dreamer=quick)
    varied = str(tmp_path / "varied") + "/"
    dream_video(small, varied, video=video, run=RUN, dreamer=quick,
                vary={f"layers.{layer}": lambda t: 0.0 if t == 3 else dict(quick.settings.layers)[layer]})
    same = [np.array_equal(a, b) for a, b in zip(frames_of(base), frames_of(varied))]
    assert same == [True, True, True, False]
    assert quick.model is model


def test_varying_blend_with_the_carry(tmp_path, small, quick):
    """With the carry on, a change at frame 3 leaves frames 0..2 alone and changes frame 3."""
    video = VideoSettings(end=5)
    base = str(tmp_path / "base") + "/"
    dream_video(small, base, video=video, run=RUN, dreamer=quick)
    varied = str(tmp_path / "varied") + "/"
    dream_video(small, varied, video=video, run=RUN, dreamer=quick,
                vary={"blend": lambda t: 0.0 if t >= 3 else video.blend})
    same = [np.array_equal(a, b) for a, b in zip(frames_of(base), frames_of(varied))]
    assert same[:4] == [True, True, True, False]


def test_a_zoom_loop_with_varying_zoom(tmp_path, dreamer):
    base = str(tmp_path / "base") + "/"
    zoom_loop("noise", base, zoom=ZOOM.replace(loop=False), run=RUN, dreamer=dreamer)
    varied = str(tmp_path / "varied") + "/"
    zoom_loop("noise", varied, zoom=ZOOM.replace(loop=False), run=RUN, dreamer=dreamer,
              vary={"zoom": lambda t: 1.2 if t >= 2 else ZOOM.zoom})
    same = [np.array_equal(a, b) for a, b in zip(frames_of(base), frames_of(varied))]
    assert same == [True, True, False, False]


def test_per_frame_errors_and_identity(tmp_path, small, quick):
    with pytest.raises(SettingError) as e:
        dream_video(small, str(tmp_path / "x.mp4"), video=VideoSettings(end=4), run=RUN, dreamer=quick,
                    vary={"blend": lambda t: 1.5 if t == 2 else 0.5})
    assert e.value.field == "blend" and e.value.frame == 2 and "at frame 2" in str(e.value)
    with pytest.raises(SettingError, match="cannot vary per frame"):
        dream_video(small, str(tmp_path / "x.mp4"), run=RUN, dreamer=quick, vary={"model": lambda t: 1})
    with pytest.raises(SettingError, match="zoom setting"):
        dream_video(small, str(tmp_path / "x.mp4"), run=RUN, dreamer=quick, vary={"zoom": lambda t: 1})

    # A resume with another varying function is refused by name; the same one resumes.
    out = str(tmp_path / "r") + "/"
    with pytest.raises(Cancelled):
        dream_video(small, out, video=VideoSettings(end=4), run=RUN, dreamer=quick,
                    vary={"blend": lambda t: 0.5}, cancel=StopAfter(7))
    with pytest.raises(DreamvidError, match=r"vary\.blend was values"):
        dream_video(small, out, video=VideoSettings(end=4), run=RUN, dreamer=quick, vary={"blend": lambda t: 0.6})
    dream_video(small, out, video=VideoSettings(end=4), run=RUN, dreamer=quick, vary={"blend": lambda t: 0.5})
    assert len(frames_of(out)) == 4


def test_run_options_precision_reaches_the_engine():
    from dreamvid.pipeline.common import build_dreamer
    settings = settings_from_preset(None, iterations=1, octaves=1)
    fp32 = build_dreamer(settings, RunOptions(device="cpu", precision="fp32"), None)
    bf16 = build_dreamer(settings, RunOptions(device="cpu", precision="bf16"), None)
    assert fp32.identity["runtime"]["precision"] == "fp32"
    assert bf16.identity["runtime"]["precision"] == "bf16"
