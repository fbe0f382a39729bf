"""Distributed rendering on a real local Ray (num_cpus=2, one session for the whole file).

Tiny settings (96x64 frames, 1 octave x 1 iteration) so the file fits the CI budget on 2 cores.
The reference for "identical" is the one-process render of the same segment plan: render_segment
of each planned segment (same warm-up) in this process, joined by join_segments, with torch on
one thread like each worker (on a CPU the thread count changes the last bits of the pixels).
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the 'ray' extra (in [test]) is not installed")

from conftest import ffmpeg, make_video  # noqa: E402
from dreamvid.config.presets import settings_from_preset  # noqa: E402
from dreamvid.config.settings import RunOptions, VideoSettings  # noqa: E402
from dreamvid.dist import render_distributed  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402
from dreamvid.errors import DreamvidError, SettingError  # noqa: E402
from dreamvid.io.sources import open_source  # noqa: E402
from dreamvid.pipeline.segments import (Segment, auto_segment_frames, crossfade, plan_segments, scene_cuts,  # noqa: E402
                                        step_errors)  # noqa: E402
from dreamvid.pipeline.video import render_segment  # noqa: E402
from dreamvid.store.checkpoint import checkpoint_folder  # noqa: E402

pytestmark = pytest.mark.slow

SETTINGS = settings_from_preset(None, iterations=1, octaves=1)
RUN = RunOptions(device="cpu", chunk_frames=None)
FLAGS = ["--iterations", "1", "--octaves", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (started in seconds, shut down at the end)."""
    import logging
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def cut_clip(tmp_path_factory):
    """12 frames: 6 of a moving test pattern, then a scene cut to 6 of another scene."""
    d = tmp_path_factory.mktemp("cut")
    out = str(d / "cut.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25", "-f", "lavfi", "-i", "mandelbrot=size=96x64:rate=25",
           "-filter_complex", "[0:v]trim=end_frame=6,setpts=PTS-STARTPTS[a];[1:v]trim=end_frame=6,"
           "setpts=PTS-STARTPTS[b];[a][b]concat=n=2:v=1[v]", "-map", "[v]", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", out)
    return out


@pytest.fixture(scope="module")
def one_thread():
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def frames_of(path):
    return list(open_source(str(path)).frames())


def one_process(clip, plan, tmp, video=VideoSettings()):
    """The one-process render of `plan`: each segment in turn (with its warm-up and lead-out),
    then the film: each segment's frames, its first `fade` cross-faded from the lead-out before."""
    dreamer = Dreamer(SETTINGS, "cpu")
    rendered = []
    for seg in plan:
        folder = str(tmp / f"ref-{seg.name}.dreamvid")
        render_segment(clip, folder, seg.start, seg.rendered_end, seg.warmup, video=video, run=RUN,
                       dreamer=dreamer, leadout=seg.leadout)
        rendered.append([frames_of(os.path.join(folder, f"frame_{k:06d}.png"))[0]
                         for k in range(seg.rendered_end - seg.start)])
    film = []
    for n, seg in enumerate(plan):
        for k in range(seg.frames):
            b = rendered[n][k]
            film.append(crossfade(rendered[n - 1][plan[n - 1].frames + k], b, k, seg.fade) if k < seg.fade else b)
    return film


def test_planner_cuts_first_then_runs_with_warmup_and_fades_inside_the_scene():
    plan = plan_segments(0, 100, [40], segment_frames=25, warmup=8, fade=6)
    assert [(s.start, s.end, s.warmup, s.exact, s.fade, s.leadout) for s in plan] == [
        (0, 20, 0, True, 0, 6), (20, 40, 8, False, 6, 0),      # scene 0..39: 2 runs of 20
        (40, 60, 0, True, 0, 6), (60, 80, 8, False, 6, 6), (80, 100, 8, False, 6, 0)]
    assert plan[0].rendered_end == 26 and plan[1].rendered_end == 40  # no lead-out across a cut
    # A warm-up never reaches back past its scene's first frame; reaching it makes the seam exact.
    p = plan_segments(0, 30, [10], 12, 8, fade=0)
    assert p[1:] == [Segment(10, 20, 0, True), Segment(20, 30, 8, False)]
    assert plan_segments(0, 30, [15], 10, 8)[2:] == [Segment(15, 23, 0, True), Segment(23, 30, 8, True)]
    assert [s.warmup for s in plan_segments(0, 9, [], 3, 5)] == [0, 3, 5]
    assert plan_segments(0, 9, [], 3, 5)[1].exact  # its warm-up starts at frame 0: exact, no fade
    assert [(s.fade, s.leadout) for s in plan_segments(0, 9, [], 3, 5, fade=6)] == [(0, 0), (0, 3), (3, 0)]
    assert all(s.warmup == 0 and s.exact and not s.fade
               for s in plan_segments(0, 9, [], 3, 5, carries=False))
    assert plan_segments(5, 9, [2, 7, 20], 10, 3) == [Segment(5, 7, 0, True), Segment(7, 9, 0, True)]
    a, b = np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 90, np.uint8)
    assert [int(crossfade(a, b, j, 2)[0, 0, 0]) for j in range(2)] == [30, 60]
    # The default length shares a film out in whole rounds: no worker idles at the end.
    assert (auto_segment_frames(1000, 16), auto_segment_frames(5000, 16), auto_segment_frames(12, 2)) == (63, 157, 6)
    with pytest.raises(SettingError, match="segment_frames must be at least 2"):
        plan_segments(0, 9, [], 1, 0)
    with pytest.raises(SettingError, match="warmup must be >= 0"):
        plan_segments(0, 9, [], 4, -1)
    with pytest.raises(SettingError, match="seam_fade must be >= 0"):
        plan_segments(0, 9, [], 4, 0, fade=-1)


