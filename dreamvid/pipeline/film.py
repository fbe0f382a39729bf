"""A distributed render's film read back from its finished segment checkpoints: each seam that is
not at a scene cut cross-faded from the previous segment's lead-out (pipeline/segments.py). No Ray
here: the driver encodes from it, as a one-process render encodes from its checkpoint."""

from __future__ import annotations

import os
from typing import Sequence, Tuple

from ..errors import DreamvidError
from ..io.sources import open_source
from ..store.checkpoint import Checkpoint, DamagedFrame
from .segments import Segment, crossfade


def segment_frame(ck: Checkpoint, k: int):
    """Frame k of a finished segment checkpoint: its PNG, or decoded from the chunk holding it
    (a streamed segment keeps PNGs only of the frames it did not encode)."""
    frame = ck.load(k)
    if frame is not None or not ck.chunk_frames:
        return frame
    for c in range(ck.chunks):
        span = ck.chunk_range(c)
        if k in span:
            return next(open_source(ck.chunk_path(c)).frames(k - span.start, k - span.start + 1), None)
    return None


class SegmentFilm:
    """The film's frames read from finished segment checkpoints, each seam that is not exact
    cross-faded from the previous segment's lead-out (what encode_frames reads)."""

    def __init__(self, plan: Sequence[Segment], ckpts: Sequence[Checkpoint], scratch: str):
        self.plan, self.ckpts, self.scratch = list(plan), list(ckpts), scratch
        self.folder = os.path.dirname(ckpts[0].folder)
        self.first = plan[0].start

    def _locate(self, p: int) -> Tuple[int, int]:
        i = p + self.first
        for n, seg in enumerate(self.plan):
            if seg.start <= i < seg.end:
                return n, i - seg.start
        raise IndexError(p)

    def _load(self, n: int, k: int):
        frame = self.ckpts[n].load(k)
        if frame is None:
            raise DamagedFrame(f"checkpoint frame {self.ckpts[n].frame_path(k)} is damaged: run the same "
                               "command again to redo it")
        return frame

    def frame(self, p: int):
        n, k = self._locate(p)
        seg = self.plan[n]
        b = self._load(n, k)
        if k >= seg.fade:
            return b
        a = self._load(n - 1, self.plan[n - 1].frames + k)  # the previous segment's lead-out
        return crossfade(a, b, k, seg.fade)

    def frames(self, order):
        for p in order:
            yield self.frame(p)

    def frame_path(self, p: int) -> str:
        """A PNG of frame p (folder outputs link them): the checkpoint's, or a cross-faded one."""
        n, k = self._locate(p)
        if k >= self.plan[n].fade:
            return self.ckpts[n].frame_path(k)
        import cv2
        os.makedirs(self.scratch, exist_ok=True)
        path = os.path.join(self.scratch, f"frame_{p:06d}.png")
        if not cv2.imwrite(path, self.frame(p)[..., ::-1]):
            raise DreamvidError(f"could not write {path}")
        return path
