"""Temporal stability of a dreamed video against its input.

    python bench/temporal.py INPUT.mp4 OUTPUT.mp4 [--max-frames N] [--method dis] [--preset medium]

Prints E_warp (Lai et al. 2018) of the output, of the input itself (the floor: flow errors and
real changes), their ratio, and the dream strength (mean |output − input|): a stable output that
does not dream is not a result. Flow is computed on the input, resized to the output size if the
sizes differ. Both videos are decoded with OpenCV, streamed (two frames of each held at a time).
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2

from dreamvid.errors import DreamvidError
from dreamvid.temporal.flow import DIS_PRESETS, FlowEstimator, METHODS
from dreamvid.temporal.metrics import temporal_stats


def read_frames(path: str, max_frames=None):
    """Yield the frames of a video file as RGB uint8 ``HxWx3`` (OpenCV decoder)."""
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise DreamvidError(f"cannot open video {path!r}")
    try:
        n = 0
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            n += 1
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if n == 0:
            raise DreamvidError(f"no frames could be decoded from {path!r}")
    finally:
        cap.release()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1].strip(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="the raw video that was dreamed")
    ap.add_argument("output", help="the dreamed video")
    ap.add_argument("--max-frames", type=int, default=None, metavar="N",
                    help="compare only the first N frames")
    ap.add_argument("--method", default="dis", choices=METHODS, help="flow method (default dis)")
    ap.add_argument("--preset", default="medium", choices=sorted(DIS_PRESETS),
                    help="DIS preset (default medium)")
    args = ap.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 2:
        ap.error("--max-frames must be at least 2")
    try:
        est = FlowEstimator(args.method, args.preset)
        t0 = time.perf_counter()
        s = temporal_stats(read_frames(args.input, args.max_frames),
                           read_frames(args.output, args.max_frames), est, strict=False)
        dt = time.perf_counter() - t0
    except DreamvidError as e:
        print(f"temporal.py: error: {e}", file=sys.stderr)
        return 2
    rows = [
        ("E_warp(output)", f"{s.e_warp_output:.6f}"),
        ("E_warp(input)  [floor]", f"{s.e_warp_input:.6f}"),
        ("ratio output/input", f"{s.ratio:.3f}"),
        ("dream strength |out-in|", f"{s.dream_strength:.4f}"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{args.output} vs {args.input}: {s.frames} frames, {s.pairs} pairs used, "
          f"flow {est!r}, {dt:.1f} s")
    if s.truncated:
        print("note: the videos have different frame counts; compared the first "
              f"{s.frames} frames")
    if s.pairs < s.frames - 1:
        print(f"note: {s.frames - 1 - s.pairs} pair(s) had no reliable pixels (scene cuts?) "
              "and were skipped")
    for k, v in rows:
        print(f"  {k:<{width}}  {v:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
