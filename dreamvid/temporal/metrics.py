"""Temporal-stability metrics for a dreamed video against its input (numpy / OpenCV).

* ``warping_error`` — E_warp of Lai et al. 2018: flow on the INPUT frames, output frame t+1 warped
  back onto frame t, per-channel MSE on [0, 1] values over non-occluded pixels, mean over pairs.
* ``dream_strength`` — mean |output − input| on [0, 1] values: how much the video was changed.

Always read E_warp(output) beside E_warp(input) (the floor: what flow errors alone cost) and the
dream strength (an output that does not dream is trivially stable). ``temporal_stats`` computes
all of them in one streaming pass, sharing the flows.

Frames are RGB ``HxWx3``, uint8 (0..255) or float (0..1), given as any iterables (lists, arrays,
generators); only two frames of each are held at a time. If the output frames differ in size from
the input frames, the input frames are resized to the output size first.
"""

from __future__ import annotations

from typing import Callable, Iterable, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np

from ..errors import DreamvidError
from .flow import FlowEstimator, occlusion_mask, warp

__all__ = ["warping_error", "dream_strength", "detail_energy", "TemporalStats", "temporal_stats",
           "CoherenceStats", "coherence_stats", "FlowSource"]

_MISSING = object()


class _LengthMismatch(DreamvidError):
    """The input and output sequences have different lengths."""


