"""Engine speed: seconds per ascent step in each precision and layout vs the fp32 eager bare pass.

    python bench/engine.py [--size 640x360] [--repeats 5] [--models a,b] [--configs fp32,bf16+cl+fold] [--clock cpu] [--4k]

For each model (random weights where ImageNet weights would need a download: the timing is the
same), at the layers of its reference preset, it times

- the reference: a bare forward+backward w.r.t. the input of the plain fp32 network (eager,
  contiguous NCHW, BatchNorm unfolded) up to the deepest layer, output squared and summed;
- one full dreamvid ascent step (jitter roll, forward, objective, backward, L1-normalised
  step, clip) for each configuration: precision fp32 / bf16 (autocast; the image stays fp32),
  ``+cl`` channels_last memory format, ``+fold`` BatchNorm folded into the convolutions;

all interleaved, minimum over --repeats (the machine is shared: minimums are the least noisy),
and prints each step's ratio to the reference, the best configuration and the one dreamvid
picks by default on this machine (precision auto and models.layout_for).
With --4k it also dreams a 3840x2160 frame in tiles (default configuration, one step twice) and
prints both steps' times and the peak resident memory.

With --look DIR it compares the look instead: each model dreams samples/coffee.jpg (longest side
--look-side, 4 octaves x 8 iterations at the model's reference layers) with the plain fp32
network, with it on the input plus ±0.5/255 noise (the "chaos floor": a whole dream amplifies any
last-bit difference), with the fp32 fast layout and in bf16, prints the dream strength
mean |dream − input| beside mean |x − plain fp32| for each (uint8 levels) and writes
DIR/look-MODEL.png (input | fp32 | bf16) to look at.
"""

import argparse
import os
import resource
import sys
import time

import torch

from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import DreamSettings
from dreamvid.core.rng import make_generator
from dreamvid.engine.ascent import Ascent, ascend, dream
from dreamvid.engine.cpu_memory import keep_freed_memory
from dreamvid.engine.models import layout_for, load_model
from dreamvid.engine.objectives import layer
from dreamvid.engine.precision import cpu_has_native_bf16, resolve_precision

LAYERS = {  # the layers each model's reference preset dreams on
    "inception_v3": settings_from_preset("seals").layers,
    "googlenet": (("inception4c", 1.0),),  # the layer of Google's notebook
    "bvlc_googlenet": settings_from_preset("classic").layers,
    "googlenet_places365": settings_from_preset("places").layers,
    "inception5h": settings_from_preset("tf-mixed4c").layers,
    "vgg16": (("relu4_3", 1.0),),
    "efficientnet_lite0": settings_from_preset("dreamy").layers,
}
CONFIGS = ["fp32", "fp32+cl", "fp32+fold", "fp32+cl+fold", "bf16", "bf16+cl", "bf16+fold", "bf16+cl+fold"]


CLOCK = time.perf_counter  # --clock cpu: process CPU time on one thread (robust on a shared machine)


def best_of(fns, repeats: int):
    """Minimum time of each function, interleaved so all see the same machine load."""
    for fn in fns:
        fn(), fn()  # warm-up (allocator, oneDNN primitive cache)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = CLOCK()
            fn()
            ts.append(CLOCK() - t)
    return [min(ts) for ts in times]


def _config(name: str):
    """'bf16+cl+fold' -> ('bf16', channels_last, fold_bn)."""
    parts = name.split("+")
    return parts[0], "cl" in parts, "fold" in parts


def _objective(model, name):
    layers = [(model.resolve(n), w) for n, w in LAYERS[name]]
    objective = layer(*layers[0])
    for n, w in layers[1:]:
        objective = objective + layer(n, w)
    return objective, layers



def bare_pass(plain, name: str, x: torch.Tensor):
    """(pass, deepest layer): the reference pass is `plain` (no channels_last, no folding) up to
    the deepest layer the bench uses for `name`, input normalised once, output squared and summed,
    backward to `x`."""
    _, layers = _objective(plain, name)
    deepest = max((n for n, _ in layers), key=plain.depth)
    stages = plain._stages[: plain.depth(deepest) + 1]

    def bare():
        xx = x.detach().requires_grad_(True)
        hh = plain.normalize(xx)
        for _, fn in stages:
            hh = fn(hh)
        hh.pow(2).sum().backward()
    return bare, deepest

def bench_model(name: str, size, repeats: int, configs) -> dict:
    weights = None if name == "efficientnet_lite0" else "random"
    cpu = torch.device("cpu")
    w, h = size
    x = torch.rand(1, 3, h, w, generator=make_generator(0))
    settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), iterations=1, jitter=32, step=0.01)

    # The reference: the plain network, input normalised once, output squared and summed.
    plain = load_model(name, weights=weights, device=cpu, channels_last=False, fold_bn=False)
    objective, _ = _objective(plain, name)
    bare, deepest = bare_pass(plain, name, x)

    auto = resolve_precision("auto", cpu).name
    cl, fold = layout_for(name, cpu, auto)
    default = auto + ("+cl" if cl else "") + ("+fold" if fold else "")
    names = list(dict.fromkeys(list(configs) + [default]))
    steps = []
    for c in names:
        prec, cl, fold = _config(c)
        m = load_model(name, weights=weights, device=cpu, channels_last=cl, fold_bn=fold, precision=prec)
        ascent = Ascent(m, _objective(m, name)[0], 4096, resolve_precision(prec, cpu))
        steps.append(lambda a=ascent: ascend(x, a, settings, make_generator(1)))
        if c == default:  # the bare pass of the default configuration: dreamvid's own overhead
            fast_stages, fast = m._stages[: m.depth(deepest) + 1], m

            def bare_default():
                xx = x.detach().requires_grad_(True)
                with resolve_precision(prec, cpu).autocast():
                    hh = (xx.contiguous(memory_format=torch.channels_last) if fast.channels_last else xx)
                    hh = fast.normalize(hh)
                    for _, fn in fast_stages:
                        hh = fn(hh)
                hh.float().pow(2).sum().backward()
    times = best_of([bare, bare_default] + steps, repeats)
    base, base_default, by_config = times[0], times[1], dict(zip(names, times[2:]))
    best = min(by_config, key=by_config.get)
    return {"model": name, "layer": deepest, "bare": base, "bare_default": base_default, "steps": by_config,
            "best": best, "default": default}


