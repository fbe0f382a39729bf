"""Typed errors: one clear line each, what is wrong and what to do; no traceback for users."""

from __future__ import annotations

from typing import Any, Optional


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


class SettingError(DreamvidError, ValueError):
    """A setting has a value it cannot have. ``field`` is the settings field's name (``"blend"``,
    ``"layers.block8"``), ``value`` the value given, ``reason`` what is wrong and what to do
    (``"must be in [0, 1): it is a decay, 1 would let dreams pile up"``); ``frame`` the frame index
    when a per-frame value was out of range there.

    ``str(e)`` names the field as Python callers know it; a front end shows its own name for it
    with :meth:`render` (the CLI passes its flag names, so the terminal reads ``--blend must …``).
    """

    def __init__(self, field: str, value: Any, reason: str, frame: Optional[int] = None):
        self.field, self.value, self.reason, self.frame = field, value, reason, frame
        super().__init__(self.render())

    def render(self, names: Optional[dict] = None) -> str:
        """The one-line message with `field` shown as ``names.get(field, field)``."""
        name = (names or {}).get(self.field, self.field)
        at = f" (at frame {self.frame})" if self.frame is not None else ""
        return f"{name} {self.reason}{at}"