def _to_float01(frame: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 or float -> float32 in [0, 1]."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) * np.float32(1.0 / 255.0)
    return frame.astype(np.float32, copy=False)


def _resize_to(frame: np.ndarray, hw) -> np.ndarray:
    """Resize ``frame`` to ``hw = (H, W)`` if it differs (area when shrinking, else bilinear)."""
    frame = np.asarray(frame)
    h, w = hw
    if frame.shape[:2] == (h, w):
        return frame
    shrink = h * w < frame.shape[0] * frame.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(frame, (w, h), interpolation=interp)


def _pairs(input_frames: Iterable, output_frames: Iterable):
    """Yield ``(input at output size, output)`` pairs; raise _LengthMismatch at a length mismatch."""
    it_in, it_out = iter(input_frames), iter(output_frames)
    n = 0
    while True:
        a = next(it_in, _MISSING)
        b = next(it_out, _MISSING)
        if a is _MISSING or b is _MISSING:
            if a is not _MISSING or b is not _MISSING:
                longer = "input" if a is not _MISSING else "output"
                raise _LengthMismatch(
                    f"the {longer} has more frames than the other (which stopped after {n}); "
                    "compare videos of the same length"
                )
            return
        b = np.asarray(b)
        if b.ndim != 3 or b.shape[2] != 3 or np.asarray(a).ndim != 3:
            raise ValueError(f"expected RGB HxWx3 frames, got {np.shape(a)} and {b.shape}")
        n += 1
        yield _resize_to(a, b.shape[:2]), b


class TemporalStats(NamedTuple):
    """Result of :func:`temporal_stats`."""

    e_warp_output: float  #: E_warp of the output (lower = more stable)
    e_warp_input: float  #: E_warp of the input at the output size: the floor
    ratio: float  #: e_warp_output / e_warp_input (1 = as stable as the input itself)
    dream_strength: float  #: mean |output − input| in [0, 1]
    frames: int  #: frames compared
    pairs: int  #: frame pairs that had reliable pixels and entered E_warp
    truncated: bool  #: the two sequences had different lengths; the longer one was cut


def _pair_error(a_t: np.ndarray, a_next: np.ndarray, flow: np.ndarray, m: np.ndarray, n: float):
    """Per-channel MSE of ``a_t`` vs ``a_next`` warped back along ``flow`` over mask ``m``."""
    d = warp(a_next, flow)
    d -= a_t
    d *= d
    return float(np.einsum("hwc,hw->", d, m)) / n


def _pair_errors(est: FlowEstimator, prev: tuple, cur: tuple):
    """One pair (t, t+1), each given as (input as given, input float, output float): the input's
    flows f = t → t+1 (lives in t) and g = t+1 → t, and the E_warp terms (output, input) over
    frame t's non-occluded pixels, or None when no pixel is reliable (a scene cut)."""
    (a0, a0f, b0f), (a, af, bf) = prev, cur
    f = est.calc(a0, a)
    g = est.calc(a, a0)
    m = (occlusion_mask(flow_fwd=g, flow_bwd=f) > 0.5).astype(np.float32)
    n = float(m.sum()) * 3.0
    if n == 0:
        return f, g, None
    return f, g, (_pair_error(b0f, bf, f, m, n), _pair_error(a0f, af, f, m, n))


def temporal_stats(
    input_frames: Iterable,
    output_frames: Iterable,
    est: Optional[FlowEstimator] = None,
    *,
    strict: bool = True,
) -> TemporalStats:
    """E_warp of output and input, their ratio and the dream strength, in one pass.

    For each consecutive pair (t, t+1): ``f = est.calc(in_t, in_{t+1})`` (flow t→t+1 on the input),
    ``g = est.calc(in_{t+1}, in_t)``; the non-occluded pixels of frame t are
    ``occlusion_mask(flow_fwd=g, flow_bwd=f) > 0.5``; the error is the mean over those pixels and
    the 3 channels of ``(warp(out_{t+1}, f) − out_t)²`` (values in [0, 1]). Pairs with no reliable
    pixel (scene cuts) are skipped. E_warp is the mean over pairs.

    Args:
        input_frames, output_frames: iterables of RGB ``HxWx3`` frames (uint8 or float [0, 1]).
        est: flow estimator (default: DIS medium).
        strict: raise :class:`DreamvidError` if the lengths differ; otherwise compare the common
            prefix and set ``truncated``.

    Returns:
        :class:`TemporalStats`.
    """
    if est is None:
        est = FlowEstimator("dis", "medium")
    e_out = e_in = 0.0
    strength_sum = 0.0
    pairs = frames = 0
    prev = None  # (input as given, input float, output float)
    try:
        for a, b in _pairs(input_frames, output_frames):
            af, bf = _to_float01(a), _to_float01(b)
            strength_sum += float(np.abs(bf - af).mean())
            frames += 1
            if prev is not None:
                _, _, errors = _pair_errors(est, prev, (a, af, bf))
                if errors is not None:
                    e_out, e_in, pairs = e_out + errors[0], e_in + errors[1], pairs + 1
            prev = (a, af, bf)
        truncated = False
    except _LengthMismatch:
        if strict:
            raise
        truncated = True
    if frames == 0:
        raise DreamvidError("no frames to compare")
    e_out = e_out / pairs if pairs else float("nan")
    e_in = e_in / pairs if pairs else float("nan")
    ratio = e_out / e_in if e_in > 0 else float("inf") if e_out > 0 else float("nan")
    return TemporalStats(e_out, e_in, ratio, strength_sum / frames, frames, pairs, truncated)


def warping_error(
    input_frames: Iterable, output_frames: Iterable, est: Optional[FlowEstimator] = None
) -> float:
    """E_warp (Lai et al. 2018) of ``output_frames``, flow computed on ``input_frames``.

    See :func:`temporal_stats` for the exact definition. Pass the input as the output too to get
    the input's own E_warp (the floor). Frames: RGB ``HxWx3`` uint8 or float [0, 1], same count;
    input resized to the output size when they differ. Returns NaN for fewer than two frames.
    """
    return temporal_stats(input_frames, output_frames, est).e_warp_output


def dream_strength(input_frames: Iterable, output_frames: Iterable) -> float:
    """Mean ``|output − input|`` over all frames, pixels and channels, on [0, 1] values.

    Input frames are resized to the output size when they differ. Same frame count required.
    """
    total, frames = 0.0, 0
    for a, b in _pairs(input_frames, output_frames):
        total += float(np.abs(_to_float01(b) - _to_float01(a)).mean())
        frames += 1
    if frames == 0:
        raise DreamvidError("no frames to compare")
    return total / frames


class LoopStats(NamedTuple):
    """seam_ratio: mean |last − first| / median mean |f_{t+1} − f_t| (1 = the seam is a normal step).
    worst_step_ratio: the largest step (seam included) / that median. drift_percent: mean brightness
    of the middle frame vs the first, in percent. median_step: on a 0..1 scale."""

    frames: int
    seam_ratio: float
    worst_step_ratio: float
    drift_percent: float
    median_step: float


def loop_stats(frames: Iterable[np.ndarray]) -> LoopStats:
    """Seam and drift of a loop from its frames (RGB uint8 or float [0, 1], streamed).

    Steps are mean absolute differences over all pixels and channels on a 0..1 scale; only the
    first, previous and current frame are held, plus one number per frame.
    """
    first = prev = last = None
    steps: List[float] = []
    brightness: List[float] = []
    for f in frames:
        x = np.asarray(f)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if first is None:
            first = x
        else:
            if x.shape != prev.shape:
                raise DreamvidError(f"frame {len(brightness)} is {x.shape[1]}x{x.shape[0]}, the first "
                                    f"is {first.shape[1]}x{first.shape[0]}: not one loop")
            steps.append(float(np.abs(x - prev).mean()))
        brightness.append(float(x.mean()))
        prev = last = x
    if first is None or not steps:
        raise DreamvidError("a loop needs at least 2 frames to measure")
    median = float(np.median(steps))
    seam = float(np.abs(last - first).mean())
    ratio = seam / max(median, 1e-9)
    worst = max(steps + [seam]) / max(median, 1e-9)
    mid = brightness[len(brightness) // 2]
    drift = 100.0 * (mid - brightness[0]) / max(brightness[0], 1e-9)
    return LoopStats(len(brightness), ratio, worst, drift, median)


#: A source of input flows for the metrics: ``flows(t, k)`` -> (f, g), ``HxWx2`` float32, with
#: f = t → t+k (lives in t) and g = t+k → t, for frame indices counted from the first frame compared.
FlowSource = Callable[[int, int], Tuple[np.ndarray, np.ndarray]]


def detail_energy(diff: np.ndarray) -> float:
    """Fine-detail strength of a dream residual: the variance of the Laplacian of its grey.

    diff: ``HxWx3`` float (out − in on [0, 1] values). Blur lowers it even where the mean
    |out − in| (the dream strength) stays the same, so it tells a crisp dream from a smeared one.
    """
    grey = np.asarray(diff, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


class CoherenceStats(NamedTuple):
    """Result of :func:`coherence_stats`."""

    e_warp_output: float  #: E_warp of the output (as in :class:`TemporalStats`)
    e_warp_input: float  #: E_warp of the input: the floor
    strengths: List[float]  #: mean |out − in| of each frame
    #: mean |out − in| over the pixels that have been visible for 0, 1, 2, 3–5 and ≥ 6 frames
    #: (age along the input's flow; a pixel is new where the flow is unreliable), None where fewer
    #: than 0.2 % of the pixels of the frames after the first had that age
    by_age: List[Optional[float]]
    pairs: int  #: frame pairs that entered E_warp
    details: List[float] = []  #: :func:`detail_energy` of each frame's out − in
    #: E_warp over frame pairs (t, t+gap) with the direct flow between them: output, input
    e_gap_output: float = float("nan")
    e_gap_input: float = float("nan")

    @property
    def strength(self) -> float:
        return float(np.mean(self.strengths))

    @property
    def detail(self) -> float:
        return float(np.mean(self.details))

    def quarter_ratio(self) -> float:
        """Mean strength of the last quarter of the frames ÷ that of the first quarter."""
        q = max(1, len(self.strengths) // 4)
        return float(np.mean(self.strengths[-q:]) / max(np.mean(self.strengths[:q]), 1e-12))


AGE_BUCKETS = ((0, 0), (1, 1), (2, 2), (3, 5), (6, None))


def _masked_errors(f: np.ndarray, g: np.ndarray, a: tuple, b: tuple):
    """E_warp terms (output, input) of the pair a = (in, out) at t, b at t+k with flows f = t → t+k
    and g = t+k → t, over frame t's non-occluded pixels; None when no pixel is reliable."""
    m = (occlusion_mask(flow_fwd=g, flow_bwd=f) > 0.5).astype(np.float32)
    n = float(m.sum()) * 3.0
    if n == 0:
        return None
    return _pair_error(a[1], b[1], f, m, n), _pair_error(a[0], b[0], f, m, n)


def coherence_stats(input_frames: Iterable, output_frames: Iterable, est: Optional[FlowEstimator] = None,
                    cut_below: float = 0.2, *, flows: Optional[FlowSource] = None,
                    gap: int = 5) -> CoherenceStats:
    """E_warp of output and input, per-frame strength and fine detail, E_warp over longer gaps and
    the strength by age, in one pass.

    E_warp as :func:`temporal_stats`; also over the pairs (t, t + gap), with the direct flow
    between them and the same forward–backward mask (a pattern that crawls slowly shows there).
    Flows come from `flows` (a :data:`FlowSource`, e.g. an evaluation flow independent of the
    render's, computed elsewhere) or else from `est` on the input frames (default DIS medium).
    Age: each pixel of frame t+1 is 0 where the input's flow t+1 → t is unreliable (the carry's
    occlusion mask ≤ 0.5: disocclusions, a pan's entering edge), else the age of where it comes
    from in frame t plus 1. Frame 0, and every frame whose reliable share is below `cut_below` (a
    scene cut, dreamed afresh), starts at "old" (≥ 6). Holds gap + 1 frames of each at a time.
    """
    held: List[tuple] = []  # (input float, output float) of the last gap + 1 frames
    if flows is None:
        est = est or FlowEstimator("dis", "medium")
        given: dict = {}
        flows = lambda t, k: (est.calc(given[t], given[t + k]), est.calc(given[t + k], given[t]))  # noqa: E731
    else:
        given = None
    e_out = e_in = g_out = g_in = 0.0
    pairs = gap_pairs = 0
    strengths: List[float] = []
    details: List[float] = []
    sums = np.zeros(len(AGE_BUCKETS))
    counts = np.zeros(len(AGE_BUCKETS))
    age = None
    old = float(AGE_BUCKETS[-1][0])
    for t, (a, b) in enumerate(_pairs(input_frames, output_frames)):
        af, bf = _to_float01(a), _to_float01(b)
        if given is not None:
            given[t] = a
            given.pop(t - gap - 1, None)
        held.append((af, bf))
        del held[:-gap - 1]
        residual = bf - af
        diff = np.abs(residual).mean(axis=2)
        strengths.append(float(diff.mean()))
        details.append(detail_energy(residual))
        if t == 0:
            age = np.full(diff.shape, old, np.float32)
        else:
            f, g = flows(t - 1, 1)
            errors = _masked_errors(f, g, held[-2], held[-1])
            if errors is not None:
                e_out, e_in, pairs = e_out + errors[0], e_in + errors[1], pairs + 1
            carried = occlusion_mask(flow_fwd=f, flow_bwd=g) > 0.5  # frame t's reliable pixels
            if carried.mean() < cut_below:
                age = np.full(diff.shape, old, np.float32)
            else:
                age = np.where(carried, np.minimum(np.rint(warp(age, g)) + 1, old), 0).astype(np.float32)
                for k, (lo, hi) in enumerate(AGE_BUCKETS):
                    sel = (age >= lo) if hi is None else ((age >= lo) & (age <= hi))
                    sums[k] += float(diff[sel].sum())
                    counts[k] += float(sel.sum())
        if gap > 1 and t >= gap:
            errors = _masked_errors(*flows(t - gap, gap), held[0], held[-1])
            if errors is not None:
                g_out, g_in, gap_pairs = g_out + errors[0], g_in + errors[1], gap_pairs + 1
    if not strengths:
        raise DreamvidError("no frames to compare")
    total = max(counts.sum(), 1.0)
    by_age = [float(s / c) if c >= 0.002 * total else None for s, c in zip(sums, counts)]
    nan = float("nan")
    return CoherenceStats(e_out / pairs if pairs else nan, e_in / pairs if pairs else nan, strengths,
                          by_age, pairs, details, g_out / gap_pairs if gap_pairs else nan,
                          g_in / gap_pairs if gap_pairs else nan)
