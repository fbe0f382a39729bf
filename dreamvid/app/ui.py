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

The only module that imports gradio, lazily: nothing else imports this one.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import html
import json
import os
import queue
import re
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from ..config.presets import DEFAULT_PRESET, PRESETS, get_preset, settings_from_preset
from ..config.schedule import Schedule, is_number
from ..config.settings import DEFAULT_LAYERS, FLOW_METHODS, RunOptions, VideoSettings, ZoomSettings
from ..config.vary import _INTEGER as INTEGER_FIELDS
from ..core.digest import file_sha256
from ..errors import Cancelled, DreamvidError, SettingError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_FILE_SIZE = "500mb"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Bundled samples (present in a source checkout; the page lists the ones it finds).
SAMPLES = Path(__file__).resolve().parents[2] / "samples"
#: Longest side of the live preview (the result keeps its own size).
PREVIEW_SIDE = 640
KINDS = ("image", "video", "zoom")

#: Page labels of the settings fields; SettingError messages name fields by these.
LABELS = {
    "preset": "Preset", "model": "Model", "layers": "Layer weights", "step": "Step",
    "iterations": "Iterations", "octaves": "Octaves", "seed": "Seed", "max_side": "Max side",
    "blend": "Blend", "next_iterations": "Iterations, later frames", "flow": "Flow",
    "start": "First frame", "end": "Stop before frame", "frames": "Frames", "zoom": "Zoom per frame",
    "rotate": "Rotation per frame", "frame_iterations": "Iterations per new frame",
    "frame_octaves": "Octaves per new frame", "steady": "Colour hold", "loop": "Seamless loop",
    "begin": "Start from",
}
SCHEDULE_INFO = ("Blank fields take the preset's value. *Schedulable* fields also take a value per frame: "
                 "`0:(1), 30:(2)` goes from 1 at frame 0 to 2 at frame 30; `1 + 0.1*sin(t/4)` is an "
                 "expression of the frame index t.")


def error_text(e: DreamvidError) -> str:
    """The one line the page shows for `e` (setting errors name the page's labels)."""
    return e.render(LABELS) if isinstance(e, SettingError) else str(e)


# --------------------------------------------------------------------------------------------
# Page fields -> settings
# --------------------------------------------------------------------------------------------

def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def field_value(key: str, value: Any, vary: Optional[Dict[str, Schedule]] = None):
    """A field as the settings take it: blank -> None (the preset's or library's value), a number
    (whole for integer fields), or, when `vary` is given, a schedule string -> ``vary[key]``."""
    if _blank(value):
        return None
    text = str(value).strip()
    if is_number(text):
        v = float(text)
        if key in INTEGER_FIELDS or key in ("seed", "max_side", "start", "end", "frames"):
            if not v.is_integer():
                raise SettingError(key, text, "must be a whole number")
            return int(v)
        return v
    if vary is None:
        raise SettingError(key, text, "must be a number here (schedules vary per frame: use them "
                                      "for videos and zoom loops)")
    sched = Schedule(text, key)
    if sched.constant is not None:
        return int(round(sched.constant)) if key in INTEGER_FIELDS else sched.constant
    vary[key] = sched
    return None


def dream_settings(v: Dict[str, Any], vary: Optional[Dict[str, Schedule]] = None):
    """DreamSettings from the page's dream fields (preset, model, layers, step, ...)."""
    preset = get_preset(v.get("preset") or DEFAULT_PRESET)
    layers = None
    if not _blank(v.get("layers")):
        from ..engine.objectives import parse_layer_weights  # torch: loaded with the job
        layers = tuple(parse_layer_weights(str(v["layers"])))
    return settings_from_preset(
        preset.name, model=v.get("model") or None, layers=layers,
        step=field_value("step", v.get("step"), vary),
        iterations=field_value("iterations", v.get("iterations"), vary),
        octaves=field_value("octaves", v.get("octaves"), vary),
        seed=field_value("seed", v.get("seed")))


