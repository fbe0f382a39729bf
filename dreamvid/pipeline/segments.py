"""Segment plans: one film cut into pieces that separate processes can render at the same time.

A film is cut at its scene cuts first (frames the render dreams afresh because nothing of the
previous frame can be carried: see :func:`scene_cuts`), so those seams are exact. Each scene is
then cut into runs of at most ``segment_frames`` frames of near-equal length. A run that does
not start a scene starts ``warmup`` frames early (dreamed, not kept) so that its first kept frame
carries a dream like the sequential render's; the warm-up never reaches back past its scene's
first frame, and when it reaches that frame the seam is exact too (both renders dream that frame
afresh). Those seams that are not exact are cross-faded: the segment before goes on ``fade``
frames past its end (its lead-out, coasted: its last dream carried along the flow, not dreamed
again, so it costs a flow a frame) and the next segment's first ``fade`` frames are blended from
it to the new one (:func:`crossfade`), both of the same input frames, so the jump between the two
independent dreams is spread over several steps. :func:`plan_segments` is a pure
function of (first frame, end, cuts, F, W, K).

Render a segment with :func:`~dreamvid.pipeline.video.render_segment` (``seg.start``, ``seg.end``,
``seg.warmup``) and join them with :func:`~dreamvid.pipeline.video.join_segments`. The seam
quality is measured by :func:`step_errors` (E_warp of each consecutive pair, flow on the input).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, List, Optional, Sequence

import numpy as np
import torch

from ..config.settings import VideoSettings
from ..core.imageops import resize_to_max_side
from ..errors import SettingError
from ..temporal.carry import estimate_flows
from ..temporal.flow import FlowEstimator
from ..temporal.motion import Motion
from ..temporal.metrics import temporal_stats

#: Defaults chosen by measurement (bench/RESULTS.md, "Distributed rendering"; default preset,
#: samples/bunny.mp4, the bikes pan and Big Buck Bunny at 320 px). The seam should look like any
#: other step. A fresh segment's dream never converges to the sequential render's (the ascent
#: reinforces whatever patterns it starts from): warm-up alone leaves the seam at 12.5x the median
#: step (W=0), 10.2x (4), 9.5x (12), so it is off by default (it costs frames, gains little). A
#: cross-fade over K frames spreads the jump; with the temporal term the transition's worst step
#: is, over the uncut render's own worst step on the same frames, 1.11-1.48x at K=8, 0.88-1.32x at
#: 12 and 0.69-1.19x at 16 (bbb's still shot at frame 80: 1.67x of a step a third of the median,
#: 0.54x the median). Coasting the lead-out instead of dreaming it measured slightly steadier (and
#: costs ~0.1 of a dreamed frame), so K=16 costs little more than K=8 did.
DEFAULT_WARMUP = 0
DEFAULT_FADE = 16
#: The most frames in a segment when the length is chosen for the workers (auto_segment_frames):
#: short enough to rebalance after a lost worker, long enough that a segment's fixed cost (its
#: cold first frame, ~4 later frames, and the next one's coasted lead-out) stays small.
DEFAULT_SEGMENT_FRAMES = 240
MIN_SEGMENT_FRAMES = 2


@dataclass(frozen=True)
class Segment:
    """Frames [start, end) of a film, dreamed from frame start − warmup on."""

    start: int
    end: int
    warmup: int = 0
    exact: bool = True  #: its first kept frame equals the sequential render's (scene start or warm-up reaches one)
    fade: int = 0       #: its first `fade` frames are cross-faded from the previous segment's lead-out
    leadout: int = 0    #: frames rendered past `end` for the next segment's cross-fade (not kept as such)

    @property
    def first(self) -> int:
        """The first frame dreamed (the warm-up's first)."""
        return self.start - self.warmup

    @property
    def frames(self) -> int:
        """Frames kept."""
        return self.end - self.start

    @property
    def rendered_end(self) -> int:
        """The end of the frames it renders (its lead-out included)."""
        return self.end + self.leadout

    @property
    def name(self) -> str:
        """``seg_000120-000240``: the segment's checkpoint folder is ``<name>.dreamvid``."""
        return f"seg_{self.start:06d}-{self.end:06d}"

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "warmup": self.warmup, "exact": self.exact,
                "fade": self.fade, "leadout": self.leadout}


def check_plan_settings(segment_frames: int, warmup: int, fade: int = 0) -> None:
    """SettingError unless segment_frames >= 2, warmup >= 0 and fade >= 0."""
    if not isinstance(fade, int) or fade < 0:
        raise SettingError("seam_fade", fade, "must be >= 0 (frames cross-faded at a seam; 0 = a hard cut)")
    if not isinstance(segment_frames, int) or segment_frames < MIN_SEGMENT_FRAMES:
        raise SettingError("segment_frames", segment_frames,
                           f"must be at least {MIN_SEGMENT_FRAMES} (frames per segment)")
    if not isinstance(warmup, int) or warmup < 0:
        raise SettingError("warmup", warmup, "must be >= 0 (frames dreamed before a segment, not kept)")


