"""Lite0's depthwise convolutions at 640x360, bf16 against fp32, forward + backward (CPU).

    python bench/depthwise.py [--repeats 8]

Why `models._SameConv2d` runs strided depthwise layers in fp32 under CPU autocast: for each
depthwise layer of EfficientNet-Lite0 up to block10 at a 640x360 input, it times one forward and
backward w.r.t. the input (bf16 input, channels_last, as the network has it), once in bf16 and
once cast to fp32 and back (the casts included), and prints milliseconds, best of --repeats.
"""

import argparse
import time

import torch
import torch.nn.functional as F

# (channels, height, width, kernel, stride) of Lite0's depthwise layers at a 640x360 input
LAYERS = [(32, 180, 320, 3, 1), (96, 180, 320, 3, 2), (144, 90, 160, 3, 1), (144, 90, 160, 5, 2),
          (240, 45, 80, 5, 1), (240, 45, 80, 3, 2), (480, 23, 40, 3, 1), (480, 23, 40, 5, 1),
          (672, 23, 40, 5, 1)]


def best_ms(fn, repeats: int) -> float:
    fn(), fn()  # warm-up: oneDNN primitives, allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def layer_pass(c: int, h: int, w: int, k: int, s: int, dtype: torch.dtype):
    """One forward+backward of a depthwise conv, TF-SAME padded as the model does it."""
    x0 = torch.randn(1, c, h, w).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(c, 1, k, k)
    if s == 2:  # an even side pads one more pixel at its end: a kernel one tap larger, first tap zero
        weight = F.pad(weight, [1 - w % 2, 0, 1 - h % 2, 0])
    pad = (k - 1) // 2  # (the same for the larger kernel)
    weight = weight.to(dtype).contiguous(memory_format=torch.channels_last)

    def run():
        x = x0.detach().requires_grad_(True)
        y = F.conv2d(x.to(dtype), weight, None, s, pad, 1, c).to(torch.bfloat16)
        y.backward(torch.ones_like(y))
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ms per forward+backward, best of {args.repeats}")
    print(f"{'channels':>8} {'input':>9} {'kernel':>6} {'stride':>6} {'bf16':>7} {'fp32':>7}")
    for c, h, w, k, s in LAYERS:
        bf16, fp32 = (best_ms(layer_pass(c, h, w, k, s, dt), args.repeats) for dt in (torch.bfloat16, torch.float32))
        print(f"{c:8d} {w:4d}x{h:<4d} {k:6d} {s:6d} {bf16:7.2f} {fp32:7.2f}")


if __name__ == "__main__":
    main()