def video_settings(v: Dict[str, Any], vary: Dict[str, Schedule]) -> VideoSettings:
    base = VideoSettings(**get_preset(v.get("preset") or DEFAULT_PRESET).video)
    given = dict(blend=field_value("blend", v.get("blend"), vary),
                 next_iterations=field_value("next_iterations", v.get("next_iterations"), vary),
                 flow=v.get("flow") or None, start=field_value("start", v.get("start")),
                 end=field_value("end", v.get("end")), max_side=field_value("max_side", v.get("max_side")))
    return base.replace(**{k: x for k, x in given.items() if x is not None}).validate()


def zoom_settings(v: Dict[str, Any], vary: Dict[str, Schedule]) -> ZoomSettings:
    given = dict(frames=field_value("frames", v.get("frames")),
                 zoom=field_value("zoom", v.get("zoom"), vary),
                 rotate=field_value("rotate", v.get("rotate"), vary),
                 frame_iterations=field_value("frame_iterations", v.get("frame_iterations"), vary),
                 frame_octaves=field_value("frame_octaves", v.get("frame_octaves"), vary),
                 steady=field_value("steady", v.get("steady"), vary),
                 max_side=field_value("max_side", v.get("max_side")))
    z = ZoomSettings().replace(**{k: x for k, x in given.items() if x is not None})
    if v.get("loop") is not None:
        z = z.replace(loop=bool(v["loop"]))
    return z.validate()


def preset_hints(name: Optional[str]) -> Dict[str, str]:
    """What a blank dream field means under preset `name`: field -> its value, as text."""
    s = settings_from_preset(name or DEFAULT_PRESET)
    return {"model": s.model, "layers": ", ".join(f"{n}={w:g}" for n, w in s.layers),
            "step": f"{s.step:g}", "iterations": str(s.iterations), "octaves": str(s.octaves),
            "seed": str(s.seed)}


# --------------------------------------------------------------------------------------------
# Progress: events -> a status line
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------

@dataclass
class Update:
    """One step of a job as the page sees it. result: the output path once it is done."""

    status: str
    preview: Any = None
    result: Optional[str] = None
    clear: bool = False


@dataclass
class Job:
    kind: str
    folder: Path
    input: str                      # the path (or 'noise'/'#colour') the library reads
    output: Path
    shown_name: str                 # the upload's own name, for messages
    call: Callable[..., Any]        # call(on_event=, cancel=) -> the library's result


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", os.path.splitext(os.path.basename(name))[0]).strip("_")
    return stem[:40] or "dream"


def _upload_path(upload: Any) -> Optional[str]:
    """The local path of a gr.File value (a path string, or a FileData-like dict/object)."""
    if _blank(upload):
        return None
    if isinstance(upload, dict):
        return upload.get("path") or upload.get("name")
    return str(getattr(upload, "path", upload))


