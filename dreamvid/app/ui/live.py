"""The Live tab: the browser's camera, dreamed as fast as this machine allows (pipeline/live.py).

The camera component streams frames to :meth:`LiveHub.push` every STREAM_EVERY seconds; that
handler never dreams: it hands the frame to the session's push source (the newest frame wins,
older unread ones are dropped) and returns the newest dream, or nothing new (``gr.skip()``).
A worker thread runs ``run_live`` on that source with the page's knobs (strength, iterations,
size: changed while it runs). Record writes what was shown (pipeline/recorder.py) to an mp4;
Snapshot saves the dream on screen as a PNG. A live dream holds the device like a render: it
does not start while a render runs, and a render waits for it to stop. It stops on Stop, when
the camera sends nothing for IDLE_STOP_S, or when the server stops.

Frames/s is the dream's rate; latency is from a frame's arrival at the server to its dream being
ready (the browser's upload and display add their own, a frame interval or two).
"""

from __future__ import annotations

import html
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ...config.presets import DEFAULT_PRESET, settings_from_preset
from ...config.settings import LIVE_SIZE_RANGE, LiveSettings
from ...errors import DreamvidError
from .jobs import Jobs

#: How often the page's camera sends a frame (s): the most the page can show, 10 frames/s.
STREAM_EVERY = 0.1
#: A live dream whose camera sent nothing for this long stops by itself (s).
IDLE_STOP_S = 10.0
#: How long the page's camera stream may run in one go (s).
STREAM_LIMIT_S = 3600
#: A short GIL switch interval while a live dream runs: the dream thread's Python steps would
#: otherwise hold the server's handlers for 5 ms slices each, a visible share of a 100 ms frame.
LIVE_SWITCH_INTERVAL = 0.0005
#: Frames arriving within this many seconds of the last one after Stop are the same stream still
#: running (ignored); after a longer gap the camera was started again, and so is the dream.
RESTART_GAP_S = 1.0
#: Stop also stops the camera's stream in the page: its capture button toggles streaming.
STOP_CAMERA_JS = """() => {
  const b = document.querySelector('#live-camera button.capture-button');
  if (b && b.querySelector('[title="stop recording"]')) b.click();
}"""


