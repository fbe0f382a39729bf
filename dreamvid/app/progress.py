"""The terminal's view of a render: events in, tqdm bars and one-line messages out (stderr).

Bars show frames done, rate and ETA; ``quiet`` hides them. Messages (resuming, all frames
present) are printed even when quiet: a resume is news.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from tqdm import tqdm

from ..pipeline.events import Event


class TerminalProgress:
    """An ``on_event`` handler. desc: the label of the frame bar ("dreaming", "zooming"); None for
    an image, whose bar counts ascent steps by octave."""

    def __init__(self, desc: Optional[str] = "dreaming", quiet: bool = False, stream=None):
        self.desc, self.quiet = desc, quiet
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Optional[tqdm] = None
        self._kind: Optional[str] = None

    def __call__(self, e: Event) -> None:
        if e.kind == "file":  # a batch's next file: its own bar, named by the file count
            self._close()
            name = os.path.basename(e.text or "")
            print(f"dreamvid: file {e.index} of {e.total}: {e.text} -> {e.output}", file=self.stream, flush=True)
            image = os.path.splitext(name)[1].lower() in (".png", ".jpg", ".jpeg")
            self.desc = None if image else f"[{e.index}/{e.total}] {name}"
        elif e.kind == "message":
            self._close()
            print(f"dreamvid: {e.text}", file=self.stream, flush=True)
        elif e.kind == "start" and self.desc:  # frames of a video or loop; images count steps
            self._open("frame", total=e.total, initial=e.resumed_at or 0, desc=self.desc, unit="frame",
                       leave=True)
        elif e.kind == "frame" and self._kind == "frame":
            self._bar.update(1)
        elif e.kind == "step":
            self._open("step", total=e.total, desc=f"octave {e.octave}/{e.octaves}", unit="step", leave=False)
            self._bar.set_description(f"octave {e.octave}/{e.octaves}", refresh=False)
            self._bar.update(1)
        elif e.kind == "encode":
            # A join reports all its frames at once: the bar shows where the encode is, not a count of events.
            self._open("encode", total=e.total, initial=e.index, desc="encoding", unit="frame", leave=False)
            self._bar.update(max(0, e.index - self._bar.n))
        elif e.kind == "done":
            self._close()

    def _open(self, kind: str, **kw) -> None:
        if self._kind == kind:
            return
        self._close()
        self._kind = kind
        self._bar = tqdm(disable=self.quiet, dynamic_ncols=True, file=self.stream, **kw)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._kind = None, None

    def close(self) -> None:
        """Close any open bar (after a stop or an error)."""
        self._close()
