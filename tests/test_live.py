"""Live dreams (pipeline/live.py, io/streams.py, dreamvid live): real files played against the
clock, real HTTP streams that stop, real recordings decoded back, the default model's weights."""

import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from dreamvid.config.settings import LiveSettings
from dreamvid.errors import SettingError
from dreamvid.io.streams import SourceLost, push_source
from dreamvid.pipeline.live import LiveCarry, LiveKnobs, run_live
from dreamvid.pipeline.common import build_dreamer
from dreamvid.config.settings import RunOptions

from conftest import ffmpeg

SAMPLE = str(Path(__file__).resolve().parents[1] / "samples" / "bunny.mp4")  # 426x240, 50 frames, 25 fps


def decode(path):
    cap, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="module")
def dreamer():
    return build_dreamer(None, RunOptions(device="cpu"), None)


def test_realtime_file_drops_frames_and_the_recording_follows_the_clock(tmp_path, dreamer):
    """A dream slower than the clip's 25 fps: frames are dropped (the newest is taken), the carry
    follows the frames actually dreamed, and the recording shows each dream for as long as it was
    shown: its length is the run's, its frame k the dream on screen at t0 + k/25."""
    shown = []
    out = tmp_path / "live.mp4"
    r = run_live(SAMPLE, str(out), live=LiveSettings(size=192, iterations=3), dreamer=dreamer, realtime=True,
                 on_event=lambda e: e.kind == "frame" and shown.append(e.frame))
    assert r.received == 50 and r.dropped > 0 and r.dreamed[0] == 0
    assert all(b > a for a, b in zip(r.dreamed, r.dreamed[1:]))
    assert max(b - a for a, b in zip(r.dreamed, r.dreamed[1:])) > 1  # gaps: the dropped frames
    assert r.cuts == 1  # only the first frame was dreamed afresh: the carry spans the gaps
    # The frame each dream was taken from was the newest one due: index ≈ 25 × (time it was taken).
    video = decode(out)
    span = r.ended - r.shown_at[0]
    assert abs(len(video) - span * 25) <= 2
    # Each recorded frame is the dream shown at its time (matched by nearest dream; lossy encode).
    t0, hits = r.shown_at[0], 0
    for k, f in enumerate(video):
        expect = max(i for i, t in enumerate(r.shown_at) if t <= t0 + k / 25 + 1e-6)
        errs = [np.abs(f.astype(np.float32) - s).mean() for s in shown]
        hits += int(np.argmin(errs) == expect)
    assert hits >= 0.9 * len(video)
    assert len(set(range(50)) - set(r.dreamed)) == r.dropped  # those never reach the recording


def test_a_file_without_realtime_dreams_every_frame_in_turn(tmp_path, dreamer):
    r = run_live(SAMPLE, str(tmp_path / "frames") + "/", dreamer=dreamer, max_frames=8)
    assert r.dreamed == list(range(8)) and r.dropped == 0
    names = sorted(os.listdir(tmp_path / "frames"))
    assert len(names) == 8
    first = cv2.imread(str(tmp_path / "frames" / names[0]))
    assert first.shape == (90, 160, 3)  # the default live size: long side 160


def test_the_carry_starts_afresh_at_a_cut_and_when_the_size_changes(dreamer):
    """Flow between the frames dreamed; a scene change (another picture) is a cut."""
    carry = LiveCarry(dreamer)
    bunny = decode(SAMPLE)
    coffee = cv2.cvtColor(cv2.imread(str(Path(SAMPLE).with_name("coffee.jpg"))), cv2.COLOR_BGR2RGB)
    live, cuts = LiveSettings(iterations=1), []
    for i, rgb in enumerate([bunny[0], bunny[3], bunny[9], coffee, coffee]):
        carry.dream(rgb, i, live)
        cuts.append(carry.cut)
    out = carry.dream(bunny[10], 5, live.replace(size=128))
    assert cuts == [True, False, False, True, False] and carry.cut and max(out.shape) == 128


def test_knobs_change_while_it_runs_and_are_checked(tmp_path, dreamer):
    knobs = LiveKnobs(LiveSettings(size=160))
    sizes = []

    def on(e):
        if e.kind == "frame":
            sizes.append(e.frame.shape[:2])
            if len(sizes) == 3:
                knobs.set(size=96, iterations=1)

    r = run_live(SAMPLE, str(tmp_path / "k.mp4"), dreamer=dreamer, knobs=knobs, max_frames=6, on_event=on)
    assert sizes[:3] == [(90, 160)] * 3 and sizes[3:] == [(54, 96)] * 3
    assert decode(r.output)[-1].shape == (90, 160, 3)  # the recording keeps its first size
    with pytest.raises(SettingError, match="size"):
        knobs.set(size=5000)
    assert knobs.get().size == 96


