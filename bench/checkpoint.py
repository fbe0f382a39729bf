"""What checkpointing costs per frame, next to what dreaming a frame costs.

    python bench/checkpoint.py [--video samples/bunny.mp4] [--size 640x360] [--saves 40]
                               [--preset dreamy] [--device cpu] [--dream-frames 2]
    python bench/checkpoint.py --long 600 --size 1280x720 [--chunks 0,12,24,48,96]

Dreams a few real frames at the given size with the preset (the first with the full schedule,
later ones with the shorter schedule video frames after the first get), then times, per frame:
saving into a checkpoint (PNG encode; write + fsync + rename + folder fsync; the manifest
rewrite, itself fsynced), and on resume the integrity check of every frame (read + PNG chunk
CRCs) and a full load (read + check + decode). The checkpoint lives in a temporary folder on the
same disk as the repository (TMPDIR to move it). Resume reads come from the page cache (the
frames were just written); from a cold disk add bytes-per-frame / disk throughput.

--long N: the storage scheme of a long render, today's (every frame a PNG until one encode at
the end: --chunks 0) against streamed chunks of n frames. The real job runner renders N frames
into an .mp4; to time the storage and not the dream, each frame is a real dreamed frame of the
clip shifted by a few pixels (as incompressible as a dream, never twice the same). Reported per
scheme: the checkpoint's peak disk use (sampled after every frame), the output's size, the
storage cost per frame (wall time of the render minus making the frames, over N) and the time
from the last frame to the finished output (the final encode or join).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dreamvid.config.settings import RunOptions  # noqa: E402
from dreamvid.core.atomic import atomic_write  # noqa: E402
from dreamvid.pipeline.events import Reporter  # noqa: E402
from dreamvid.pipeline.job import FrameJob, run_job  # noqa: E402
from dreamvid.store.checkpoint import Checkpoint  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402
from dreamvid.io.sources import open_source  # noqa: E402
from dreamvid.config.presets import DEFAULT_PRESET, settings_from_preset  # noqa: E402
from dreamvid.pipeline.video import next_schedule  # noqa: E402
from dreamvid.config.settings import VideoSettings  # noqa: E402


def ms(xs):
    """'median (min–max) ms' of a list of seconds."""
    return f"{statistics.median(xs) * 1e3:7.2f} ms (min {min(xs) * 1e3:.2f}, max {max(xs) * 1e3:.2f})"


class ShiftedFrames(FrameJob):
    """N frames: one dreamed frame rolled by 7 px more each frame (storage bench, no dreaming)."""

    def __init__(self, frame: np.ndarray, total: int):
        self.frame, self.total, self.fps = frame, total, 24
        self.make_s = 0.0

    streamable = True

    def identity(self):
        return {"bench": "long"}

    def position(self, k):
        return f"frame {k} of {self.total}"

    def resume(self, ckpt, done):
        pass

    def make(self, k, on_step):
        t = time.perf_counter()
        out = np.roll(self.frame, 7 * k, axis=1)
        self.make_s += time.perf_counter() - t
        return out


def folder_bytes(folder: str) -> int:
    total = 0
    for name in os.listdir(folder):
        try:
            total += os.stat(os.path.join(folder, name)).st_size
        except FileNotFoundError:  # pruned meanwhile
            pass
    return total


def long_render(frame: np.ndarray, frames: int, chunks: int) -> dict:
    """One run of the storage scheme: peak checkpoint bytes, output bytes, seconds."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", HERE), prefix=".bench-long-") as tmp:
        out = os.path.join(tmp, "out.mp4")
        folder = out + ".dreamvid"
        job = ShiftedFrames(frame, frames)
        peak, last = [0], [0.0]

        def on_event(e):
            if e.kind == "frame":
                peak[0] = max(peak[0], folder_bytes(folder))
                last[0] = time.perf_counter()

        t0 = time.perf_counter()
        run_job(job, out, RunOptions(device="cpu", chunk_frames=chunks or None), Reporter(on_event))
        t1 = time.perf_counter()
        return {"peak": peak[0], "output": os.path.getsize(out),
                "per_frame": (last[0] - t0 - job.make_s) / frames, "final": t1 - last[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=os.path.join(os.path.dirname(HERE), "samples", "bunny.mp4"))
    ap.add_argument("--size", default="640x360", help="WxH the frames are resized to")
    ap.add_argument("--saves", type=int, default=40, help="frames saved into the checkpoint")
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dream-frames", type=int, default=2, help="frames dreamed after the first")
    ap.add_argument("--long", type=int, metavar="N", help="compare storage schemes over an N-frame render")
    ap.add_argument("--chunks", default="0,12,24,48,96", help="--long: chunk sizes (0 = today's scheme)")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.lower().split("x"))

    source = open_source(a.video)
    raws = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
            for f in source.frames(0, min(source.num_frames, 1 + a.dream_frames))]

    settings = settings_from_preset(a.preset)
    dreamer = Dreamer(settings, a.device)
    octaves, iterations = next_schedule(settings, VideoSettings())
    first_t, next_t, dreamed = [], [], []
    for i, raw in enumerate(raws):
        t = time.perf_counter()
        if i == 0:
            out = dreamer(raw, index=i)
        else:
            out = dreamer(raw, index=i, octaves=octaves, iterations=iterations)
        (first_t if i == 0 else next_t).append(time.perf_counter() - t)
        dreamed.append((out * 255.0 + 0.5).astype(np.uint8))

    if a.long:
        print(f"# storage of a {a.long}-frame {w}x{h} render into .mp4 (x264 veryfast CRF 18), "
              f"{os.cpu_count()} CPUs; frame = a real dream shifted 7 px per frame")
        print(f"{'scheme':24s} {'peak checkpoint':>16s} {'output':>10s} {'storage/frame':>14s} {'last frame -> output':>21s}")
        for n in (int(v) for v in a.chunks.split(",")):
            r = long_render(dreamed[-1], a.long, n)
            name = "every frame PNG, 1 encode" if n == 0 else f"chunks of {n}"
            print(f"{name:24s} {r['peak'] / 2**20:13.0f} MiB {r['output'] / 2**20:7.1f} MiB "
                  f"{r['per_frame'] * 1e3:11.1f} ms {r['final']:19.1f} s", flush=True)
        return 0

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", HERE), prefix=".bench-ckpt-") as tmp:
        folder = os.path.join(tmp, "out.mp4.dreamvid")
        ident = {"bench": True}
        encode_t, write_t, manifest_t, save_t, sizes = [], [], [], [], []
        with Checkpoint(folder, ident, a.saves) as ck:
            ck.open()
            for i in range(a.saves):
                rgb = dreamed[i % len(dreamed)]
                # The parts, on a scratch name (same code path as save())...
                t0 = time.perf_counter()
                ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]),
                                       [cv2.IMWRITE_PNG_COMPRESSION, 1])
                t1 = time.perf_counter()
                atomic_write(os.path.join(folder, "scratch.png"), buf.tobytes(), ck._dir_fd)
                t2 = time.perf_counter()
                ck._write_manifest(i)
                t3 = time.perf_counter()
                # ...and the whole of save() as the render calls it.
                ck.save(i, rgb)
                t4 = time.perf_counter()
                encode_t.append(t1 - t0)
                write_t.append(t2 - t1)
                manifest_t.append(t3 - t2)
                save_t.append(t4 - t3)
                sizes.append(len(buf))
            os.remove(os.path.join(folder, "scratch.png"))

        t = time.perf_counter()
        with Checkpoint(folder, ident, a.saves) as ck:
            done = ck.open()  # checks every frame (read + CRCs)
        verify_all = time.perf_counter() - t
        assert done == a.saves, done
        load_t = []
        with Checkpoint(folder, ident, a.saves) as ck:
            ck.open()
            for i in range(a.saves):
                t = time.perf_counter()
                img = ck.load(i)
                load_t.append(time.perf_counter() - t)
                assert img is not None and img.shape == (h, w, 3)

    save_med = statistics.median(save_t)
    print(f"# checkpoint overhead at {w}x{h}, preset {a.preset}, device {a.device}, "
          f"{a.saves} saves, {os.cpu_count()} CPUs")
    print(f"dream, first frame ({settings.octaves} oct x {settings.iterations} it): {first_t[0]:8.2f} s")
    if next_t:
        print(f"dream, later frames ({octaves} oct x {iterations} it):      "
              f"{statistics.median(next_t):8.2f} s (median of {len(next_t)})")
    print(f"PNG size (level 1):                       {statistics.median(sizes) / 1024:7.0f} KiB")
    print(f"save: PNG encode                          {ms(encode_t)}")
    print(f"save: write + fsync + rename + dir fsync  {ms(write_t)}")
    print(f"save: manifest rewrite (fsynced)          {ms(manifest_t)}")
    print(f"save: total per frame                     {ms(save_t)}")
    print(f"resume: open() checking all {a.saves} frames   {verify_all * 1e3:7.1f} ms "
          f"= {verify_all / a.saves * 1e3:.2f} ms/frame")
    print(f"resume/encode: load one frame (read+check+decode) {ms(load_t)}")
    if next_t:
        print(f"overhead: save is {save_med / statistics.median(next_t) * 100:.2f} % of a later frame's "
              f"dream time, {save_med / first_t[0] * 100:.2f} % of the first's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
