"""Entry point: run the CLI and map errors to exit codes (2 = bad input, 130 = interrupted).

Set DREAMVID_DEBUG=1 to see the full traceback instead of the one-line message.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

from .errors import DreamvidError


def main(argv: Optional[Sequence[str]] = None) -> int:
    # OpenCV's own warnings on a corrupt file would break "one clear line" on stderr.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    from .cli import main as cli_main

    try:
        return cli_main(argv)
    except DreamvidError as e:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        print(f"dreamvid: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        if os.environ.get("DREAMVID_DEBUG"):
            raise
        print("dreamvid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
