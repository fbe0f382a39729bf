"""Octave gradient ascent on one image tensor (no I/O).

Everything here works on float tensors (1, 3, H, W), RGB in [0, 1], on the model's device.
Steps are stated in that [0, 1] pixel space: Keras DeepDream's step 0.01 on [-1, 1] inputs is
0.005 here, Google's 1.5 on 0..255 Caffe inputs is 1.5/255 ≈ 0.0059.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .errors import DreamvidError
from .models import DEFAULT_MODEL, DreamModel
from .objectives import Objective


@dataclass(frozen=True)
class DreamSettings:
    """Every knob of the ascent: the one place defaults and valid ranges live.

    A preset (see presets.py) fills these; fields a preset leaves out keep the defaults below.
    """

    model: str = DEFAULT_MODEL
    layers: Tuple[Tuple[str, float], ...] = (("block8", 1.0),)
    channel: Optional[str] = None        # "LAYER:N": maximise one channel instead of the layer mix
    class_index: Optional[int] = None    # ImageNet class to visualise instead of the layer mix
    guide: Optional[str] = None          # path of a guide image
    step: float = 0.01                   # ascent step in [0, 1] pixel space, per iteration
    iterations: int = 10                 # ascent steps per octave
    octaves: int = 4
    octave_scale: float = 1.4
    max_loss: Optional[float] = None     # stop an octave early once the loss passes this
    jitter: int = 32                     # random roll in px before each step (rolled back after)
    lap_norm: int = 0                    # Laplacian-pyramid gradient normalisation levels (0 = off)
    l2_decay: float = 0.0                # per-step pull toward grey (class visualisation)
    blur_every: int = 0                  # blur the image every N steps (class visualisation; 0 = off)
    blur_sigma: float = 0.5
    tile_size: int = 1024                # larger images are processed in tiles of this size
    seed: int = 0

    def validate(self) -> "DreamSettings":
        checks = [
            (self.step > 0, "--step must be > 0"),
            (self.iterations >= 1, "--iterations must be at least 1"),
            (self.octaves >= 1, "--octaves must be at least 1"),
            (self.octave_scale > 1.0, "--octave-scale must be > 1 (e.g. 1.4)"),
            (self.jitter >= 0, "--jitter must be >= 0"),
            (self.lap_norm >= 0, "--lap-norm must be >= 0"),
            (0 <= self.l2_decay < 1, "--l2-decay must be in [0, 1)"),
            (self.tile_size >= 128, "--tile-size must be at least 128"),
            (self.max_loss is None or self.max_loss > 0, "--max-loss must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise DreamvidError(msg)
        return self

    def replace(self, **changes) -> "DreamSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- small image ops

def resize(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size), bilinear, antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W), reflect padding."""
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def lap_normalize(g: torch.Tensor, levels: int) -> torch.Tensor:
    """Laplacian-pyramid normalisation of a gradient (B, C, H, W): each band scaled to unit RMS.

    Plain L1 normalisation lets the highest frequencies dominate; equalising the bands gives
    smoother, larger-scale patterns (Mordvintsev's lap_normalize).
    """
    bands: List[torch.Tensor] = []
    cur = g
    for _ in range(levels - 1):
        if min(cur.shape[-2:]) < 8:
            break
        low = resize(gaussian_blur(cur, 1.0), ((cur.shape[-2] + 1) // 2, (cur.shape[-1] + 1) // 2))
        bands.append(cur - resize(low, tuple(cur.shape[-2:])))
        cur = low
    bands.append(cur)
    bands = [b / b.pow(2).mean().sqrt().clamp_min(1e-8) for b in bands]
    out = bands[-1]
    for b in reversed(bands[:-1]):
        out = resize(out, tuple(b.shape[-2:])) + b
    return out


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

def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _randint(gen: torch.Generator, high: int) -> int:
    """Uniform int in [0, high) from `gen` (a CPU generator: identical on every device)."""
    return int(torch.randint(0, max(high, 1), (1,), generator=gen).item())


class Ascent:
    """Loss and gradient of an objective w.r.t. an image, tiled when the image is large.

    Tiles overlap by a margin of a few strides of the deepest layer; only each tile's centre
    gradient is kept, and each tile's loss is weighted by its share of the image, so the tiled
    gradient matches the untiled one. Strided networks are not shift-invariant, so every crop
    starts on the network's stride grid (a multiple of ALIGN) and has the whole image's size
    modulo ALIGN (same "SAME" padding at every level): inside, it sees exactly what the whole
    image's forward pass sees.
    """

    ALIGN = 32  # the largest total stride of any registered model

    def __init__(self, model: DreamModel, objective: Objective, tile_size: int):
        self.model = model
        self.objective = objective
        self.layers = sorted(objective.layers)
        a = self.ALIGN
        self.tile_size = max(a, tile_size // a * a)
        # Four strides of the deepest layer, on the grid: enough context for the centre.
        stride = max([model.strides.get(l, 32) for l in self.layers])
        self.margin = -(-4 * stride // a) * a

    def _region(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Loss (scalar, detached) and its gradient (same shape as x) for a whole region."""
        x = x.detach().requires_grad_(True)
        inp = x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x
        with _autocast(x.device):
            acts = self.model(inp, self.layers)
        loss = self.objective(acts)
        (grad,) = torch.autograd.grad(loss, x)
        return loss.detach(), grad

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

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> Tuple[float, torch.Tensor]:
        """x (1, 3, H, W) -> (loss, gradient (1, 3, H, W))."""
        h, w = x.shape[-2:]
        t, a = self.tile_size, self.ALIGN
        if h <= t and w <= t:
            loss, grad = self._region(x)
            return float(loss), grad
        grad = torch.zeros_like(x)
        total = 0.0
        # A random grid offset per step moves the seams, on top of the jitter roll.
        oy, ox = a * _randint(gen, t // a), a * _randint(gen, t // a)
        for y0, y1, ya, yb in self._spans(h, oy):
            for x0, x1, xa, xb in self._spans(w, ox):
                share = (yb - ya) * (xb - xa) / (h * w)
                loss, g = self._region(x[..., ya:yb, xa:xb])
                grad[..., y0:y1, x0:x1] = g[..., y0 - ya:y1 - ya, x0 - xa:x1 - xa] * share
                total += float(loss) * (y1 - y0) * (x1 - x0) / (h * w)
        return total, grad


def ascend(img: torch.Tensor, ascent: Ascent, settings: DreamSettings, gen: torch.Generator,
           on_step: Optional[Callable[[], None]] = None, iterations: Optional[int] = None) -> torch.Tensor:
    """Gradient ascent at one size: (1, 3, H, W) -> (1, 3, H, W), clipped to [0, 1]."""
    s = settings
    n = s.iterations if iterations is None else iterations
    for i in range(n):
        j = s.jitter
        dy, dx = (_randint(gen, 2 * j + 1) - j, _randint(gen, 2 * j + 1) - j) if j else (0, 0)
        x = torch.roll(img, shifts=(dy, dx), dims=(2, 3))
        loss, g = ascent(x, gen)
        if s.max_loss is not None and loss > s.max_loss:
            if on_step:
                for _ in range(n - i):
                    on_step()
            break
        if s.lap_norm:
            g = lap_normalize(g, s.lap_norm)
        x = x + s.step * g / g.abs().mean().clamp_min(1e-7)
        img = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))
        if s.l2_decay:
            img = 0.5 + (img - 0.5) * (1.0 - s.l2_decay)
        if s.blur_every and (i + 1) % s.blur_every == 0:
            img = gaussian_blur(img, s.blur_sigma)
        img = img.clamp(0.0, 1.0)
        if on_step:
            on_step()
    return img


def dream(image: torch.Tensor, model: DreamModel, objective: Objective, settings: DreamSettings,
          gen: torch.Generator, on_step: Optional[Callable[[], None]] = None,
          octaves: Optional[int] = None, iterations: Optional[int] = None) -> torch.Tensor:
    """Octave gradient ascent: (1, 3, H, W) in [0, 1] -> dreamed (1, 3, H, W) in [0, 1].

    At each octave, the dream so far is upscaled and the detail the shrinking lost
    (same-size original − upscaled shrunk original) is added back before ascending.
    `octaves` / `iterations` override the settings (video frames after the first use fewer).
    gen: CPU torch.Generator driving jitter and tile offsets (seed it for reproducibility).
    """
    s = settings
    h, w = image.shape[-2:]
    min_side = model.min_side(ascent_layers := sorted(objective.layers - {"logits"}) or ["logits"])
    if min(h, w) < min_side // 2:
        raise DreamvidError(f"image {w}x{h} is too small for layer {ascent_layers[-1]} of {model.name}: "
                            f"use at least {min_side // 2} px on the short side, or a shallower layer")
    shapes = octave_shapes(h, w, s.octaves if octaves is None else octaves, s.octave_scale, min_side)
    ascent = Ascent(model, objective, s.tile_size)
    original = image.detach()
    shrunk = resize(original, shapes[0])
    img = shrunk
    for k, shape in enumerate(shapes):
        if k > 0:
            lost_detail = resize(original, shape) - resize(shrunk, shape)
            img = resize(img, shape) + lost_detail
            shrunk = resize(original, shape)
        img = ascend(img, ascent, s, gen, on_step, iterations)
    return img.detach()


def steps_total(height: int, width: int, model: DreamModel, objective: Objective, settings: DreamSettings,
                octaves: Optional[int] = None, iterations: Optional[int] = None) -> int:
    """Number of on_step calls `dream` will make for this size (for progress bars)."""
    layers = sorted(objective.layers - {"logits"}) or ["logits"]
    n_oct = len(octave_shapes(height, width, settings.octaves if octaves is None else octaves,
                              settings.octave_scale, model.min_side(layers)))
    return n_oct * (settings.iterations if iterations is None else iterations)


def make_generator(seed: int, *salt: int) -> torch.Generator:
    """A CPU generator seeded from the run's seed and e.g. a frame index, never from process history."""
    mixed = seed & 0xFFFFFFFF
    for v in salt:
        # splitmix-style mixing so (seed, frame) pairs don't collide for nearby values
        mixed = (mixed * 0x9E3779B97F4A7C15 + (v & 0xFFFFFFFF) + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
        mixed ^= mixed >> 31
    gen = torch.Generator(device="cpu")
    gen.manual_seed(mixed & 0x7FFFFFFFFFFFFFFF)
    return gen