class Jobs:
    """Runs jobs (one at a time on the device), keeps their files and cancel tokens."""

    def __init__(self, work_dir: str, device: str = "auto"):
        self.work = Path(work_dir).resolve()
        self.jobs_dir = self.work / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.run_options = RunOptions(device=device).validate()
        self._live: Dict[str, List[threading.Event]] = {}   # session -> its jobs' cancel tokens
        self._pending: Dict[str, "collections.deque"] = {}  # session -> tokens armed, not yet started
        self._workers: set = set()
        self._lock = threading.Lock()
        self._device = threading.Lock()  # one render at a time, whatever the web server does
        self.closing = threading.Event()

    # -- cancel tokens: one per job, found by the page session that started it ---------------

    def arm(self, session: str) -> None:
        """Dream was pressed: the job's token exists from now on, so Cancel reaches a job that
        is still waiting in the queue (it stops as soon as it starts)."""
        t = threading.Event()
        with self._lock:
            self._pending.setdefault(session, collections.deque()).append(t)
            self._live.setdefault(session, []).append(t)

    def _claim(self, session: str) -> threading.Event:
        """The token of a job that starts now: the one Dream armed, or a new one (API calls)."""
        with self._lock:
            pending = self._pending.get(session)
            t = pending.popleft() if pending else None
            if pending is not None and not pending:
                del self._pending[session]
            if t is None:
                t = threading.Event()
                self._live.setdefault(session, []).append(t)
            return t

    def _release(self, session: str, t: threading.Event) -> None:
        with self._lock:
            live = self._live.get(session, [])
            if t in live:
                live.remove(t)
            if not live:
                self._live.pop(session, None)

    def cancel(self, session: str) -> None:
        """Cancel: stop this session's running and queued jobs."""
        with self._lock:
            tokens = list(self._live.get(session, ()))
        for t in tokens:
            t.set()

    def shutdown(self, timeout: float = 120.0) -> None:
        """Cancel every job and wait (up to `timeout` s) for their renders to stop."""
        self.closing.set()
        with self._lock:
            tokens = [t for live in self._live.values() for t in live]
            workers = list(self._workers)
        for t in tokens:
            t.set()
        deadline = time.monotonic() + timeout
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))

    # -- preparing a job -------------------------------------------------------------------

    def _job_folder(self, kind: str, parts: Any) -> Path:
        key = hashlib.sha256(json.dumps([kind, parts], sort_keys=True, default=str).encode()).hexdigest()
        return self.jobs_dir / f"{kind}-{key[:16]}"

    def _take_upload(self, folder: Path, path: str) -> str:
        """Copy the upload into the job folder once (the checkpoint identifies its input by path,
        size and mtime: the copy keeps them from one press of Dream to the next)."""
        target = folder / ("input" + os.path.splitext(path)[1].lower())
        if not (target.is_file() and target.stat().st_size == os.path.getsize(path)):
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return str(target)

    def prepare(self, kind: str, v: Dict[str, Any]) -> Job:
        """Settings from the page's values, the job's folder and the library call (DreamvidError
        for bad input)."""
        path = _upload_path(v.get("upload"))
        begin = str(v.get("begin") or "").strip()
        if path is None:
            if kind == "zoom" and begin:
                spec, name, digest = begin, begin, hashlib.sha256(begin.encode()).hexdigest()
            else:
                what = {"image": "an image", "video": "a video",
                        "zoom": "an image (or type noise or a colour like #203040 in Start from)"}[kind]
                raise DreamvidError(f"no input: upload {what} or pick a sample")
        else:
            name = os.path.basename(path)
            if not os.path.isfile(path):
                raise DreamvidError(f"the upload {name} is gone from the server: upload it again")
            if os.path.getsize(path) == 0:
                raise DreamvidError(f"the upload {name} is empty (0 bytes): upload the file again")
            spec, digest = path, file_sha256(path)
        vary: Dict[str, Schedule] = {}
        run = self.run_options
        if kind == "image":
            dream = dream_settings(v)
            other = {"max_side": field_value("max_side", v.get("max_side"))}
            if other["max_side"] is not None and other["max_side"] < 1:
                raise SettingError("max_side", other["max_side"], "must be at least 1")
        elif kind == "video":
            dream = dream_settings(v, vary)
            other = video_settings(v, vary)
        else:
            dream = dream_settings(v, vary)
            other = zoom_settings(v, vary)
        parts = [digest, name, dream.to_dict(), other if isinstance(other, dict) else other.to_dict(),
                 {k: s.text for k, s in sorted(vary.items())}, run.device]
        folder = self._job_folder(kind, parts)
        source = self._take_upload(folder, spec) if path is not None else spec
        stem = _safe_stem(name) if path is not None else "noise" if begin.lower() == "noise" else "colour"
        output = folder / {"image": f"{stem}-dream.png", "video": f"{stem}-dream.mp4",
                           "zoom": f"{stem}-loop.gif"}[kind]

        if kind == "image":
            from ..pipeline.image import dream_image

            def call(on_event, cancel):
                return dream_image(source, str(output), dream, max_side=other["max_side"], device=run.device,
                                   weights=run.weights, on_event=on_event, cancel=cancel)
        elif kind == "video":
            from ..pipeline.video import dream_video

            def call(on_event, cancel):
                return dream_video(source, str(output), dream, other, run, vary=vary or None,
                                   on_event=on_event, cancel=cancel)
        else:
            from ..pipeline.zoom import zoom_loop

            def call(on_event, cancel):
                return zoom_loop(source, str(output), dream, other, run, vary=vary or None,
                                 on_event=on_event, cancel=cancel)
        return Job(kind, folder, source, output, name, call)

    def _tell(self, job: Optional[Job], text: str) -> str:
        """A library message with the job's own paths replaced by the names the user knows."""
        if job is not None:
            if job.input != job.shown_name:
                text = text.replace(job.input, job.shown_name)
            text = text.replace(str(job.folder), "the job folder")
        return text

    # -- running a job ---------------------------------------------------------------------

    def run(self, kind: str, values: Dict[str, Any], session: str) -> Iterator[Update]:
        """Run one job, yielding what the page shows as it goes. Raises DreamvidError (bad input
        or a failed render: the status says so first) or Cancelled (after the stopped status)."""
        token = self._claim(session)
        try:
            yield from self._run(kind, values, token)
        finally:
            self._release(session, token)

    def _run(self, kind: str, values: Dict[str, Any], token: threading.Event) -> Iterator[Update]:
        status = Status(kind)
        yield Update(status.html(), clear=True)
        if self.closing.is_set():
            raise DreamvidError("the server is stopping: start it again to dream")
        job = None
        try:
            job = self.prepare(kind, values)
            if token.is_set():
                raise Cancelled("cancelled before it started")
            ckpt = Path(str(job.output) + ".dreamvid")
            if job.output.exists() and not ckpt.exists():
                status.state, status.note = "done", "already dreamed with these settings"
                status.done = status.total = 1
                yield Update(status.html(), result=str(job.output))
                return
            yield from self._render(job, status, token)
        except Cancelled:
            status.state = "stopped"
            if kind == "image":
                status.note = "stopped: nothing was written"
            elif status.done == 0:
                status.note = "stopped before the first frame was finished"
            else:
                status.note = (f"stopped at frame {status.done} of {status.total}: the finished frames are "
                               "kept, press Dream again with the same settings to resume")
            yield Update(status.html())
            raise Cancelled(status.note) from None
        except DreamvidError as e:
            status.state, status.note = "error", self._tell(job, error_text(e))
            if job is not None:
                _discard_failed(job)
            yield Update(status.html())
            raise DreamvidError(status.note) from None

    def _render(self, job: Job, status: Status, token: threading.Event) -> Iterator[Update]:
        events: "queue.Queue" = queue.Queue()
        end = object()
        outcome: Dict[str, Any] = {}

        def work():
            try:
                with self._device:
                    if token.is_set():  # cancelled while it waited for the device
                        raise Cancelled("cancelled before it started")
                    outcome["output"] = job.call(on_event=events.put, cancel=token)
            except BaseException as e:  # handed to the page's thread, which raises or reports it
                outcome["error"] = e
            finally:
                events.put(end)
                with self._lock:
                    self._workers.discard(threading.current_thread())

        worker = threading.Thread(target=work, name=f"dreamvid-{job.kind}", daemon=True)
        with self._lock:
            self._workers.add(worker)
        worker.start()
        finished, last_yield, preview = False, 0.0, None
        try:
            while not finished:
                try:
                    batch = [events.get(timeout=0.5)]
                except queue.Empty:
                    batch = []
                while True:
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                for e in batch:
                    if e is end:
                        finished = True
                        continue
                    status.update(e)
                    if e.kind == "frame" and job.kind != "image":
                        preview = e.frame
                status.stopping = token.is_set()
                now = time.monotonic()
                if not finished and (batch or now - last_yield >= 1.0) and now - last_yield >= 0.3:
                    yield Update(status.html(), preview=_shrink(preview))
                    preview, last_yield = None, now
        finally:
            # Closed early (the page or API client cancelled, or went away): stop the render. Not
            # joined here (Gradio closes iterators on its event loop); the device lock makes the
            # next job wait until this render has stopped, within one ascent step.
            if worker.is_alive():
                token.set()
        err = outcome.get("error")
        if err is not None:
            if isinstance(err, DreamvidError):
                raise err
            traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
            raise DreamvidError(f"unexpected error: {type(err).__name__}: {err} (the server's terminal "
                                "has the details)")
        status.state = "done"
        made = status.done - status.made_from
        took = _duration(time.monotonic() - status.started) if status.started is not None else None
        status.note = f"done: {status.total} {status.unit}s" + (
            f", {made} dreamed in {took}" if took and job.kind != "image" else f" in {took}" if took else "")
        yield Update(status.html(), preview=_shrink(preview), result=str(job.output))