def test_scene_cuts_are_found_where_the_render_dreams_afresh(cut_clip):
    video = VideoSettings()
    assert scene_cuts(open_source(cut_clip).frames(), video) == [6]
    assert scene_cuts(open_source(cut_clip).frames(), video.replace(flow="none")) == []


def test_a_last_segment_whose_warmup_reaches_the_first_frame_joins(tmp_path, one_thread):
    """Its checkpoint says which frames it keeps (it once looked like a whole-film render)."""
    clip = make_video(tmp_path, size="96x64", frames=4)
    got = one_process(clip, [Segment(0, 2, 0), Segment(2, 4, 2)], tmp_path)
    assert len(got) == 4


def test_two_workers_equal_the_one_process_render_of_the_plan(ray_session, cut_clip, tmp_path, one_thread):
    events = []
    out = str(tmp_path / "dist") + "/"
    render_distributed(cut_clip, out, SETTINGS, VideoSettings(), dataclasses.replace(RUN, keep_frames=True),
                       workers=2, segment_frames=4, warmup=2, seam_fade=2, on_event=events.append)
    folder = out.rstrip("/") + ".dreamvid"
    with open(os.path.join(folder, "plan.json")) as f:
        saved = json.load(f)
    plan = [Segment(**s) for s in saved["segments"]]
    assert saved["cuts"] == [6]
    assert [(s.start, s.end, s.warmup, s.fade, s.leadout) for s in plan] == [
        (0, 3, 0, 0, 2), (3, 6, 2, 2, 0), (6, 9, 0, 0, 2), (9, 12, 2, 2, 0)]  # no fade at the cut (6)
    assert sorted(os.listdir(os.path.join(folder, "segments"))) == [s.name + ".dreamvid" for s in plan]

    got = frames_of(out)
    ref = one_process(cut_clip, plan, tmp_path)
    assert len(got) == len(ref) == 12
    for i, (a, b) in enumerate(zip(got, ref)):
        assert np.array_equal(a, b), f"frame {i} differs from the one-process render of the plan"

    kinds = [e.kind for e in events]
    assert kinds.count("start") == 1 and kinds[-1] == "done" and kinds.count("done") == 1
    start = events[kinds.index("start")]
    assert (start.total, start.resumed_at) == (12, 0)
    frames = [e for e in events if e.kind == "frame"]
    assert sorted(e.index for e in frames) == list(range(12)) and {e.total for e in frames} == {12}
    faded = {s.start + k for s in plan for k in range(s.fade)}
    for e in frames:  # the pixels travel with the event (as dreamed: before a seam's cross-fade)
        assert np.array_equal(e.frame, got[e.index]) == (e.index not in faded)
    assert kinds.index("encode") > max(i for i, k in enumerate(kinds) if k == "frame")
    assert any("on 2 Ray workers" in (e.text or "") for e in events)

    # All segments finished: the same call only encodes (nothing dreamed again).
    again = []
    render_distributed(cut_clip, out, SETTINGS, VideoSettings(), RunOptions(device="cpu", chunk_frames=None),
                       workers=2, segment_frames=4, warmup=2, seam_fade=2, on_event=again.append)
    assert not [e for e in again if e.kind == "frame"]
    assert [e.resumed_at for e in again if e.kind == "start"] == [12]
    assert not os.path.exists(folder), "the run's folder is removed after the encode"
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), ref))


