"""Video renders: source → temporal carry → dream, frame after frame (the job runner does the rest).

Frame t starts from the raw frame plus the previous dream's residual carried along optical flow
(temporal/carry.py, on the dream's device; the flows are estimated ahead on the CPU); the first
frame gets the preset's full schedule, later frames a shorter one. Each finished frame is
quantised to uint8 on the device, saved in the checkpoint and carried *as saved*, so a resumed
render continues from exactly the pixels an uninterrupted one would have had.

A segment (:func:`render_segment`) renders frames [a, b) of a film into its own checkpoint,
starting `warmup` frames earlier: those are dreamed to build up the carried dream, not kept.
Randomness is keyed to the absolute frame index, so a frame never depends on which process
made it. :func:`join_segments` encodes one output from the segments' checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..config.settings import MAX_PIXELS, DreamSettings, MaskSettings, RunOptions, VideoSettings
from ..config.vary import FrameSettings, Varying
from ..core.convert import download, quantize_tensor, unit, upload
from ..core.imageops import resize_to_max_side
from ..engine.dreamer import Dreamer
from ..engine.transforms import carried_dream
from ..errors import DreamvidError, SettingError
from ..io.sinks import AudioSpec, output_kind
from ..io.sources import FrameSource, open_source
from ..store.checkpoint import Checkpoint, describe_differences
from ..store.identity import input_fingerprint
from ..temporal.anchor import REFRESH_BELOW, Anchor
from ..temporal.carry import Carried, carry_along, carry_still
from ..temporal.flow import FlowEstimator
from ..temporal.motion import Motion
from . import ahead
from .common import build_dreamer, frame_settings, per_frame_kwargs
from .events import EventHandler, CancelToken, Reporter
from .job import FrameJob, encode_frames, run_job
from .mask import FrameMask, MaskInput, limit, open_mask


def next_schedule(settings: DreamSettings, video: VideoSettings):
    """(octaves, iterations) for frames after the first: they start from a carried dream."""
    iterations = video.next_iterations
    if iterations is None:
        iterations = max(1, math.ceil(settings.iterations * video.next_iteration_ratio))
    octaves = min(video.next_octaves or settings.octaves, settings.octaves)
    return octaves, iterations


def source_identity(source: FrameSource, spec: str) -> dict:
    """What identifies a render's input in its checkpoint."""
    return {**input_fingerprint(spec, getattr(source, "files", None)), "frames": source.num_frames,
            "fps": str(source.fps), "size": [source.width, source.height]}


