"""Engine speed: seconds per ascent step in each precision and layout vs the fp32 eager bare pass.

    python bench/engine.py [--size 640x360] [--repeats 5] [--models a,b] [--configs fp32,bf16+cl+fold] [--4k]

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
With --4k it also dreams one 3840x2160 frame in tiles (default configuration) and prints the
peak resident memory.
"""

import argparse
import resource
import sys
import time

import torch

from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import DreamSettings
from dreamvid.core.rng import make_generator
from dreamvid.engine.ascent import Ascent, ascend, dream
from dreamvid.engine.models import layout_for, load_model
from dreamvid.engine.objectives import layer
from dreamvid.engine.precision import cpu_has_native_bf16, resolve_precision

LAYERS = {  # the layers each model's reference preset dreams on
    "inception_v3": settings_from_preset("seals").layers,
    "googlenet": settings_from_preset("classic").layers,
    "vgg16": (("relu4_3", 1.0),),
    "efficientnet_lite0": settings_from_preset("dreamy").layers,
}
CONFIGS = ["fp32", "fp32+cl", "fp32+fold", "fp32+cl+fold", "bf16", "bf16+cl", "bf16+fold", "bf16+cl+fold"]


def best_of(fns, repeats: int):
    """Minimum time of each function, interleaved so all see the same machine load."""
    for fn in fns:
        fn(), fn()  # warm-up (allocator, oneDNN primitive cache)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
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


def bench_model(name: str, size, repeats: int, configs) -> dict:
    weights = None if name == "efficientnet_lite0" else "random"
    cpu = torch.device("cpu")
    w, h = size
    x = torch.rand(1, 3, h, w, generator=make_generator(0))
    settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), iterations=1, jitter=32, step=0.01)

    # The reference: the plain network, input normalised once, output squared and summed.
    plain = load_model(name, weights=weights, device=cpu, channels_last=False, fold_bn=False)
    objective, layers = _objective(plain, name)
    deepest = max((n for n, _ in layers), key=plain.depth)
    stages = plain._stages[: plain.depth(deepest) + 1]

    def bare():
        xx = x.detach().requires_grad_(True)
        hh = (xx - plain.mean) / plain.std
        for _, fn in stages:
            hh = fn(hh)
        hh.pow(2).sum().backward()

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
    times = best_of([bare] + steps, repeats)
    base, by_config = times[0], dict(zip(names, times[1:]))
    best = min(by_config, key=by_config.get)
    return {"model": name, "layer": deepest, "bare": base, "steps": by_config, "best": best, "default": default}


def bench_4k() -> None:
    cpu = torch.device("cpu")
    prec = resolve_precision("auto", cpu)
    model = load_model("efficientnet_lite0", device=cpu, precision=prec.name)
    settings = settings_from_preset(None, iterations=1, octaves=1)
    objective = layer("block8") + layer("block10", 0.5)
    x = torch.rand(1, 3, 2160, 3840, generator=make_generator(0))
    t = time.perf_counter()
    out = dream(x, model, objective, settings, make_generator(0), precision=prec)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB
    print(f"4K frame 3840x2160 in tiles of {settings.tile_size} ({prec.name}): {dt:.1f} s per ascent step, "
          f"peak RSS {peak:.2f} GiB, output {tuple(out.shape)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="efficientnet_lite0,googlenet,inception_v3")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--4k", dest="four_k", action="store_true", help="also dream a 4K frame in tiles")
    a = p.parse_args()
    size = tuple(int(v) for v in a.size.split("x"))
    configs = a.configs.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU ({torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {cpu_has_native_bf16()}), {a.size}, best of {a.repeats}, seconds per step")
    print(f"{'model':18s} {'layer':12s} {'fp32 bare':>9s} " + " ".join(f"{c:>12s}" for c in configs)
          + "   best (ratio)            default (ratio)")
    for name in a.models.split(","):
        r = bench_model(name, size, a.repeats, configs)
        st, base = r["steps"], r["bare"]
        print(f"{name:18s} {r['layer']:12s} {base:9.3f} " + " ".join(f"{st[c]:12.3f}" for c in configs)
              + f"   {r['best']:14s} {st[r['best']] / base:.2f}x   {r['default']:14s} {st[r['default']] / base:.2f}x",
              flush=True)
    if a.four_k:
        bench_4k()


if __name__ == "__main__":
    sys.exit(main())
