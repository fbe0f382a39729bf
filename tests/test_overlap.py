"""The overlapped video pipeline (issue 19): read-ahead, the flow pool, the background writer.

Real media (ffmpeg), the real EfficientNet-Lite0 with tiny settings, real checkpoints on disk and a
real process killed with SIGKILL while it writes. The overlapped render must give the frames of the
sequential one (RunOptions(overlap=False)), whatever the pool's size.
"""

import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import torch

from conftest import make_video
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings
from dreamvid.core.convert import to_unit
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import DreamvidError
from dreamvid.io.sources import open_source
from dreamvid.pipeline import ahead
from dreamvid.pipeline.video import dream_video, video_job
from dreamvid.pipeline.writer import FrameWriter
from dreamvid.store.checkpoint import MANIFEST, Checkpoint, checkpoint_folder, png_intact, png_stored
from dreamvid.temporal.carry import estimate_flows
from dreamvid.temporal.flow import FlowEstimator

FRAMES = 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("overlap"), "in.mp4", size="96x64", frames=FRAMES)


@pytest.fixture(scope="module")
def dreamer():
    return Dreamer(settings_from_preset(None, iterations=1, octaves=1), "cpu")


def frames_of(path):
    return list(open_source(str(path)).frames())


def _rgb(seed, h=40, w=56):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------ same pixels

@pytest.mark.parametrize("output", ["out.mp4", "out/"])
def test_overlapped_render_gives_the_sequential_frames(clip, dreamer, tmp_path, output):
    # flow_max_side 48 < 96: the reduced-size flows run too (in the pool and inline alike).
    video = VideoSettings(flow_max_side=48)
    a = dream_video(clip, f"{tmp_path}/seq/{output}", dreamer.settings, video,
                    RunOptions(device="cpu", overlap=False, chunk_frames=3), dreamer=dreamer)
    b = dream_video(clip, f"{tmp_path}/ovl/{output}", dreamer.settings, video,
                    RunOptions(device="cpu", chunk_frames=3), dreamer=dreamer)
    fa, fb = frames_of(a), frames_of(b)
    assert len(fa) == len(fb) == FRAMES
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
    assert any(not np.array_equal(x, y) for x, y in zip(fa, frames_of(clip))), "it dreamed"


def test_flows_do_not_depend_on_opencv_threads_or_the_pool(clip):
    raws = [to_unit(f) for f in open_source(clip).frames(0, 4)]
    pairs = list(zip(raws[1:], raws[:-1]))
    before = cv2.getNumThreads()
    try:
        runs = []
        for threads in (1, 3, 8, 16):
            cv2.setNumThreads(threads)
            est = FlowEstimator("dis", "medium")
            runs.append([estimate_flows(est, c, p) for c, p in pairs])
    finally:
        cv2.setNumThreads(before)
    items = list(ahead.Lookahead(iter(open_source(clip).frames(0, 4)), to_unit, FlowEstimator(), workers=3))
    pooled = [ahead.result(f) for _, f in items[1:]]
    assert items[0][1] is None and len(pooled) == 3
    for run in runs[1:] + [pooled]:
        for (fb, ff), (gb, gf) in zip(runs[0], run):
            assert np.array_equal(fb, gb) and np.array_equal(ff, gf)


def test_the_flow_workers_prepare_the_motion_on_a_cpu_as_the_loop_would(clip, dreamer):
    """On a CPU device the read-ahead's workers compute each pair's mask and frame-sized fields;
    the loop computes the same values; no torch thread count changes (a thread started after
    a render gets the count a thread started before it had: ATen's default is process-wide)."""
    video = VideoSettings(flow_max_side=48)
    job, _ = video_job(clip, None, video, RunOptions(device="cpu"), None, dreamer)
    threads = torch.get_num_threads()
    pooled = ahead.Lookahead(iter(open_source(clip).frames(0, 3)), job._load_raw, job.estimator, then=job._motion)
    inline = ahead.Lookahead(iter(open_source(clip).frames(0, 3)), job._load_raw, job.estimator, overlap=False,
                             then=job._motion)
    try:
        for (_, a), (_, b) in list(zip(pooled, inline))[1:]:
            a, b = ahead.result(a), ahead.result(b)
            assert a._mask is not None and b._mask is None  # made ahead / left to the loop
            assert a.flow_size == (32, 48) and a.frame_size == (64, 96)
            assert a.reliable_share() == b.reliable_share()
            assert torch.equal(a.frame_mask(), b.frame_mask()) and torch.equal(a.frame_grid(), b.frame_grid())
    finally:
        pooled.close()
        inline.close()
    seen = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert torch.get_num_threads() == threads and seen == [threads]


