"""Typed errors: one clear line each, what is wrong and what to do; no traceback for users."""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional, Sequence, Tuple


class DreamvidError(Exception):
    """Bad input or an unusable setting. The message is one line: what is wrong and what to do.

    The CLI prints it as ``dreamvid: error: <message>`` on stderr and exits with code 2.
    """

    exit_code = 2


class Cancelled(DreamvidError):
    """A render was stopped (its ``cancel`` was set, or Ctrl-C / SIGTERM in the CLI); its checkpoint
    is consistent and the same call resumes it. The message says where it stopped. Exit code 130."""

    exit_code = 130


Interrupted = Cancelled  # the 0.1 name


class InputTooLarge(DreamvidError):
    """An input whose frames, by their header, are past the pixel budget (``max_pixels``): refused
    before any pixel is decoded. Exit code 2, like any bad input."""


class SettingError(DreamvidError, ValueError):
    """A setting has a value it cannot have. ``field`` is the settings field's name (``"blend"``,
    ``"layers.block8"``), ``value`` the value given, ``reason`` what is wrong and what to do
    (``"must be in [0, 1): it is a decay, 1 would let dreams pile up"``); ``frame`` the frame index
    when a per-frame value was out of range there.

    ``str(e)`` names the field as Python callers know it (``blend must be in [0, 1): …``); a front
    end shows its own names with :meth:`render` (the CLI passes its flag names, so the terminal
    reads ``--blend must …``).

    A reason may name its own field and the fields listed in ``refs`` as ``{field}`` placeholders,
    filled with each front end's names (other braces, e.g. in a value, stay as they are):
    ``SettingError("end", 5, "(5) must be greater than {start} (7)", refs=("start",))`` reads
    ``end (5) must be greater than start (7)`` in Python and ``--end (5) must be greater than
    --start (7)`` in the CLI. A reason that names its own field (``"unknown {flow} 'x': …"``), or
    any reason given with ``whole=True`` (``"unknown preset 'x': …"``, naming the setting in words),
    is the whole message; otherwise the field's name goes first. ``e.reason`` is plain text
    (placeholders filled with field names) that remembers its form, so ``SettingError(e.field,
    e.value, e.reason, frame)`` re-raises the same message at a frame.
    """

    def __init__(self, field: str, value: Any, reason: str, frame: Optional[int] = None, *,
                 whole: bool = False, refs: Sequence[str] = ()):
        form = getattr(reason, "form", None)
        if form is None:
            text = str(reason)
            form = (text, whole or "{%s}" % field in text, (field, *refs))
        self.field, self.value, self.frame = field, value, frame
        self.reason = _Reason(_fill(form, {}), form)
        super().__init__(self.render())

    def render(self, names: Optional[Mapping[str, str]] = None) -> str:
        """The one-line message with each field ``f`` shown as ``names.get(f, f)``."""
        names = names or {}
        text = _fill(self.reason.form, names)
        if not self.reason.form[1]:
            text = f"{names.get(self.field, self.field)} {text}"
        return text + (f" (at frame {self.frame})" if self.frame is not None else "")

    def __reduce__(self):  # pickles whole (a Ray worker's error reaches its driver intact)
        return type(self), (self.field, self.value, self.reason, self.frame)


class _Reason(str):
    """A reason's plain text; ``form`` is (template, whole message?, fields it may name)."""

    form: Tuple[str, bool, Tuple[str, ...]]

    def __new__(cls, text: str, form: Tuple[str, bool, Tuple[str, ...]]) -> "_Reason":
        obj = super().__new__(cls, text)
        obj.form = form
        return obj

    def __reduce__(self):
        return _Reason, (str(self), self.form)


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def _fill(form: Tuple[str, bool, Tuple[str, ...]], names: Mapping[str, str]) -> str:
    template, _, fields = form
    return _FIELD.sub(lambda m: names.get(m.group(1), m.group(1)) if m.group(1) in fields else m.group(0),
                      template)
