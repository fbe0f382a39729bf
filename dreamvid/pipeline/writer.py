"""The background writer: checkpoint saves (and a streamed render's chunk encodes) off the frame loop.

The loop hands each finished frame to :class:`FrameWriter` and goes on dreaming; one thread saves
the frames in the order they were handed over (``Checkpoint.save``: lossless, atomic, fsynced, the
manifest advanced only once the frame is durable) and runs ``after_save(k, frame)`` after each
(the chunk encodes). One thread and a FIFO keep the checkpoint's invariant: frame k+1 is never
saved before frame k, so a kill at any moment leaves an unbroken run 0 … k on disk and an exact
resume. At most `depth` frames wait (the loop blocks beyond that: memory stays bounded, and a
slow disk slows the render instead of piling frames up). A failed save stops the writer (nothing
later is saved: it would leave a gap) and its error is raised in the loop at the next hand-over
or at :meth:`flush`.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Optional

import numpy as np

from ..store.checkpoint import Checkpoint

_STOP = object()


class FrameWriter:
    """Saves frames handed over with :meth:`put` in a thread, in order (see the module doc)."""

    def __init__(self, ckpt: Checkpoint, after_save: Optional[Callable[[int, np.ndarray], None]] = None,
                 depth: int = 2):
        self.ckpt, self.after_save = ckpt, after_save
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="dreamvid-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                if self._error is None:  # after a failure nothing more is saved (no gaps)
                    k, frame = item
                    self.ckpt.save(k, frame)
                    if self.after_save is not None:
                        self.after_save(k, frame)
            except BaseException as e:  # raised in the loop's thread (put / flush)
                self._error = e
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:  # stays failed: later hand-overs raise it too
            raise self._error

    def put(self, k: int, frame: np.ndarray) -> None:
        """Hand frame k (RGB uint8 H×W×3, not modified afterwards) over to be saved."""
        self._raise()
        self._queue.put((k, frame))

    def flush(self) -> None:
        """Wait until every frame handed over is saved (or the writer failed: raise its error)."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Finish the frames handed over, then stop the thread (errors are left to flush)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()


class InlineWriter:
    """The same interface, saving at once in the caller's thread (RunOptions.overlap=False)."""

    def __init__(self, ckpt: Checkpoint, after_save: Optional[Callable[[int, np.ndarray], None]] = None):
        self.ckpt, self.after_save = ckpt, after_save

    def put(self, k: int, frame: np.ndarray) -> None:
        self.ckpt.save(k, frame)
        if self.after_save is not None:
            self.after_save(k, frame)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
