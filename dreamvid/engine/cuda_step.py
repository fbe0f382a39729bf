"""The ascent step on CUDA: whole images while they fit, CUDA graphs for fixed shapes.

Only CUDA uses any of this; CPU keeps its tiling rule and its eager step, so CPU pixels never
change. The decisions are pure functions (tested on the CPU):

* :func:`needs_tiling` — tile only when one forward+backward of the whole image would not fit
  the memory budget (free GPU memory when the Dreamer was built), estimated from the bytes the
  autograd graph saves per input pixel (:func:`saved_bytes_per_pixel`, measured on a small probe
  image once per model, layers and precision). Untiled, every step of an octave has one shape.
* :func:`use_graphs` — capture a CUDA graph of the step only on CUDA, untiled, and without fp16
  loss scaling (its overflow check reads the gradient on the host, every step).
* :class:`GraphCache` — per shape, try to capture the step (forward, objective, backward to the
  input) once and replay it; if capture raises (unsupported op, out of memory, no CUDA) that
  shape runs eagerly from then on and the reason is kept (``failures``). Jitter, the carried
  dream's transforms and the update stay outside the graph: the graph maps a fixed input buffer
  to a fixed loss and gradient buffer, nothing else.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch

from .models import DreamModel
from .objectives import Objective
from .precision import Precision

StepFn = Callable[[torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]  # x -> (loss, grad)

#: Share of the free memory one untiled step may plan to use (the rest: allocator slack, the
#: image, its octaves, the graphs' pools).
HEADROOM = 0.6
#: Autograd's saved tensors are most of a step's peak; the backward pass's transient gradients
#: add to them. Peak ≈ this × the saved bytes (an upper bound for the convnets registered here).
PEAK_PER_SAVED = 2.0


def needs_tiling(shape: Tuple[int, int], tile_size: int, device_type: str,
                 free_bytes: Optional[int] = None, bytes_per_pixel: Optional[float] = None) -> bool:
    """Whether an image of `shape` (h, w) is processed in tiles.

    CPU (and any device without a memory budget): today's rule, larger than `tile_size` on a
    side. CUDA: only when the whole image's step would not fit ``HEADROOM × free_bytes``.
    """
    h, w = shape
    if device_type != "cuda" or free_bytes is None or bytes_per_pixel is None:
        return h > tile_size or w > tile_size
    return h * w * bytes_per_pixel * PEAK_PER_SAVED > HEADROOM * free_bytes


def use_graphs(device_type: str, tiled: bool, precision: Precision, enabled: bool = True) -> bool:
    """Whether the step of a shape is captured as a CUDA graph (see the module doc)."""
    return enabled and device_type == "cuda" and not tiled and not precision.scaled


def saved_bytes_per_pixel(step: StepFn, device: torch.device, side: int = 128) -> float:
    """Bytes autograd saves for one step, per input pixel, measured on a side x side probe."""
    total = 0

    def pack(t: torch.Tensor):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    x = torch.rand(1, 3, side, side, device=device)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step(x)
    return total / (side * side)


class CapturedStep:
    """One shape's step captured as a CUDA graph: copy in, replay, read out (clones)."""

    def __init__(self, step: StepFn, example: torch.Tensor, warmup: int = 2):
        self.x = example.detach().clone()
        side = torch.cuda.Stream(device=example.device)
        side.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(warmup):
                step(self.x)
        torch.cuda.current_stream(example.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss, self.grad = step(self.x)

    def __call__(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        self.x.copy_(x)
        self.graph.replay()
        return self.loss.clone(), self.grad.clone()  # the next replay overwrites the buffers


class GraphCache:
    """Steps of one model and objective by input shape: captured once, eager where capture failed."""

    def __init__(self):
        self._steps: Dict[tuple, object] = {}
        self._owners: Dict[tuple, tuple] = {}  # keeps the keyed objects alive (their ids stay theirs)
        self.failures: Dict[tuple, str] = {}  # (ids, shape) -> why that shape runs eagerly

    def run(self, owners: tuple, step: StepFn, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """step(x) through the graph of (owners, x's shape), capturing it the first time; owners
        are the objects the step depends on (model, objective), kept by identity."""
        k = (tuple(id(o) for o in owners), tuple(x.shape))
        self._owners[k] = owners
        captured = self._steps.get(k)
        if captured is None:
            try:
                captured = CapturedStep(step, x)
            except Exception as e:  # capture unsupported here: this shape stays eager
                captured = False
                self.failures[k] = f"{type(e).__name__}: {e}"
            self._steps[k] = captured
        if captured is False:
            return step(x)
        return captured(x)


class MemoryBudget:
    """What a Dreamer on CUDA knows to decide tiling: its free memory when built, and the saved
    bytes per pixel of each (model, layers, precision) it has measured."""

    def __init__(self, device: torch.device):
        self.free_bytes = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
        self._per_pixel: Dict[tuple, float] = {}

    def bytes_per_pixel(self, model: DreamModel, objective: Objective, precision: Precision,
                        step: StepFn, device: torch.device) -> Optional[float]:
        if self.free_bytes is None:
            return None
        key = (model.name, tuple(sorted(objective.layers)), precision.name)
        if key not in self._per_pixel:
            self._per_pixel[key] = saved_bytes_per_pixel(step, device)
        return self._per_pixel[key]
