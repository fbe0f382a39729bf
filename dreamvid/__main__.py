"""Entry point: run the CLI and map errors to exit codes (2 = bad input, 130 = interrupted).

Ctrl-C (SIGINT) and SIGTERM (`kill`, a job scheduler, a container stop) both stop a render
cleanly: the checkpoint stays consistent, one line says how to resume, the exit code is 130.
Set DREAMVID_DEBUG=1 to see the full traceback instead of the one-line message.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Optional, Sequence

from .errors import DreamvidError, Interrupted


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _quiet_further_interrupts() -> None:
    # A second Ctrl-C while the message is printed would end in a traceback.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: Optional[Sequence[str]] = None) -> int:
    # OpenCV's own warnings on a corrupt file would break "one clear line" on stderr.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    handlers = None
    if threading.current_thread() is threading.main_thread():
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGTERM, _raise_interrupt)  # stop like Ctrl-C, checkpoint kept
    try:
        from .app.cli import main as cli_main

        return cli_main(argv)
    except Interrupted as e:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        _quiet_further_interrupts()
        print(f"dreamvid: {e}", file=sys.stderr)
        return e.exit_code
    except DreamvidError as e:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        print(f"dreamvid: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        _quiet_further_interrupts()
        print("dreamvid: interrupted (a render that had started resumes when you run the same command again)",
              file=sys.stderr)
        return 130
    finally:
        if handlers is not None:
            signal.signal(signal.SIGINT, handlers[0])
            signal.signal(signal.SIGTERM, handlers[1])


if __name__ == "__main__":
    sys.exit(main())
