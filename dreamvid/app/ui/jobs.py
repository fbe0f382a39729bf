"""Jobs: a press of Dream (or an API call) -> a job folder, the settings and one library call in a
worker thread, one render at a time on the device, with a cancel token per job.

A job lives in ``WORK/jobs/<kind>-<hash>/``, the hash of the upload's bytes, its name, every
setting and the device. The upload is copied there once, so the same upload with the same
settings is the same job at the same paths: a cancelled video or zoom loop resumes from its
checkpoint (the library's, beside the output: "resuming at frame N of M"), and a finished one
is shown at once.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import queue
import re
import shutil
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from ...config.schedule import Schedule
from ...config.settings import RunOptions
from ...core.digest import file_sha256
from ...errors import Cancelled, DreamvidError, SettingError
from .fields import (_blank, dream_settings, error_text, field_value, mask_settings, preview_choice,
                     video_settings, zoom_settings)
from .status import Status, _duration

#: Longest side of the live preview (the result keeps its own size).
PREVIEW_SIDE = 640


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

    # -- the device: one render (or live dream) at a time ---------------------------------------

    def try_hold_device(self) -> bool:
        """Take the device for work outside a job (the Live tab) if no render holds it; True if taken."""
        return self._device.acquire(blocking=False)

    def release_device(self) -> None:
        self._device.release()

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

    def _take_upload(self, folder: Path, path: str, name: str = "input") -> str:
        """Copy the upload into the job folder once as `name` + its extension (the checkpoint
        identifies its input by path, size and mtime: the copy keeps them from one press of Dream
        to the next)."""
        target = folder / (name + os.path.splitext(path)[1].lower())
        if not (target.is_file() and target.stat().st_size == os.path.getsize(path)):
            folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return str(target)

    def prepare(self, kind: str, v: Dict[str, Any]) -> Job:
        """Settings from the page's values, the job's folder and the library call (DreamvidError
        for bad input). kind: image | video | zoom | preview (the video tab's preview sheet)."""
        path = _upload_path(v.get("upload"))
        begin = str(v.get("begin") or "").strip()
        if path is None:
            if kind == "zoom" and begin:
                spec, name, digest = begin, begin, hashlib.sha256(begin.encode()).hexdigest()
            else:
                what = {"image": "an image", "video": "a video", "preview": "a video",
                        "zoom": "an image (or type noise or a colour like #203040 in Start from)"}[kind]
                raise DreamvidError(f"no input: upload {what} or pick a sample")
        else:
            name = _checked_upload(path)
            spec, digest = path, file_sha256(path)
        vary: Dict[str, Schedule] = {}
        run = self.run_options
        if kind == "image":
            dream = dream_settings(v)
            other = {"max_side": field_value("max_side", v.get("max_side"))}
            if other["max_side"] is not None and other["max_side"] < 1:
                raise SettingError("max_side", other["max_side"], "must be at least 1")
        elif kind in ("video", "preview"):
            dream = dream_settings(v, vary)
            other = video_settings(v, vary)
        else:
            dream = dream_settings(v, vary)
            other = zoom_settings(v, vary)
        parts = [digest, name, dream.to_dict(), other if isinstance(other, dict) else other.to_dict(),
                 {k: s.text for k, s in sorted(vary.items())}, run.device]
        # The mask (optional): its bytes and settings are part of the job (and of the checkpoint).
        mask_path = _upload_path(v.get("mask"))
        mask_s = mask_settings(v, None if kind == "image" else vary) if mask_path else None
        if mask_path is None:
            vary.pop("mask_strength", None)  # a strength without a mask shapes nothing
        else:
            parts += [file_sha256(mask_path), _checked_upload(mask_path, "mask"), mask_s.to_dict(),
                      getattr(vary.get("mask_strength"), "text", None)]
        frames, count = preview_choice(v.get("preview_frames")) if kind == "preview" else (None, None)
        if kind == "preview":
            parts += [frames, count]
        folder = self._job_folder(kind, parts)
        source = self._take_upload(folder, spec) if path is not None else spec
        mask = self._take_upload(folder, mask_path, "mask") if mask_path is not None else None
        stem = _safe_stem(name) if path is not None else "noise" if begin.lower() == "noise" else "colour"
        output = folder / {"image": f"{stem}-dream.png", "video": f"{stem}-dream.mp4",
                           "zoom": f"{stem}-loop.gif", "preview": f"{stem}-preview.png"}[kind]
        masked = dict(mask=mask, mask_settings=mask_s)

        if kind == "image":
            from ...pipeline.image import dream_image

            def call(on_event, cancel):
                return dream_image(source, str(output), dream, max_side=other["max_side"], device=run.device,
                                   weights=run.weights, on_event=on_event, cancel=cancel, **masked)
        elif kind == "video":
            from ...pipeline.video import dream_video

            def call(on_event, cancel):
                return dream_video(source, str(output), dream, other, run, vary=vary or None,
                                   on_event=on_event, cancel=cancel, **masked)
        elif kind == "preview":
            from ...pipeline.preview import preview_sheet
            shown = {v.get("preset") or dream.model: dream}

            def call(on_event, cancel):
                sheet = preview_sheet(source, shown, other, run, frames=frames, count=count, vary=vary or None,
                                      on_event=on_event, cancel=cancel, **masked)
                return sheet.save(str(output))
        else:
            from ...pipeline.zoom import zoom_loop

            def call(on_event, cancel):
                return zoom_loop(source, str(output), dream, other, run, vary=vary or None,
                                 on_event=on_event, cancel=cancel, **masked)
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
            if kind in ("image", "preview"):
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


def _checked_upload(path: str, what: str = "upload") -> str:
    """The upload's file name, once it is there and not empty (else DreamvidError)."""
    name = os.path.basename(path)
    the = "the upload" if what == "upload" else f"the {what}"
    if not os.path.isfile(path):
        raise DreamvidError(f"{the} {name} is gone from the server: upload it again")
    if os.path.getsize(path) == 0:
        raise DreamvidError(f"{the} {name} is empty (0 bytes): upload the file again")
    return name


def _discard_failed(job: Job) -> None:
    """Remove a failed job's folder when it holds nothing but the copied uploads (no checkpoint,
    no result): bad uploads do not pile up in the work folder."""
    try:
        names = os.listdir(job.folder)
    except OSError:
        return
    if all(n.startswith(("input", "mask")) for n in names):
        shutil.rmtree(job.folder, ignore_errors=True)


def _shrink(frame):
    if frame is None:
        return None
    from ...core.imageops import resize_to_max_side
    return resize_to_max_side(frame, PREVIEW_SIDE)

