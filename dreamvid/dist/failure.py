"""Attempts: one segment given to one worker, how a stall is seen, how many failures stop a render."""

from __future__ import annotations

import time

from ..pipeline.segments import Segment
from ..store.checkpoint import Checkpoint

#: A segment whose worker died or stalled this many times stops the render (one line says so).
MAX_ATTEMPTS = 3
#: Seconds without a newly saved frame after which a segment is handed to another worker.
STALL_S = 600.0


class Attempt:
    """One segment given to one worker: which attempt, its folder, and when it last saved a frame."""

    def __init__(self, actor, seg: Segment, attempt: int, folder: str):
        self.actor, self.seg, self.attempt, self.folder = actor, seg, attempt, folder
        self.done, self.at, self.looked = Checkpoint.recorded_done(folder), time.monotonic(), time.monotonic()

    def stalled(self, limit: float) -> bool:
        """True when no frame was saved for `limit` seconds (the manifest is read once a second)."""
        now = time.monotonic()
        if now - self.looked < 1.0:
            return False
        self.looked = now
        done = Checkpoint.recorded_done(self.folder)
        if done != self.done:
            self.done, self.at = done, now
        return now - self.at > limit
