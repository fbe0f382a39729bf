"""Evaluation flows for bench/temporal.py: DeepFlow on the INPUT, independent of the render's DIS.

    python bench/eval_flows.py INPUT.mp4 CACHE.npz --size WxH --frames N [--start S] [--gaps 1,5]

Run it with an environment that has OpenCV-contrib (``cv2.optflow``), which cannot share one
environment with the runtime's ``opencv-python-headless`` (both are ``cv2``):

    python3 -m venv .venv-eval && .venv-eval/bin/pip install opencv-contrib-python-headless numpy
    .venv-eval/bin/python bench/eval_flows.py clip.mp4 clip-flows.npz --size 320x136 --frames 24

Why not the render's own flow: a metric computed with the method's flow rewards the method's own
errors, and Farneback returns ~0 px on textureless moving surfaces (a bright wall sliding past
reads as static), where DeepFlow (Weinzaepfel et al. 2013) tracks it. The script imports no
dreamvid module (only numpy and cv2), decodes INPUT with OpenCV, skips S frames, resizes each
frame to WxH as bench/temporal.py does (area when shrinking, else bilinear) and stores, for every
gap k, the flows ``f{k}[t]`` = t → t+k (lives in t) and ``g{k}[t]`` = t+k → t as float16 (0.01 px
resolution at these sizes; the flows are smooth, the metric averages thousands of pixels).
"""

from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np


def frames(path: str, start: int, count: int, size):
    """Yield `count` gray uint8 frames of `path` from `start` on, resized to size = (W, H)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"eval_flows.py: error: cannot open {path!r}")
    for _ in range(start):
        cap.read()
    for _ in range(count):
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if (rgb.shape[1], rgb.shape[0]) != size:
            shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        yield cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cap.release()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("cache", help="the .npz to write")
    ap.add_argument("--size", required=True, help="WxH of the dreamed output")
    ap.add_argument("--frames", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--gaps", default="1,5", help="frame gaps to store flows for (default 1,5)")
    args = ap.parse_args(argv)
    if not hasattr(cv2, "optflow"):
        print("eval_flows.py: error: this environment's cv2 has no optflow module: run it with "
              "opencv-contrib-python-headless (see the docstring)", file=sys.stderr)
        return 2
    w, h = (int(v) for v in args.size.lower().split("x"))
    gray = list(frames(args.input, args.start, args.frames, (w, h)))
    gaps = [int(k) for k in args.gaps.split(",")]
    deepflow = cv2.optflow.createOptFlow_DeepFlow()
    out = {"size": np.array([w, h]), "start": np.array(args.start), "frames": np.array(len(gray))}
    for k in gaps:
        f = [deepflow.calc(gray[t], gray[t + k], None) for t in range(len(gray) - k)]
        g = [deepflow.calc(gray[t + k], gray[t], None) for t in range(len(gray) - k)]
        out[f"f{k}"] = np.asarray(f, np.float16).reshape(-1, h, w, 2)
        out[f"g{k}"] = np.asarray(g, np.float16).reshape(-1, h, w, 2)
    tmp = args.cache + ".tmp.npz"
    np.savez_compressed(tmp, **out)
    os.replace(tmp, args.cache)
    print(f"{args.cache}: {len(gray)} frames at {w}x{h}, gaps {gaps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
