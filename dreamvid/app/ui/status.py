"""A job's progress: the library's events -> the status line the page shows (a bar, frames done,
rate, ETA, the library's messages)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import List, Optional


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


@dataclass
class Status:
    """A job's state as the page shows it, updated from the render's events."""

    kind: str
    state: str = "preparing"     # preparing | running | encoding | done | stopped | error
    done: int = 0                # frames (or, for an image, ascent steps) finished
    total: int = 0
    resumed_at: int = 0
    encoded: int = 0
    encode_total: int = 0
    octave: Optional[str] = None
    messages: List[str] = field(default_factory=list)
    note: str = ""               # the final line: result, stop or error
    started: Optional[float] = None
    made_from: int = 0           # `done` when the clock started (resumed frames are not timed)
    stopping: bool = False

    @property
    def unit(self) -> str:
        return "step" if self.kind == "image" else "frame"

    def update(self, e) -> None:
        if e.kind == "start":
            self.state, self.total = "running", e.total or 0
            self.resumed_at = self.done = self.made_from = e.resumed_at or 0
            self.started = time.monotonic()
        elif e.kind == "message":
            self.messages.append(e.text)
        elif e.kind == "step":
            self.done, self.total = e.index, e.total
            self.octave = f"octave {e.octave} of {e.octaves}"
        elif e.kind == "frame" and self.kind != "image":
            self.done = e.index + 1
        elif e.kind == "encode":
            self.state, self.encoded, self.encode_total = "encoding", e.index, e.total

    def rate(self) -> Optional[float]:
        made = self.done - self.made_from
        if self.started is None or made <= 0:
            return None
        return made / max(time.monotonic() - self.started, 1e-6)

    def line(self) -> str:
        if self.state == "preparing":
            return "loading the model…"
        if self.state == "encoding":
            return f"encoding: {self.encoded} of {self.encode_total} frames written"
        parts = [f"{self.unit} {self.done} of {self.total}"]
        if self.octave:
            parts.append(self.octave)
        if self.resumed_at:
            parts.append(f"resumed at frame {self.resumed_at}")
        rate = self.rate()
        if rate:
            parts.append(f"{rate:.2f} {self.unit}s/s" if rate < 10 else f"{rate:.0f} {self.unit}s/s")
            if self.state == "running" and self.total > self.done:
                parts.append(f"about {_duration((self.total - self.done) / rate)} left")
        if self.stopping and self.state == "running":
            parts.append("stopping…")
        return " · ".join(parts)

    def html(self) -> str:
        frac = self.done / self.total if self.total else 0.0
        if self.state == "encoding" and self.encode_total:
            frac = self.encoded / self.encode_total
        lines = [] if self.state in ("done", "stopped", "error") else [self.line()]
        lines += self.messages[-3:]
        if self.note:
            lines.append(self.note)
        body = "".join(f'<p class="dv-line">{html.escape(t)}</p>' for t in lines)
        return (f'<div class="dv-status" data-state="{self.state}" data-done="{self.done}" '
                f'data-total="{self.total}" data-resumed="{self.resumed_at}">'
                f'<div class="dv-bar"><div style="width:{100 * frac:.1f}%"></div></div>{body}</div>')


IDLE_HTML = ('<div class="dv-status" data-state="idle"><div class="dv-bar"><div style="width:0%"></div>'
             '</div><p class="dv-line">Upload a file or pick a sample, then press Dream.</p></div>')