class LiveSession:
    """One browser session's live dream: its source, knobs, worker thread, recording."""

    def __init__(self, hub: "LiveHub", key: str, preset: str, live: LiveSettings):
        from ...io.streams import push_source
        from ...pipeline.live import LiveKnobs
        self.hub, self.key, self.preset = hub, key, preset
        self.source = push_source()
        self.knobs = LiveKnobs(live)
        self.stop = threading.Event()
        self.folder = hub.folder(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.latest: Optional[np.ndarray] = None
        self.seq = 0        # dreams made; the page shows a dream once
        self.shown = 0      # the seq the page last got
        self.rate = self.latency = 0.0
        self.dropped = 0
        self.error: Optional[str] = None
        self.recorder = None
        self.recording_path: Optional[Path] = None
        self.last_push = time.monotonic()
        self.thread = threading.Thread(target=self._work, name=f"live {key}", daemon=True)

    def _work(self) -> None:
        from ...pipeline.live import run_live
        old = sys.getswitchinterval()
        sys.setswitchinterval(LIVE_SWITCH_INTERVAL)
        try:
            settings = settings_from_preset(self.preset)
            run_live(self.source, settings=settings, run=self.hub.jobs.run_options, knobs=self.knobs,
                     dreamer=self.hub.dreamer(settings), on_event=self._on_event, cancel=self)
        except DreamvidError as e:
            self.error = str(e)
        except Exception as e:  # shown on the page: a live dream must not die silently
            self.error = f"the live dream stopped: {e}"
        finally:
            sys.setswitchinterval(old)
            self.finish_recording()
            self.hub.release(self)

    def is_set(self) -> bool:
        """The live dream's cancel token: Stop, or a camera that sent nothing for idle_stop_s (the
        tab closed, the stream stopped): the loop checks it between frames and ascent steps."""
        if not self.stop.is_set() and time.monotonic() - self.last_push > self.hub.idle_stop_s:
            self.stop.set()
        return self.stop.is_set()

    def _on_event(self, e) -> None:
        if e.kind != "frame":
            return
        with self._lock:
            self.latest, self.seq = e.frame, self.seq + 1
            self.rate, self.latency, self.dropped = e.rate, e.latency, e.dropped
            if self.recorder is not None:
                self.recorder.show(e.frame, time.monotonic())

    def start_recording(self) -> Path:
        from ...pipeline.recorder import Recorder
        with self._lock:
            if self.recorder is None:
                self.recording_path = self.folder / f"live-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
                self.recorder = Recorder(str(self.recording_path), self.hub.record_fps)
            return self.recording_path

    def finish_recording(self) -> Optional[Path]:
        """Publish the recording (None when nothing was recorded)."""
        with self._lock:
            rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        if not rec.shown:
            rec.abort()
            return None
        return Path(rec.close(time.monotonic()))

    def snapshot(self) -> Optional[Path]:
        with self._lock:
            frame = self.latest
        if frame is None:
            return None
        from ...io.images import write_image
        path = self.folder / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{self.seq}.png"
        write_image(str(path), frame)
        return path

    def status_html(self) -> str:
        if self.error:
            return f'<div class="dv-line" data-state="error" id="live-error">⚠ {html.escape(self.error)}</div>'
        rec = " · ● recording" if self.recorder is not None else ""
        if self.seq == 0:
            return f'<div class="dv-line" id="live-stats" data-fps="0">starting the dream (loading the model)…{rec}</div>'
        return (f'<div class="dv-line" id="live-stats" data-fps="{self.rate:.2f}" data-latency="{self.latency:.3f}">'
                f'{self.rate:.1f} frames/s · latency {self.latency:.2f} s · {self.dropped} camera frames dropped '
                f'· {self.seq} dreamed{rec}</div>')


class LiveHub:
    """The page's live sessions (one dreaming at a time: it holds the device) and their dreamer."""

    record_fps = 10  # a recording's rate: the page shows at most 1 / STREAM_EVERY frames a second
    idle_stop_s = IDLE_STOP_S

    def __init__(self, jobs: Jobs):
        self.jobs = jobs
        self._lock = threading.Lock()
        self.sessions: Dict[str, LiveSession] = {}
        self._stopped: Dict[str, float] = {}  # session -> when its last frame came in after Stop
        self._dreamers: Dict[Any, Any] = {}

    def dreamer(self, settings):
        """One Dreamer per preset, kept: a second Start dreams at once."""
        from ...pipeline.common import build_dreamer
        key = repr(settings)
        if key not in self._dreamers:
            self._dreamers = {key: build_dreamer(settings, self.jobs.run_options, None)}
        return self._dreamers[key]

    def folder(self, key: str) -> Path:
        """Where a session's snapshots and recordings go (served: it is under the jobs folder)."""
        return self.jobs.jobs_dir / f"live-{_safe(key)}"

    def saved(self, key: str) -> list:
        """The session's snapshots and recordings, oldest first (no temporaries)."""
        folder = self.folder(key)
        if not folder.is_dir():
            return []
        return [str(p) for p in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)
                if not p.name.startswith(".") and p.suffix in (".png", ".mp4")]

    def session(self, key: str) -> Optional[LiveSession]:
        with self._lock:
            return self.sessions.get(key)

    def start(self, key: str, preset: str, live: LiveSettings) -> LiveSession:
        with self._lock:
            s = self.sessions.get(key)
            if s is not None and not s.stop.is_set():
                return s
            if not self.jobs.try_hold_device():
                raise DreamvidError("a render is running on this machine: live dreaming starts when it has "
                                    "finished (or cancel it)")
            s = self.sessions[key] = LiveSession(self, key, preset or DEFAULT_PRESET, live)
        s.thread.start()
        return s

    def release(self, s: LiveSession) -> None:
        with self._lock:
            if self.sessions.get(s.key) is s and s.error is None:
                del self.sessions[s.key]
        s.source.close()
        self.jobs.release_device()

    def held_back(self, key: str) -> bool:
        """True for a frame of a stream that was stopped and is still sending (see RESTART_GAP_S)."""
        now = time.monotonic()
        with self._lock:
            last = self._stopped.get(key)
            if last is None:
                return False
            if now - last > RESTART_GAP_S:
                del self._stopped[key]
                return False
            self._stopped[key] = now
            return True

    def stop(self, key: str) -> Optional[Path]:
        """Stop the session's dream; the recording it had, published."""
        with self._lock:
            self._stopped[key] = time.monotonic()
        s = self.session(key)
        if s is None:
            return None
        s.stop.set()
        path = s.finish_recording()
        s.thread.join(timeout=30)
        with self._lock:
            if self.sessions.get(key) is s:
                del self.sessions[key]
        return path

    def shutdown(self) -> None:
        for key in list(self.sessions):
            self.stop(key)


STOPPED_HTML = ('<div class="dv-line" id="live-stats" data-state="stopped">stopped: press the camera\'s record '
                'button to dream again</div>')


def _safe(key: str) -> str:
    return "".join(c for c in key if c.isalnum())[:32] or "local"


