"""One prepared GPU run of at most ~5 minutes: one JSON, one table.

    python bench/gpu.py [--json gpu.json] [--models efficientnet_lite0,googlenet] [--precisions bf16,fp32]
    python bench/gpu.py --device cpu          # smoke test: reduced sizes, well under 2 minutes

Sections (each also a key of the JSON):

- env: torch, CUDA, cuDNN, OpenCV, the GPU, CPU cores.
- steps: per model and precision at 1920x1080, the time of one ascent step (forward + objective
  + backward to the image + update; the mean of an octave's steps) three ways — as shipped before
  issue 19 (tiles of 1024 px, a host sync per tile), untiled (engine/cuda_step.py: the whole image
  while it fits; no sync per step), graphed (untiled, the step replayed as a CUDA graph) — next to
  the roofline: the step's FLOPs (2x the forward's, counted with torch's FlopCounterMode) and, for Lite0, DESIGN's
  ~2.5 GB of traffic at 1080p (scaled by pixels), at --peak-tflops / --peak-tbps. Peak memory of
  the untiled step; whether the graph was captured (else why not).
- frames: a real 1080p frame (samples/bunny.mp4 upscaled) dreamed by a Dreamer with the default
  preset (the CPU smoke test: 2 octaves x 2 iterations): the first frame (full schedule; cold = the first call, warm = again) and later frames
  (the short schedule; median of 3).
- carry: the carry of one later 1080p frame on the device (temporal/carry.py, flows estimated
  before on the CPU at the default size): its time, device synchronised.
- render: the default 1080p video render (dream_video, streamed mp4, --frames frames) with the
  real dream: frames/s (wall, encode included; the model loaded before) and the GPU busy
  fraction (time inside the dream calls / wall: the dream calls return finished frames).
- cpu_stages: the same render with the dream replaced by a 3 ms wait (bench/pipeline.py
  --dream-ms): frames/s and the CPU time of each stage per frame.
- peak_4k: Lite0 at 3840x2160, one step per precision (untiled if it fits), and its peak memory.

Not measured here: several frames per pass or several Ray workers per GPU ("fill a big GPU").
--budget-s stops starting new sections past that many seconds (default 270).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import cv2
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from engine import LAYERS, _objective  # noqa: E402 (bench/engine.py: the same models and layers)
from pipeline import SleepDreamer, Timers, TimedDreamer, instrumented, scaled_clip  # noqa: E402

from dreamvid.config.presets import settings_from_preset  # noqa: E402
from dreamvid.config.settings import DreamSettings, RunOptions, VideoSettings  # noqa: E402
from dreamvid.core.convert import upload  # noqa: E402
from dreamvid.core.rng import make_generator  # noqa: E402
from dreamvid.engine.ascent import Ascent, ascend  # noqa: E402
from dreamvid.engine.cuda_step import GraphCache, MemoryBudget  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402
from dreamvid.engine.models import load_model  # noqa: E402
from dreamvid.engine.precision import resolve_precision  # noqa: E402
from dreamvid.errors import SettingError  # noqa: E402
from dreamvid.io.sources import open_source  # noqa: E402
from dreamvid.temporal.anchor import Anchor  # noqa: E402
from dreamvid.temporal.carry import carry_anchored, estimate_flows  # noqa: E402
from dreamvid.temporal.flow import FlowEstimator  # noqa: E402
from dreamvid.temporal.motion import Motion  # noqa: E402
import dreamvid.pipeline.video as render  # noqa: E402

SAMPLE = os.path.join(HERE, os.pardir, "samples", "bunny.mp4")
LITE0_BYTES_1080P = 2.5e9  # DESIGN.md "GPU arithmetic": Lite0 to block10, a full-frame step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device):
    return torch.cuda.max_memory_allocated(device) / 1024 ** 3 if device.type == "cuda" else None


def env(device) -> dict:
    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "opencv": cv2.__version__,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "cpu_cores": os.cpu_count(), "load": round(os.getloadavg()[0], 2), "device": str(device)}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        out.update(gpu=p.name, capability=f"{p.major}.{p.minor}", gpu_memory_gib=round(p.total_memory / 1024 ** 3, 1))
    return out


def step_time(ascent, x, settings, device, iterations: int) -> float:
    """Seconds per step: one octave of `iterations` steps (after a warm-up octave), divided."""
    ascend(x, ascent, settings.replace(iterations=1), make_generator(1))
    _sync(device)
    t = time.perf_counter()
    ascend(x, ascent, settings.replace(iterations=iterations), make_generator(1))
    _sync(device)
    return (time.perf_counter() - t) / iterations


def flops_of(ascent, x) -> float:
    """FLOPs of one step: 2x the forward's (counted; the backward to the input, with no weight
    gradients, costs about one forward: DESIGN "GPU arithmetic")."""
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), ascent.precision.autocast(), FlopCounterMode(display=False) as counter:
        ascent.model(x, ascent.layers)
    return 2.0 * float(counter.get_total_flops())


def steps(device, size, models, precisions, iterations, peaks) -> list:
    w, h = size
    x = torch.rand(1, 3, h, w, generator=make_generator(0)).to(device)
    rows = []
    for name in models:
        weights = None if name == "efficientnet_lite0" else "random"
        settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), jitter=32, step=0.01)
        for prec in precisions:
            m = load_model(name, weights, device, precision=prec.name)
            obj = _objective(m, name)[0]
            shipped = Ascent(m, obj, 1024, prec)  # before issue 19: tiles of 1024, a sync per tile
            untiled = Ascent(m, obj, 1024, prec, budget=MemoryBudget(device))
            graphs = GraphCache()
            graphed = Ascent(m, obj, 1024, prec, budget=MemoryBudget(device), graphs=graphs)
            row = {"model": name, "precision": prec.name, "size": f"{w}x{h}",
                   "tiled_as_shipped": shipped.tiled(x), "tiled_untiled": untiled.tiled(x)}
            row["shipped_ms"] = 1000 * step_time(shipped, x, settings, device, iterations)
            _peak_reset(device)
            row["untiled_ms"] = 1000 * step_time(untiled, x, settings, device, iterations)
            row["untiled_peak_gib"] = _peak_gib(device)
            row["graphed_ms"] = 1000 * step_time(graphed, x, settings, device, iterations)
            row["graph_failures"] = sorted(set(graphs.failures.values()))
            row["graph_used"] = (device.type == "cuda" and not graphs.failures) if device.type == "cuda" else None
            gflop = flops_of(untiled, x) / 1e9
            row["gflop"] = gflop
            peak_tflops = peaks["tflops"][prec.name]
            t_compute = gflop / (peak_tflops * 1e3)  # seconds
            t_bytes = (LITE0_BYTES_1080P * w * h / (1920 * 1080) / (peaks["tbps"] * 1e12)
                       if name == "efficientnet_lite0" and list(LAYERS[name]) == list(settings.layers) else 0.0)
            row["roofline_ms"] = 1000 * max(t_compute, t_bytes) if device.type == "cuda" else None
            best = min(row["untiled_ms"], row["graphed_ms"])
            row["best_over_roofline"] = best / row["roofline_ms"] if row["roofline_ms"] else None
            rows.append(row)
            del m, shipped, untiled, graphed, graphs
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def dream_settings(device) -> DreamSettings:
    """The default preset; the CPU smoke test shortens it (2 octaves x 2 iterations)."""
    return settings_from_preset(None, octaves=2, iterations=2) if device.type == "cpu" else settings_from_preset(None)


def frames(device, precision, clip, size) -> dict:
    settings = dream_settings(device)
    dreamer = Dreamer(settings, device, precision=precision)
    rgb = next(open_source(clip).frames(1, 2))
    raw = upload(rgb, device)  # on the device, as a render's frames are
    octs, its = render.next_schedule(settings, VideoSettings())

    def once(**kw):
        _sync(device)
        t = time.perf_counter()
        dreamer.dream_tensor(raw, index=1, **kw)
        _sync(device)
        return time.perf_counter() - t

    cold = once()
    warm = once()
    later = [once(octaves=octs, iterations=its) for _ in range(3)]
    return {"size": size, "precision": dreamer.precision.name, "first_cold_s": cold, "first_warm_s": warm,
            "later_s": statistics.median(later), "later_fps": 1 / statistics.median(later),
            "schedule_first": [settings.octaves, settings.iterations], "schedule_later": [octs, its],
            "graph_failures": sorted(set(dreamer.graphs.failures.values())) if dreamer.graphs else None}


def carry_time(device, clip, repeat: int = 5) -> dict:
    """The carry of one later frame on the device (temporal/carry.py: the motion's mask and
    frame-sized fields, the anchor followed and sampled, the one-step warp where it is not
    trusted, init and target), from flows estimated beforehand on the CPU at the default size:
    the median of `repeat` after a warm-up, device synchronised."""
    video = VideoSettings()
    frames_rgb = list(open_source(clip).frames(0, 3))
    est = FlowEstimator(video.flow, max_side=video.flow_max_side)
    flows = estimate_flows(est, frames_rgb[2], frames_rgb[1])
    raw, prev = upload(frames_rgb[2], device), upload(frames_rgb[1], device)
    dream = (prev + 0.05 * torch.rand(prev.shape, generator=make_generator(0)).to(device)).clamp(0, 1)
    h, w = raw.shape[-2:]
    times = []
    for _ in range(repeat + 1):
        _sync(device)
        t = time.perf_counter()
        motion = Motion(flows.backward, flows.forward, (h, w), device)
        motion.reliable_share()
        anchor = Anchor(0, dream - prev, video.carry_kernel, motion.flow_size)
        anchor.follow(motion)
        carry_anchored(raw, prev, dream, motion, anchor, video.blend)
        _sync(device)
        times.append(time.perf_counter() - t)
    return {"size": f"{w}x{h}", "flow_size": f"{motion.flow_size[1]}x{motion.flow_size[0]}",
            "carry_ms": 1000 * statistics.median(times[1:])}


def render_fps(device, precision, clip, n, tmp) -> dict:
    settings = dream_settings(device)
    timers = Timers()
    dreamer = TimedDreamer(Dreamer(settings, device, precision=precision), timers)
    out = os.path.join(tmp, "render.mp4")
    t = time.perf_counter()
    render.dream_video(clip, out, settings, VideoSettings(), RunOptions(device=str(device), precision=precision),
                       dreamer=dreamer)
    wall = time.perf_counter() - t
    busy = sum(timers.t.get("dream_first", [])) + sum(timers.t.get("dream_next", []))
    return {"frames": n, "wall_s": wall, "frames_per_s": n / wall, "gpu_busy_fraction": busy / wall,
            "first_frame_s": sum(timers.t.get("dream_first", []))}


def cpu_stages(device, clip, n, tmp, ms=3.0) -> dict:
    settings = settings_from_preset(None)
    out = {}
    for overlap in (False, True):
        timers = Timers()
        t = time.perf_counter()
        dreamer = Dreamer(settings, device)
        with instrumented(timers):
            render.dream_video(clip, os.path.join(tmp, f"stand-in-{overlap}.mp4"), settings, VideoSettings(),
                               RunOptions(device=str(device), overlap=overlap),
                               dreamer=SleepDreamer(dreamer, timers, ms))
        wall = time.perf_counter() - t
        key = "overlapped" if overlap else "sequential"
        out[key] = {"frames_per_s": n / wall, "wall_s": wall,
                    "ms_per_frame": {k: 1000 * sum(v) / n for k, v in timers.t.items() if k != "saved_at"}}
    out["dream_ms"] = ms
    return out


def peak_4k(device, size4k, precisions, iterations) -> list:
    w, h = size4k
    name = "efficientnet_lite0"
    x = torch.rand(1, 3, h, w, generator=make_generator(0)).to(device)
    settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), jitter=32, step=0.01)
    rows = []
    for prec in precisions:
        m = load_model(name, None, device, precision=prec.name)
        a = Ascent(m, _objective(m, name)[0], 1024, prec, budget=MemoryBudget(device), graphs=GraphCache())
        _peak_reset(device)
        t = step_time(a, x, settings, device, max(1, iterations // 2))
        rows.append({"precision": prec.name, "size": f"{w}x{h}", "tiled": a.tiled(x), "step_ms": 1000 * t,
                     "peak_gib": _peak_gib(device)})
        del m, a
    return rows


def table(res: dict) -> str:
    e = res["env"]
    lines = [f"dreamvid bench/gpu.py  {e.get('gpu', e['device'])}  torch {e['torch']}  CUDA {e['cuda']}  "
             f"cuDNN {e['cudnn']}  OpenCV {e['opencv']}  {e['cpu_cores']} cores  load {e['load']}"]
    if res.get("steps"):
        lines.append(f"{'step at ' + res['steps'][0]['size']:28s} {'shipped':>9s} {'untiled':>9s} {'graphed':>9s} "
                     f"{'roofline':>9s} {'best/roof':>9s} {'GFLOP':>7s} {'peak GiB':>8s}  graph")
        for r in res["steps"]:
            peak = "-" if r["untiled_peak_gib"] is None else f"{r['untiled_peak_gib']:.2f}"
            ratio = "-" if r["best_over_roofline"] is None else f"{r['best_over_roofline']:.1f}x"
            roof = "-" if r["roofline_ms"] is None else f"{r['roofline_ms']:.3f}"
            graph = ("n/a (not CUDA)" if r["graph_used"] is None else "yes" if r["graph_used"]
                     else "no: " + "; ".join(r["graph_failures"])[:60])
            lines.append(f"{r['model'] + ' ' + r['precision']:28s} {r['shipped_ms']:9.2f} {r['untiled_ms']:9.2f} "
                         f"{r['graphed_ms']:9.2f} {roof:>9s} {ratio:>9s} {r['gflop']:7.1f} {peak:>8s}  {graph}")
    if res.get("frames"):
        f = res["frames"]
        lines.append(f"frames {f['size']} {f['precision']}: first {f['first_cold_s']:.3f} s cold, "
                     f"{f['first_warm_s']:.3f} s warm ({f['schedule_first'][0]}x{f['schedule_first'][1]}); "
                     f"later {f['later_s'] * 1000:.1f} ms = {f['later_fps']:.1f} frames/s "
                     f"({f['schedule_later'][0]}x{f['schedule_later'][1]})")
    if res.get("carry"):
        c = res["carry"]
        lines.append(f"carry of a later {c['size']} frame on the device (flows at {c['flow_size']}): "
                     f"{c['carry_ms']:.1f} ms")
    if res.get("render"):
        r = res["render"]
        lines.append(f"render {r['frames']} frames: {r['frames_per_s']:.2f} frames/s, GPU busy "
                     f"{100 * r['gpu_busy_fraction']:.0f} % of the wall time")
    if res.get("cpu_stages"):
        c = res["cpu_stages"]
        for mode in ("sequential", "overlapped"):
            st = c[mode]["ms_per_frame"]
            parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(st.items()) if not k.startswith("dream"))
            lines.append(f"CPU stages, dream = {c['dream_ms']:g} ms wait, {mode}: {c[mode]['frames_per_s']:.2f} "
                         f"frames/s; ms/frame: {parts}")
    for r in res.get("peak_4k", []):
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f} GiB"
        lines.append(f"4K lite0 {r['precision']}: step {r['step_ms']:.1f} ms, {'tiled' if r['tiled'] else 'untiled'}, "
                     f"peak {peak}")
    if res.get("skipped"):
        lines.append(f"skipped (past --budget-s): {', '.join(res['skipped'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N; cpu: the smoke test")
    p.add_argument("--json", default="gpu.json", help="where the results go (default gpu.json)")
    p.add_argument("--models", default=None, help="default efficientnet_lite0,googlenet (cpu: lite0)")
    p.add_argument("--precisions", default=None, help="default bf16,fp32 (cpu: fp32)")
    p.add_argument("--size", default=None, help="default 1920x1080 (cpu: 256x144)")
    p.add_argument("--size4k", default=None, help="default 3840x2160 (cpu: 480x272)")
    p.add_argument("--frames", type=int, default=None, help="render frames (default 24; cpu: 4)")
    p.add_argument("--iterations", type=int, default=None, help="steps timed per octave (default 10; cpu: 1)")
    p.add_argument("--peak-tflops", type=float, default=790.0, help="bf16/fp16 peak (default H200 ~790)")
    p.add_argument("--peak-tflops-fp32", type=float, default=67.0, help="fp32 peak (default H200 ~67)")
    p.add_argument("--peak-tbps", type=float, default=4.3, help="memory bandwidth TB/s (default H200 ~4.3)")
    p.add_argument("--budget-s", type=float, default=270.0)
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU on this machine (torch.cuda.is_available() is False): "
              "use --device cpu for the smoke test")
        return 0
    cpu = a.device == "cpu"
    device = torch.device(a.device)
    models = (a.models or ("efficientnet_lite0" if cpu else "efficientnet_lite0,googlenet")).split(",")
    names = (a.precisions or ("fp32" if cpu else "bf16,fp32")).split(",")
    size = tuple(int(v) for v in (a.size or ("256x144" if cpu else "1920x1080")).split("x"))
    size4k = tuple(int(v) for v in (a.size4k or ("480x272" if cpu else "3840x2160")).split("x"))
    n = a.frames or (4 if cpu else 24)
    iterations = a.iterations or (1 if cpu else 10)
    precisions = []
    for name in names:
        try:
            precisions.append(resolve_precision(name, device))
        except SettingError as e:
            print(f"bench/gpu.py: skipping {name}: {e}")
    peaks = {"tflops": {"bf16": a.peak_tflops, "fp16": a.peak_tflops, "fp32": a.peak_tflops_fp32},
             "tbps": a.peak_tbps}
    start = time.perf_counter()
    res = {"env": env(device), "peaks": peaks, "skipped": []}
    with tempfile.TemporaryDirectory(prefix="dreamvid-gpu-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        scaled_clip(SAMPLE, clip, size[0], size[1], n)
        sections = [
            ("steps", lambda: steps(device, size, models, precisions, iterations, peaks)),
            ("frames", lambda: frames(device, precisions[0].name, clip, f"{size[0]}x{size[1]}")),
            ("carry", lambda: carry_time(device, clip)),
            ("render", lambda: render_fps(device, precisions[0].name, clip, n, tmp)),
            ("cpu_stages", lambda: cpu_stages(device, clip, n, tmp)),
            ("peak_4k", lambda: peak_4k(device, size4k, precisions, iterations)),
        ]
        for key, run in sections:
            if time.perf_counter() - start > a.budget_s:
                res["skipped"].append(key)
                continue
            t = time.perf_counter()
            res[key] = run()
            res.setdefault("section_s", {})[key] = round(time.perf_counter() - t, 1)
    res["total_s"] = round(time.perf_counter() - start, 1)
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(table(res))
    print(f"({res['total_s']} s; results in {a.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
