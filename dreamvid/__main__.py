"""Entry point: run the CLI and map errors to exit codes (2 = bad input, 130 = stopped,
141 = the reader of stdout went away).

Ctrl-C (SIGINT) and SIGTERM (`kill`, a job scheduler, a container stop) both stop a render
cleanly: the first one sets the render's cancel token, the render stops within one ascent step
with its checkpoint consistent, one line says how to resume, the exit code is 130. A second
Ctrl-C stops at once (still without a traceback; saved frames are always complete).
Set DREAMVID_DEBUG=1 to see the full traceback instead of the one-line message.

When the program reading stdout goes away (``dreamvid --list-layers googlenet | head -2``),
dreamvid stops quietly, as the Python docs recommend (stdout pointed at /dev/null so the final
flush cannot fail again), with exit code 141 = 128 + SIGPIPE: what a shell reports for coreutils
stopped by SIGPIPE in the same place, so ``set -o pipefail`` scripts see dreamvid like any other
tool (Python's own 120 only says "flushing stdout failed at exit").
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from typing import Optional, Sequence

from .errors import Cancelled, DreamvidError

#: Exit code when the reader of stdout went away: 128 + SIGPIPE, as shells report for coreutils.
EXIT_BROKEN_PIPE = 141


def _quiet_further_interrupts() -> None:
    # A second Ctrl-C while the message is printed would end in a traceback.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _stdout_gone() -> bool:
    """True if stdout is a pipe whose reader has gone (the case a BrokenPipeError means to us)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except AttributeError:  # no poll() (Windows): assume it is stdout
        return True
    except (OSError, ValueError):  # stdout replaced by something without a file descriptor
        return False


def _silence_stdout() -> None:
    # The Python docs' recipe: later flushes (at exit) go to /dev/null instead of failing again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    # OpenCV's own warnings on a corrupt file would break "one clear line" on stderr.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    cancel = threading.Event()
    handlers = None

    def stop(signum, frame):
        if cancel.is_set():  # asked twice: stop now
            raise KeyboardInterrupt
        cancel.set()

    if threading.current_thread() is threading.main_thread():
        handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
    try:
        from .app.cli import error_message, main as cli_main

        code = cli_main(argv, cancel=cancel)
        sys.stdout.flush()  # a reader that went away shows here, not in a traceback at exit
        return code
    except BrokenPipeError:
        if os.environ.get("DREAMVID_DEBUG") or not _stdout_gone():
            raise
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Cancelled as e:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        _quiet_further_interrupts()
        print(f"dreamvid: {e}", file=sys.stderr)
        return e.exit_code
    except DreamvidError as e:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        print(f"dreamvid: error: {error_message(e)}", file=sys.stderr)
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