def test_an_mp4_output_is_joined_from_the_segments_chunks(ray_session, cut_clip, tmp_path, one_thread):
    """An mp4 output is streamed: each segment encodes its kept frames (but the cross-faded ones)
    in chunks as it goes; the driver encodes only each seam's fade and joins without re-encoding."""
    import math
    from fractions import Fraction

    from dreamvid.io.sinks import FfmpegSink
    out = tmp_path / "film.mp4"
    run = RunOptions(device="cpu", chunk_frames=2, keep_frames=True)
    render_distributed(cut_clip, str(out), SETTINGS, VideoSettings(), run, workers=2, segment_frames=4,
                       warmup=2, seam_fade=2)
    folder = tmp_path / "film.mp4.dreamvid"
    plan = [Segment(**s) for s in json.loads((folder / "plan.json").read_text())["segments"]]
    parts = []  # (file, the film frames it holds)
    for seg in plan:
        if seg.fade:
            parts.append((folder / "seams" / f"fade_{seg.start:06d}.mp4", range(seg.start, seg.start + seg.fade)))
        chunks = sorted((folder / "segments" / (seg.name + ".dreamvid")).glob("chunk_*.mp4"))
        assert len(chunks) == math.ceil((seg.frames - seg.fade) / 2)
        parts += [(c, range(seg.start + seg.fade + 2 * j, min(seg.start + seg.fade + 2 * j + 2, seg.end)))
                  for j, c in enumerate(chunks)]
    got = frames_of(out)
    joined = [f for p, _ in parts for f in frames_of(p)]  # streams copied: the same decoded frames
    assert len(got) == len(joined) == 12 and all(np.array_equal(a, b) for a, b in zip(got, joined))
    # Each part is the one-process render of the plan over its frames, encoded as a chunk
    # (x264 is deterministic: the same bytes).
    ref = one_process(cut_clip, plan, tmp_path)
    for path, span in parts:
        expect = tmp_path / ("expect-" + path.name)
        with FfmpegSink(str(expect), "mp4", Fraction(25), 96, 64, chunk=True) as sink:
            for i in span:
                sink.write(ref[i])
        assert path.read_bytes() == expect.read_bytes(), path.name
    assert open_source(str(out)).fps == Fraction(25) and open_source(str(out)).num_frames == 12


