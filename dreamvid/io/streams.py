"""Live sources: a camera, a stream URL, a video file played in real time, or frames pushed in.

A live source is read in its own thread and holds only the newest frame: a consumer slower than
the source gets the latest frame when it asks and the ones in between are dropped, never queued,
so latency stays bounded. Every frame is RGB uint8 (H, W, 3) with its index (the source's own
count, so gaps show the drops) and the monotonic time it arrived.

    camera   an index, "0" → cv2.VideoCapture(0)
    url      rtsp://, http(s)://, udp://, ... opened by OpenCV's FFmpeg backend with a timeout
    file     played at its own frame rate against the wall clock when ``realtime``; else every
             frame is delivered in order, each when the consumer asks for it (nothing dropped)
    push     frames handed in by the caller (a web page's camera stream): :meth:`LiveSource.push`
"""

from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from typing import NamedTuple, Optional

import cv2
import numpy as np

from ..config.settings import LIVE_TIMEOUT_S, MAX_PIXELS
from ..errors import DreamvidError

#: The rate assumed for a camera or stream that does not say (frames/s).
DEFAULT_LIVE_FPS = Fraction(30)


class LiveFrame(NamedTuple):
    """One frame of a live source."""

    rgb: np.ndarray   #: (H, W, 3) uint8
    index: int        #: the source's frame number (0-based; a gap = frames dropped)
    time: float       #: time.monotonic() when it arrived (a file played in real time: when it was due)


class SourceLost(DreamvidError):
    """A camera or stream stopped sending frames while it was being read."""


def is_url(spec: str) -> bool:
    return "://" in spec


class LiveSource:
    """The newest frame of a camera, URL, file or pushed stream (see the module doc).

    Open with :func:`open_live`. ``next_frame(after)`` waits for a frame newer than index `after`;
    None once the source has ended (a file's end, :meth:`close`); :class:`SourceLost` when a
    camera or stream stops answering. ``fps`` is the source's nominal rate."""

    def __init__(self, name: str, fps: Fraction, kind: str, timeout_s: float = LIVE_TIMEOUT_S):
        self.name, self.fps, self.kind, self.timeout_s = name, fps, kind, timeout_s
        self._cond = threading.Condition()
        self._latest: Optional[LiveFrame] = None
        self._ended = False
        self._error: Optional[DreamvidError] = None
        self._taken = -1          # the newest index handed out (a file not in real time waits for it)
        self._thread: Optional[threading.Thread] = None
        self._cap = None
        self._realtime = False
        self.received = 0          # frames that arrived (dropped ones included)

    # -- producer side ------------------------------------------------------------------------

    def push(self, rgb: np.ndarray, when: Optional[float] = None) -> int:
        """Hand in the next frame (a push source); returns its index. Older unread frames are dropped."""
        with self._cond:
            index = self._latest.index + 1 if self._latest is not None else 0
            self._latest = LiveFrame(np.ascontiguousarray(rgb), index, time.monotonic() if when is None else when)
            self.received += 1
            self._cond.notify_all()
            return index

    def _end(self, error: Optional[DreamvidError] = None) -> None:
        with self._cond:
            self._ended, self._error = True, error
            self._cond.notify_all()

    def start(self) -> "LiveSource":
        """Begin reading (a file played in real time starts its clock now); no-op when started or pushed."""
        if self._cap is not None and self._thread is None:
            self._thread = threading.Thread(target=self._read, args=(self._realtime,), name=f"live {self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def _read(self, realtime: bool) -> None:
        cap, t0, index = self._cap, None, 0
        try:
            while not self._ended:
                if self.kind == "file" and not realtime:
                    with self._cond:  # every frame, each when the consumer has taken the one before
                        while not self._ended and self._latest is not None and self._taken < self._latest.index:
                            self._cond.wait(0.5)
                    if self._ended:
                        break
                ok, bgr = cap.read()
                now = time.monotonic()
                if not ok or bgr is None:
                    if self.kind == "file":
                        self._end()
                    else:
                        self._end(SourceLost(f"{self.name} stopped sending frames after {self.received} "
                                             "frames: check that it is connected, then start again"))
                    return
                when = now
                if self.kind == "file" and realtime:
                    t0 = now if t0 is None else t0
                    when = t0 + index / float(self.fps)  # frame `index` is due then
                    if when > now:
                        time.sleep(when - now)
                self.push(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), when)
                index += 1
        except Exception as e:  # a decoder failure must reach the consumer, not die in this thread
            self._end(SourceLost(f"{self.name} failed while reading: {e}"))

    # -- consumer side ------------------------------------------------------------------------

    def next_frame(self, after: int = -1, wait_s: Optional[float] = None) -> Optional[LiveFrame]:
        """The newest frame with index > `after`, waiting for one; None when the source has ended.

        Raises SourceLost when a camera or stream sent nothing for `timeout_s` (or failed).
        wait_s: give up after this long and return None (the source goes on; check :attr:`ended`)."""
        limit = self.timeout_s if wait_s is None else wait_s
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                f = self._latest
                if f is not None and f.index > after:
                    self._taken = f.index
                    self._cond.notify_all()
                    return f
                if self._ended:
                    if self._error is not None:
                        raise self._error
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    if wait_s is not None or self.kind in ("file", "push"):
                        return None
                    self._ended = True
                    raise SourceLost(f"{self.name} sent no frame for {limit:g} s: check that it is "
                                     "connected and sending, then start again")
                self._cond.wait(min(left, 0.5))

    @property
    def ended(self) -> bool:
        return self._ended

    def close(self) -> None:
        """Stop reading (idempotent); the reader thread ends and the device is released."""
        self._end(self._error)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.timeout_s + 1)
            if self._thread.is_alive():
                return  # stuck in a read (a hung camera): releasing under it could crash OpenCV
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> "LiveSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def push_source(name: str = "the page's camera", fps: Fraction = DEFAULT_LIVE_FPS) -> LiveSource:
    """A source whose frames the caller pushes in (:meth:`LiveSource.push`); close() ends it."""
    return LiveSource(name, fps, "push")