class VideoJob(FrameJob):
    """Frames keep_from … end − 1 of `source`, dreamed from frame `first` (≤ keep_from) on.

    Checkpoint frame k is input frame keep_from + k; frames first … keep_from − 1 are the
    warm-up, dreamed before checkpoint frame 0 and not kept. Frames coast_from … end − 1 (a
    segment's lead-out) are not dreamed but coasted: the previous frame's dream carried along the
    flow, undecayed (the temporal term's target), at the cost of a flow.

    The carry's state (the previous raw frame and dream, the anchor) is on the dreamer's device:
    raw frames are uploaded as uint8, each dream is quantised there and downloaded once (uint8) for
    the checkpoint and the output.
    """

    def __init__(self, source: FrameSource, spec: str, dreamer: Dreamer, video: VideoSettings,
                 frames: FrameSettings, first: int, keep_from: int, end: int, audio: bool,
                 coast_from: Optional[int] = None, overlap: bool = True, mask: Optional[FrameMask] = None):
        self.source, self.spec, self.dreamer, self.video, self.frames = source, spec, dreamer, video, frames
        self.mask = mask  # where to dream (pipeline/mask.py), or None: everywhere
        self.first, self.keep_from, self.end = first, keep_from, end
        self.coast_from = end if coast_from is None else coast_from
        self.total, self.fps = end - keep_from, source.fps
        self._audio = audio
        warps = video.flow in ("dis", "farneback") and (video.blend > 0 or "blend" in frames.vary)
        self.estimator = FlowEstimator(video.flow, max_side=video.flow_max_side) if warps else None
        # Raw frames and their flows need no dream: they are decoded and estimated ahead, in
        # threads, while earlier frames are dreamed (pipeline/ahead.py; OpenCV, ffmpeg and torch
        # release the GIL). With the dream on a GPU that takes them off the loop's path.
        self._overlap = overlap
        self._inputs: Optional[ahead.Lookahead] = None
        self._raw = self._flows = self._prev_raw = self._prev_dream = None
        self._next = first
        # The anchor the carried dream is sampled from (temporal/anchor.py; None when it is off).
        self.anchor_every = video.carry_anchor if self.estimator is not None else 0
        self._anchor: Optional[Anchor] = None
        # Saved frames a resume reads: the last one, or those back to the latest anchor.
        self.carry_frames = max(1, self.anchor_every)

    def identity(self) -> dict:
        ident = {"input": source_identity(self.source, self.spec), "dream": self.dreamer.identity,
                 "video": self.video.to_dict()}
        if not self.frames.constant:
            ident["vary"] = self.frames.identity(range(self.video.start, self.film_end()))
        if self.mask is not None:
            ident["mask"] = self.mask.identity()
        if self.keep_from != self.video.start or self.first != self.video.start or self.end != self.film_end():
            ident["segment"] = {"first": self.first, "keep_from": self.keep_from, "end": self.end}
            if self.coast_from < self.end:
                ident["segment"]["coast_from"] = self.coast_from
        return ident

    def film_end(self) -> int:
        return self.source.num_frames if self.video.end is None else min(self.video.end, self.source.num_frames)

    def position(self, k: int) -> str:
        return f"frame {self.keep_from + k} of {self.end}"

    def audio(self) -> Optional[AudioSpec]:
        if not (self._audio and self.source.has_audio):
            return None
        return AudioSpec(self.source.path, float(self.keep_from / self.fps), float(self.total / self.fps))

    # -- frames ----------------------------------------------------------------------------

    def _load_raw(self, rgb: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """A decoded frame at the render's size, RGB uint8 (the flows are estimated on it; the
        loop uploads it to the device)."""
        if rgb is None:
            return None
        if self.video.max_side:
            rgb = resize_to_max_side(rgb, self.video.max_side)
        return np.ascontiguousarray(rgb)

    def _upload(self, rgb: np.ndarray) -> torch.Tensor:
        return upload(rgb, self.dreamer.device)

    def resume(self, ckpt: Checkpoint, done: int) -> None:
        self.close()
        self._next = self.keep_from + done if done else self.first
        start = self._next
        if done:  # the carry starts from the raw frame before, or from the anchor's frame
            start = self._anchor_frame() if self.anchor_every else self._next - 1
        self._inputs = ahead.Lookahead(self.source.frames(start, self.end), self._load_raw, self.estimator,
                                       self._overlap, then=self._motion)
        if done and self.anchor_every:
            self._replay_anchor(ckpt, start)
        elif done:  # that raw frame, and its dream
            raw, _ = next(self._inputs, (None, None))
            self._prev_raw = self._upload(raw)
            self._prev_dream = self._upload(ckpt.load(done - 1))
        self._raw, self._flows = next(self._inputs, (None, None))

    def make(self, k: int, on_step) -> np.ndarray:
        target = self.keep_from + k
        while True:  # the warm-up frames, then frame k
            i = self._next
            frame = self._dream(i, on_step)
            if i == target:
                return frame

    def _dream(self, i: int, on_step) -> np.ndarray:
        if self._raw is None:
            raise DreamvidError(f"{self.source.path} ended early: decoded fewer frames than its "
                                f"{self.source.num_frames} announced")
        raw = self._upload(self._raw)
        # Frame i+1 and its flows (decoded and estimated ahead, or now with overlap off).
        nxt, nxt_flows = next(self._inputs, (None, None)) if i + 1 < self.end else (None, None)
        dream_s, video_s = self.frames.at(i)
        coast = i >= self.coast_from
        carried = self._carry(raw, video_s, target=coast or self._term_on(video_s))
        kw = per_frame_kwargs(self.frames, dream_s)
        m = None
        if self.mask is not None:  # the dream and the carried residual are weighted by the mask
            m = kw["mask"] = self._upload_mask(self.mask.at(i, raw.shape[-2:], self.mask.strength(self.frames, i)))
            if carried is not None:
                carried = carried._replace(init=limit(carried.init, raw, m), target=None if carried.target is None
                                           else limit(carried.target, raw, m))
        if carried is not None and coast and carried.motion is not None:
            out = carried.target
        elif carried is None:
            out = self.dreamer.dream_tensor(raw, index=i, on_step=on_step, **kw)
        else:
            octaves, iterations = next_schedule(dream_s, video_s)
            term = self._temporal_term(carried, video_s)
            if term is not None:
                kw["extra"] = term
            out = self.dreamer.dream_tensor(carried.init, index=i, octaves=octaves, iterations=iterations,
                                            fine_iterations=video_s.next_fine_iterations, on_step=on_step, **kw)
        saved = quantize_tensor(out)  # the frame as saved: what the next one carries from
        self._prev_raw, self._prev_dream = raw, unit(saved)
        followed = carried is not None and carried.motion is not None
        self._anchor = self._next_anchor(i, self._anchor if followed else None, raw, self._prev_dream)
        self._raw, self._flows, self._next = nxt, nxt_flows, i + 1
        return download(saved)

    def _upload_mask(self, m: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(m, np.float32))[None, None].to(self.dreamer.device)

    def _motion(self, flows, raw: np.ndarray, worker: bool) -> Motion:
        """The motion of frame `raw` (RGB uint8) back to the one before, on the dreamer's device
        (made by the read-ahead, `worker`: in one of its flow threads). On a CPU its mask and
        frame-sized fields are computed in the worker too, off the frame loop; on a GPU they wait
        for the loop (cheap there, and another thread's kernels could break the dream's CUDA-graph
        capture). The values are the same either way. (Not torch.set_num_threads(1) in the
        worker: ATen keeps the last value set in a process-wide default that every thread started
        later takes, so it would leak into the next render's dream.)"""
        device = self.dreamer.device
        motion = Motion(flows.backward, flows.forward, raw.shape[:2], device)
        if worker and device.type == "cpu":
            motion.prepare()
        return motion

    def _carry(self, raw: torch.Tensor, video_s: VideoSettings, target: bool) -> Optional[Carried]:
        """What frame i starts from, or None for a frame dreamed afresh (the first, a scene cut,
        --flow none). With an anchor, the carried residual is sampled from it (temporal/anchor.py);
        else the previous dream's is warped one step. `target`: make the undecayed target too (the
        temporal term's, or a coasted frame's)."""
        if self._prev_dream is None or video_s.flow == "none":
            return None
        motion = ahead.result(self._flows)
        if motion is None or video_s.blend == 0:
            return carry_still(raw, self._prev_raw, self._prev_dream, video_s.blend if motion is None else 0.0)
        return carry_along(raw, self._prev_raw, self._prev_dream, motion, self._anchor, video_s.blend,
                           video_s.cut_below, target)  # None at a scene cut: dreamed like a first frame

    def _next_anchor(self, i: int, anchor: Optional[Anchor], raw: torch.Tensor, dream: torch.Tensor):
        """The anchor after frame i: `anchor` (followed up to frame i; None where frame i carried
        nothing along a flow), or frame i itself at every anchor_every-th frame of the film, at the
        render's first kept frame (a resume can read it back), where nothing was carried, and
        where the old anchor carries less than REFRESH_BELOW of the frame."""
        if not self.anchor_every:
            return None
        if (anchor is None or i % self.anchor_every == 0 or i == self.keep_from
                or anchor.trusted_share < REFRESH_BELOW):
            h, w = raw.shape[-2:]
            return Anchor(i, dream - raw, self.video.carry_kernel, self.estimator.estimation_size(h, w))
        return anchor

    def _anchor_frame(self) -> int:
        """Where a resume before frame self._next rebuilds the anchor from: the last frame that
        was an anchor whatever came before it (every anchor_every-th of the film, or the first kept)."""
        return max(self.keep_from, (self._next - 1) // self.anchor_every * self.anchor_every)

    def _replay_anchor(self, ckpt: Checkpoint, m: int) -> None:
        """The anchor (and the previous raw frame and dream) before frame self._next, rebuilt from
        the saved frames m … self._next − 1 along the same flows as the render (self._inputs, from
        frame m on): the anchor depends on the raw frames and saved dreams only, so the resume is exact."""
        anchor = None
        for j in range(m, self._next):
            raw_u8, flows = next(self._inputs, (None, None))
            raw, dream = self._upload(raw_u8), self._upload(ckpt.load(j - self.keep_from))
            if j > m:
                video_s = self.frames.at(j)[1]
                anchor = None if video_s.flow == "none" or video_s.blend == 0 else anchor
                if anchor is not None:
                    motion = ahead.result(flows)
                    if motion.reliable_share() < video_s.cut_below:
                        anchor = None  # a scene cut, dreamed afresh
                    else:
                        anchor.follow(motion)
            anchor = self._next_anchor(j, anchor, raw, dream)
            self._prev_raw, self._prev_dream = raw, dream
        self._anchor = anchor

    @staticmethod
    def _term_on(video_s: VideoSettings) -> bool:
        return bool(video_s.temporal_weight or video_s.temporal_damping or video_s.temporal_fresh)

    def _temporal_term(self, carried: Carried, video_s: VideoSettings):
        """The step transforms that hold frame i to the previous dream where the flow is reliable
        (engine.transforms.carried_dream), or None when the settings switch the term off."""
        if carried.motion is None or carried.target is None or not self._term_on(video_s):
            return None
        return carried_dream(carried.target, carried.mask, video_s.temporal_weight, video_s.temporal_damping,
                             video_s.temporal_fresh, video_s.temporal_band)

    streamable = True  # frames play in the order they are made

    def close(self) -> None:
        if self._inputs is not None:
            self._inputs.close()
            self._inputs = None


# ------------------------------------------------------------------------------------------ API

def open_film(input: str, video: VideoSettings, max_pixels: int = MAX_PIXELS):
    """(source, start, end) of a render of `input` over video.start … video.end, checked."""
    source = open_source(input, video.fps, max_pixels)
    if video.fps is not None and source.is_video:
        raise SettingError("fps", video.fps, f"sets the rate of frame folders and globs; the video {input} "
                           f"keeps its own ({source.fps} fps): leave it out")
    if video.start >= source.num_frames:
        raise SettingError("start", video.start, f"is past the end of {input}, which has "
                           f"{source.num_frames} frames (0..{source.num_frames - 1})")
    end = source.num_frames if video.end is None else min(video.end, source.num_frames)
    return source, video.start, end


def video_job(input, settings, video, run, vary, dreamer, first=None, keep_from=None, end=None, coast_from=None,
         mask=None, mask_settings=None):
    """(VideoJob, RunOptions) of a render of `input` (what dream_video and render_segment run;
    arguments as theirs): the input and mask opened and checked, the dreamer built (or the given one)."""
    video = (video or VideoSettings()).validate()
    run = run or RunOptions()
    source, start, film_end = open_film(input, video, run.max_pixels)
    fmask = open_mask(mask, mask_settings, source, (start, film_end), run.max_pixels)  # before the model loads
    if fmask is None and vary and "mask_strength" in vary:
        raise SettingError("mask_strength", getattr(vary["mask_strength"], "text", None),
                           "varies the mask's strength: give a mask")
    dreamer = build_dreamer(settings, run, dreamer)
    keep_from = start if keep_from is None else keep_from
    first = keep_from if first is None else first
    end = film_end if end is None else end
    fs = frame_settings(dreamer, video, vary, film_end - start, source.fps,
                        source.path if source.has_audio else None, film_end)
    fs.check(range(start, film_end))
    return VideoJob(source, input, dreamer, video, fs, first, keep_from, end, run.audio, coast_from,
                    overlap=run.overlap, mask=fmask), run


def dream_video(input: str, output: str, settings: Optional[DreamSettings] = None,
                video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None,
                dreamer: Optional[Dreamer] = None, *, vary: Optional[Mapping[str, Varying]] = None,
                on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None,
                mask: Optional[MaskInput] = None, mask_settings: Optional[MaskSettings] = None) -> str:
    """Dream a video file, frame folder or glob into `output` (.mp4, .webm, .gif or folder/).

    settings: the dream (default preset); video: temporal carry, range, size; run: device,
    weights, checkpointing. vary: settings that change per frame (see config.vary), keyed by field.
    on_event: called with each :class:`~dreamvid.pipeline.events.Event`; cancel: anything with
    ``is_set()``, checked between ascent steps. Resumes from the checkpoint beside the output when
    the same render was stopped before. Returns the output path. Bad input raises DreamvidError
    (SettingError for a bad setting); a stop raises Cancelled after the checkpoint is consistent.
    mask: where to dream (pipeline/mask.py: an image, a video or frame folder with one mask per
    frame, or an array; white = dream, black = keep the input); mask_settings: its feather,
    inversion and strength (``mask_strength`` may vary). The mask is part of the checkpoint.
    """
    output_kind(output)  # an unknown extension fails before any work
    job, run = video_job(input, settings, video, run, vary, dreamer, mask=mask, mask_settings=mask_settings)
    reporter = Reporter(on_event, cancel)
    report_early_end(job.source, start=job.video.start, end=job.end, reporter=reporter)
    return run_job(job, output, run, reporter)


def report_early_end(source: FrameSource, start: int, end: int, reporter: Reporter) -> None:
    """A message when the render runs to where a truncated input stops decoding, before the frame
    count its container promised: ``input ended at frame N of M: rendered K``."""
    if source.promised_frames is not None and end == source.num_frames:
        reporter.message(f"input ended at frame {source.num_frames} of {source.promised_frames}: "
                         f"rendered {end - start}")


def render_segment(input: str, folder: str, start: int, end: int, warmup: int = 0,
                   settings: Optional[DreamSettings] = None, video: Optional[VideoSettings] = None,
                   run: Optional[RunOptions] = None, dreamer: Optional[Dreamer] = None, *,
                   vary: Optional[Mapping[str, Varying]] = None, on_event: Optional[EventHandler] = None,
                   cancel: Optional[CancelToken] = None, chunks: Optional[Tuple[str, range]] = None,
                   leadout: int = 0, mask: Optional[MaskInput] = None,
                   mask_settings: Optional[MaskSettings] = None) -> str:
    """Render frames [start, end) of the film `input` into the checkpoint folder `folder`.

    The render begins `warmup` frames before `start` (never before the film's first frame,
    video.start): those frames are dreamed to carry the dream into `start` and are not kept.
    `video` describes the whole film (its start/end and temporal settings), as for dream_video;
    a segment's frames equal those a dream_video of the same range and warm-up gives (with an
    anchored carry, where that render also takes an anchor at `start`: a multiple of
    video.carry_anchor, since a segment's first kept frame is always one). It resumes
    exactly from its own checkpoint. Returns `folder`; join the segments with join_segments.
    chunks=(kind, span): encode the segment's frames `span` (0 = frame `start`) into chunks of
    ``run.chunk_frames`` as they are done, "mp4" or "webm" at ``run.quality`` (a distributed
    render's driver joins them without re-encoding); the other frames stay PNGs.
    leadout: the last `leadout` frames of the range are coasted, not dreamed: the dream of frame
    end − leadout − 1 carried on along the flow (what the next segment's cross-fade starts from).
    mask, mask_settings: as for dream_video (the whole film's mask).
    """
    v = (video or VideoSettings()).validate()
    if warmup < 0:
        raise SettingError("warmup", warmup, "must be >= 0")
    if not v.start <= start < end or (v.end is not None and end > v.end):
        raise SettingError("start", start, f"..{end} is not a range of frames inside the film "
                           f"({v.start}..{v.end if v.end is not None else 'its end'})")
    if not isinstance(leadout, int) or not 0 <= leadout < end - start:
        raise SettingError("leadout", leadout, f"must be in [0, {end - start}): frames coasted at the end")
    first = max(v.start, start - warmup)
    job, run = video_job(input, settings, v, run, vary, dreamer, first, start, end, end - leadout, mask, mask_settings)
    if end > job.film_end():
        raise SettingError("end", end, f"is past the end of {input} ({job.film_end()} frames)")
    run = dataclasses.replace(run, checkpoint_dir=None)  # the folder is given
    run_job(job, _folder_output(folder), run, Reporter(on_event, cancel), encode=False, segment_chunks=chunks)
    return folder


def _folder_output(folder: str) -> str:
    """The output name whose checkpoint folder is `folder` (``x.dreamvid`` ↔ ``x``)."""
    if not folder.endswith(".dreamvid"):
        raise SettingError("folder", folder, "must end in '.dreamvid' (a segment's checkpoint folder)")
    return folder[: -len(".dreamvid")]


def join_segments(input: str, output: str, folders: Sequence[str], video: Optional[VideoSettings] = None,
                  run: Optional[RunOptions] = None, *, on_event: Optional[EventHandler] = None,
                  cancel: Optional[CancelToken] = None) -> str:
    """Encode `output` from segment checkpoints (in film order) of `input`: one file, the audio
    of the whole range muxed once, the input's exact fps. Every segment must be complete."""
    video = (video or VideoSettings()).validate()
    run = run or RunOptions()
    output_kind(output)
    source, start, end = open_film(input, video)
    reporter = Reporter(on_event, cancel)
    ckpts: List[Checkpoint] = []
    try:
        for f in folders:
            ckpts.append(Checkpoint.open_finished(f))
        _check_segments(ckpts, source_identity(source, input), start, end)
    except BaseException:
        for c in ckpts:
            c.close()
        raise
    total = end - start
    audio = None
    if run.audio and source.has_audio:
        audio = AudioSpec(source.path, float(start / source.fps), float(total / source.fps))
    reporter.emit("start", total=total, resumed_at=0, output=output)
    try:
        encode_frames(_Concat(ckpts), range(total), output, source.fps, audio, run, reporter)
    finally:
        for c in ckpts:
            c.close()
    reporter.emit("done", output=output)
    return output


def _check_segments(ckpts: Sequence[Checkpoint], source_id: dict, start: int, end: int) -> None:
    """The segments are of one render of this input and cover start … end − 1 in order."""
    if not ckpts:
        raise DreamvidError("no segments to join")
    base, expect = None, start
    for c in ckpts:
        if c.chunk_frames:
            raise DreamvidError(f"the segment {c.folder} was streamed into chunks (a distributed render's): "
                                "its driver joins it; join_segments joins segments rendered without chunks")
        ident = {k: v for k, v in c.identity.items() if k not in ("segment", "dreamvid")}
        seg = c.identity.get("segment") or {"keep_from": start, "end": start + c.total}
        if ident.get("input") != json.loads(json.dumps(source_id)):
            raise DreamvidError(f"the segment {c.folder} was rendered from another input "
                                f"({describe_differences(ident.get('input') or {}, source_id)})")
        if base is None:
            base = ident
        elif ident != base:
            raise DreamvidError(f"the segment {c.folder} is from a different render "
                                f"({describe_differences(base, ident)}): join segments of one render")
        if seg["keep_from"] != expect:
            raise DreamvidError(f"the segment {c.folder} starts at frame {seg['keep_from']}, expected "
                                f"{expect}: give every segment, in film order")
        expect = seg["end"]
    if expect != end:
        raise DreamvidError(f"the segments end at frame {expect}, the film at {end}: give every segment")


class _Concat:
    """Several finished checkpoints read as one (what encode_frames needs of a Checkpoint)."""

    def __init__(self, ckpts: Sequence[Checkpoint]):
        self.ckpts = list(ckpts)
        self.folder = ", ".join(c.folder for c in ckpts)

    def frames(self, order):
        for c in self.ckpts:
            yield from c.frames(range(c.total))

    def frame_path(self, index: int) -> str:
        """Frame `index` of the whole (a folder output links the segments' PNGs)."""
        for c in self.ckpts:
            if index < c.total:
                return c.frame_path(index)
            index -= c.total
        raise IndexError(index)
