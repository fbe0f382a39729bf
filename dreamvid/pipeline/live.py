"""Live dreams: a camera, a stream or a file played in real time, dreamed as fast as the machine allows.

The loop takes the newest frame of the source (io/streams.py: frames that arrived while the
previous one was being dreamed are dropped, never queued), carries the previous dream along the
flow between the two frames actually dreamed (temporal/carry.py, as a video render does), runs a
short ascent, and shows the result (a ``frame`` event; a Recorder when there is an output).
A frame whose flow trusts less than ``cut_below`` of it (the camera swung, the scene changed) or
whose size changed is dreamed afresh. Latency = shown − arrived; frames/s over the last frames.

The knobs (:class:`~dreamvid.config.settings.LiveSettings`) may change while it runs: pass a
:class:`LiveKnobs` and set it from another thread; each frame reads them once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import List, Optional, Union

import numpy as np
import torch

from ..config.settings import DreamSettings, LiveSettings, RunOptions, VideoSettings
from ..core.convert import download, quantize_tensor, unit, upload
from ..core.imageops import resize_to_max_side
from ..engine.dreamer import Dreamer
from ..engine.transforms import carried_dream
from ..errors import Cancelled
from ..io.streams import LiveFrame, LiveSource, SourceLost, open_live
from ..temporal.anchor import REFRESH_BELOW, Anchor
from ..temporal.carry import Carried, carry_along, estimate_flows
from ..temporal.flow import FlowEstimator
from ..temporal.motion import Motion
from .common import build_dreamer
from .events import CancelToken, EventHandler, Reporter
from .recorder import Recorder

#: Frames/s is measured over this many of the latest dreamed frames.
RATE_WINDOW = 8


class LiveKnobs:
    """The live settings in force, changeable from another thread (a web page's sliders)."""

    def __init__(self, live: Optional[LiveSettings] = None):
        self._lock = threading.Lock()
        self._live = (live or LiveSettings()).validate()

    def get(self) -> LiveSettings:
        with self._lock:
            return self._live

    def set(self, **changes) -> LiveSettings:
        """Change some knobs (validated: SettingError and nothing changed when one is out of range)."""
        with self._lock:
            self._live = self._live.replace(**changes).validate()
            return self._live


class LiveCarry:
    """The temporal carry between the frames a live loop dreams (any gap between them).

    ``dream(rgb, index, live)``: RGB uint8 (H, W, 3) at any size → the dreamed frame, uint8
    (h, w, 3) with long side ``live.size``; ``cut`` says whether it was dreamed afresh. The
    carry runs on the dreamer's device (temporal/carry.py), as in a video render."""

    def __init__(self, dreamer: Dreamer, video: Optional[VideoSettings] = None):
        self.dreamer = dreamer
        self.video = (video or VideoSettings()).validate()  # the temporal term's constants
        self.estimator = FlowEstimator("dis")
        self._prev_rgb: Optional[np.ndarray] = None  # the previous frame at its dreamed size (its flows)
        self._prev_raw: Optional[torch.Tensor] = None
        self._prev_dream: Optional[torch.Tensor] = None
        # As a video render: the carried dream is sampled once from an anchor along the composed
        # flows (temporal/anchor.py), so it does not blur away frame after frame.
        self._anchor: Optional[Anchor] = None
        self._since_anchor = 0
        self.cut = True

    def dream(self, rgb: np.ndarray, index: int, live: LiveSettings, on_step=None) -> np.ndarray:
        rgb = np.ascontiguousarray(resize_to_max_side(rgb, live.size))
        raw = upload(rgb, self.dreamer.device)
        settings = self.dreamer.settings
        if live.strength != 1.0:
            settings = settings.replace(step=settings.step * live.strength)
        octaves = min(live.octaves, settings.octaves)
        carried = self._carry(rgb, raw, live)
        self.cut = carried is None
        if carried is None:
            out = self.dreamer.dream_tensor(raw, index=index, octaves=octaves, iterations=live.fresh_iterations,
                                            settings=settings, on_step=on_step)
        elif live.iterations == 0:
            out = carried.target  # no steps: the carried dream itself
        else:
            v = self.video
            term = carried_dream(carried.target, carried.mask, v.temporal_weight, v.temporal_damping,
                                 v.temporal_fresh, v.temporal_band)
            out = self.dreamer.dream_tensor(carried.init, index=index, octaves=octaves, iterations=live.iterations,
                                            settings=settings, extra=term, on_step=on_step)
        saved = quantize_tensor(out)
        self._prev_rgb, self._prev_raw, self._prev_dream = rgb, raw, unit(saved)
        self._next_anchor(index, raw)
        return download(saved)

    def _next_anchor(self, index: int, raw: torch.Tensor) -> None:
        """A new anchor at a cut, every carry_anchor dreamed frames, and where the old one carries
        less than REFRESH_BELOW of the frame (as VideoJob._next_anchor)."""
        every = self.video.carry_anchor
        self._since_anchor += 1
        if not every:
            self._anchor = None
        elif (self.cut or self._anchor is None or self._since_anchor >= every
              or self._anchor.trusted_share < REFRESH_BELOW):
            size = self.estimator.estimation_size(*raw.shape[-2:])
            self._anchor = Anchor(index, self._prev_dream - raw, self.video.carry_kernel, size)
            self._since_anchor = 0

    def _carry(self, rgb: np.ndarray, raw: torch.Tensor, live: LiveSettings) -> Optional[Carried]:
        """The carried init, target and mask from the previous dreamed frame, or None: dream afresh."""
        if self._prev_raw is None or self._prev_raw.shape != raw.shape or live.blend == 0:
            self._anchor = None
            return None
        flows = estimate_flows(self.estimator, rgb, self._prev_rgb)
        motion = Motion(flows.backward, flows.forward, tuple(raw.shape[-2:]), raw.device)
        # None where the camera swung or the scene changed (a new anchor comes with the fresh dream)
        return carry_along(raw, self._prev_raw, self._prev_dream, motion, self._anchor, live.blend, live.cut_below)


@dataclass
class LiveResult:
    """What a live run did."""

    output: Optional[str] = None                      #: the recording (None without one)
    dreamed: List[int] = field(default_factory=list)  #: source indices of the dreamed frames, in order
    shown_at: List[float] = field(default_factory=list)  #: monotonic time each was shown
    latency: List[float] = field(default_factory=list)   #: s from arrival to shown, each
    cuts: int = 0                                     #: frames dreamed afresh (the first included)
    received: int = 0                                 #: frames the source delivered, dropped included
    started: float = 0.0                              #: monotonic time the loop began
    ended: float = 0.0                                #: and ended

    @property
    def dropped(self) -> int:
        """Frames that arrived before the last one dreamed and were not dreamed."""
        return self.dreamed[-1] + 1 - len(self.dreamed) if self.dreamed else 0

    @property
    def fps(self) -> float:
        """Dreamed frames per second over the run (first frame shown → end)."""
        if len(self.shown_at) < 2:
            return 0.0
        return (len(self.shown_at) - 1) / max(1e-9, self.shown_at[-1] - self.shown_at[0])


class LiveStats:
    """Frames/s over the last RATE_WINDOW shown frames."""

    def __init__(self):
        self._times: deque = deque(maxlen=RATE_WINDOW)

    def add(self, t: float) -> float:
        self._times.append(t)
        n = len(self._times)
        return 0.0 if n < 2 else (n - 1) / max(1e-9, self._times[-1] - self._times[0])


def run_live(source: Union[str, LiveSource], output: Optional[str] = None,
             settings: Optional[DreamSettings] = None, live: Optional[LiveSettings] = None,
             run: Optional[RunOptions] = None, dreamer: Optional[Dreamer] = None, *,
             realtime: bool = False, knobs: Optional[LiveKnobs] = None, seconds: Optional[float] = None,
             max_frames: Optional[int] = None, on_event: Optional[EventHandler] = None,
             cancel: Optional[CancelToken] = None, video: Optional[VideoSettings] = None) -> LiveResult:
    """Dream `source` live until it ends, `seconds` pass, `max_frames` are dreamed or `cancel` is set.

    source: a camera index ("0"), a stream URL, a video file (played at its own rate when
    `realtime`, else every frame in turn), or an open LiveSource (a page's pushed frames; it is
    closed at the end). output: a recording (.mp4/.webm/.gif: timing follows the wall clock;
    folder/: each dreamed frame once), or None. live / knobs: the knobs (knobs wins, and may change
    while it runs). video: the carry's constants (the temporal term, the anchor; default
    VideoSettings()). Each shown frame is a ``frame`` event: index = the source's frame number,
    frame = the dream, rate (frames/s) and latency (s). A stop (cancel) ends it normally; a source
    that goes away raises SourceLost after the recording so far is saved. Returns a LiveResult.
    """
    knobs = knobs or LiveKnobs(live)
    run = run or RunOptions()
    reporter = Reporter(on_event, cancel)
    src = source if isinstance(source, LiveSource) else open_live(source, realtime, max_pixels=run.max_pixels)
    result, recorder = LiveResult(), None
    try:
        if output is not None:
            recorder = Recorder(output, src.fps, run.quality)
        carry = LiveCarry(build_dreamer(settings, run, dreamer), video)
        reporter.emit("start", total=max_frames, resumed_at=0, output=output)
        src.start()  # after the model has loaded: a file played in real time starts its clock now
        result.started = time.monotonic()
        _loop(src, carry, knobs, reporter, result, recorder, seconds, max_frames)
    except SourceLost as e:
        if _finish(src, recorder, result):
            raise SourceLost(f"{e} (the recording so far is in {result.output})") from None
        raise
    except BaseException:
        _finish(src, recorder, result)
        raise
    _finish(src, recorder, result)
    reporter.emit("done", output=result.output)
    return result


def _finish(src: LiveSource, recorder: Optional[Recorder], result: LiveResult) -> Optional[str]:
    """Stop the source and publish the recording (result.output; None without one or a frame)."""
    result.ended = time.monotonic()
    result.received = src.received
    src.close()
    return _close_recording(recorder, result)


def _close_recording(recorder: Optional[Recorder], result: LiveResult) -> Optional[str]:
    if recorder is None:
        return None
    if not result.shown_at:
        recorder.abort()
        return None
    result.output = recorder.close(result.ended)
    return result.output


def _loop(src: LiveSource, carry: LiveCarry, knobs: LiveKnobs, reporter: Reporter, result: LiveResult,
          recorder: Optional[Recorder], seconds: Optional[float], max_frames: Optional[int]) -> None:
    stats, last = LiveStats(), -1
    deadline = None if seconds is None else result.started + seconds

    while not reporter.cancelled:
        if max_frames is not None and len(result.dreamed) >= max_frames:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        f: Optional[LiveFrame] = src.next_frame(last, wait_s=0.25 if src.kind == "push" else None)
        if f is None:
            if src.ended:
                break
            continue  # a pushed stream paused: look again (and at cancel)
        try:
            dream = carry.dream(f.rgb, f.index, knobs.get(), lambda: reporter.check("stopped"))
        except Cancelled:
            break
        now = time.monotonic()
        last = f.index
        result.dreamed.append(f.index)
        result.shown_at.append(now)
        result.latency.append(now - f.time)
        result.cuts += carry.cut
        if recorder is not None:
            recorder.show(dream, now)
        reporter.emit("frame", index=f.index, total=max_frames, frame=dream, rate=stats.add(now),
                      latency=now - f.time, dropped=result.dropped)