def test_reduced_size_flow_keeps_the_full_grid_and_follows_a_shift():
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((200, 300)).astype(np.float32), (0, 0), 3)
    base = (255 * (base - base.min()) / np.ptp(base)).astype(np.uint8)
    shifted = np.roll(base, (4, -6), axis=(0, 1))  # shifted(p) = base(p - (4, -6))
    est = FlowEstimator("dis", "medium", max_side=150)
    assert est.estimation_size(200, 300) == (100, 150) and est.estimation_size(100, 140) == (100, 140)
    flow = est.calc(shifted, base)  # shifted(p) ≈ base(p + flow): flow ≈ (x +6, y -4)
    assert flow.shape == (200, 300, 2) and flow.dtype == np.float32
    inner = flow[30:-30, 30:-30]
    assert abs(np.median(inner[..., 0]) - 6) < 0.5 and abs(np.median(inner[..., 1]) + 4) < 0.5
    # What a render uploads: the flow at the estimation size, in pixels of that size (half here).
    small = est.estimate(shifted, base)
    assert small.shape == (100, 150, 2)
    inner = small[15:-15, 15:-15]
    assert abs(np.median(inner[..., 0]) - 3) < 0.25 and abs(np.median(inner[..., 1]) + 2) < 0.25
    with pytest.raises(DreamvidError):
        FlowEstimator(max_side=8)


# ------------------------------------------------------------------------------ the writer

def test_writer_saves_in_order_and_the_manifest_follows_durable_frames(tmp_path):
    ckpt = Checkpoint(str(tmp_path / "c"), {"x": 1}, 6)
    seen = []

    def after_save(k, frame):  # runs in the writer's thread, after each save
        assert np.array_equal(frame, _rgb(k))
        with open(os.path.join(ckpt.folder, MANIFEST)) as f:
            import json
            done = json.load(f)["progress"]["done"]
        names = sorted(n for n in os.listdir(ckpt.folder) if n.startswith("frame_"))
        seen.append((ckpt.completed, done, len(names)))

    with ckpt:
        ckpt.open()
        writer = FrameWriter(ckpt, after_save, depth=2)
        for k in range(6):
            writer.put(k, _rgb(k))
        writer.flush()
        writer.close()
        assert seen == [(k + 1, k + 1, k + 1) for k in range(6)]
        assert all(np.array_equal(ckpt.load(k), _rgb(k)) for k in range(6))


def test_a_failed_save_stops_the_writer_and_is_raised_in_the_loop(tmp_path):
    ckpt = Checkpoint(str(tmp_path / "c"), {"x": 1}, 6)
    with ckpt:
        ckpt.open()
        writer = FrameWriter(ckpt, None, depth=4)
        writer.put(0, _rgb(0))
        writer.flush()
        shutil.rmtree(ckpt.folder)  # the disk goes away under the render
        writer.put(1, _rgb(1))
        with pytest.raises(DreamvidError, match="could not write checkpoint frame"):
            writer.flush()
        with pytest.raises(DreamvidError):
            writer.put(2, _rgb(2))
        writer.close()
        assert ckpt.completed == 1


def test_stored_png_is_a_lossless_checked_png():
    rgb = _rgb(5, 33, 47)
    data = png_stored(rgb)
    assert png_intact(data) and not png_intact(data[:-5]) and not png_intact(data[:60] + b"x" + data[61:])
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(back, rgb)


@pytest.mark.parametrize("size", [(1, 1), (15, 1456), (30, 1456), (40, 1000), (3, 21846)])
def test_stored_png_spans_zlib_blocks(size):
    """Stored blocks hold at most 65535 bytes: one row and less, exactly one and two blocks
    (15 and 30 rows of 4369 bytes), many blocks with a short last one, a row longer than a block."""
    from PIL import Image

    rgb = np.random.default_rng(size[1]).integers(0, 256, (*size, 3), dtype=np.uint8)
    data = png_stored(rgb)
    assert png_intact(data)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), rgb)
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], rgb)


# ------------------------------------------------------------------------------ kill -9 mid-write

@pytest.mark.slow
def test_kill_9_while_the_writer_writes_then_resume_is_exact(tmp_path):
    clip = make_video(tmp_path, "in.mp4", size="320x240", frames=10)
    flags = ["--iterations", "1", "--octaves", "1", "--layers", "block3", "--device", "cpu", "-q",
             "--chunk-frames", "3"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")

    def cli(out):
        return subprocess.Popen([sys.executable, "-m", "dreamvid", clip, "-o", str(out), *flags], cwd=tmp_path,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    ref = tmp_path / "ref.mp4"
    p = cli(ref)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    out = tmp_path / "out.mp4"
    folder = checkpoint_folder(str(out))
    caught = False
    for _ in range(5):  # until a kill lands while a frame, chunk or manifest is half-written
        p = cli(out)
        deadline = time.monotonic() + 300
        while p.poll() is None and time.monotonic() < deadline:
            try:
                names = os.listdir(folder)
            except OSError:
                names = []
            if any(".tmp-" in n for n in names) and any(n.startswith("frame_") for n in names):
                p.send_signal(signal.SIGKILL)
                caught = True
                break
        p.wait()
        if caught:
            break
    assert caught, "no kill landed mid-write"
    assert p.returncode == -signal.SIGKILL
    p = cli(out)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "resuming at frame" in err or "all 10 frames" in err
    a, b = frames_of(out), frames_of(ref)
    assert len(a) == len(b) == 10 and all(np.array_equal(x, y) for x, y in zip(a, b))
