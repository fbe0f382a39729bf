"""Engine overhead: seconds per ascent step vs a bare forward+backward pass to the same layer.

    python bench/engine.py [--size 640x360] [--repeats 3] [--models a,b] [--4k]

For each model (random weights where ImageNet weights would need a download: the timing is the
same), at the layers of its preset, it times one full ascent step of dreamvid (jitter roll,
forward to the deepest layer, objective, backward, L1-normalised step, clip) and a bare
forward+backward of the same network modules up to the same layer, and prints the ratio.
With --4k it also dreams one 3840x2160 frame in tiles and prints the peak resident memory.
"""

import argparse
import resource
import sys
import time

import torch

from dreamvid.config.settings import DreamSettings
from dreamvid.core.rng import make_generator
from dreamvid.engine.ascent import Ascent, ascend, dream
from dreamvid.engine.models import load_model
from dreamvid.engine.objectives import layer
from dreamvid.config.presets import settings_from_preset

LAYERS = {  # the layers each model's reference preset dreams on
    "inception_v3": settings_from_preset("seals").layers,
    "googlenet": settings_from_preset("classic").layers,
    "vgg16": (("relu4_3", 1.0),),
    "efficientnet_lite0": settings_from_preset("dreamy").layers,
}


def best_of(fns, repeats: int):
    """Minimum time of each function, interleaved so both see the same machine load."""
    for fn in fns:
        fn(), fn()  # warm-up (allocator, oneDNN primitive cache)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [min(ts) for ts in times]


def bench_model(name: str, size, repeats: int) -> None:
    weights = None if name == "efficientnet_lite0" else "random"
    model = load_model(name, weights=weights, device="cpu")
    layers = [(model.resolve(n), w) for n, w in LAYERS[name]]
    objective = layer(*layers[0])
    for n, w in layers[1:]:
        objective = objective + layer(n, w)
    w, h = size
    x = torch.rand(1, 3, h, w, generator=make_generator(0))
    settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), iterations=1, jitter=32, step=0.01)
    ascent = Ascent(model, objective, tile_size=4096)

    # The bare network: the same modules, input normalised once, output squared and summed.
    deepest = max((n for n, _ in layers), key=model.depth)
    stages = model._stages[: model.depth(deepest) + 1]

    def bare():
        xx = x.detach().requires_grad_(True)
        hh = (xx - model.mean) / model.std
        for _, fn in stages:
            hh = fn(hh)
        hh.pow(2).sum().backward()
    step, base = best_of([lambda: ascend(x, ascent, settings, make_generator(1)), bare], repeats)
    print(f"{name:20s} {deepest:12s} {step:8.3f} s/step  bare fwd+bwd {base:8.3f} s  "
          f"overhead {100 * (step / base - 1):+6.1f}%", flush=True)


def bench_4k() -> None:
    model = load_model("efficientnet_lite0", device="cpu")
    settings = settings_from_preset(None, iterations=1, octaves=1)
    objective = layer("block8") + layer("block10", 0.5)
    x = torch.rand(1, 3, 2160, 3840, generator=make_generator(0))
    t = time.perf_counter()
    out = dream(x, model, objective, settings, make_generator(0))
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # KiB -> GiB
    print(f"4K frame 3840x2160 in tiles of {settings.tile_size}: {dt:.1f} s per ascent step, "
          f"peak RSS {peak:.2f} GiB, output {tuple(out.shape)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="640x360")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--models", default=",".join(LAYERS))
    p.add_argument("--4k", dest="four_k", action="store_true", help="also dream a 4K frame in tiles")
    a = p.parse_args()
    size = tuple(int(v) for v in a.size.split("x"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, {a.size}, best of {a.repeats}")
    for name in a.models.split(","):
        bench_model(name, size, a.repeats)
    if a.four_k:
        bench_4k()


if __name__ == "__main__":
    sys.exit(main())
