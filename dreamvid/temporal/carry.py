"""The carried dream: frame t starts from the previous dream's residual, carried along the flow.

``init_t = raw_t + blend · c ⊙ carried(dream_{t-1} − raw_{t-1})`` with c the occlusion mask of
the backward flow t → t−1 estimated on the raw frames (see flow.py for the conventions), and
``target_t = raw_t + c ⊙ carried(…)`` (undecayed) the temporal term's target. "Carried" is the
previous residual warped one step (:func:`carry_one_step`) or, with an anchor, the anchor's
residual sampled once where it is trusted (:func:`carry_anchored`, anchor.py).

Flows are estimated on the CPU (:func:`estimate_flows`, OpenCV); everything else runs on the
dream's device (torch): frames ``(1, 3, H, W)`` float32 in [0, 1], masks ``(1, 1, H, W)``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch

from .anchor import Anchor
from .flow import FlowEstimator
from .motion import Motion
from .sampling import warp, warp_at


class Flows(NamedTuple):
    """The two flows of one frame pair at their estimation size (``hxwx2`` float32 numpy, in
    pixels of that size; FlowEstimator.estimation_size)."""

    backward: np.ndarray  #: cur→prev, lives in cur; the one used for warping
    forward: Optional[np.ndarray]  #: prev→cur, lives in prev; for the consistency check


def estimate_flows(est: FlowEstimator, raw_cur: np.ndarray, raw_prev: np.ndarray) -> Flows:
    """The flows frame t's carry needs, from the raw frames alone (at the estimator's size).

    They do not depend on any dream, so a render estimates them for later frames while frame t
    is being dreamed. Frames: ``HxWx3`` RGB (uint8 or float [0, 1]), ``HxW`` gray uint8, or
    ``est.gray`` of them (converted once per frame).
    """
    g_cur, g_prev = est.gray(raw_cur), est.gray(raw_prev)
    return Flows(est.estimate(g_cur, g_prev), est.estimate(g_prev, g_cur))


class Carried(NamedTuple):
    """What a frame after the first starts from (device tensors)."""

    init: torch.Tensor  #: ``(1, 3, H, W)`` in [0, 1]: the starting point of its ascent
    mask: torch.Tensor  #: ``(1, 1, H, W)``: the occlusion mask c (ones without a flow)
    target: Optional[torch.Tensor]  #: ``(1, 3, H, W)``: the temporal term's target (None: not asked
    #: for, or no flow to carry along)
    motion: Optional[Motion]  #: None when nothing was warped (a still carry, blend 0)


#: How the anchored carry warps the previous residual one step where the anchor is not trusted
#: (bicubic: on a pan, bilinear kept 0.82 of a frame dreamed alone's fine detail, bicubic 0.92).
CHAINED_KERNEL = "cubic"
#: Below this share of the frame, the one-step warp is computed at those pixels only (a pixel read
#: on its own costs ~1.3x one of a whole-frame warp, bicubic on a CPU).
SPARSE_BELOW = 0.6


def _finish(raw: torch.Tensor, residual: torch.Tensor, blend: float, mask: torch.Tensor,
            motion: Optional[Motion], target: bool) -> Carried:
    init = torch.add(raw, residual, alpha=float(blend)).clamp_(0.0, 1.0)
    return Carried(init, mask, torch.add(raw, residual).clamp_(0.0, 1.0) if target else None, motion)


def carry_still(raw: torch.Tensor, prev_raw: torch.Tensor, prev_dream: torch.Tensor, blend: float) -> Carried:
    """Blend without warping (``--flow static``): ``raw + blend · (dream_prev − raw_prev)``; blend 0
    gives the raw frame."""
    ones = torch.ones_like(raw[:, :1])
    if float(blend) == 0.0:
        return Carried(raw.clone(), ones, None, None)
    return _finish(raw, prev_dream - prev_raw, blend, ones, None, target=False)


def carry_one_step(raw: torch.Tensor, prev_raw: torch.Tensor, prev_dream: torch.Tensor, motion: Motion,
                   blend: float, target: bool = True) -> Carried:
    """The previous dream's residual warped one step along `motion` (bilinear for the init; bicubic
    for the target, which a render pulls toward over many frames: bilinear sampling at fractional
    shifts is a low-pass filter, applied again every frame)."""
    residual, grid, c = prev_dream - prev_raw, motion.frame_grid(), motion.frame_mask()
    carried = _finish(raw, c * warp(residual, None, "linear", grid), blend, c, motion, target=False)
    if not target:
        return carried
    return carried._replace(target=(raw + c * warp(residual, None, "cubic", grid)).clamp_(0.0, 1.0))


def carry_along(raw: torch.Tensor, prev_raw: torch.Tensor, prev_dream: torch.Tensor, motion: Motion,
                anchor: Optional[Anchor], blend: float, cut_below: float, target: bool = True) -> Optional[Carried]:
    """Frame t carried from the frame before along `motion`: None where the motion's reliable share
    is below `cut_below` (a scene cut: dream it afresh); else the anchor, when there is one, follows
    the motion and :func:`carry_anchored` carries, or :func:`carry_one_step` (`target`: make its
    target too; the anchored carry always does)."""
    if motion.reliable_share() < cut_below:
        return None
    if anchor is None:
        return carry_one_step(raw, prev_raw, prev_dream, motion, blend, target)
    anchor.follow(motion)
    return carry_anchored(raw, prev_raw, prev_dream, motion, anchor, blend)


def carry_anchored(raw: torch.Tensor, prev_raw: torch.Tensor, prev_dream: torch.Tensor, motion: Motion,
                   anchor: Anchor, blend: float) -> Carried:
    """The init and the target of frame t with an anchor that has followed `motion` (anchor.py):
    the anchor's residual where it is trusted, the previous residual warped one step (bicubic)
    where it is not, blended by the trust; then weighed by c (and `blend` for the init)."""
    c = motion.frame_mask()
    trust = anchor.frame_trust(motion.frame_size)
    residual = anchor.sample()
    # The one-step carry only where it counts (trust < 1 and c > 0): lerp gives `residual` itself,
    # exactly, where the trust is 1 (whatever it blends it with), and c zeroes the rest.
    need = ((trust < 1.0) & (c > 0.0)).reshape(-1)
    pixels = need.nonzero().squeeze(1)
    if pixels.numel() == 0:
        return _finish(raw, residual.mul_(c), blend, c, motion, target=True)
    one_step = prev_dream - prev_raw
    if pixels.numel() > SPARSE_BELOW * need.numel():
        chained = warp(one_step, None, CHAINED_KERNEL, motion.frame_grid())
    else:  # the same values at those pixels, 0 elsewhere (where the trust is 1 or c is 0)
        chained = torch.zeros_like(residual)
        at = warp_at(one_step, motion.frame_grid(), pixels, CHAINED_KERNEL)
        chained.view(1, 3, -1).index_copy_(2, pixels, at.view(1, 3, -1))
    return _finish(raw, chained.lerp_(residual, trust).mul_(c), blend, c, motion, target=True)