def test_a_killed_worker_is_replaced_and_the_frames_are_identical(ray_session, tmp_path, one_thread):
    clip = make_video(tmp_path, size="128x96", frames=12)
    killed = []

    def on_event(e):
        if e.kind == "frame" and not killed:  # every worker is mid-segment now: SIGKILL them all
            for name in ray.util.list_named_actors():
                if name.startswith("dreamvid-worker-"):
                    pid = ray.get(ray.get_actor(name).pid.remote())
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

    events = []
    out = str(tmp_path / "dist") + "/"
    render_distributed(clip, out, SETTINGS, VideoSettings(), RUN, workers=2, segment_frames=6, warmup=2, seam_fade=3,
                       on_event=lambda e: (events.append(e), on_event(e)))
    assert len(killed) == 2
    died = [e.text for e in events if e.kind == "message" and "worker died" in e.text]
    assert len(died) == 2, died
    resumed = [e.text for e in events if e.kind == "message" and "resuming at" in e.text]
    assert resumed, "the new workers resume the segments from their checkpoints"
    assert sorted({e.index for e in events if e.kind == "frame"}) == list(range(12))
    plan = plan_segments(0, 12, [], 6, 2, fade=3)
    assert [(s.leadout, s.fade) for s in plan] == [(3, 0), (0, 3)]
    ref = one_process(clip, plan, tmp_path)
    assert all(np.array_equal(a, b) for a, b in zip(frames_of(out), ref)) and len(frames_of(out)) == 12


