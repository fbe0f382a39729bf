"""How good the carry's flows are when estimated at a reduced size (VideoSettings.flow_max_side).

    python bench/flow_size.py CLIP [CLIP …] [--size 1920x1080] [--frames 12] [--sides none,960,640]

Each clip is scaled to --size (ffmpeg, as bench/pipeline.py does); for consecutive raw frames the
render's own flows (temporal.carry.estimate_flows, the FlowEstimator a render builds) are
estimated at each long side, and the carry is judged the way the render uses it: the previous raw
frame warped into the current one along the backward flow, its error against the current frame
where the occlusion mask trusts it (the input's E_warp floor, masked squared error on 0..1 RGB),
and the mask's mean (the share of the frame that carries a dream). Time per frame (both flows)
is the median, on one OpenCV thread per flow as the render's pool runs them.
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

from dreamvid.core.convert import to_unit
from dreamvid.io.sources import open_source
from dreamvid.temporal.carry import estimate_flows
from dreamvid.temporal.flow import FlowEstimator, occlusion_mask, warp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline import scaled_clip  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--size", default="1920x1080")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--sides", default="none,960,640", help="flow long sides to compare (none = full size)")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    sides = [None if s == "none" else int(s) for s in args.sides.split(",")]
    print(f"carry flows at reduced sizes, clips scaled to {width}x{height}, {args.frames} frames; "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    print(f"{'clip':24s} {'flow side':>9s} {'E_warp(raw) masked':>19s} {'mask mean':>10s} {'ms/frame':>9s}")
    with tempfile.TemporaryDirectory(prefix="dreamvid-flowsize-") as tmp:
        for path in args.clips:
            clip = os.path.join(tmp, "clip.mp4")
            scaled_clip(path, clip, width, height, args.frames)
            raws = [to_unit(f) for f in open_source(clip).frames(0, args.frames)]
            for side in sides:
                est = FlowEstimator("dis", "medium", max_side=side)
                errs, masks, times = [], [], []
                for prev, cur in zip(raws[:-1], raws[1:]):
                    t0 = time.perf_counter()
                    fb, ff = estimate_flows(est, cur, prev)
                    times.append(time.perf_counter() - t0)
                    c = occlusion_mask(ff, fb)
                    d = ((warp(prev, fb) - cur) ** 2).mean(axis=2)
                    errs.append(float((c * d).sum() / max(c.sum(), 1.0)))
                    masks.append(float(c.mean()))
                print(f"{os.path.basename(path):24s} {str(side or 'full'):>9s} {np.mean(errs):19.6f} "
                      f"{np.mean(masks):10.3f} {statistics.median(times) * 1000:9.1f}")
    return 0


if __name__ == "__main__":
    cv2.setNumThreads(1)
    sys.exit(main())
