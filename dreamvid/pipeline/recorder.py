"""What a live dream showed, written out: a video whose timing follows the wall clock, or a folder.

A video is written at a constant rate: output frame k shows the dream that was on screen at
``t0 + k / fps`` (t0 = when the first dream was shown), so a dream stays in the video for as long
as it was shown and the frames the live loop dropped are not in it. A folder gets each dreamed
frame once (frame_000001.png, ...). Either is written under a temporary name and published by
close(): a run that stops, or whose camera goes away, keeps the recording so far; one that fails
before its first frame leaves an existing file of that name untouched.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import cv2
import numpy as np

from ..io.sinks import FrameSink, open_sink, output_kind


class Recorder:
    """Frames shown at wall-clock times → `path` (.mp4, .webm, .gif or folder/) at `fps`.

    ``show(rgb, t)`` when a frame (H, W, 3) uint8 goes on screen at monotonic time t; ``close(t)``
    at the end. Frames whose size differs from the first are resized to it (a size knob moved)."""

    def __init__(self, path: str, fps: Fraction, quality: Optional[int] = None):
        self.path, self.fps, self.quality = path, Fraction(fps), quality
        self.kind = output_kind(path)  # an unknown extension fails before anything runs
        self._sink: Optional[FrameSink] = None
        self._current: Optional[np.ndarray] = None
        self._t0 = 0.0
        self.slots = 0     # video frames written
        self.shown = 0     # dreams shown

    def _fit(self, rgb: np.ndarray) -> np.ndarray:
        s = self._sink
        if rgb.shape[:2] == (s.height, s.width):
            return rgb
        return cv2.resize(rgb, (s.width, s.height), interpolation=cv2.INTER_AREA)

    def _fill_to(self, t: float) -> None:
        """Write the current dream into every slot that starts before time t."""
        due = math.ceil((t - self._t0) * float(self.fps) - 1e-9)
        while self.slots < due:
            self._sink.write(self._current)
            self.slots += 1

    def show(self, rgb: np.ndarray, t: float) -> None:
        if self._sink is None:
            h, w = rgb.shape[:2]
            self._sink = open_sink(self.path, self.fps, w, h, quality=self.quality)
            self._t0 = t
        rgb = self._fit(rgb)
        if self.kind == "folder":
            self._sink.write(rgb)
        else:
            self._fill_to(t)
        self._current = rgb
        self.shown += 1

    def close(self, t: float) -> Optional[str]:
        """Publish what was recorded (the last dream held until t); the path, or None if nothing was shown."""
        if self._sink is None:
            return None
        if self.kind != "folder":
            self._fill_to(max(t, self._t0 + self.slots / float(self.fps)))
            if self.slots == 0:  # closed the instant the first dream was shown
                self._sink.write(self._current)
                self.slots += 1
        self._sink.close()
        return self.path

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.abort()
