"""Per-step transforms of the ascent: plain functions, composed from the settings.

One ascent step (see :func:`dreamvid.engine.ascent.ascend`) is::

    x = before(img)                  # image transforms before the gradient (jitter roll)
    g = gradient(x)                  # objective's gradient at x, (1, 3, H, W)
    g = grad(g)                      # gradient transforms (Laplacian normalisation)
    x = x + step · g / mean|g|       # the L1-normalised step
    img = after(x)                   # image transforms after the step (undo the roll, L2 decay,
                                     # periodic blur, clamp to [0, 1])

Every transform is ``fn(t, state) -> t`` on a (1, 3, H, W) tensor (lucent's optvis/transform.py
style). ``state`` is the step's :class:`StepState`: its index in the octave, the run's seeded CPU
``torch.Generator`` (never a global RNG: a frame's pixels depend only on (seed, frame index)),
and an undo stack that "before" transforms push their inverses onto and :func:`undo` pops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Sequence

import torch

from ..config.settings import DreamSettings
from ..core.imageops import gaussian_blur, lap_normalize, resize
from ..core.rng import _randint


@dataclass
class StepState:
    """What the transforms of one ascent step share.

    index: the step's index within its octave (0-based); gen: the seeded CPU generator;
    undo: inverses pushed by "before" transforms, applied last-first by :func:`undo`.
    """

    index: int
    gen: torch.Generator
    undo: List[Callable[[torch.Tensor], torch.Tensor]] = field(default_factory=list)


Transform = Callable[[torch.Tensor, StepState], torch.Tensor]


def compose(fns: Sequence[Transform]) -> Transform:
    """One transform applying `fns` in order (the identity for an empty list)."""
    fns = tuple(fns)

    def composed(t: torch.Tensor, state: StepState) -> torch.Tensor:
        for fn in fns:
            t = fn(t, state)
        return t
    return composed


# --------------------------------------------------------------------------- image, before the gradient

def jitter(pixels: int) -> Transform:
    """Roll (1, 3, H, W) by a random (dy, dx) in [-pixels, pixels]², drawn dy first from the
    state's generator; pushes the roll back onto the state's undo stack."""
    def fn(x: torch.Tensor, state: StepState) -> torch.Tensor:
        dy = _randint(state.gen, 2 * pixels + 1) - pixels
        dx = _randint(state.gen, 2 * pixels + 1) - pixels
        state.undo.append(lambda y: torch.roll(y, shifts=(-dy, -dx), dims=(2, 3)))
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    return fn


# --------------------------------------------------------------------------- gradient

def lap_norm(levels: int) -> Transform:
    """Laplacian-pyramid normalisation of the gradient (1, 3, H, W) with `levels` bands."""
    return lambda g, state: lap_normalize(g, levels)


# --------------------------------------------------------------------------- image, after the step

def undo(x: torch.Tensor, state: StepState) -> torch.Tensor:
    """Apply (and clear) the undo stack of the "before" transforms, last pushed first."""
    while state.undo:
        x = state.undo.pop()(x)
    return x


def decay(rate: float) -> Transform:
    """Pull (1, 3, H, W) toward mid-grey: 0.5 + (x − 0.5)·(1 − rate) (L2 decay)."""
    return lambda x, state: 0.5 + (x - 0.5) * (1.0 - rate)


def blur_every(n: int, sigma: float) -> Transform:
    """Gaussian blur (sigma px) of (1, 3, H, W) after every n-th step of an octave."""
    return lambda x, state: gaussian_blur(x, sigma) if (state.index + 1) % n == 0 else x


def clamp(lo: float = 0.0, hi: float = 1.0) -> Transform:
    """Clip (1, 3, H, W) to [lo, hi]."""
    return lambda x, state: x.clamp(lo, hi)


# --------------------------------------------------------------------------- from the settings

@dataclass(frozen=True)
class StepTransforms:
    """The three composed stages of a step: image before, gradient, image after."""

    before: Transform
    gradient: Transform
    after: Transform


def step_transforms(s: DreamSettings) -> StepTransforms:
    """The transform lists a step runs for settings `s` (draws happen in list order)."""
    before: List[Transform] = [jitter(s.jitter)] if s.jitter else []
    gradient: List[Transform] = [lap_norm(s.lap_norm)] if s.lap_norm else []
    after: List[Transform] = [undo]
    if s.l2_decay:
        after.append(decay(s.l2_decay))
    if s.blur_every:
        after.append(blur_every(s.blur_every, s.blur_sigma))
    after.append(clamp(0.0, 1.0))
    return StepTransforms(compose(before), compose(gradient), compose(after))


# --------------------------------------------------------------------------- video: the carried dream

def extend(t: StepTransforms, before: Sequence[Transform] = (), after: Sequence[Transform] = ()) -> StepTransforms:
    """`t` with `before` run first (ahead of its image transforms) and `after` run last."""
    return StepTransforms(compose([*before, t.before]), t.gradient, compose([t.after, *after]))


def carried_dream(target: torch.Tensor, mask: torch.Tensor, weight: float, damping: float = 0.0,
                  fresh: float = 0.0, band: float = 0.0) -> Callable[[StepTransforms], StepTransforms]:
    """The temporal term of a video frame after the first, as step transforms (Ruder et al. 2016).

    target: (1, 3, H, W) the previous dream warped into this frame (where it is reliable); mask:
    (1, 1, H, W) the flow's reliability c in [0, 1]. Both are resized to each octave's size.

    Ruder's penalty λ·Σ c·(x − target)² is not added to the loss: the dream step is L1-normalised
    (its size is fixed whatever the gradient's scale), so a penalty's gradient would either vanish
    or swamp it. It is applied as its own proximal step after each dream step instead:
    ``x ← x − weight·c·(x − target)`` (weight = 2·η·λ, the share of the gap closed per step), so
    the dream's step size and the pull's strength are set independently. Before that, the dream
    step itself is scaled per pixel by ``1 − damping·c + fresh·(1 − c)``: damped where the carried
    dream is reliable, enlarged where the frame shows something new (disocclusions, a pan's
    entering edge) so those areas catch up. Pixels with c = 0 are never pulled.

    band > 0 pulls only the coarse part of the gap: ``x ← x − weight·c·G_σ(x − target)`` with G_σ a
    Gaussian of sigma `band` px at the target's size (scaled with each octave). The carried target
    has been resampled along the flow, which blurs its finest detail; pulled toward it, every frame
    would lose a little more. With the band, the patterns' layout and colour are held and the finest
    detail is dreamed anew on top of the carried one, in place. Returns a function that extends a
    step's transforms (pass it to ``dream(..., extra=)``).
    """
    cache = {}
    start: List[torch.Tensor] = []

    def at(shape):
        shape = tuple(shape)
        if shape not in cache:
            cache[shape] = (resize(target, shape), resize(mask, shape).clamp(0.0, 1.0))
        return cache[shape]

    def remember(x: torch.Tensor, state: StepState) -> torch.Tensor:
        start[:] = [x]
        return x

    def scale_step(x: torch.Tensor, state: StepState) -> torch.Tensor:
        _, c = at(x.shape[-2:])
        x0 = start.pop()
        return (x0 + (x - x0) * (1.0 - damping * c + fresh * (1.0 - c))).clamp(0.0, 1.0)

    def pull(x: torch.Tensor, state: StepState) -> torch.Tensor:
        w, c = at(x.shape[-2:])
        gap = x - w
        if band:
            gap = gaussian_blur(gap, band * x.shape[-1] / target.shape[-1])
        return x - (weight * c) * gap

    before: List[Transform] = []
    after: List[Transform] = []
    if damping or fresh:
        before.append(remember)
        after.append(scale_step)
    if weight:
        after.append(pull)
    return lambda t: extend(t, before, after)