def open_live(spec: str, realtime: bool = False, timeout_s: float = LIVE_TIMEOUT_S,
              max_pixels: int = MAX_PIXELS) -> LiveSource:
    """Open a camera index ("0"), a stream URL or a video file (see the module doc); start() it to read.

    A camera that is not there, a URL that does not answer within `timeout_s`, or a file that does
    not decode: DreamvidError, one line."""
    spec = str(spec).strip()
    if spec.isdigit():
        kind, name = "camera", f"camera {spec}"
        cap = cv2.VideoCapture(int(spec))
    elif is_url(spec):
        kind, name = "url", spec
        ms = int(timeout_s * 1000)
        cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        kind, name = "file", spec
        if not os.path.isfile(spec):
            raise DreamvidError(f"no such file: {spec} (give a video file, a camera index like 0, "
                                "or a stream URL)")
        cap = cv2.VideoCapture(spec)
    if not cap.isOpened():
        cap.release()
        if kind == "camera":
            raise DreamvidError(f"no {name}: no camera answers at that index (is one connected, and "
                                "free? try another index)")
        if kind == "url":
            raise DreamvidError(f"the stream {spec} did not answer within {timeout_s:g} s: check the "
                                "address and that it is sending")
        raise DreamvidError(f"{spec} is not a video OpenCV can decode: give a video file")
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if w * h > max_pixels:
        cap.release()
        raise DreamvidError(f"{name} sends {w}x{h} frames, past the budget of {max_pixels} pixels: "
                            "lower its resolution or raise --max-pixels")
    rate = cap.get(cv2.CAP_PROP_FPS)
    fps = Fraction(rate).limit_denominator(1001) if 0 < rate < 1000 else DEFAULT_LIVE_FPS
    source = LiveSource(name, fps, kind, timeout_s)
    source._cap, source._realtime = cap, realtime
    return source