def test_a_killed_progress_hub_does_not_end_the_render(ray_session, tmp_path, one_thread):
    """SIGKILL of the hub actor mid-render: Ray restarts it, the frame events it lost are read back
    from the checkpoints, and the frames equal the one-process render of the plan."""
    clip = make_video(tmp_path, size="96x64", frames=8)
    killed, events = [], []

    def on_event(e):
        events.append(e)
        if e.kind == "frame" and not killed:
            hub = next(n for n in ray.util.list_named_actors() if n.startswith("dreamvid-hub-"))
            pid = ray.get(ray.get_actor(hub).pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    out = str(tmp_path / "hub") + "/"
    render_distributed(clip, out, SETTINGS, VideoSettings(), RUN, workers=2, segment_frames=4, warmup=1,
                       seam_fade=2, on_event=on_event)
    assert killed
    assert sorted({e.index for e in events if e.kind == "frame"}) == list(range(8))
    assert [e.kind for e in events][-1] == "done"
    ref = one_process(clip, plan_segments(0, 8, [], 4, 1, fade=2), tmp_path)
    got = frames_of(out)
    assert len(got) == 8 and all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_a_stalled_worker_that_wakes_cannot_overwrite_the_newer_attempt(ray_session, tmp_path, one_thread):
    """Fencing: a worker SIGSTOPped mid-segment has its segment handed to another (a new attempt
    with a folder of its own); woken (SIGCONT) while the new attempt renders, it finishes into its
    old folder, which nothing reads: the output equals the undisturbed render."""
    # Frames large enough that a segment outlasts the first frame's report even on a fast machine
    # (at 96x64 a worker could finish its segment before the stop landed: nothing to hand over).
    clip = make_video(tmp_path, size="192x128", frames=12)
    stopped, events = [], []
    run = RunOptions(device="cpu", chunk_frames=None, keep_frames=True)

    def on_event(e):
        events.append(e)
        if e.kind == "frame" and not stopped:
            name = sorted(n for n in ray.util.list_named_actors() if n.startswith("dreamvid-worker-"))[0]
            pid = ray.get(ray.get_actor(name).pid.remote())
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        elif e.kind == "message" and "saved nothing" in e.text and stopped:
            os.kill(stopped[0], signal.SIGCONT)  # wakes while the new attempt renders

    out = str(tmp_path / "fence") + "/"
    try:
        render_distributed(clip, out, SETTINGS, VideoSettings(), run, workers=2, segment_frames=4, warmup=1,
                           seam_fade=2, on_event=on_event, stall_timeout=6)
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    handed = [e.text for e in events if e.kind == "message" and "saved nothing" in e.text]
    assert len(handed) == 1 and "(attempt 2)" in handed[0], handed
    ref = one_process(clip, plan_segments(0, 12, [], 4, 1, fade=2), tmp_path)
    got = frames_of(out)
    assert len(got) == 12 and all(np.array_equal(a, b) for a, b in zip(got, ref))
    folder = checkpoint_folder(out, None)
    attempts = [n for n in os.listdir(os.path.join(folder, "segments")) if n.endswith(".attempt")]
    assert len(attempts) == 1 and open(os.path.join(folder, "segments", attempts[0])).read() == "1"


def test_a_cancelled_render_stops_every_worker_and_resumes(ray_session, tmp_path):
    from dreamvid import Cancelled
    clip = make_video(tmp_path, size="96x64", frames=8)
    out = str(tmp_path / "c") + "/"
    cancel = threading.Event()
    with pytest.raises(Cancelled, match=r"stopped; the \d+ finished frames are kept in .*segments: run the same"):
        render_distributed(clip, out, SETTINGS, VideoSettings(), RUN, workers=2, segment_frames=4, warmup=1,
                           on_event=lambda e: e.kind == "frame" and cancel.set(), cancel=cancel)
    assert not [n for n in ray.util.list_named_actors() if n.startswith("dreamvid-worker-")]
    events = []
    render_distributed(clip, out, SETTINGS, VideoSettings(), RUN, workers=2, segment_frames=4, warmup=1,
                       on_event=events.append)
    assert [e.text for e in events if e.kind == "message"][0].startswith("resuming: ")
    assert len(frames_of(out)) == 8


def test_the_seam_on_real_footage_is_a_step_like_the_others(ray_session, tmp_path, one_thread):
    """samples/bunny.mp4 (Big Buck Bunny), 48 frames at 128 px, 2 segments, the default fade
    (16 frames, the lead-out coasted): every step of the transition is within 1.5x of the larger
    of the film's median step and the uncut render's own step there (motion varies along a film:
    the seam must not add to it); the same two segments joined hard are far above."""
    import cv2
    clip = os.path.join(os.path.dirname(__file__), "..", "samples", "bunny.mp4")
    video = VideoSettings(end=48, max_side=128)
    settings = settings_from_preset(None, iterations=2, octaves=2)
    out = str(tmp_path / "b") + "/"
    render_distributed(clip, out, settings, video, dataclasses.replace(RUN, keep_frames=True), workers=2,
                       segment_frames=24, warmup=0)
    film = frames_of(out)
    h, w = film[0].shape[:2]
    raw = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in open_source(clip).frames(0, 48)]
    uncut = str(tmp_path / "uncut.dreamvid")  # the one-process render, no seam
    render_segment(clip, uncut, 0, 48, 0, settings=settings, video=video, run=RUN)
    own = step_errors(raw, [frames_of(os.path.join(uncut, f"frame_{k:06d}.png"))[0] for k in range(48)])
    errs = step_errors(raw, film)
    fade = range(23, 40)  # steps (23, 24) … (39, 40): into, through and out of the 16-frame fade
    median = float(np.median(own))
    for t in fade:
        assert errs[t] <= 1.5 * max(median, own[t]), (t, errs[t] / median, own[t] / median)
    segs = tmp_path / "b.dreamvid" / "segments"
    hard = [frames_of(segs / name / f"frame_{k:06d}.png")[0]
            for name in ("seg_000000-000024.dreamvid", "seg_000024-000048.dreamvid") for k in range(24)]
    hard_errs = step_errors(raw, hard)
    assert hard_errs[23] > 2 * max(median, own[23])  # measured 3.9x here; the fade's worst 0.94x