def _discard_failed(job: Job) -> None:
    """Remove a failed job's folder when it holds nothing but the copied upload (no checkpoint,
    no result): bad uploads do not pile up in the work folder."""
    try:
        names = os.listdir(job.folder)
    except OSError:
        return
    if all(n.startswith("input") for n in names):
        shutil.rmtree(job.folder, ignore_errors=True)


def _shrink(frame):
    if frame is None:
        return None
    from ..core.imageops import resize_to_max_side
    return resize_to_max_side(frame, PREVIEW_SIDE)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------

CSS = """
.dv-status { min-height: 4.5em; }
.dv-bar { height: 10px; border-radius: 5px; background: var(--neutral-200); overflow: hidden; margin: 4px 0 8px; }
.dv-bar > div { height: 100%; background: var(--color-accent); transition: width .3s; }
.dv-status[data-state=error] .dv-line:last-child { color: var(--error-text-color); font-weight: 600; }
.dv-status[data-state=stopped] .dv-line:last-child { font-weight: 600; }
.dv-line { margin: 2px 0 !important; font-size: var(--text-md); }
.dv-probe { font-size: var(--text-sm); min-height: 1.5em; }
.dv-hint { font-size: var(--text-sm); color: var(--body-text-color-subdued); }
footer { display: none !important; }
"""

