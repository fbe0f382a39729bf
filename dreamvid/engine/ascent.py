"""Octave gradient ascent on one image tensor (no I/O).

Everything here works on float tensors (1, 3, H, W), RGB in [0, 1], on the model's device.
Steps are stated in that [0, 1] pixel space: Keras DeepDream's step 0.01 on [-1, 1] inputs is
0.005 here, Google's 1.5 on 0..255 Caffe inputs is 1.5/255 ≈ 0.0059.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..config.settings import DreamSettings
from ..core.imageops import resize
from ..core.rng import _randint
from ..errors import DreamvidError
from .cuda_step import GraphCache, MemoryBudget, needs_tiling, use_graphs
from .models import DreamModel
from .objectives import Objective
from .precision import FP32, LossScaler, Precision, loss_and_grad
from .transforms import StepState, StepTransforms, step_transforms


def octave_shapes(height: int, width: int, octaves: int, scale: float, min_side: int) -> List[Tuple[int, int]]:
    """Sizes to dream at, smallest first: original / scale^i for i = octaves-1 … 0.

    Octaves whose short side would fall below `min_side` (too small for the chosen layer) are
    dropped; the original size is always kept.
    """
    shapes = []
    for i in range(octaves - 1, -1, -1):
        h, w = round(height / scale ** i), round(width / scale ** i)
        if i == 0 or min(h, w) >= min_side:
            shapes.append((h, w))
    return shapes


# --------------------------------------------------------------------------- the ascent

class Ascent:
    """Loss and gradient of an objective w.r.t. an image, tiled when the image is large.

    Tiles overlap by a margin of a few strides of the deepest layer; only each tile's centre
    gradient is kept, and each tile's loss is weighted by its share of the image, so the tiled
    gradient matches the untiled one. Strided networks are not shift-invariant, so every crop
    starts on the network's stride grid (a multiple of ALIGN) and has the whole image's size
    modulo ALIGN (same "SAME" padding at every level): inside, it sees exactly what the whole
    image's forward pass sees.

    batch_tiles > 1 runs up to that many same-sized crops as one batch (one network pass: fewer,
    larger kernels, for GPUs); each crop's loss is still its own, so the gradient is the same up
    to rounding.

    On CUDA (engine/cuda_step.py) the image is tiled only when a whole-image step would not fit
    `budget`; untiled steps run through `graphs` (a CUDA graph per shape) where use_graphs says
    so, and return the loss as a device tensor (no host sync per step). CPU: as before.
    """

    ALIGN = 32  # the largest total stride of any registered model

    def __init__(self, model: DreamModel, objective: Objective, tile_size: int,
                 precision: Precision = FP32, batch_tiles: int = 1, *,
                 budget: Optional[MemoryBudget] = None, graphs: Optional[GraphCache] = None):
        self.model = model
        self.batch_tiles = max(1, batch_tiles)
        self.objective = objective
        self.precision = precision
        self.scaler = LossScaler() if precision.scaled else None  # one per dream() call
        self.layers = sorted(objective.layers)
        a = self.ALIGN
        self.tile_size = max(a, tile_size // a * a)
        # Four strides of the deepest layer, on the grid: enough context for the centre.
        stride = max([model.strides.get(l, 32) for l in self.layers])
        self.margin = -(-4 * stride // a) * a
        self.budget, self.graphs = budget, graphs

    def tiled(self, x: torch.Tensor) -> bool:
        """Whether x (1, 3, H, W) is processed in tiles (cuda_step.needs_tiling)."""
        h, w = x.shape[-2:]
        per_pixel = None
        if self.budget is not None and x.device.type == "cuda":
            per_pixel = self.budget.bytes_per_pixel(self.model, self.objective, self.precision,
                                                    self._region, x.device)
        return needs_tiling((h, w), self.tile_size, x.device.type,
                            None if per_pixel is None else self.budget.free_bytes, per_pixel)

    def _region(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Loss (scalar, detached) and its gradient (same shape as x) for a whole region."""
        x = x.detach().requires_grad_(True)
        return loss_and_grad(lambda: self.model(x, self.layers), self.objective, x, self.precision, self.scaler)

    def _batch(self, crops: List[torch.Tensor]) -> Tuple[List[float], torch.Tensor]:
        """Losses of k same-sized crops (1, 3, h, w) and their gradients (k, 3, h, w), one pass."""
        x = torch.cat(crops).detach().requires_grad_(True)
        losses: List[torch.Tensor] = []

        def objective(acts):
            losses[:] = [self.objective({n: a[i:i + 1] for n, a in acts.items()}) for i in range(len(crops))]
            return torch.stack(losses).sum()
        _, grad = loss_and_grad(lambda: self.model(x, self.layers), objective, x, self.precision, self.scaler)
        return [float(v.detach()) for v in losses], grad

    def _spans(self, n: int, offset: int):
        """[(keep0, keep1, crop0, crop1)] covering 0..n: kept tiles and their aligned crops."""
        t, m, a = self.tile_size, self.margin, self.ALIGN
        cuts = sorted({0, n, *range(t - offset, n, t)})
        spans = []
        for k0, k1 in zip(cuts[:-1], cuts[1:]):
            c0 = max(k0 - m, 0)
            c1 = min(k1 + m, n)
            c1 = min(c1 + (n - (c1 - c0)) % a, n)  # crop size ≡ n (mod ALIGN)
            spans.append((k0, k1, c0, c1))
        return spans

    def __call__(self, x: torch.Tensor, gen: torch.Generator):
        """x (1, 3, H, W) -> (loss, gradient (1, 3, H, W)); the loss a float, or on CUDA untiled a
        0-dim device tensor (read it only when needed: reading syncs)."""
        h, w = x.shape[-2:]
        t, a = self.tile_size, self.ALIGN
        if not self.tiled(x):
            if x.device.type != "cuda":
                loss, grad = self._region(x)
                return float(loss), grad
            if self.graphs is not None and use_graphs("cuda", False, self.precision):
                return self.graphs.run((self.model, self.objective), self._region, x)
            return self._region(x)  # the loss stays on the device: no sync
        grad = torch.zeros_like(x)
        total = 0.0
        # A random grid offset per step moves the seams, on top of the jitter roll.
        oy, ox = a * _randint(gen, t // a), a * _randint(gen, t // a)
        tiles = [(ys, xs) for ys in self._spans(h, oy) for xs in self._spans(w, ox)]
        if self.batch_tiles == 1:
            for (y0, y1, ya, yb), (x0, x1, xa, xb) in tiles:
                share = (yb - ya) * (xb - xa) / (h * w)
                loss, g = self._region(x[..., ya:yb, xa:xb])
                grad[..., y0:y1, x0:x1] = g[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa] * share
                total += float(loss) * (y1 - y0) * (x1 - x0) / (h * w)
            return total, grad
        by_shape: Dict[Tuple[int, int], list] = {}
        for tile in tiles:
            (_, _, ya, yb), (_, _, xa, xb) = tile
            by_shape.setdefault((yb - ya, xb - xa), []).append(tile)
        for group in by_shape.values():
            for k in range(0, len(group), self.batch_tiles):
                chunk = group[k:k + self.batch_tiles]
                losses, g = self._batch([x[..., ya:yb, xa:xb] for (_, _, ya, yb), (_, _, xa, xb) in chunk])
                for i, ((y0, y1, ya, yb), (x0, x1, xa, xb)) in enumerate(chunk):
                    share = (yb - ya) * (xb - xa) / (h * w)
                    grad[..., y0:y1, x0:x1] = g[i:i + 1, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa] * share
                    total += losses[i] * (y1 - y0) * (x1 - x0) / (h * w)
        return total, grad


def _unrolled(t: torch.Tensor, state: StepState) -> torch.Tensor:
    """`t` (1, C, H, W), in the coordinates of this step's transformed image, brought back to the
    image's own (the "before" transforms' inverses, last first, without popping them)."""
    for fn in reversed(state.undo):
        t = fn(t)
    return t


def masked_step(x: torch.Tensor, g: torch.Tensor, mask: torch.Tensor, step: float,
                state: StepState) -> torch.Tensor:
    """The L1-normalised step where the dream is limited by `mask` (1, 1, H, W) in [0, 1]:
    x + step · g / (Σ m·|g| / Σ m), the mean |g| taken over the mask (weighted), so a pixel with
    m = 1 moves as far as in an unmasked dream whatever the mask's area. x, g: (1, 3, H, W) in the
    step's (jittered) coordinates; the mask is in the image's (see :func:`_unrolled`)."""
    a = _unrolled(g.abs(), state)
    norm = (a * mask).sum() / (mask.sum() * g.shape[1]).clamp_min(1e-7)
    return x + step * g / norm.clamp_min(1e-7)


def ascend(img: torch.Tensor, ascent: Ascent, settings: DreamSettings, gen: torch.Generator,
           on_step: Optional[Callable[[], None]] = None, iterations: Optional[int] = None,
           transforms: Optional[StepTransforms] = None, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Gradient ascent at one size: (1, 3, H, W) -> (1, 3, H, W), clipped to [0, 1].

    Each step runs ``transforms`` (default: built from `settings`, see engine/transforms.py):
    image transforms before the gradient, gradient transforms, the L1-normalised step, image
    transforms after. on_step() is called once per step, also for the steps an early stop
    (loss > max_loss) skips, so a progress bar completes; an exception it raises (e.g.
    Cancelled) propagates at once.

    mask: (1, 1, H, W) in [0, 1], or None. With a mask each step's whole change (the dream step,
    and whatever the "after" transforms add: the temporal pull, decay, blur) is weighted per pixel,
    img ← img + m ⊙ (step(img) − img), in the image's coordinates (after the jitter is undone):
    pixels with m = 0 keep their value exactly, and the step is normalised over the mask
    (:func:`masked_step`).
    """
    s = settings
    t = transforms or step_transforms(s)
    n = s.iterations if iterations is None else iterations
    for i in range(n):
        state = StepState(i, gen)
        x = t.before(img, state)
        loss, g = ascent(x, gen)
        if s.max_loss is not None and float(loss) > s.max_loss:  # the only host sync of a step
            if on_step:
                for _ in range(n - i):
                    on_step()
            break
        g = t.gradient(g, state)
        if mask is None:
            x = x + s.step * g / g.abs().mean().clamp_min(1e-7)
            img = t.after(x, state)
        else:
            x = masked_step(x, g, mask, s.step, state)
            img = img + mask * (t.after(x, state) - img)
        if on_step:
            on_step()
    return img


def dream(image: torch.Tensor, model: DreamModel, objective: Objective, settings: DreamSettings,
          gen: torch.Generator, on_step: Optional[Callable[[], None]] = None,
          octaves: Optional[int] = None, iterations: Optional[int] = None,
          precision: Precision = FP32, batch_tiles: int = 1,
          extra: Optional[Callable[[StepTransforms], StepTransforms]] = None,
          fine_iterations: Optional[int] = None, *,
          budget: Optional[MemoryBudget] = None, graphs: Optional[GraphCache] = None,
          mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Octave gradient ascent: (1, 3, H, W) in [0, 1] -> dreamed (1, 3, H, W) in [0, 1].

    At each octave, the dream so far is upscaled and the detail the shrinking lost
    (same-size original − upscaled shrunk original) is added back before ascending.
    `octaves` / `iterations` override the settings (video frames after the first use fewer).
    gen: CPU torch.Generator driving jitter and tile offsets (seed it for reproducibility).
    precision: of the network pass (engine/precision.py); the image stays float32.
    batch_tiles: tiles of a large image per network pass (see Ascent).
    extra: extends each step's transforms (e.g. transforms.carried_dream for video frames).
    fine_iterations: steps at the last (full-size) octave, when it differs from the others.
    budget, graphs: CUDA's tiling budget and graph cache (see Ascent; a Dreamer keeps them).
    mask: (1, 1, H, W) in [0, 1] limiting the dream (None = everywhere): resized to each octave,
    it weights every step (see :func:`ascend`) and the dream carried up from one octave to the
    next, ``resize(original) + m ⊙ resize(img − shrunk)``; at the full size it is exact, so where
    m = 0 the result is `image` itself.
    """
    s = settings
    h, w = image.shape[-2:]
    min_side = model.min_side(ascent_layers := sorted(objective.layers - {"logits"}) or ["logits"])
    if min(h, w) < min_side // 2:
        raise DreamvidError(f"image {w}x{h} is too small for layer {ascent_layers[-1]} of {model.name}: "
                            f"use at least {min_side // 2} px on the short side, or a shallower layer")
    shapes = octave_shapes(h, w, s.octaves if octaves is None else octaves, s.octave_scale, min_side)
    ascent = Ascent(model, objective, s.tile_size, precision, batch_tiles, budget=budget, graphs=graphs)
    transforms = step_transforms(s)
    if extra is not None:
        transforms = extra(transforms)
    original = image.detach()
    shrunk = resize(original, shapes[0])
    img = shrunk
    for k, shape in enumerate(shapes):
        m = None if mask is None else resize(mask, shape).clamp(0.0, 1.0)
        if k > 0 and m is None:
            lost_detail = resize(original, shape) - resize(shrunk, shape)
            img = resize(img, shape) + lost_detail
            shrunk = resize(original, shape)
        elif k > 0:  # the same sum, the carried-up dream weighted by the mask
            up = resize(original, shape)
            img = up + m * resize(img - shrunk, shape)
            shrunk = up
        n = fine_iterations if fine_iterations is not None and k == len(shapes) - 1 else iterations
        img = ascend(img, ascent, s, gen, on_step, n, transforms, mask=m)
    return img.detach()


def steps_total(height: int, width: int, model: DreamModel, objective: Objective, settings: DreamSettings,
                octaves: Optional[int] = None, iterations: Optional[int] = None,
                fine_iterations: Optional[int] = None) -> int:
    """Number of on_step calls `dream` will make for this size (for progress bars)."""
    layers = sorted(objective.layers - {"logits"}) or ["logits"]
    n_oct = len(octave_shapes(height, width, settings.octaves if octaves is None else octaves,
                              settings.octave_scale, model.min_side(layers)))
    n = settings.iterations if iterations is None else iterations
    return (n_oct - 1) * n + (n if fine_iterations is None else fine_iterations)


