"""What checkpointing costs per frame, next to what dreaming a frame costs.

    python bench/checkpoint.py [--video samples/bunny.mp4] [--size 640x360] [--saves 40]
                               [--preset dreamy] [--device cpu] [--dream-frames 2]

Dreams a few real frames at the given size with the preset (the first with the full schedule,
later ones with the shorter schedule video frames after the first get), then times, per frame:
saving into a checkpoint (PNG encode; write + fsync + rename + folder fsync; the manifest
rewrite, itself fsynced), and on resume the integrity check of every frame (read + PNG chunk
CRCs) and a full load (read + check + decode). The checkpoint lives in a temporary folder on the
same disk as the repository (TMPDIR to move it). Resume reads come from the page cache (the
frames were just written); from a cold disk add bytes-per-frame / disk throughput.
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

from dreamvid.core.atomic import atomic_write  # noqa: E402
from dreamvid.store.checkpoint import Checkpoint  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402
from dreamvid.io.sources import open_source  # noqa: E402
from dreamvid.config.presets import DEFAULT_PRESET, settings_from_preset  # noqa: E402
from dreamvid.pipeline.video import next_schedule  # noqa: E402
from dreamvid.config.settings import VideoSettings  # noqa: E402


def ms(xs):
    """'median (min–max) ms' of a list of seconds."""
    return f"{statistics.median(xs) * 1e3:7.2f} ms (min {min(xs) * 1e3:.2f}, max {max(xs) * 1e3:.2f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=os.path.join(os.path.dirname(HERE), "samples", "bunny.mp4"))
    ap.add_argument("--size", default="640x360", help="WxH the frames are resized to")
    ap.add_argument("--saves", type=int, default=40, help="frames saved into the checkpoint")
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dream-frames", type=int, default=2, help="frames dreamed after the first")
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
                _atomic_write(os.path.join(folder, "scratch.png"), buf.tobytes(), ck._dir_fd)
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
