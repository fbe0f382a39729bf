"""Temporal stability of a dreamed video against its input.

    python bench/temporal.py INPUT.mp4 OUTPUT.mp4 [--max-frames N] [--method dis] [--preset medium]
    python bench/temporal.py INPUT.mp4 OUTPUT.mp4 [OTHER.mp4 …] --none NONE.mp4 [--start N]
           [--flows CACHE.npz [--eval-python .venv-eval/bin/python]]

Prints E_warp (Lai et al. 2018) of the output, of the input itself (the floor: flow errors and
real changes), their ratio, and the dream strength (mean |output − input|): a stable output that
does not dream is not a result. Flow is computed on the input, resized to the output size if the
sizes differ. Both videos are decoded with OpenCV, streamed (two frames of each held at a time).

With ``--none`` (the same render with ``--flow none``: independent frames) it prints, for each
output, the residual flicker R = (E_out − E_in) / (E_none − E_in) (the share of independent-frame
flicker left), the strength S = mean|out − in| ÷ the same for the none render, the strength of
the last quarter of the frames ÷ the first quarter's (pile-up or fading), and the strength of
pixels that became visible 0, 1, 2, 3–5 frames ago ÷ that of pixels seen for longer (a pan's
entering strip, disocclusions). Outputs and input may be frame folders or globs (PNG); ``--start``
skips that many input frames (the render's --start). Also, beside R and S:

* R5: R over the frame pairs (t, t+5), with the direct flow between them and the same
  forward–backward mask: a pattern that crawls or drifts slowly passes R and shows here;
* Shf: fine-detail strength, the mean over frames of the Laplacian energy (variance of
  ``cv2.Laplacian`` of the grey of out − in) ÷ the same for the none render (the none render may be
  shorter: each figure is a mean over its own frames). A blurred dream keeps S and loses Shf.

``--flows CACHE.npz``: the evaluation flows, DeepFlow on the input from bench/eval_flows.py, made
in an environment with OpenCV-contrib (``--eval-python`` runs it there when the file is missing).
Without it the metrics use DIS, the render's own flow, which rewards its own errors and returns too
little motion on textureless moving surfaces: report figures with --flows.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

import cv2
import numpy as np

from dreamvid.errors import DreamvidError
from dreamvid.temporal.flow import DIS_PRESETS, FlowEstimator, METHODS
from dreamvid.temporal.metrics import coherence_stats, temporal_stats


def read_frames(path: str, max_frames=None, start: int = 0):
    """Yield the frames of a video file (or a PNG folder / glob) as RGB uint8 ``HxWx3``."""
    if os.path.isdir(path) or any(ch in path for ch in "*?["):
        files = sorted(glob.glob(os.path.join(path, "*.png") if os.path.isdir(path) else path))
        if not files:
            raise DreamvidError(f"no PNG frames in {path!r}")
        for p in files[start:None if max_frames is None else start + max_frames]:
            yield cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
        return
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise DreamvidError(f"cannot open video {path!r}")
    try:
        n = 0
        for _ in range(start):
            cap.read()
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
    ap.add_argument("others", nargs="*", help="more dreamed videos of the same input (with --none)")
    ap.add_argument("--none", help="the same render with --flow none: print R, S, Q4/Q1 and strength by age")
    ap.add_argument("--start", type=int, default=0, help="skip this many input frames (the render's --start)")
    ap.add_argument("--max-frames", type=int, default=None, metavar="N",
                    help="compare only the first N frames")
    ap.add_argument("--flows", metavar="CACHE.npz", help="evaluation flows from bench/eval_flows.py (DeepFlow)")
    ap.add_argument("--eval-python", metavar="PYTHON",
                    help="a Python with OpenCV-contrib: makes --flows with bench/eval_flows.py when it is missing")
    ap.add_argument("--method", default="dis", choices=METHODS, help="flow method (default dis)")
    ap.add_argument("--preset", default="medium", choices=sorted(DIS_PRESETS),
                    help="DIS preset (default medium)")
    args = ap.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 2:
        ap.error("--max-frames must be at least 2")
    if args.none:
        return _compare(args)
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


def load_flows(path: str, size, frames: int, start: int):
    """A FlowSource (dreamvid.temporal.metrics) over the cache bench/eval_flows.py wrote."""
    data = np.load(path)
    if tuple(data["size"]) != tuple(size) or int(data["start"]) != start or int(data["frames"]) < frames:
        raise DreamvidError(f"{path} holds flows of {int(data['frames'])} frames from {int(data['start'])} "
                            f"at {tuple(data['size'])}, not {frames} from {start} at {tuple(size)}: make it anew")
    cache = {k: data[k] for k in data.files}
    return lambda t, k: (cache[f"f{k}"][t].astype(np.float32), cache[f"g{k}"][t].astype(np.float32))


def _eval_flows(args, size, frames: int):
    """The --flows source, made with --eval-python when the file is missing (None without --flows)."""
    if not args.flows:
        return None
    if not os.path.exists(args.flows):
        if not args.eval_python:
            raise DreamvidError(f"{args.flows} does not exist: make it with bench/eval_flows.py, or give --eval-python")
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_flows.py")
        subprocess.run([args.eval_python, script, args.input, args.flows, "--size", "%dx%d" % size,
                        "--frames", str(frames), "--start", str(args.start)], check=True)
    return load_flows(args.flows, size, frames, args.start)


def _compare(args) -> int:
    """R, R5, S, Shf, Q4/Q1 and strength by age of each output against the --none render."""
    est = FlowEstimator(args.method, args.preset)
    try:
        paths = [args.none, args.output, *args.others]
        counts = {p: sum(1 for _ in read_frames(p, args.max_frames)) for p in paths}
        first = next(read_frames(args.output, 1))
        flows = _eval_flows(args, (first.shape[1], first.shape[0]), max(counts.values()))

        def stats(path):
            n = counts[path]
            return coherence_stats(read_frames(args.input, n, args.start), read_frames(path, n), est,
                                   flows=flows)

        none = stats(args.none)
        print(f"input {args.input}: E_warp floor {none.e_warp_input:.6f}; none {args.none}: "
              f"E_warp {none.e_warp_output:.6f}, strength {none.strength:.4f}, detail {none.detail:.3g}; "
              f"flow {'DeepFlow (' + args.flows + ')' if flows else repr(est)}")
        print(f"{'output':<40} {'R':>6} {'R5':>6} {'S':>6} {'Shf':>6} {'Q4/Q1':>6}  strength by age 0, 1, 2, 3-5 / older")
        for path in paths:
            s = none if path == args.none else stats(path)
            r = (s.e_warp_output - s.e_warp_input) / (none.e_warp_output - none.e_warp_input)
            r5 = (s.e_gap_output - s.e_gap_input) / (none.e_gap_output - none.e_gap_input)
            ages = ", ".join("-" if x is None or s.by_age[-1] is None else f"{x / s.by_age[-1]:.2f}"
                             for x in s.by_age[:-1])
            print(f"{path[-40:]:<40} {r:6.3f} {r5:6.3f} {s.strength / none.strength:6.3f} "
                  f"{s.detail / none.detail:6.3f} {s.quarter_ratio():6.2f}  {ages}")
    except DreamvidError as e:
        print(f"temporal.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
