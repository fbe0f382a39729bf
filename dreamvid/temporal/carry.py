"""The carried dream: frame t starts from the previous dream's residual, warped along the flow.

``init_t = raw_t + blend · c ⊙ warp(dream_{t-1} − raw_{t-1})`` with the backward flow t → t−1
computed on the raw frames and c the occlusion mask (see flow.py for the conventions).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .anchor import Anchor
from .flow import FlowEstimator, _to_gray_u8, occlusion_mask, warp


class Flows(NamedTuple):
    """The two flows of one frame pair (both ``HxWx2`` float32)."""

    backward: np.ndarray  #: cur→prev, lives in cur; the one used for warping
    forward: Optional[np.ndarray]  #: prev→cur, lives in prev; for the consistency check (None


class TemporalInit(NamedTuple):
    """What :func:`temporal_init` returns; unpacks as ``init, mask, flows``."""

    init: np.ndarray  #: ``HxWx3`` float32 in [0, 1], the starting point for dreaming frame t
    mask: np.ndarray  #: ``HxW`` float32 in [0, 1], the weight c (ones when not warping)
    flows: Optional[Flows]  #: None when not warping


def estimate_flows(
    est: FlowEstimator,
    raw_cur: np.ndarray,
    raw_prev: np.ndarray,
    *,
    use_mask: bool = True,
    prev_flows: Optional[Flows] = None,
) -> Flows:
    """The flows :func:`temporal_init` needs for frame t, from the raw frames alone.

    They do not depend on any dream, so a render can compute them for frame t+1 while frame t is
    being dreamed. ``backward`` = cur→prev (for warping); ``forward`` = prev→cur (for the mask),
    None when ``use_mask`` is False. Frames: ``HxWx3`` RGB (uint8 or float [0, 1]) or ``HxW`` gray;
    ``prev_flows`` warm-starts DIS (optional). Returns :class:`Flows` of ``HxWx2`` float32.
    """
    g_cur = _to_gray_u8(raw_cur)
    g_prev = _to_gray_u8(raw_prev)
    fb = est.calc(g_cur, g_prev, None if prev_flows is None else prev_flows.backward)
    ff = None
    if use_mask:
        ff = est.calc(g_prev, g_cur, None if prev_flows is None else prev_flows.forward)
    return Flows(fb, ff)


def temporal_init(
    raw_cur: np.ndarray,
    raw_prev: np.ndarray,
    dream_prev: np.ndarray,
    est: Optional[FlowEstimator],
    blend: float,
    *,
    use_mask: bool = True,
    prev_flows: Optional[Flows] = None,
    flows: Optional[Flows] = None,
) -> TemporalInit:
    """Start frame t from the previous dream, carried along the flow.

    ``init = clip(raw_cur + blend · c ⊙ warp(dream_prev − raw_prev, f), 0, 1)`` where f is the
    backward flow cur→prev computed on the raw frames and c the occlusion mask, so only the
    dream *residual* travels, and it decays by ``blend`` each frame.

    Args:
        raw_cur, raw_prev, dream_prev: ``HxWx3`` float32 in [0, 1] (raw frames t, t-1 and the
            dreamed frame t-1), all the same size.
        est: the flow estimator; ``None`` (and no ``flows``) gives the "blend without warping"
            baseline ``raw_cur + blend · (dream_prev − raw_prev)`` (no flow, mask of ones).
        blend: residual weight in [0, 1]; 0 returns raw_cur.
        use_mask: if False, warp but do not mask (c = 1): the "ghosts" baseline.
        prev_flows: this function's ``flows`` from the previous frame, used to warm-start the
            flow (only worth it for DIS; optional).
        flows: this frame's flows, already computed by :func:`estimate_flows` (e.g. ahead of
            time, in another thread); then ``est`` is not used.

    Returns:
        ``TemporalInit(init, mask, flows)``: ``init`` ``HxWx3`` float32 [0, 1], ``mask`` ``HxW``
        float32, ``flows`` a :class:`Flows` (or None without warping).
    """
    raw_cur = np.asarray(raw_cur, dtype=np.float32)
    raw_prev = np.asarray(raw_prev, dtype=np.float32)
    dream_prev = np.asarray(dream_prev, dtype=np.float32)
    if not (raw_cur.shape == raw_prev.shape == dream_prev.shape):
        raise ValueError(
            f"frames differ in shape: raw_cur {raw_cur.shape}, raw_prev {raw_prev.shape}, "
            f"dream_prev {dream_prev.shape}"
        )
    h, w = raw_cur.shape[:2]
    blend = float(blend)
    if blend == 0.0:
        return TemporalInit(raw_cur.copy(), np.ones((h, w), np.float32), None)
    residual = dream_prev - raw_prev
    if est is None and flows is None:
        init = raw_cur + blend * residual
        return TemporalInit(np.clip(init, 0.0, 1.0, out=init), np.ones((h, w), np.float32), None)
    if flows is None:
        flows = estimate_flows(est, raw_cur, raw_prev, use_mask=use_mask, prev_flows=prev_flows)
    elif use_mask and flows.forward is None:
        raise ValueError("flows has no forward flow; the mask needs it (estimate with use_mask=True)")
    fb, ff = flows
    if fb.shape != (h, w, 2):
        raise ValueError(f"flows are {fb.shape[:2]}, frames {(h, w)}")
    residual = warp(residual, fb)
    if use_mask:
        mask = occlusion_mask(ff, fb)
        residual *= (blend * mask)[..., None]
    else:
        mask = np.ones((h, w), np.float32)
        residual *= blend
    init = residual
    init += raw_cur
    np.clip(init, 0.0, 1.0, out=init)
    return TemporalInit(init, mask, Flows(fb, ff))


def carried_target(raw_cur: np.ndarray, raw_prev: np.ndarray, dream_prev: np.ndarray, flows: Flows,
                   mask: np.ndarray) -> np.ndarray:
    """The previous dream warped into frame t, undecayed: ``clip(raw_cur + c ⊙ warp(dream_prev −
    raw_prev, f), 0, 1)``, the target of the temporal term (engine.transforms.carried_dream).

    Same arguments as :func:`temporal_init` (``flows`` and ``mask`` are what it returned).
    Returns ``HxWx3`` float32 in [0, 1].
    """
    # Bicubic: a residual pulled toward over many frames must not blur away (bilinear sampling at
    # fractional shifts is a low-pass filter, applied again every frame).
    residual = warp(np.asarray(dream_prev, np.float32) - np.asarray(raw_prev, np.float32), flows.backward,
                    cubic=True)
    residual *= np.asarray(mask, np.float32)[..., None]
    residual += np.asarray(raw_cur, np.float32)
    return np.clip(residual, 0.0, 1.0, out=residual)


class AnchoredCarry(NamedTuple):
    """What :func:`anchored_carry` returns."""

    init: np.ndarray  #: ``HxWx3`` float32 [0, 1]: raw + blend · c ⊙ carried residual
    target: np.ndarray  #: ``HxWx3`` float32 [0, 1]: raw + c ⊙ carried residual (undecayed)


def anchored_carry(raw_cur: np.ndarray, raw_prev: np.ndarray, dream_prev: np.ndarray, flows: Flows,
                   mask: np.ndarray, anchor: Anchor, blend: float) -> AnchoredCarry:
    """The init and the temporal term's target of frame t with an anchor (see anchor.py).

    `anchor` must have followed the flows up to frame t. The carried residual is the anchor's,
    sampled once, where it is trusted, and elsewhere the previous dream's residual warped one step
    (bicubic); `mask` (c) and `blend` weigh it as in :func:`temporal_init`. Frames ``HxWx3``
    float32 [0, 1]; returns ``AnchoredCarry(init, target)``.
    """
    raw_cur = np.asarray(raw_cur, np.float32)
    chained = warp(np.asarray(dream_prev, np.float32) - np.asarray(raw_prev, np.float32), flows.backward,
                   cubic=True)
    residual = anchor.carry(chained)
    residual *= np.asarray(mask, np.float32)[..., None]
    target = np.clip(raw_cur + residual, 0.0, 1.0)
    init = np.clip(raw_cur + float(blend) * residual, 0.0, 1.0)
    return AnchoredCarry(init, target)