def _cli(*args, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "dreamvid", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def test_driver_killed_then_rerun_resumes_and_keeps_finished_segments(ray_session, tmp_path):
    clip = make_video(tmp_path, size="96x64", frames=16)
    out = str(tmp_path / "out.mp4")
    run_folder = tmp_path / "out.mp4.dreamvid"
    segs = run_folder / "segments"
    cmd = [clip, "-o", out, "--workers", "2", "--ray-address", ray_session, "--segment-frames", "4",
           "--warmup", "1", "--seam-fade", "2", "--keep-frames", *FLAGS]

    def progress():
        """segment folder -> (PNG frames saved, frames it renders)."""
        try:
            plan = json.loads((run_folder / "plan.json").read_text())["segments"]
        except (OSError, ValueError):
            return {}
        out = {}
        for seg in map(lambda d: Segment(**d), plan):
            folder = segs / (seg.name + ".dreamvid")
            saved = [n for n in os.listdir(folder) if n.startswith("frame_")] if folder.is_dir() else []
            out[folder.name] = (len(saved), seg.rendered_end - seg.start)
        return out

    proc = _cli(*cmd)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        p = progress()
        if any(n == total for n, total in p.values()) and not all(n == total for n, total in p.values()):
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the driver, as kill -9 does
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(out)
    # Ray ends the dead driver's workers (their segment locks go with them).
    for name in os.listdir(segs):
        try:
            pid = int((segs / name / "lock").read_text().strip())
        except (OSError, ValueError):
            continue
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
    finished = {}
    for name, (n, total) in progress().items():
        if n == total:
            finished[name] = {f: os.stat(segs / name / f).st_mtime_ns for f in os.listdir(segs / name)
                              if f.startswith("frame_")}
    assert finished and len(finished) < 4, "killed after some segments finished, before all did"

    proc = _cli(*cmd)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "dreamvid: resuming: " in err
    for name, stamps in finished.items():  # finished segments were not dreamed again
        assert {f: os.stat(segs / name / f).st_mtime_ns for f in stamps} == stamps
    assert len(frames_of(out)) == 16


def test_two_drivers_on_one_output_are_refused(ray_session, tmp_path):
    from dreamvid.dist.run_folder import RunFolder
    clip = make_video(tmp_path, frames=4)
    out = str(tmp_path / "o.mp4")
    with RunFolder(out + ".dreamvid"):
        with pytest.raises(DreamvidError, match=r"another dreamvid process \(pid \d+\) is rendering this output"):
            render_distributed(clip, out, SETTINGS, VideoSettings(), RUN, workers=2)
    assert not os.path.exists(out)


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be at least 1"),
    (["--workers", "2", "--segment-frames", "1"], "--segment-frames must be at least 2"),
    (["--segment-frames", "8"], "--segment-frames shapes a render over Ray workers: add --workers N"),
    (["--workers", "2", "--warmup", "-1"], "--warmup must be >= 0"),
    (["--workers", "2", "-o", "x.png"], "an image is one frame"),
])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, message):
    from dreamvid.__main__ import main
    clip = make_video(tmp_path, frames=3)
    assert main([clip, "-o", str(tmp_path / "o.mp4"), *args, *FLAGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dreamvid: error: ") and message in err and err.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_a_zoom_loop_with_workers_is_refused(tmp_path, capsys):
    from dreamvid.__main__ import main
    assert main(["zoom", "noise", "-o", str(tmp_path / "z.gif"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "a zoom loop is inherently sequential" in err and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_without_ray_the_extra_is_named(tmp_path, capsys, monkeypatch):
    from dreamvid.__main__ import main
    clip = make_video(tmp_path, frames=3)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    assert main([clip, "-o", str(tmp_path / "o.mp4"), "--workers", "2", *FLAGS]) == 2
    assert capsys.readouterr().err == "dreamvid: error: distributed rendering needs Ray: pip install 'dreamvid[ray]'\n"
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]


def test_an_unreachable_address_fails_fast(tmp_path):
    """In a process of its own (this one has a Ray session, which a render would use)."""
    import socket
    clip = make_video(tmp_path, frames=3)
    out = str(tmp_path / "o.mp4")
    with socket.socket() as s:  # a port on this machine that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "dreamvid", clip, "-o", out, "--ray-address", f"127.0.0.1:{port}",
                           *FLAGS], capture_output=True, text=True)
    assert proc.returncode == 2 and time.time() - t < 60
    assert proc.stderr.startswith(f"dreamvid: error: cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
