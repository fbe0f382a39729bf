"""How a render talks to whoever drives it: events out, cancellation in.

A render calls ``on_event(event)`` as it goes; the CLI's progress bars, a web page and a Ray
driver are subscribers. The library itself never prints.

Kinds, in order::

    start     once: total (frames, or ascent steps for an image), resumed_at (frames already in
              the checkpoint), output
    message   any time: text (e.g. "resuming at frame 12 of 50"), for people
    step      images only: index (steps done, 1-based), total, octave, octaves
    frame     after each finished frame: index (0-based within the render), total, frame (the
              finished RGB uint8 (H, W, 3) array, for live previews); a live dream's (pipeline/live.py)
              index is the source's frame number and it adds rate, latency and dropped
    encode    while encoding: index (frames written, 1-based), total
    done      once, at the end: output (the path written)

A batch (pipeline/batch.py) sends ``file`` before each file's own events: index (1-based file
number), total (files), text (the input), output.

``cancel`` is anything with ``is_set()`` (a ``threading.Event`` does). A render checks it between
ascent steps, so it stops within one step, leaves a consistent checkpoint and raises
:class:`~dreamvid.errors.Cancelled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ..errors import Cancelled


@dataclass(frozen=True)
class Event:
    """One thing a render reports. Fields that do not apply to a kind are None."""

    kind: str                         # start | message | step | frame | encode | done | file
    index: Optional[int] = None
    total: Optional[int] = None
    resumed_at: Optional[int] = None
    frame: Optional[np.ndarray] = None  # "frame": the finished RGB uint8 (H, W, 3) frame
    text: Optional[str] = None          # "message"
    output: Optional[str] = None        # "start", "done"
    octave: Optional[int] = None        # "step": 1-based octave of the ascent
    octaves: Optional[int] = None
    rate: Optional[float] = None        # "frame" of a live dream: frames/s over the latest frames
    latency: Optional[float] = None     # "frame" of a live dream: s from the frame's arrival to shown
    dropped: Optional[int] = None       # "frame" of a live dream: source frames not dreamed so far

    def __repr__(self) -> str:  # frames are large: show their shape, not their pixels
        fields = {k: v for k, v in self.__dict__.items() if v is not None and k != "kind"}
        if self.frame is not None:
            fields["frame"] = f"<{'x'.join(map(str, self.frame.shape))} uint8>"
        inner = ", ".join(f"{k}={v!r}" if k != "frame" else f"frame={v}" for k, v in fields.items())
        return f"Event({self.kind!r}, {inner})"


EventHandler = Callable[[Event], Any]


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


class Reporter:
    """What a job uses to emit events and honour cancellation; no-ops when nobody listens."""

    def __init__(self, on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None):
        self._on_event = on_event
        self._cancel = cancel

    def emit(self, kind: str, **fields) -> None:
        if self._on_event is not None:
            self._on_event(Event(kind, **fields))

    def message(self, text: str) -> None:
        self.emit("message", text=text)

    @property
    def cancelled(self) -> bool:
        return self._cancel is not None and bool(self._cancel.is_set())

    def check(self, what: str = "") -> None:
        """Raise Cancelled if cancellation was asked for (`what` says where it stopped)."""
        if self.cancelled:
            raise Cancelled(what or "cancelled")
