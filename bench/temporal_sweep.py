"""Render clips with several temporal settings and print R, S, pile-up and timing per render.

    python bench/temporal_sweep.py CLIPS.json VARIANTS.json --out DIR [--jsonl results.jsonl]
           [--flows-dir DIR --eval-python .venv-eval/bin/python]

CLIPS.json: ``[{"name": "pan", "path": "bikes.mp4", "start": 30, "end": 75, "max_side": 320}, …]``.
VARIANTS.json: ``{"none": {"flow": "none"}, "today": {"temporal_weight": 0}, "default": {}, …}``:
VideoSettings fields over the defaults (a variant named "none" is rendered first: R and S need it).
Every render uses the default preset and seed through one Dreamer (CPU), into a PNG folder (lossless),
one at a time. Per render it prints and appends to the JSONL file:

* R = (E_out − E_in) / (E_none − E_in): the share of independent-frame flicker left (E_warp of
  Lai et al. 2018, flow on the input; see dreamvid.temporal.metrics);
* S = mean |out − in| ÷ the same for the "none" render;
* R5: R over frame pairs (t, t+5), direct flow between them; Shf: fine-detail strength (Laplacian
  energy of out − in) ÷ the none render's (see bench/temporal.py);
* Q4/Q1: mean strength of the last quarter of the frames ÷ the first quarter's (pile-up / fading);
* strength by age (frames since a pixel became visible: 0, 1, 2, 3–5) ÷ that of pixels seen ≥ 6
  frames: is a pan's entering strip or a disocclusion less dreamed, and for how long;
* later/first: median time of a frame after the first ÷ the first frame's.

With ``--flows-dir`` the metrics use evaluation flows (DeepFlow, bench/eval_flows.py, one cache per
clip: DIR/NAME.npz, made with ``--eval-python`` when missing) instead of DIS, the render's own flow.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from temporal import load_flows, read_frames  # noqa: E402

from dreamvid.config.presets import settings_from_preset  # noqa: E402
from dreamvid.config.settings import RunOptions, VideoSettings  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402
from dreamvid.pipeline.video import dream_video  # noqa: E402
from dreamvid.temporal.metrics import coherence_stats  # noqa: E402


def render(clip: dict, video: VideoSettings, out: str, dreamer: Dreamer):
    """Render `clip` into the PNG folder `out`; return the frame times (s)."""
    marks = []
    run = RunOptions(device="cpu", audio=False, fresh=True, checkpoint_dir=out.rstrip("/") + ".ckpt")
    dream_video(clip["path"], out, dreamer.settings, video, run, dreamer,
                on_event=lambda e: marks.append(time.perf_counter()) if e.kind in ("start", "frame") else None)
    return list(np.diff(marks))


def measure(clip: dict, out: str, flows_file=None):
    start, end = clip.get("start", 0), clip.get("end")
    files = sorted(glob.glob(os.path.join(out, "*.png")))
    frames = (np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(p).convert("RGB")) for p in files)
    inp = read_frames(clip["path"], end)
    for _ in range(start):
        next(inp)
    flows = None
    if flows_file:
        first = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(files[0]))
        flows = load_flows(flows_file, (first.shape[1], first.shape[0]), len(files), start)
    return coherence_stats(inp, frames, flows=flows)


def eval_flows(clip: dict, a, out: str):
    """The clip's evaluation-flow cache (made from the rendered frames' size when missing), or None."""
    if not a.flows_dir:
        return None
    path = os.path.join(a.flows_dir, clip["name"] + ".npz")
    if not os.path.exists(path):
        first = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(sorted(glob.glob(out + "*.png"))[0]))
        frames = clip["end"] - clip.get("start", 0)
        os.makedirs(a.flows_dir, exist_ok=True)
        subprocess.run([a.eval_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "eval_flows.py"),
                        clip["path"], path, "--size", f"{first.shape[1]}x{first.shape[0]}", "--frames", str(frames),
                        "--start", str(clip.get("start", 0))], check=True)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips")
    ap.add_argument("variants")
    ap.add_argument("--out", required=True, help="folder for the renders")
    ap.add_argument("--jsonl", help="append one JSON line per render here")
    ap.add_argument("--only", help="comma-separated clip names to run")
    ap.add_argument("--flows-dir", help="evaluation-flow caches, one per clip (see the docstring)")
    ap.add_argument("--eval-python", default=sys.executable, help="a Python with OpenCV-contrib, for --flows-dir")
    ap.add_argument("--keep", action="store_true", help="keep the rendered PNGs (else only the 'none' ones)")
    a = ap.parse_args(argv)
    clips = json.load(open(a.clips))
    variants = json.load(open(a.variants))
    if a.only:
        clips = [c for c in clips if c["name"] in a.only.split(",")]
    dreamer = Dreamer(settings_from_preset(None), device="cpu")
    names = sorted(variants, key=lambda n: n != "none")
    for clip in clips:
        none = None
        for name in names:
            # Independent frames cost a full schedule each: "none_end" may stop them early
            # (E_warp of independent frames is a per-pair mean, steady over a clip).
            end = clip.get("none_end", clip.get("end")) if name == "none" else clip.get("end")
            v = VideoSettings(**{"start": clip.get("start", 0), "end": end,
                                 "max_side": clip.get("max_side"), **variants[name]}).validate()
            out = os.path.join(a.out, f"{clip['name']}-{name}") + "/"
            if name == "none" and glob.glob(os.path.join(out, "*.png")) and os.path.exists(out + "times.json"):
                times = json.load(open(out + "times.json"))  # rendered before: reused
            else:
                times = render(clip, v, out, dreamer)
                json.dump(times, open(out + "times.json", "w"))
            s = measure(dict(clip, end=end), out, eval_flows(clip, a, out))
            if name == "none" or none is None and "none" not in variants:
                none = s
            r = (s.e_warp_output - s.e_warp_input) / (none.e_warp_output - none.e_warp_input)
            row = dict(clip=clip["name"], variant=name, settings=variants[name], frames=len(s.strengths),
                       e_out=s.e_warp_output, e_in=s.e_warp_input, e_none=none.e_warp_output, R=r,
                       strength=s.strength, S=s.strength / none.strength, q4_q1=s.quarter_ratio(),
                       R5=(s.e_gap_output - s.e_gap_input) / (none.e_gap_output - none.e_gap_input),
                       Shf=s.detail / none.detail, detail=s.detail,
                       first_strength=s.strengths[0],
                       by_age=[None if x is None or s.by_age[-1] is None else x / s.by_age[-1] for x in s.by_age[:-1]],
                       first_s=times[0], later_first=float(np.median(times[1:]) / times[0]) if len(times) > 1 else None)
            print(f"{row['clip']:>9} {name:>14}: R {r:.3f}  R5 {row['R5']:.3f}  S {row['S']:.3f}  "
                  f"Shf {row['Shf']:.3f}  Q4/Q1 {row['q4_q1']:.2f}  "
                  f"age0,1,2,3-5/old {['-' if x is None else round(x, 2) for x in row['by_age']]}  "
                  f"later/first {row['later_first'] or float('nan'):.3f} (first {times[0]:.1f} s)", flush=True)
            if a.jsonl:
                with open(a.jsonl, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            if not a.keep and name != "none":
                for p in glob.glob(os.path.join(out, "*.png")):
                    os.remove(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