# Where each tab's values go: page field -> settings key (the function's parameter names).
DREAM_FIELDS = ("preset", "model", "step", "iterations", "octaves", "layers", "seed")
TAB_FIELDS = {
    "image": ("upload",) + DREAM_FIELDS + ("max_side",),
    "video": ("upload",) + DREAM_FIELDS + ("max_side", "blend", "next_iterations", "flow", "start", "end"),
    "zoom": ("upload", "begin") + DREAM_FIELDS + ("max_side", "frames", "zoom", "rotate", "frame_iterations",
                                                  "frame_octaves", "steady", "loop"),
}


def _describe_upload(kind: str, upload: Any) -> str:
    """One line about an upload (size, frames, sound), or what is wrong with it."""
    path = _upload_path(upload)
    if path is None:
        return ""
    name = os.path.basename(path)
    try:
        if os.path.getsize(path) == 0:
            raise DreamvidError(f"the upload {name} is empty (0 bytes): upload the file again")
        if kind == "video":
            from ..io.sources import open_source
            src = open_source(path)
            sound = ", with sound" if getattr(src, "has_audio", False) else ""
            short = (f" (the file ends at frame {src.num_frames} of the {src.promised_frames} it promises)"
                     if src.promised_frames else "")
            return (f"{name}: {src.width}×{src.height}, {src.num_frames} frames at {float(src.fps):.3g} fps"
                    f"{sound}{short}")
        from ..io.images import read_image
        h, w = read_image(path).shape[:2]
        return f"{name}: {w}×{h}"
    except DreamvidError as e:
        return "⚠ " + error_text(e).replace(path, name)


