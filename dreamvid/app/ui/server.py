"""Serving the page: Gradio launched on this machine behind the Host/Origin checks of
``local_only``, files served only from the jobs folder and the bundled samples, until `stop`."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable, Optional

from .jobs import Jobs
from .live import LiveHub
from .page import CSS, SAMPLES, build_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "500mb"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def default_work_dir() -> str:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "dreamvid", "ui")


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, work_dir: Optional[str] = None,
          device: str = "auto", max_file_size: Any = DEFAULT_MAX_FILE_SIZE,
          stop: Optional[threading.Event] = None, ready: Optional[Callable[[str], None]] = None) -> None:
    """Serve the page until `stop` is set (or Ctrl-C when no `stop` is given), then cancel the
    running job (its checkpoint stays consistent) and close the server. ready(url) is called once
    the page answers."""
    work = Path(work_dir or default_work_dir()).resolve()
    uploads = work / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(uploads))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    jobs = Jobs(str(work), device)
    live = LiveHub(jobs)
    demo = build_app(jobs, live)
    import gradio as gr

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    allowed = [str(jobs.jobs_dir)] + ([str(SAMPLES)] if SAMPLES.is_dir() else [])
    stop = stop or threading.Event()
    from starlette.middleware import Middleware

    from ..local_only import LocalOnly

    # Host and Origin checked on every request: no DNS rebinding, no cross-site uploads or jobs.
    only_here = Middleware(LocalOnly, host=host, port=port)
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                            app_kwargs={"middleware": [only_here]},
                            allowed_paths=allowed, max_file_size=max_file_size, theme=theme, css=CSS,
                            ssr_mode=False, pwa=False, mcp_server=False, share=False, show_error=True,
                            footer_links=["api"], enable_monitoring=False)
    if ready is not None:
        ready(url)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:  # serve() called from Python without a stop event
        pass
    finally:
        live.shutdown()
        jobs.shutdown()
        demo.close()
