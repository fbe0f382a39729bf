"""The run's checkpoint folder on disk: its lock, the plan, and each segment's checkpoint, one
folder per attempt (the fencing of a worker that stalled: see RunFolder.new_attempt)."""

from __future__ import annotations

import json
import os
from typing import List, Optional

from ..core.atomic import TMP_MARK, atomic_write, make_dirs, remove_empty_dirs, remove_path
from ..errors import DreamvidError
from ..pipeline.segments import Segment
from ..store.checkpoint import LOCK, MANIFEST, Checkpoint, lock_folder

PLAN = "plan.json"
SEGMENTS = "segments"
ATTEMPT = ".attempt"  # segments/<name>.attempt: the number of the segment's current attempt


class RunFolder:
    """The run's checkpoint folder, locked for the driver's lifetime (flock; the OS releases it when
    the driver dies, even by kill -9). It holds ``lock``, ``plan.json`` and ``segments/``."""

    def __init__(self, folder: str):
        self.folder = folder
        self.segments = os.path.join(folder, SEGMENTS)
        self._lock_file = None
        self._made: List[str] = []

    def __enter__(self) -> "RunFolder":
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise DreamvidError(f"checkpoint path {self.folder} is a file: move it away or use --checkpoint-dir")
        try:
            self._made = make_dirs(self.folder)
        except OSError as e:
            raise DreamvidError(f"cannot create the checkpoint folder {self.folder} ({e.strerror}): "
                                "use --checkpoint-dir DIR to keep it elsewhere") from None
        self._lock_file = lock_folder(self.folder)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._made and not self.has_frames():
            self.remove()  # a run that saved nothing leaves nothing
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def attempt(self, seg: Segment) -> int:
        """The segment's current attempt (0 until a worker stalled or died on it)."""
        try:
            with open(os.path.join(self.segments, seg.name + ATTEMPT)) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def segment_folder(self, seg: Segment, attempt: Optional[int] = None) -> str:
        """The checkpoint of the segment's current attempt (or of `attempt`)."""
        k = self.attempt(seg) if attempt is None else attempt
        return os.path.join(self.segments, seg.name + (f".a{k}" if k else "") + ".dreamvid")

    def new_attempt(self, seg: Segment) -> int:
        """Fence off the segment's current attempt: the next one gets a folder of its own holding
        hard links to the frames and chunks saved so far (manifest first, so every frame it
        counts is there), and becomes the current one. A stalled worker that wakes up writes on
        into its old folder (atomic renames replace its links, not the new folder's), which nothing
        reads any more. Returns the new attempt's number."""
        old = self.attempt(seg)
        src, k = self.segment_folder(seg, old), old + 1
        dst = self.segment_folder(seg, k)
        remove_path(dst)
        os.makedirs(dst)
        if os.path.isdir(src):
            names = os.listdir(src)
            for name in sorted(names, key=lambda n: n != MANIFEST):
                if name == LOCK or TMP_MARK in name or not os.path.isfile(os.path.join(src, name)):
                    continue
                try:
                    os.link(os.path.join(src, name), os.path.join(dst, name))
                except FileNotFoundError:  # replaced or deleted meanwhile: the manifest was linked first
                    pass
        atomic_write(os.path.join(self.segments, seg.name + ATTEMPT), str(k).encode())
        return k

    def has_frames(self) -> bool:
        """Any frame saved, by a segment or by a one-process render."""
        if not os.path.isdir(self.folder):
            return False
        if any(n.startswith("frame_") or n.startswith("chunk_") for n in os.listdir(self.folder)):
            return True
        return any(Checkpoint.recorded_done(os.path.join(self.segments, s)) > 0 for s in self._segment_names())

    def _segment_names(self) -> List[str]:
        return sorted(os.listdir(self.segments)) if os.path.isdir(self.segments) else []

    def check_not_sequential(self) -> None:
        names = os.listdir(self.folder)
        if MANIFEST in names and any(n.startswith(("frame_", "chunk_")) for n in names):
            raise DreamvidError(f"the checkpoint {self.folder} holds the frames of a one-process render: run the "
                                "same command without --workers/--ray-address to resume it, or add --fresh "
                                "to start over")

    def clear(self) -> None:
        """Discard everything but the lock (``fresh``)."""
        for name in os.listdir(self.folder):
            if name != LOCK:
                remove_path(os.path.join(self.folder, name))

    def read_plan(self) -> Optional[dict]:
        try:
            with open(os.path.join(self.folder, PLAN)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_plan(self, data: dict) -> None:
        atomic_write(os.path.join(self.folder, PLAN), json.dumps(data, indent=1).encode())

    def remove(self) -> None:
        """Delete the folder (segments first, the lock last), and the parents this run made."""
        remove_path(self.segments)
        for name in os.listdir(self.folder):
            if name != LOCK:
                remove_path(os.path.join(self.folder, name))
        remove_path(os.path.join(self.folder, LOCK))
        try:
            os.rmdir(self.folder)
        except OSError:
            return
        remove_empty_dirs(self._made)


def segment_finished(folder: str, seg: Segment) -> bool:
    """True if the segment's checkpoint holds all its frames, intact (checked, then unlocked)."""
    if Checkpoint.recorded_done(folder) < seg.rendered_end - seg.start:
        return False
    try:
        Checkpoint.open_finished(folder).close()
    except DreamvidError:
        return False
    return True
