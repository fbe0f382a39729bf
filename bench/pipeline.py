"""Where a video render's time goes, stage by stage, per frame.

    python bench/pipeline.py [INPUT] [--frames 8] [--size 640x360] [--preset dreamy] [--repeat 2]
    python bench/pipeline.py [INPUT] --size 1920x1080 --dream-ms 20 --frames 24 [--carry both|device|cpu]


The input (default samples/bunny.mp4) is scaled to --size with ffmpeg (audio kept) into a
temporary folder, then rendered to an .mp4 by the real ``dreamvid.pipeline.video.dream_video``. Nothing is
re-implemented: the functions the render calls are wrapped in timers for the run —
decode (the source's frame iterator), flows (``carry.estimate_flows``), the carry on the device
(``VideoJob._carry``: mask, anchor, carried init and target), dream (the
Dreamer: first frame with the preset's full schedule, later frames with the short one),
checkpoint save (``Checkpoint.save``) and encode (reading the checkpoint frames back, the
ffmpeg sink's writes and its close, which finishes the encode and muxes the audio). Opening
the source (probing it and, for short clips, decoding it once to count its frames) counts as
decode.

The render decodes frames and estimates their flows ahead in threads, and saves frames and
encodes chunks in a background writer (pipeline/ahead.py, pipeline/writer.py). To time every
stage on its own, the bench also renders with RunOptions(overlap=False) (the "sequential
pipeline": the same functions, one after the other in the loop); it reports the stages from those
runs and the loop's measured wall time per later frame for both. Encode includes a streamed
render's chunk encodes.

With --repeat R each pipeline renders R times and each stage keeps its minimum (the machine may
be shared; minimums are the least noisy). The first frame is reported twice:
cold, as the first render of the process met it (one-off warm-ups included) and warm (the same full-schedule
dream run again once the render is done).

--dream-ms MS: a CPU stand-in for a fast GPU. The Dreamer (still built: its model load counts) is
called as usual through the real VideoJob, but each call only sleeps MS milliseconds (no CPU used)
and returns the frame it was given, so decode, flows, checkpoint and encode all run as in a real
render. Two pipelines are rendered (--carry both, the default):

* "GPU model" (--carry device): the whole device modelled. The carry (mask, anchor, carried init
  and target) runs on the dream's device (temporal/carry.py), so with a GPU it is GPU work too: it
  is replaced by a wait of --carry-ms (default 2) that returns the raw frame, the flow workers
  leave the motion's fields to the device as they do for a GPU, and torch's CPU pool is left at
  one thread (a GPU device does not use it; its spinning threads cost ~50 ms of CPU a frame here).
  What stays on the CPU is what stays there with a GPU: decode, flows, the hand-over copies, the
  checkpoint and the encode. A model, not a GPU measurement: bench/gpu.py measures a real GPU.
* "carry on CPU" (--carry cpu): the device is this CPU, so the carry is computed on these cores
  (a CPU render's carry; the dream alone is the wait).

It prints per frame each stage's wall time summed over whatever thread ran it (overlapped stages
can add up to more than the wall time) with that thread's CPU time beside it (torch's and
OpenCV's own pools, and ffmpeg, are not in it: see the process's and ffmpeg's CPU time below it),
when the first frame was saved, the steady rate after it and the time after the last save, and
``frames/s N``: frames / (model load + the whole render, encode and audio mux included), the GPU
model's (the CPU carry's on the line above it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Dict, List, NamedTuple

import torch

import dreamvid.pipeline.job as job
import dreamvid.pipeline.ahead as ahead
import dreamvid.pipeline.video as render
from dreamvid.store.checkpoint import Checkpoint
from dreamvid.engine.dreamer import Dreamer
from dreamvid.io.ffmpeg import ffmpeg_exe
from dreamvid.io.sources import open_source
from dreamvid.config.presets import DEFAULT_PRESET, settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, os.pardir, "samples", "bunny.mp4")


def scaled_clip(src: str, dst: str, width: int, height: int, frames: int) -> None:
    """The first `frames` frames of `src` scaled (and padded, aspect kept) to width x height."""
    vf = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
          f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", src,
           "-frames:v", str(frames), "-vf", vf, "-c:v", "libx264", "-preset", "fast", "-crf", "18",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", dst]
    subprocess.run(cmd, check=True)


class Timers:
    """Named lists of durations (seconds): wall time, and the CPU time of the thread that ran it."""

    def __init__(self):
        self.t: Dict[str, List[float]] = {}
        self.c: Dict[str, List[float]] = {}

    def add(self, name: str, dt: float, cpu: float = 0.0) -> None:
        self.t.setdefault(name, []).append(dt)
        self.c.setdefault(name, []).append(cpu)

    def wrap(self, name: str, fn):
        def timed(*a, **k):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                self.add(name, time.perf_counter() - t0, time.thread_time() - c0)
        return timed

    def wrap_iter(self, name: str, it):
        it = iter(it)
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                item = next(it)
            except StopIteration:
                return
            self.add(name, time.perf_counter() - t0, time.thread_time() - c0)
            yield item


@contextmanager
def instrumented(timers: Timers, overlap: bool = True):
    """Wrap, for the duration, what the render calls, in timers (the calls themselves are the
    library's own, on whichever thread the pipeline runs them). `overlap` is unused: the
    sequential pipeline is RunOptions(overlap=False)."""
    saved = {(render, "open_source"): render.open_source, (ahead, "estimate_flows"): ahead.estimate_flows,
             (ahead, "result"): ahead.result, (job, "open_sink"): job.open_sink,
             (job, "FfmpegSink"): job.FfmpegSink, (render.VideoJob, "_carry"): render.VideoJob._carry,
             (render.VideoJob, "_motion"): render.VideoJob._motion, (render.VideoJob, "_dream"): render.VideoJob._dream}
    saved_save, saved_frames = Checkpoint.save, Checkpoint.frames

    def save_timed(self, *a, **k):
        saved_save(self, *a, **k)
        timers.add("saved_at", time.perf_counter())

    def open_source_timed(*a, **k):
        # Opening probes the file and, for short clips, decodes it once to count the frames:
        # that is decoding too.
        t0, c0 = time.perf_counter(), time.thread_time()
        source = saved[render, "open_source"](*a, **k)
        timers.add("decode", time.perf_counter() - t0, time.thread_time() - c0)
        frames = source.frames
        source.frames = lambda *fa, **fk: timers.wrap_iter("decode", frames(*fa, **fk))
        return source

    def timed_sink(opener):
        def open_timed(*a, **k):
            t0, c0 = time.perf_counter(), time.thread_time()
            sink = opener(*a, **k)
            timers.add("encode", time.perf_counter() - t0, time.thread_time() - c0)
            sink.write = timers.wrap("encode", sink.write)
            sink.close = timers.wrap("encode", sink.close)
            return sink
        return open_timed

    render.open_source = open_source_timed
    job.open_sink = timed_sink(saved[job, "open_sink"])
    job.FfmpegSink = timed_sink(saved[job, "FfmpegSink"])  # a streamed render's chunk encodes
    def carry_timed(self, *a, **k):
        # The carry on the device (upload of the flows, mask, anchor, carried init and target),
        # without the wait for flows not estimated yet (flow_wait).
        waited, waited_cpu = sum(timers.t.get("flow_wait", [])), sum(timers.c.get("flow_wait", []))
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return saved[render.VideoJob, "_carry"](self, *a, **k)
        finally:
            timers.add("carry", time.perf_counter() - t0 - (sum(timers.t.get("flow_wait", [])) - waited),
                       time.thread_time() - c0 - (sum(timers.c.get("flow_wait", [])) - waited_cpu))

    render.VideoJob._carry = carry_timed
    render.VideoJob._motion = timers.wrap("motion", saved[render.VideoJob, "_motion"])  # binds as a method
    render.VideoJob._dream = timers.wrap("frame_loop", saved[render.VideoJob, "_dream"])
    ahead.estimate_flows = timers.wrap("flows", saved[ahead, "estimate_flows"])
    ahead.result = timers.wrap("flow_wait", saved[ahead, "result"])
    Checkpoint.save = timers.wrap("save", save_timed)
    Checkpoint.frames = lambda self, order: timers.wrap_iter("encode", saved_frames(self, order))
    try:
        yield
    finally:
        for (module, name), fn in saved.items():
            setattr(module, name, fn)
        Checkpoint.save, Checkpoint.frames = saved_save, saved_frames


class TimedDreamer:
    """A Dreamer whose dreams are timed; everything else is the Dreamer's own."""

    def __init__(self, dreamer: Dreamer, timers: Timers):
        self._d, self._timers, self.calls = dreamer, timers, 0

    def __getattr__(self, name):
        return getattr(self._d, name)

    def dream_tensor(self, *a, **k):
        name = "dream_first" if self.calls == 0 else "dream_next"
        self.calls += 1
        return self._timers.wrap(name, self._d.dream_tensor)(*a, **k)


class SleepDreamer(TimedDreamer):
    """The dream replaced by a wait of `ms` milliseconds that uses no CPU (what a fast GPU looks
    like to the pipeline): returns its input frame as the dream; the wrapped Dreamer's identity,
    device and settings are its own."""

    def __init__(self, dreamer: Dreamer, timers: Timers, ms: float):
        super().__init__(dreamer, timers)
        self._ms = ms

    def _sleep(self, x, *a, **k):
        time.sleep(self._ms / 1000.0)
        return x.clone()

    def dream_tensor(self, *a, **k):
        name = "dream_first" if self.calls == 0 else "dream_next"
        self.calls += 1
        return self._timers.wrap(name, self._sleep)(*a, **k)


def _cpu():
    """(this process's CPU seconds, its finished children's: ffmpeg's)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


@contextmanager
def device_stand_in(ms):
    """The carry on a modelled GPU device: a wait of `ms` ms that returns the raw frame, and the
    flow workers left to upload the motion without computing its fields (as for a GPU device).
    `ms` None: the carry computed for real on this CPU."""
    if ms is None:
        yield
        return
    carry, motion = render.VideoJob._carry, render.VideoJob._motion

    def waited(self, raw, video_s, target):
        if self._prev_dream is None or video_s.flow == "none":
            return None
        ahead.result(self._flows)
        time.sleep(ms / 1000.0)
        return render.Carried(raw, torch.ones_like(raw[:, :1]), raw if target else None, None)

    render.VideoJob._carry = waited
    render.VideoJob._motion = lambda self, flows, raw, worker: motion(self, flows, raw, False)
    try:
        yield
    finally:
        render.VideoJob._carry, render.VideoJob._motion = carry, motion


@contextmanager
def torch_threads(n: int):
    """torch's CPU threads set to `n` for the duration (from this thread: threads started later take it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_options(device: str, overlap: bool) -> RunOptions:
    """The run's options; overlap=False renders every stage in the frame loop, one after the other."""
    return RunOptions(device=device, overlap=overlap)


class StandInRun(NamedTuple):
    """The fastest of a stand-in pipeline's renders: wall seconds (model load to joined mp4), the
    model load, when it started (perf_counter), its timers, the process's and ffmpeg's CPU
    seconds, torch's CPU threads."""

    total: float
    load: float
    t0: float
    timers: "Timers"
    cpu: float
    ffmpeg_cpu: float
    threads: int


#: The stand-in's pipelines: (column, overlapped, carry modelled on a GPU device).
PIPELINES = {"device": ("GPU model", True, True), "cpu": ("carry on CPU", True, False),
             "sequential": ("sequential", False, False)}


def stand_in(args, width: int, height: int) -> int:
    """--dream-ms: the render's frames/s with the dream replaced by a wait (see the module doc)."""
    settings = settings_from_preset(args.preset)
    video = VideoSettings(**({} if args.flow_max_side is None else {"flow_max_side": args.flow_max_side or None}))
    stages = ("decode", "flows", "motion", "carry", "dream_first", "dream_next", "frame_loop", "save", "encode")
    modes = {"both": ["device", "cpu"], "device": ["device"], "cpu": ["cpu"]}[args.carry]
    modes += ["sequential"] if args.sequential else []
    results: Dict[str, StandInRun] = {}
    with tempfile.TemporaryDirectory(prefix="dreamvid-bench-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        scaled_clip(args.input, clip, width, height, args.frames)
        n = open_source(clip).num_frames
        for mode in modes:
            _, overlap, on_gpu = PIPELINES[mode]
            # A GPU device leaves torch's CPU pool idle; on these 2 cores its threads' spinning
            # between the hand-over's few CPU tensor ops cost ~50 ms of CPU a frame.
            threads = args.threads or (1 if on_gpu else torch.get_num_threads())
            for r in range(args.repeat):
                timers = Timers()
                out = os.path.join(tmp, f"out-{mode}-{r}.mp4")
                with torch_threads(threads):
                    t0 = time.perf_counter()
                    dreamer = Dreamer(settings, args.device)
                    load = time.perf_counter() - t0
                    cpu0 = _cpu()
                    with device_stand_in(args.carry_ms if on_gpu else None), instrumented(timers):
                        render.dream_video(clip, out, settings, video, run_options(args.device, overlap),
                                           dreamer=SleepDreamer(dreamer, timers, args.dream_ms))
                    total = time.perf_counter() - t0
                cpu = [b - a for a, b in zip(cpu0, _cpu())]
                if mode not in results or total < results[mode].total:
                    results[mode] = StandInRun(total, load, t0, timers, *cpu, threads)
    print(f"dreamvid pipeline, dream replaced by a {args.dream_ms:g} ms wait: {os.path.basename(args.input)} "
          f"scaled to {width}x{height}, {n} frames, preset {args.preset}, flow {video.flow} "
          f"(max side {video.flow_max_side or 'full'}); {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"best of {args.repeat}")
    for mode, run in results.items():
        label, overlap, on_gpu = PIPELINES[mode]
        what = (f"the carry too is a {args.carry_ms:g} ms wait (it runs on the dream's device)" if on_gpu
                else "the carry computed on this CPU (the device here)")
        print(f"  {label}: {'overlapped' if overlap else 'every stage in the loop'}, {what}, "
              f"torch CPU threads {run.threads}")
    runs = results.values()
    print(f"{'per frame, ms: wall (CPU) of each stage':40s}" + "".join(f"{PIPELINES[m][0]:>18s}" for m in results))
    for name in stages + ("flow_wait",):
        row = [(sum(r.timers.t.get(name, [])) / n * 1000, sum(r.timers.c.get(name, [])) / n * 1000) for r in runs]
        print(f"{name:40s}" + "".join(f"{w:11.1f} ({c:4.1f})" for w, c in row))
    print(f"{'CPU time per frame, ms: this process':40s}" + "".join(f"{1000 * r.cpu / n:18.1f}" for r in runs))
    print(f"{'CPU time per frame, ms: ffmpeg':40s}" + "".join(f"{1000 * r.ffmpeg_cpu / n:18.1f}" for r in runs))
    print(f"{'model load (s)':40s}" + "".join(f"{r.load:18.2f}" for r in runs))
    print(f"{'whole render incl. load and encode (s)':40s}" + "".join(f"{r.total:18.2f}" for r in runs))
    for mode, run in results.items():
        at = run.timers.t.get("saved_at", [])
        if len(at) > 1:  # from the start of the render to the first save, the steady rate, the rest
            print(f"{PIPELINES[mode][0]}: first frame saved at {at[0] - run.t0:.2f} s, then "
                  f"{(len(at) - 1) / (at[-1] - at[0]):.1f} frames/s, {run.total - (at[-1] - run.t0):.2f} s after "
                  f"the last save (the encode's end, the join)")
    for mode, run in results.items():
        print(f"{PIPELINES[mode][0]}: {n} frames in {run.total:.2f} s, frames/s {n / run.total:.1f}")
    main_mode = "device" if "device" in results else "cpu"
    print(f"frames/s {n / results[main_mode].total:.1f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT, help="a real video (default samples/bunny.mp4)")
    ap.add_argument("--frames", type=int, default=8, help="frames to render (default 8)")
    ap.add_argument("--size", default="640x360", help="frame size WxH (default 640x360)")
    ap.add_argument("--preset", default=DEFAULT_PRESET, help=f"dream preset (default {DEFAULT_PRESET})")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--repeat", type=int, default=2, help="renders to take minimums over (default 2)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    ap.add_argument("--next-iterations", type=int,
                    help="iterations per octave after the first frame (default: VideoSettings')")
    ap.add_argument("--precision", default=None,
                    help="network precision auto | fp32 | bf16 | fp16 (default: RunOptions')")
    ap.add_argument("--temporal-weight", type=float,
                    help="temporal term weight (default: VideoSettings'; 0 = the method before it)")
    ap.add_argument("--dream-ms", type=float,
                    help="replace the dream by a wait of this many ms (a fast GPU's stand-in): prints frames/s")
    ap.add_argument("--carry", choices=("both", "device", "cpu"), default="both",
                    help="with --dream-ms: the carry on a modelled GPU device (a wait), computed on this CPU, "
                         "or both pipelines (default); frames/s N is the GPU model's")
    ap.add_argument("--carry-ms", type=float, default=2.0,
                    help="with --dream-ms: the modelled device's carry, ms a frame (default 2)")
    ap.add_argument("--flow-max-side", type=int,
                    help="with --dream-ms: estimate flows at this long side (VideoSettings.flow_max_side; 0 = full size)")
    ap.add_argument("--sequential", action="store_true",
                    help="with --dream-ms: also render with every stage in the frame loop, one after the other")
    args = ap.parse_args(argv)
    if args.frames < 3:
        ap.error("--frames must be at least 3")
    if args.threads and args.dream_ms is None:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    if args.dream_ms is not None:
        return stand_in(args, width, height)

    settings = settings_from_preset(args.preset)
    video = VideoSettings(next_iterations=args.next_iterations,
                          **({} if args.temporal_weight is None else {"temporal_weight": args.temporal_weight}))
    precision = {} if args.precision is None else {"precision": args.precision}
    t0 = time.perf_counter()
    dreamer = Dreamer(settings, args.device, **precision)
    load_s = time.perf_counter() - t0

    runs = {"sequential": [], "overlapped": []}
    with tempfile.TemporaryDirectory(prefix="dreamvid-bench-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        scaled_clip(args.input, clip, width, height, args.frames)
        source = open_source(clip)
        n = source.num_frames
        for r in range(args.repeat):
            for mode in runs:
                timers = Timers()
                out = os.path.join(tmp, f"out-{mode}-{r}.mp4")
                t0 = time.perf_counter()
                with instrumented(timers):
                    run = dataclasses.replace(run_options(args.device, mode == "overlapped"), **precision)
                    render.dream_video(clip, out, settings, video, run, dreamer=TimedDreamer(dreamer, timers))
                timers.add("total", time.perf_counter() - t0)
                missing = {"decode", "flows", "flow_wait", "carry", "dream_first", "dream_next",
                           "save", "encode"} - set(timers.t)
                if missing:  # the render no longer calls what this bench wraps: fix the bench
                    raise SystemExit(f"pipeline.py: stages not observed: {', '.join(sorted(missing))}")
                runs[mode].append(timers.t)
        # The first frame again, warm: the same full-schedule dream on the same input frame.
        first = next(source.frames(0, 1)).astype("float32") / 255.0
        warm = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            dreamer(first, index=0)
            warm.append(time.perf_counter() - t0)

    seq, ovl = runs["sequential"], runs["overlapped"]

    def per_frame(name: str, rs=seq) -> float:
        """A stage's total over a run / frames rendered (minimum over runs)."""
        return min(sum(t[name]) / n for t in rs)

    def per_call(name: str, rs=seq, how=statistics.median) -> float:
        """A stage's typical call (median by default) in a run (minimum over runs)."""
        return min(how(t[name]) for t in rs)

    def loop_wall(rs) -> float:
        """Wall time of the loop per later frame: from one saved frame to the next, all included."""
        return min((t["saved_at"][-1] - t["saved_at"][0]) / (len(t["saved_at"]) - 1) for t in rs)

    decode = per_frame("decode")
    flows = per_call("flows")
    flow = min(statistics.median(a + b + c for a, b, c in zip(t["flows"], t["flow_wait"], t["carry"]))
               for t in seq)  # estimate_flows, inline, + the carry (+ a no-op wait)
    save = per_frame("save")
    encode = per_frame("encode")
    first_cold = seq[0]["dream_first"][0]  # the process's very first dream: one-off warm-ups included
    first_warm = min(warm)
    nxt = per_call("dream_next")
    nxt_min = per_call("dream_next", how=min)
    later_frame = decode + flow + nxt + save + encode
    first_frame = decode + first_warm + save + encode
    io_share = (decode + flow + encode) / later_frame
    octs, its = render.next_schedule(settings, video)

    print(f"dreamvid pipeline: {os.path.basename(args.input)} scaled to {width}x{height}, {n} frames, "
          f"preset {args.preset} ({settings.model}, {settings.octaves} octaves x {settings.iterations} "
          f"iterations; later frames {octs} x {its}), flow {video.flow}, blend {video.blend}")
    print(f"device {dreamer.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"{args.repeat} run(s) of each pipeline, minimum over runs")
    print(f"model load (once per run)                   {load_s * 1000:9.1f} ms")
    rows = [
        ("decode", decode),
        ("flows + carry", flow),
        ("  of which the two DIS flows", flows),
        ("dream, first frame (warm)", first_warm),
        ("dream, first frame (cold: first in process)", first_cold),
        ("dream, later frames (median)", nxt),
        ("dream, later frames (fastest)", nxt_min),
        ("checkpoint save", save),
        ("encode (read back + ffmpeg + audio mux)", encode),
    ]
    print(f"{'stage, per frame (sequential pipeline)':44s} {'ms':>9s} {'% of a later frame':>20s}")
    for name, v in rows:
        print(f"{name:44s} {v * 1000:9.1f} {100 * v / later_frame:19.1f}%")
    print(f"{'later frame, all stages':44s} {later_frame * 1000:9.1f}")
    print(f"{'first frame, all stages (warm)':44s} {first_frame * 1000:9.1f}")
    print(f"decode+flow+encode: {100 * io_share:.1f}% of a later frame "
          f"({'<' if io_share < 0.10 else '>='} 10%)")
    print(f"later / first frame time: {later_frame / first_frame:.2f} "
          f"(dream only {nxt / first_warm:.2f}; against the cold first frame "
          f"{later_frame / (first_frame - first_warm + first_cold):.2f})")
    wait = per_call("flow_wait", ovl, how=statistics.mean)
    print(f"as shipped, flows of frame t+1 in a worker thread while frame t dreams: loop wall time "
          f"per later frame {loop_wall(ovl) * 1000:.1f} ms (sequential {loop_wall(seq) * 1000:.1f} ms); "
          f"left on the loop's path: waiting {wait * 1000:.1f} ms + carry "
          f"{per_call('carry', ovl) * 1000:.1f} ms")
    print(f"whole render incl. encode: {min(t['total'][0] for t in seq):.1f} s sequential, "
          f"{min(t['total'][0] for t in ovl):.1f} s as shipped, for {n} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
