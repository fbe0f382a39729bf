"""Engine speed on a CUDA GPU: per-step time and memory per model and precision, 4K in tiles, video fps.

    python bench/gpu.py [--repeats 5] [--models a,b] [--precisions fp32,bf16,fp16] [--no-video]
    python bench/gpu.py --device cpu --size 160x96 --size4k 320x192 --tile 128 --models efficientnet_lite0 --no-video

On a machine without a CUDA GPU it says so and exits 0. Otherwise, with the same models and
layers as bench/engine.py (random weights where ImageNet weights would need a download: the
timing is the same), it prints

- per model and precision at 1920x1080: the fp32 bare forward+backward (reference), one full
  ascent step, its ratio to the reference, and the peak GPU memory of the step;
- per precision, one 3840x2160 ascent step of efficientnet_lite0 in tiles of 1024 px, one tile
  per network pass and 4 same-sized tiles per pass (``batch_tiles``), with peak memory;
- frames/s of the default video render (``python -m dreamvid samples/bunny.mp4`` scaled to
  1280x720 as a PNG folder, every frame dreamed), per precision: the whole CLI, start-up included.

Times are minimums over --repeats, with torch.cuda.synchronize() around each measurement.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from engine import LAYERS, _objective, bare_pass  # noqa: E402 (bench/engine.py: the same models and layers)

from dreamvid.config.settings import DreamSettings  # noqa: E402
from dreamvid.core.rng import make_generator  # noqa: E402
from dreamvid.engine.ascent import Ascent, ascend  # noqa: E402
from dreamvid.engine.models import load_model  # noqa: E402
from dreamvid.engine.precision import resolve_precision  # noqa: E402
from dreamvid.errors import SettingError  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 1024 ** 3 if device.type == "cuda" else float("nan")


def timed(fn, device: torch.device, repeats: int) -> float:
    """Minimum seconds of fn() over `repeats` runs after two warm-ups."""
    fn(), fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def _precisions(names, device):
    out = []
    for p in names:
        try:
            out.append(resolve_precision(p, device))
        except SettingError as e:
            print(f"  ({p}: {e})")
    return out


def bench_models(device, size, models, precisions, repeats) -> None:
    w, h = size
    x = torch.rand(1, 3, h, w, generator=make_generator(0)).to(device)
    print(f"\nper ascent step at {w}x{h} (seconds; ratio to the fp32 bare pass; peak GPU memory of the step)")
    print(f"{'model':18s} {'layer':12s} {'fp32 bare':>9s}  " + "  ".join(f"{p.name:>22s}" for p in precisions))
    for name in models:
        weights = None if name == "efficientnet_lite0" else "random"
        plain = load_model(name, weights, device, channels_last=False, fold_bn=False)
        bare, deepest = bare_pass(plain, name, x)
        base = timed(bare, device, repeats)
        del plain
        cells = []
        settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), iterations=1, jitter=32, step=0.01,
                                 tile_size=4096)
        for prec in precisions:
            m = load_model(name, weights, device, precision=prec.name)
            ascent = Ascent(m, _objective(m, name)[0], 4096, prec)
            step = lambda a=ascent: ascend(x, a, settings, make_generator(1))  # noqa: E731
            t = timed(step, device, repeats)
            _peak_reset(device)
            step()
            _sync(device)
            cells.append(f"{t:7.4f} {t / base:5.2f}x {_peak_gib(device):5.2f}G")
            del m, ascent
        print(f"{name:18s} {deepest:12s} {base:9.4f}  " + "  ".join(f"{c:>22s}" for c in cells), flush=True)


def bench_4k(device, size, precisions, repeats, tile: int) -> None:
    w, h = size
    name = "efficientnet_lite0"
    x = torch.rand(1, 3, h, w, generator=make_generator(0)).to(device)
    settings = DreamSettings(model=name, layers=tuple(LAYERS[name]), iterations=1, jitter=32, step=0.01,
                             tile_size=tile)
    print(f"\n{name} at {w}x{h} in tiles of {settings.tile_size} px, one ascent step "
          "(seconds; peak GPU memory): one tile per pass | 4 tiles per pass")
    for prec in precisions:
        m = load_model(name, None, device, precision=prec.name)
        cells = []
        for batch in (1, 4):
            ascent = Ascent(m, _objective(m, name)[0], settings.tile_size, prec, batch_tiles=batch)
            step = lambda a=ascent: ascend(x, a, settings, make_generator(1))  # noqa: E731
            t = timed(step, device, max(1, repeats // 2))
            _peak_reset(device)
            step()
            _sync(device)
            cells.append(f"{t:7.3f} s {_peak_gib(device):5.2f}G")
        print(f"  {prec.name:5s} " + " | ".join(cells), flush=True)


def bench_video(device, precisions) -> None:
    src = os.path.join(HERE, os.pardir, "samples", "bunny.mp4")
    from dreamvid.io.ffmpeg import ffmpeg_exe
    print("\ndefault video render, samples/bunny.mp4 scaled to 1280x720 (whole CLI, PNG folder output)")
    with tempfile.TemporaryDirectory() as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", src,
                        "-vf", "scale=1280:720", "-c:v", "libx264", "-crf", "16", "-an", clip], check=True)
        for prec in precisions:
            out = os.path.join(tmp, f"out-{prec.name}/")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "dreamvid", clip, "-o", out, "--device", device.type,
                            "--precision", prec.name, "--quiet"], check=True)
            dt = time.perf_counter() - t
            frames = len(os.listdir(out))
            print(f"  {prec.name:5s} {frames} frames in {dt:6.1f} s: {frames / dt:5.2f} frames/s", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N; cpu only to smoke-test this script")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="efficientnet_lite0,googlenet,inception_v3,vgg16")
    p.add_argument("--precisions", default="fp32,bf16,fp16")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--size4k", default="3840x2160")
    p.add_argument("--tile", type=int, default=DreamSettings.tile_size, help="tile size for the 4K step")
    p.add_argument("--no-video", action="store_true", help="skip the video render")
    a = p.parse_args()
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing to measure")
        return 0
    device = torch.device(a.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True  # what dreamvid runs with (exact resumes)
        props = torch.cuda.get_device_properties(device)
        print(f"{props.name}, compute capability {props.major}.{props.minor}, "
              f"{props.total_memory / 1024 ** 3:.0f} GiB, torch {torch.__version__}, best of {a.repeats}")
    else:
        print(f"{a.device} (smoke test), torch {torch.__version__}")
    precisions = _precisions(a.precisions.split(","), device)
    size = tuple(int(v) for v in a.size.split("x"))
    bench_models(device, size, a.models.split(","), precisions, a.repeats)
    bench_4k(device, tuple(int(v) for v in a.size4k.split("x")), precisions, a.repeats, a.tile)
    if not a.no_video:
        bench_video(device, precisions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
