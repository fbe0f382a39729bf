"""The web page: ``dreamvid ui`` serves a local Gradio app (``pip install 'dreamvid[ui]'``).

    dreamvid ui [--host 127.0.0.1] [--port 7860] [--work-dir DIR] [--device auto]
                [--max-file-size 500mb]

A front end as thin as the CLI: page fields -> settings objects (defaults, presets and valid
ranges come from dreamvid.config, never restated here) -> one library call (``dream_image``,
``dream_video``, ``zoom_loop``) in a worker thread. Its events become the status line (a bar,
frames done, rate, ETA, the library's messages) and the live preview (the latest ``frame``
event); the Cancel button sets the call's ``cancel`` token. Errors are the library's one-line
messages (settings named by their labels on the page), shown in the page and raised to API
clients as ``gr.Error``; nothing else is caught silently.

Jobs. A press of Dream is a job in ``WORK/jobs/<kind>-<hash>/``, the hash of the upload's bytes,
its name, every setting and the device. The upload is copied there once, so the same upload
with the same settings is the same job at the same paths: a cancelled video or zoom loop resumes
from its checkpoint (the library's, beside the output: "resuming at frame N of M"), and a
finished one is shown at once. Jobs run one at a time (one Gradio concurrency group, "device",
limit 1; queued jobs wait their turn), while the page's other handlers (upload probe, preset,
Cancel) are never queued behind them, so the page stays responsive.

Files. Uploads land in ``WORK/uploads`` (Gradio's temp dir); the server serves files from there,
from ``WORK/jobs`` and from the bundled samples folder, nothing else (``allowed_paths``). Uploads
above ``--max-file-size`` (default 500 MB) are refused by Gradio before they reach a job.

API (``gradio_client``): endpoints ``/dream_image``, ``/dream_video`` and ``/zoom_loop`` take the
file (``handle_file(path)``), a preset name and, optionally, the same fields as the page (by
name; blank = the preset's value) and return the result file.

Stopping. ``serve(stop=event)`` returns when `stop` is set (the CLI sets it on Ctrl-C/SIGTERM):
the running job is cancelled (its checkpoint stays consistent), the server closes.

The package (the only code that imports gradio, lazily; nothing outside app/ imports it), one
concern per module:

    fields.py   page fields -> settings objects, the page's labels
    status.py   a job's events -> the status line
    jobs.py     job folders, the worker thread, one render at a time, cancel tokens
    page.py     the Blocks: tabs, fields, buttons, handlers
    api.py      the gradio_client endpoints
    server.py   launching behind the Host/Origin checks, stopping
    __init__.py ``dreamvid ui``'s arguments (main)
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Optional

from ...config.settings import RunOptions
from ...errors import DreamvidError
from .fields import LABELS, error_text
from .jobs import Job, Jobs, Update
from .page import SAMPLES, build_app
from .server import (DEFAULT_HOST, DEFAULT_MAX_FILE_SIZE, DEFAULT_PORT, LOCAL_HOSTS, default_work_dir,
                     serve)
from .status import Status

__all__ = ["Job", "Jobs", "LABELS", "SAMPLES", "Status", "Update", "build_app", "build_parser",
           "default_work_dir", "error_text", "main", "serve"]


def build_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = parser_class(prog="dreamvid ui", description="Serve the dreamvid web page (Gradio) on this machine.")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--work-dir", help=f"jobs and uploads (default {default_work_dir()})")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    p.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE,
                   help=f"largest upload accepted, e.g. 200mb or 2gb (default {DEFAULT_MAX_FILE_SIZE})")
    return p


def main(argv, parser_class=argparse.ArgumentParser, stop: Optional[threading.Event] = None) -> int:
    """``dreamvid ui ...``: serve until `stop` is set (the CLI sets it on Ctrl-C / SIGTERM)."""
    a = build_parser(parser_class).parse_args(list(argv))
    RunOptions(device=a.device).validate()
    import importlib.util
    if importlib.util.find_spec("gradio") is None:
        raise DreamvidError("the web page needs Gradio: pip install 'dreamvid[ui]'")
    if a.host not in LOCAL_HOSTS:
        print(f"dreamvid ui: warning: listening on {a.host}: anyone who can reach this machine on that "
              "network can use the page, its uploads and results", file=sys.stderr, flush=True)

    def ready(url: str) -> None:
        print(f"dreamvid ui: serving {url} (Ctrl-C stops)", flush=True)

    serve(a.host, a.port, a.work_dir, a.device, a.max_file_size, stop=stop, ready=ready)
    print("dreamvid ui: stopped", file=sys.stderr, flush=True)
    return 0