def build_app(jobs: Jobs):
    """The Gradio Blocks of the page (not launched)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from ..io.images import IMAGE_EXTS

    presets = [(f"{p.name} — {p.description}", p.name) for p in PRESETS.values()]
    models = [("the preset's", "")] + [(m, m) for m in DEFAULT_LAYERS]
    hints = preset_hints(DEFAULT_PRESET)
    samples = {"image": SAMPLES / "coffee.jpg", "video": SAMPLES / "bunny.mp4", "zoom": SAMPLES / "coffee.jpg"}
    vdef, zdef = VideoSettings(**get_preset(DEFAULT_PRESET).video), ZoomSettings()

    def session_of(request) -> str:
        return getattr(request, "session_hash", None) or "local"

    def steps(kind: str, values: Dict[str, Any], request, api: bool = False) -> Iterator[Update]:
        """Job updates, with the library's errors as gr.Error (page and API alike). A stop is an
        error for API callers (no result); the page has shown it in the status already."""
        try:
            yield from jobs.run(kind, values, session_of(request))
        except Cancelled as e:
            if api:
                raise gr.Error(str(e), title="Stopped", print_exception=False) from None
        except DreamvidError as e:
            raise gr.Error(str(e), duration=20, print_exception=False) from None

    with gr.Blocks(title="dreamvid", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown("# dreamvid\nDeepDream for images, videos and endless zoom loops, on this machine. "
                    "Cancel keeps a video's or loop's finished frames: press Dream again with the same "
                    "settings and it resumes where it stopped.")
        for kind, title in (("image", "Image"), ("video", "Video"), ("zoom", "Zoom loop")):
            with gr.Tab(title, id=kind, elem_id=f"{kind}-tab"):
                c: Dict[str, Any] = {}
                with gr.Row():
                    with gr.Column(scale=1):
                        c["upload"] = gr.File(
                            label={"image": "Photo", "video": "Video", "zoom": "Start image"}[kind],
                            file_types=list(IMAGE_EXTS) if kind != "video" else None,
                            type="filepath", elem_id=f"{kind}-upload", height=110)
                        probe = gr.Markdown("", elem_id=f"{kind}-probe", elem_classes="dv-probe")
                        if samples[kind].is_file():
                            gr.Examples([[str(samples[kind])]], inputs=[c["upload"]], label="Sample",
                                        elem_id=f"{kind}-samples")
                        if kind == "zoom":
                            c["begin"] = gr.Textbox(value="", label=LABELS["begin"], placeholder="noise, or a colour like #203040",
                                                    info="used when no image is uploaded", elem_id="zoom-begin")
                        c["preset"] = gr.Dropdown(presets, value=DEFAULT_PRESET, label=LABELS["preset"],
                                                  elem_id=f"{kind}-preset")
                        c["model"] = gr.Dropdown(models, value="", label=LABELS["model"],
                                                 info=f"preset: {hints['model']}", elem_id=f"{kind}-model")
                        with gr.Row():
                            dream_btn = gr.Button("Dream", variant="primary", elem_id=f"{kind}-dream")
                            cancel_btn = gr.Button("Cancel", variant="stop", elem_id=f"{kind}-cancel")
                        sched = "" if kind == "image" else " · schedulable"
                        with gr.Accordion("Dream settings", open=True):
                            gr.Markdown(SCHEDULE_INFO if kind != "image" else "Blank fields take the preset's value.",
                                        elem_classes="dv-hint")
                            with gr.Row():
                                c["step"] = gr.Textbox(value="", label=LABELS["step"], placeholder=hints["step"],
                                                       info=f"ascent step{sched}", elem_id=f"{kind}-step")
                                c["iterations"] = gr.Textbox(value="", label=LABELS["iterations"], placeholder=hints["iterations"],
                                                             info=f"per octave{sched}", elem_id=f"{kind}-iterations")
                                c["octaves"] = gr.Textbox(value="", label=LABELS["octaves"], placeholder=hints["octaves"],
                                                          info=f"pyramid depth{sched}", elem_id=f"{kind}-octaves")
                            with gr.Row():
                                c["layers"] = gr.Textbox(value="", label=LABELS["layers"], placeholder=hints["layers"],
                                                         info="LAYER=WEIGHT, comma-separated", elem_id=f"{kind}-layers")
                                c["seed"] = gr.Textbox(value="", label=LABELS["seed"],
                                                      placeholder=hints["seed"], elem_id=f"{kind}-seed")
                                side = {"image": "full size", "video": "full size",
                                        "zoom": str(zdef.max_side)}[kind]
                                c["max_side"] = gr.Textbox(value="", label=LABELS["max_side"],
                                                          placeholder=side, info="longest side, px",
                                                          elem_id=f"{kind}-max-side")
                        if kind == "video":
                            with gr.Accordion("Video settings", open=True):
                                with gr.Row():
                                    c["start"] = gr.Textbox(value="", label=LABELS["start"],
                                                           placeholder=str(vdef.start), elem_id="video-start")
                                    c["end"] = gr.Textbox(value="", label=LABELS["end"],
                                                         placeholder="the end", elem_id="video-end")
                                    c["flow"] = gr.Dropdown(list(FLOW_METHODS), value=vdef.flow, label=LABELS["flow"],
                                                            elem_id="video-flow")
                                with gr.Row():
                                    c["blend"] = gr.Textbox(value="", label=LABELS["blend"], placeholder=f"{vdef.blend:g}",
                                                            info=f"carried dream{sched}", elem_id="video-blend")
                                    c["next_iterations"] = gr.Textbox(value="",
                                        label=LABELS["next_iterations"], elem_id="video-next-iterations",
                                        placeholder=f"{vdef.next_iteration_ratio:.0%} of the first's",
                                        info=f"per octave{sched}")
                        if kind == "zoom":
                            with gr.Accordion("Zoom settings", open=True):
                                with gr.Row():
                                    c["frames"] = gr.Textbox(value="", label=LABELS["frames"],
                                                            placeholder=str(zdef.frames), elem_id="zoom-frames")
                                    c["zoom"] = gr.Textbox(value="", label=LABELS["zoom"], placeholder=f"{zdef.zoom:g}",
                                                           info="schedulable", elem_id="zoom-zoom")
                                    c["rotate"] = gr.Textbox(value="", label=LABELS["rotate"], placeholder=f"{zdef.rotate:g}",
                                                             info="degrees · schedulable", elem_id="zoom-rotate")
                                with gr.Row():
                                    c["frame_iterations"] = gr.Textbox(value="",
                                        label=LABELS["frame_iterations"], placeholder=str(zdef.frame_iterations),
                                        info="schedulable", elem_id="zoom-frame-iterations")
                                    c["frame_octaves"] = gr.Textbox(value="",
                                        label=LABELS["frame_octaves"], placeholder=str(zdef.frame_octaves),
                                        info="schedulable", elem_id="zoom-frame-octaves")
                                    c["steady"] = gr.Textbox(value="", label=LABELS["steady"], placeholder=f"{zdef.steady:g}",
                                                             info="0..1 · schedulable", elem_id="zoom-steady")
                                c["loop"] = gr.Checkbox(value=zdef.loop, label=LABELS["loop"], elem_id="zoom-loop")
                    with gr.Column(scale=1):
                        status = gr.HTML(IDLE_HTML, elem_id=f"{kind}-status")
                        preview = None
                        if kind != "image":
                            preview = gr.Image(label="Latest frame", type="numpy", interactive=False,
                                               elem_id=f"{kind}-preview", height=340, format="jpeg")
                        if kind == "video":
                            result = gr.Video(label="Dreamed video", interactive=False, elem_id=f"{kind}-result")
                        else:
                            result = gr.Image(label="Dreamed loop" if kind == "zoom" else "Dreamed image",
                                              type="filepath", interactive=False, elem_id=f"{kind}-result")
                        download = gr.File(label="Download", interactive=False, elem_id=f"{kind}-download", height=90)

                inputs = [c[name] for name in TAB_FIELDS[kind]]
                outputs = [status] + ([preview] if preview is not None else []) + [result, download]

                def ui_run(request: gr.Request, *values, _kind=kind, _preview=preview is not None):
                    for u in steps(_kind, dict(zip(TAB_FIELDS[_kind], values)), request):
                        out = [u.status]
                        if _preview:
                            out.append(None if u.clear else u.preview if u.preview is not None else gr.skip())
                        res = None if u.clear else u.result if u.result else gr.skip()
                        out += [res, res]
                        yield tuple(out)

                def ui_arm(request: gr.Request):
                    jobs.arm(session_of(request))

                def ui_cancel(request: gr.Request):
                    jobs.cancel(session_of(request))

                def ui_preset(name, _kind=kind):
                    h = preset_hints(name)
                    return (gr.update(info=f"preset: {h['model']}"),
                            *(gr.update(placeholder=h[f]) for f in ("step", "iterations", "octaves", "layers")),
                            gr.update(placeholder=h["seed"]))

                for fn in (ui_run, ui_arm, ui_cancel):
                    _takes_request(fn, gr)
                c["upload"].change(lambda f, _kind=kind: _describe_upload(_kind, f), c["upload"], probe,
                                   concurrency_limit=None, api_visibility="private", show_progress="hidden")
                c["preset"].change(ui_preset, c["preset"],
                                   [c["model"], c["step"], c["iterations"], c["octaves"], c["layers"], c["seed"]],
                                   concurrency_limit=None, api_visibility="private", show_progress="hidden")
                dream_btn.click(ui_arm, None, None, concurrency_limit=None, api_visibility="private",
                                show_progress="hidden").then(
                    ui_run, inputs, outputs, concurrency_id="device", concurrency_limit=1,
                    api_visibility="private", show_progress="minimal", show_progress_on=[status])
                cancel_btn.click(ui_cancel, None, None, concurrency_limit=None, api_visibility="private",
                                 show_progress="hidden")

                # The API endpoint: the same fields, the result file only.
                api_fn = _api_function(kind, steps, gr)
                api_btn = gr.Button(visible=False, elem_id=f"{kind}-api")
                api_btn.click(api_fn, inputs, result, concurrency_id="device", concurrency_limit=1,
                              api_name={"image": "dream_image", "video": "dream_video", "zoom": "zoom_loop"}[kind])
    demo.queue(default_concurrency_limit=1)
    return demo


def _takes_request(fn, gr):
    """Mark fn's `request` parameter as gr.Request: this module's annotations are strings (gradio
    is imported lazily, so Gradio could not resolve them) and Gradio finds it by its type."""
    fn.__annotations__ = {**fn.__annotations__, "request": gr.Request}
    return fn


def _api_function(kind: str, steps, gr):
    """The endpoint's function, with the fields as named parameters (gradio_client passes them by
    name; blank ones take the preset's value)."""

    def finish(values: Dict[str, Any], request) -> Iterator[Any]:
        # A generator, like the page's: Gradio can close it when the client cancels the job
        # (gradio_client's Job.cancel()), which stops the render. Only the last value is the result.
        for u in steps(kind, values, request, api=True):
            if u.result:
                yield u.result
                return
            yield gr.skip()
        raise gr.Error("the job ended without a result")

    if kind == "image":
        def dream_image(image, preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                        seed="", max_side="", request: gr.Request = None):
            """Dream an image file with a preset (and optional field overrides); returns the PNG."""
            yield from finish(dict(zip(TAB_FIELDS["image"], (image, preset, model, step, iterations, octaves, layers,
                                                         seed, max_side))), request)
        return _takes_request(dream_image, gr)
    if kind == "video":
        def dream_video(video, preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                        seed="", max_side="", blend="", next_iterations="", flow="dis", start="", end="",
                        request: gr.Request = None):
            """Dream a video file; returns the MP4. Resumes a stopped job with the same settings."""
            yield from finish(dict(zip(TAB_FIELDS["video"], (video, preset, model, step, iterations, octaves, layers,
                                                         seed, max_side, blend, next_iterations, flow, start,
                                                         end))), request)
        return _takes_request(dream_video, gr)

    def zoom_loop(image, begin="", preset=DEFAULT_PRESET, model="", step="", iterations="", octaves="", layers="",
                  seed="", max_side="", frames="", zoom="", rotate="", frame_iterations="",
                  frame_octaves="", steady="", loop=True, request: gr.Request = None):
        """An endless zoom loop from an image (or begin='noise' / '#203040'); returns the GIF."""
        yield from finish(dict(zip(TAB_FIELDS["zoom"], (image, begin, preset, model, step, iterations, octaves, layers,
                                                    seed, max_side, frames, zoom, rotate, frame_iterations,
                                                    frame_octaves, steady, loop))), request)
    return _takes_request(zoom_loop, gr)


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------

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
    demo = build_app(jobs)
    import gradio as gr

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    allowed = [str(jobs.jobs_dir)] + ([str(SAMPLES)] if SAMPLES.is_dir() else [])
    stop = stop or threading.Event()
    from starlette.middleware import Middleware

    from .local_only import LocalOnly

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
        jobs.shutdown()
        demo.close()


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