def look(name: str, side: int, folder: str) -> None:
    import cv2
    import numpy as np
    from dreamvid.core.convert import to_tensor, to_uint8
    cpu = torch.device("cpu")
    rgb = cv2.cvtColor(cv2.imread(os.path.join(os.path.dirname(__file__), os.pardir, "samples", "coffee.jpg")),
                       cv2.COLOR_BGR2RGB)
    s = side / max(rgb.shape[:2])
    rgb = cv2.resize(rgb, (round(rgb.shape[1] * s), round(rgb.shape[0] * s)), interpolation=cv2.INTER_AREA)
    x = to_tensor(rgb, cpu)
    noise = (torch.rand(x.shape, generator=make_generator(9)) - 0.5) / 255
    settings = settings_from_preset(None, seed=0, iterations=8, octaves=4).replace(model=name, layers=tuple(LAYERS[name]))
    weights = None if name == "efficientnet_lite0" else "random"
    out = {}
    for key, prec, fast, inp in (("fp32", "fp32", False, x), ("fp32 noisy input", "fp32", False, (x + noise).clamp(0, 1)),
                                 ("fp32 cl+fold", "fp32", True, x), ("bf16", "bf16", True, x)):
        torch.manual_seed(0)  # the same random weights for every load
        m = load_model(name, weights, cpu, channels_last=fast, fold_bn=fast)
        out[key] = to_uint8(dream(inp, m, _objective(m, name)[0], settings, make_generator(0, 0),
                                  precision=resolve_precision(prec, cpu))).astype(int)
    ref = out["fp32"]
    print(f"{name:18s} strength {np.abs(ref - rgb).mean():5.1f} (bf16 {np.abs(out['bf16'] - rgb).mean():5.1f})   "
          + "   ".join(f"{k}: {np.abs(v - ref).mean():5.1f}" for k, v in out.items() if k != "fp32"), flush=True)
    row = np.concatenate([rgb, ref.astype(np.uint8), out["bf16"].astype(np.uint8)], axis=1)
    cv2.imwrite(os.path.join(folder, f"look-{name}.png"), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))


def bench_4k() -> None:
    keep_freed_memory()  # as a Dreamer on the CPU does (engine/cpu_memory.py); after the table
    cpu = torch.device("cpu")
    prec = resolve_precision("auto", cpu)
    model = load_model("efficientnet_lite0", device=cpu, precision=prec.name)
    settings = settings_from_preset(None, iterations=1, octaves=1)
    objective = layer("block8") + layer("block10", 0.5)
    x = torch.rand(1, 3, 2160, 3840, generator=make_generator(0))
    times = []
    for i in range(2):  # the first step pays the kernels' set-up
        t = time.perf_counter()
        out = dream(x, model, objective, settings, make_generator(i), precision=prec)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB
    print(f"4K frame 3840x2160 in tiles of {settings.tile_size} ({prec.name}): {times[0]:.1f} s the first "
          f"ascent step, {times[1]:.1f} s the next, peak RSS {peak:.2f} GiB, output {tuple(out.shape)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="efficientnet_lite0,googlenet,inception_v3")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--4k", dest="four_k", action="store_true", help="also dream a 4K frame in tiles")
    p.add_argument("--look", metavar="DIR", help="compare the look of bf16 and fp32 dreams instead (PNGs to DIR)")
    p.add_argument("--look-side", type=int, default=400)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: wall time on torch's threads (default); cpu: CPU time of one thread, which other "
                        "jobs on a shared machine disturb far less")
    a = p.parse_args()
    global CLOCK
    if a.clock == "cpu":
        torch.set_num_threads(1)
        CLOCK = time.process_time
    if a.look:
        os.makedirs(a.look, exist_ok=True)
        print(f"samples/coffee.jpg at {a.look_side} px, 4 octaves x 8 iterations; mean |difference| in uint8 levels")
        for name in a.models.split(","):
            look(name, a.look_side, a.look)
        return
    size = tuple(int(v) for v in a.size.split("x"))
    configs = a.configs.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.clock} clock, CPU ({torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_has_native_bf16()}), {a.size}, best of {a.repeats}, seconds per step")
    print(f"{'model':18s} {'layer':12s} {'fp32 bare':>9s} " + " ".join(f"{c:>12s}" for c in configs)
          + "   best (ratio)          default (ratio, overhead over its own bare pass)")
    for name in a.models.split(","):
        r = bench_model(name, size, a.repeats, configs)
        st, base = r["steps"], r["bare"]
        print(f"{name:18s} {r['layer']:12s} {base:9.3f} " + " ".join(f"{st[c]:12.3f}" for c in configs)
              + f"   {r['best']:14s} {st[r['best']] / base:.2f}x   {r['default']:14s} {st[r['default']] / base:.2f}x "
              f"{100 * (st[r['default']] / r['bare_default'] - 1):+.1f}%",
              flush=True)
    if a.four_k:
        bench_4k()


if __name__ == "__main__":
    sys.exit(main())