def plan_segments(start: int, end: int, cuts: Iterable[int], segment_frames: int = DEFAULT_SEGMENT_FRAMES,
                  warmup: int = DEFAULT_WARMUP, carries: bool = True, fade: int = DEFAULT_FADE) -> List[Segment]:
    """Segments covering frames [start, end) in film order.

    cuts: frames dreamed afresh (scene cuts; those outside (start, end) are ignored).
    carries: False when nothing carries from frame to frame (``flow="none"``): every seam is
    exact, no warm-up. Scenes are split into ceil(len / segment_frames) runs of near-equal length.
    fade: frames cross-faded at each seam that is not exact (at most the segment's length).
    """
    check_plan_settings(segment_frames, warmup, fade)
    if end <= start:
        raise SettingError("end", end, f"({end}) must be greater than {{start}} ({start})", refs=("start",))
    bounds = [start] + sorted({c for c in cuts if start < c < end}) + [end]
    plan: List[Segment] = []
    for a, b in zip(bounds, bounds[1:]):
        n = math.ceil((b - a) / segment_frames)
        edges = [a + round(i * (b - a) / n) for i in range(n + 1)]
        for s, e in zip(edges, edges[1:]):
            w = min(warmup, s - a) if carries else 0
            plan.append(Segment(s, e, w, exact=not carries or s - w == a))
    for i in range(1, len(plan)):
        if not plan[i].exact and fade:
            k = min(fade, plan[i].frames)
            plan[i] = replace(plan[i], fade=k)
            plan[i - 1] = replace(plan[i - 1], leadout=k)
    return plan


def crossfade(a: np.ndarray, b: np.ndarray, j: int, k: int) -> np.ndarray:
    """Frame j (0-based) of a k-frame cross-fade from `a` to `b` (RGB uint8, same frame of the
    film dreamed by two segments): weight (j + 1) / (k + 1) on `b`, rounded to uint8."""
    w = np.float32((j + 1) / (k + 1))
    out = (np.float32(1) - w) * a.astype(np.float32) + w * b.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def auto_segment_frames(frames: int, workers: int, cap: int = DEFAULT_SEGMENT_FRAMES) -> int:
    """A segment length for `workers` workers on a film of `frames` frames: the film shared out
    in whole rounds (every worker gets the same number of segments: k·workers segments, k the
    fewest rounds that keep a segment at most `cap` frames), so no worker idles at the end."""
    workers = max(1, workers)
    rounds = math.ceil(frames / (workers * cap))
    return max(MIN_SEGMENT_FRAMES, math.ceil(frames / (workers * rounds)))


# --------------------------------------------------------------------------------- scene cuts

def _warps(video: VideoSettings) -> bool:
    return video.flow in ("dis", "farneback") and video.blend > 0


def scene_cuts(frames: Iterable[np.ndarray], video: VideoSettings, first: int = 0) -> List[int]:
    """Indices of the frames a video render dreams afresh: those whose reliable-flow share (the
    occlusion mask's mean) is below ``video.cut_below``. `frames` are raw RGB uint8 frames
    ``first, first + 1, …`` of the film (frame `first` itself is never reported: it has no
    predecessor here). Computed exactly as the render does (same size, flows and mask)."""
    if not _warps(video) or video.cut_below <= 0:
        return []
    est = FlowEstimator(video.flow, max_side=video.flow_max_side)
    cuts, prev = [], None
    for i, rgb in enumerate(frames, start=first):
        raw = resize_to_max_side(rgb, video.max_side) if video.max_side else rgb
        gray = est.gray(raw)  # once per frame, as the render's read-ahead
        if prev is not None:
            flows = estimate_flows(est, gray, prev)
            motion = Motion(flows.backward, flows.forward, raw.shape[:2], torch.device("cpu"))
            if motion.reliable_share() < video.cut_below:
                cuts.append(i)
        prev = gray
    return cuts


def carries(video: VideoSettings) -> bool:
    """Whether a dream carries from frame to frame under `video` (else every seam is exact)."""
    return video.flow != "none"


# --------------------------------------------------------------------------------- seam quality

def step_errors(input_frames: Sequence[np.ndarray], output_frames: Sequence[np.ndarray],
                est: Optional[FlowEstimator] = None) -> List[float]:
    """E_warp of each consecutive pair (t, t+1) of `output_frames` (flow on `input_frames`, as in
    :func:`~dreamvid.temporal.metrics.temporal_stats`); NaN for a pair with no reliable pixel."""
    est = est or FlowEstimator("dis", "medium")
    out = []
    for t in range(len(output_frames) - 1):
        s = temporal_stats(input_frames[t:t + 2], output_frames[t:t + 2], est)
        out.append(s.e_warp_output if s.pairs else float("nan"))
    return out


def seam_ratio(errors: Sequence[float], seams: Iterable[int]) -> List[float]:
    """For each seam frame s (first kept frame of a segment), E_warp of the pair (s − 1, s) over
    the median step's (pairs not at a seam, NaNs skipped). `errors[t]` is the pair (t, t + 1),
    frames counted from the first frame of `errors`."""
    seams = list(seams)
    at = {s - 1 for s in seams}
    rest = [e for t, e in enumerate(errors) if t not in at and not math.isnan(e)]
    median = float(np.median(rest)) if rest else float("nan")
    return [errors[s - 1] / median for s in seams]