def test_pushed_frames_drop_the_unread_and_end_on_close(dreamer):
    src = push_source()
    for i in range(5):
        src.push(np.full((48, 64, 3), 40 * i, np.uint8))
    f = src.next_frame(-1)
    assert f.index == 4 and f.rgb[0, 0, 0] == 160  # only the newest of five is read
    assert src.next_frame(4, wait_s=0.05) is None and not src.ended
    src.close()
    assert src.next_frame(4) is None and src.ended


class _StreamHandler(http.server.BaseHTTPRequestHandler):
    """Serves the first `cut` bytes of an MPEG-TS file, then hangs up: a camera that goes away."""

    data = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(self.data)

    def log_message(self, *a):
        pass


def test_a_stream_that_stops_keeps_the_recording_so_far(tmp_path, dreamer):
    ts = tmp_path / "clip.ts"
    ffmpeg("-i", SAMPLE, "-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", str(ts))
    _StreamHandler.data = ts.read_bytes()[: ts.stat().st_size // 2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StreamHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "kept.mp4"
    out.write_bytes(b"an older recording")
    try:
        with pytest.raises(SourceLost, match=r"stopped sending frames.*the recording so far is in"):
            run_live(f"http://127.0.0.1:{server.server_port}/cam.ts", str(out), dreamer=dreamer)
    finally:
        server.shutdown()
    assert len(decode(out)) >= 1  # the recording so far replaced the old file, and decodes


def test_bad_sources_are_one_line_before_the_model_loads(tmp_path, capsys, monkeypatch):
    from dreamvid.__main__ import main
    silent = socket.socket()  # accepts the connection, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    cases = [([f"http://127.0.0.1:{port}/cam", "-o", "x.mp4"], "did not answer within 1 s"),
             (["http://127.0.0.1:9/cam", "-o", "x.mp4"], "did not answer"),  # nothing listens there
             (["--realtime", str(tmp_path / "none.mp4"), "-o", "x.mp4"], "no such file"),
             (["--realtime", SAMPLE, "-o", "x.avi"], "unsupported output"),
             (["--realtime", SAMPLE], "give -o OUTPUT"),
             (["--camera", "0", "--realtime", "-o", "x.mp4"], "leave it out"),
             (["--realtime", SAMPLE, "-o", "x.mp4", "--size", "9"], "--size must be"),
             (["--realtime", SAMPLE, "-o", "x.mp4", "--strength", "9"], "--strength must be in [0, 5]")]
    if "GUI:                           NONE" in cv2.getBuildInformation():  # opencv-python-headless
        cases.append((["--realtime", SAMPLE, "--window"], "cannot open a window here"))
    try:
        for args, expect in cases:
            assert main(["live", *args, "--timeout", "1"]) == 2, args
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and expect in lines[0], (args, lines)
    finally:
        silent.close()
    # A camera that is not there, from a fresh process (OpenCV's own warnings must not show either).
    p = subprocess.run([sys.executable, "-m", "dreamvid", "live", "--camera", "7", "-o", "x.mp4"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.strip().splitlines() == [
        "dreamvid: error: no camera 7: no camera answers at that index (is one connected, and free? try another index)"]
    assert not (tmp_path / "x.mp4").exists()


def test_dreamvid_live_records_a_realtime_file(tmp_path):
    out = tmp_path / "live.mp4"
    p = subprocess.run([sys.executable, "-m", "dreamvid", "live", "--realtime", SAMPLE, "-o", str(out),
                        "--size", "128"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "frames/s" in p.stderr and "latency" in p.stderr and "recorded" in p.stderr
    frames = decode(out)
    assert 20 <= len(frames) <= 75 and frames[0].shape == (72, 128, 3)  # up to the clip's 2 s at 25 fps


def test_a_page_live_dream_whose_camera_goes_quiet_stops_and_frees_the_device(tmp_path, dreamer):
    """The Live tab's session (no browser): frames pushed, dreamed; then none for idle_stop_s: the
    dream stops by itself and a render may take the device again."""
    import time
    from dreamvid.app.ui.jobs import Jobs
    from dreamvid.app.ui.live import LiveHub
    jobs = Jobs(str(tmp_path / "work"), "cpu")
    hub = LiveHub(jobs)
    hub.idle_stop_s = 1.0
    hub.dreamer = lambda settings: dreamer
    s = hub.start("page", "dreamy", LiveSettings())
    assert not jobs.try_hold_device()  # the live dream holds it
    frame = decode(SAMPLE)[0]
    deadline = time.monotonic() + 60
    while s.seq < 2 and time.monotonic() < deadline:
        s.last_push = time.monotonic()
        s.source.push(frame)
        time.sleep(0.05)
    assert s.seq >= 2 and s.latest.shape == (90, 160, 3)
    s.thread.join(timeout=30)  # nothing pushed any more
    assert not s.thread.is_alive() and s.error is None
    assert jobs.try_hold_device()
    jobs.release_device()