def build_live_tab(gr, hub: LiveHub, session_of) -> None:
    """The Live tab's components and handlers (inside the page's Blocks)."""
    from ...config.presets import PRESETS
    d = LiveSettings()
    presets = [(f"{p.name} — {p.description}", p.name) for p in PRESETS.values()]
    with gr.Tab("Live", id="live", elem_id="live-tab"):
        gr.Markdown("Your camera, dreamed live on this machine. Frames the dream cannot keep up with are "
                    "dropped, never queued; the dream follows the motion between the frames it dreams and "
                    "starts afresh when the scene changes. Strength, iterations and size apply at once.",
                    elem_classes="dv-hint")
        with gr.Row():
            with gr.Column(scale=1):
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                  elem_id="live-camera", height=300)
                preset = gr.Dropdown(presets, value=DEFAULT_PRESET, label="Preset (applies at start)",
                                     elem_id="live-preset")
                strength = gr.Slider(0.0, 3.0, value=d.strength, step=0.1, label="Strength",
                                     info="× the preset's step", elem_id="live-strength")
                iterations = gr.Slider(0, 8, value=d.iterations, step=1, label="Iterations",
                                       info="ascent steps per octave, each frame", elem_id="live-iterations")
                size = gr.Slider(LIVE_SIZE_RANGE[0], 480, value=d.size, step=16, label="Size",
                                 info="long side of the dream, px", elem_id="live-size")
            with gr.Column(scale=1):
                status = gr.HTML('<div class="dv-line" id="live-stats" data-fps="0">press the camera\'s record '
                                 'button to start</div>', elem_id="live-status")
                shown = gr.Image(label="Dreamed", type="numpy", interactive=False, elem_id="live-output",
                                 height=300, format="jpeg")
                with gr.Row():
                    snap_btn = gr.Button("Snapshot", elem_id="live-snapshot")
                    rec_btn = gr.Button("Record", elem_id="live-record")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="live-stop")
                files = gr.File(label="Snapshots and recordings", interactive=False, file_count="multiple",
                                elem_id="live-files", height=110)
        def knobs_of(s, it, sz) -> LiveSettings:
            return LiveSettings(size=int(sz), iterations=int(it), strength=float(s))

        def on_frame(request: gr.Request, frame, preset_name, s, it, sz):
            key = session_of(request)
            if frame is None:
                return gr.skip(), gr.skip()
            try:
                if hub.held_back(key):
                    return gr.skip(), STOPPED_HTML
                sess = hub.session(key)
                if sess is None or sess.stop.is_set():
                    sess = hub.start(key, preset_name, knobs_of(s, it, sz))
                sess.last_push = time.monotonic()
                if sess.error:
                    return gr.skip(), sess.status_html()
                sess.knobs.set(size=int(sz), iterations=int(it), strength=float(s))
                sess.source.push(np.asarray(frame))
                new = sess.seq != sess.shown
                sess.shown = sess.seq
                return (sess.latest if new else gr.skip()), sess.status_html()
            except DreamvidError as e:
                return gr.skip(), f'<div class="dv-line" data-state="error" id="live-error">⚠ {html.escape(str(e))}</div>'

        def on_snapshot(request: gr.Request):
            s = hub.session(session_of(request))
            path = s.snapshot() if s is not None else None
            return hub.saved(session_of(request)) if path is not None else gr.skip()

        def on_record(request: gr.Request):
            s = hub.session(session_of(request))
            if s is None:
                return gr.skip(), gr.update(value="Record")
            if s.recorder is None:
                s.start_recording()
                return gr.skip(), gr.update(value="Stop recording")
            s.finish_recording()
            return hub.saved(session_of(request)), gr.update(value="Record")

        def on_stop(request: gr.Request):
            key = session_of(request)
            path = hub.stop(key)
            return hub.saved(key) if path is not None else gr.skip(), gr.update(value="Record"), STOPPED_HTML

        from .api import _takes_request
        for fn in (on_frame, on_snapshot, on_record, on_stop):
            _takes_request(fn, gr)
        camera.stream(on_frame, [camera, preset, strength, iterations, size], [shown, status],
                      stream_every=STREAM_EVERY, time_limit=STREAM_LIMIT_S, concurrency_limit=None,
                      concurrency_id="live", api_visibility="private", show_progress="hidden")
        snap_btn.click(on_snapshot, None, files, concurrency_limit=None, api_visibility="private",
                       show_progress="hidden")
        rec_btn.click(on_record, None, [files, rec_btn], concurrency_limit=None, api_visibility="private",
                      show_progress="hidden")
        # Stop also stops the camera's stream in the page (its own button toggles streaming).
        stop_btn.click(on_stop, None, [files, rec_btn, status], concurrency_limit=None, api_visibility="private",
                       show_progress="hidden",
                       js=STOP_CAMERA_JS)
