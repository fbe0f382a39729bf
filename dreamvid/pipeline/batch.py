"""Batches: many inputs, one model, each file into its own output in one folder.

:func:`batch_inputs` says whether the command line's inputs are a batch (several inputs, a
folder of videos, a glob of videos) and lists the files; :func:`dream_batch` renders them one
after the other with one :class:`~dreamvid.engine.dreamer.Dreamer`. Each video renders through
its own checkpoint beside its output (as a single render does), so a batch stopped and started
again resumes where it stopped, file by file. A file that finished is recorded in the output
folder's ``.dreamvid-batch.json`` by a hash of everything that makes its pixels (input, settings,
model, mask): the next run leaves it alone ("skipped") unless something changed. A file that fails
gets its one-line error and the batch goes on; a stop (``cancel``) ends the batch at once.

Events: each file begins with a ``file`` event (index: 1-based file number, total: files, text:
the input, output), then that file's own events (start, frame, step, encode, message, done).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Sequence

from ..config.settings import DreamSettings, MaskSettings, RunOptions, VideoSettings
from ..config.vary import Varying
from ..core.atomic import atomic_write
from ..engine.dreamer import Dreamer
from ..errors import Cancelled, DreamvidError
from ..io.images import IMAGE_EXTS, _is_image_file, _natural_key
from ..store.identity import input_fingerprint
from .common import build_dreamer
from .events import CancelToken, Event, EventHandler, Reporter
from .image import dream_image
from .job import run_job
from .mask import MaskInput
from .video import video_job

#: Extensions read as videos in a folder or a glob of a batch.
VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
#: Output extensions a batch keeps from the input; other videos are written as .mp4.
KEPT_EXTS = (".mp4", ".webm", ".gif")
RECORD = ".dreamvid-batch.json"


def _is_video_file(path: str) -> bool:
    return os.path.isfile(path) and os.path.splitext(path)[1].lower() in VIDEO_EXTS


def batch_inputs(specs: Sequence[str]) -> Optional[List[str]]:
    """The files of a batch, or None when `specs` is one ordinary input (a video, an image, a frame
    folder or a glob of frames). A batch: several inputs (each a file; a folder or a glob among them
    adds its videos), or one folder or glob whose files are videos."""
    specs = [os.fspath(s) for s in specs]
    if len(specs) == 1:
        s = specs[0]
        if os.path.isdir(s):
            names = [os.path.join(s, n) for n in os.listdir(s)]
            if any(_is_image_file(f) for f in names) or not any(_is_video_file(f) for f in names):
                return None  # a frame folder (or nothing dreamable: the render says so)
            return sorted((f for f in names if _is_video_file(f)), key=_natural_key)
        if glob.has_magic(s) and not os.path.exists(s):
            matches = sorted(glob.glob(s), key=_natural_key)
            if any(_is_image_file(f) for f in matches) or not any(_is_video_file(f) for f in matches):
                return None
            return [f for f in matches if _is_video_file(f)]
        return None
    files: List[str] = []
    for s in specs:
        if os.path.isdir(s):
            files += sorted((os.path.join(s, n) for n in os.listdir(s) if _is_video_file(os.path.join(s, n))),
                            key=_natural_key)
        elif glob.has_magic(s) and not os.path.exists(s):
            files += [f for f in sorted(glob.glob(s), key=_natural_key) if os.path.isfile(f)]
        else:
            files.append(s)  # a missing or broken file fails on its own, in the batch
    return files


def batch_outputs(inputs: Sequence[str], folder: str) -> List[str]:
    """Each input's output in `folder`: its name, with its extension for .mp4/.webm/.gif and
    images, .mp4 for other videos. Two inputs with one output name are refused, before any work."""
    outs, seen = [], {}
    for f in inputs:
        stem, ext = os.path.splitext(os.path.basename(f.rstrip("/")))
        ext = ext.lower()
        out_ext = ".png" if ext in IMAGE_EXTS else (ext if ext in KEPT_EXTS else ".mp4")
        out = os.path.join(folder, stem + out_ext)
        if out in seen:
            raise DreamvidError(f"{seen[out]} and {f} would both be written to {out}: rename one, or "
                                "render them in two batches")
        seen[out] = f
        outs.append(out)
    return outs


def check_batch_folder(folder: str) -> None:
    """A batch writes into a folder: refuse an existing file (nothing is overwritten)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise DreamvidError(f"-o {folder} is a file: a batch writes one output per input into a folder; "
                            "give a folder, e.g. -o dreamed/")


@dataclass
class FileResult:
    """One file of a batch: status done | resumed | skipped (finished before) | failed (error)."""

    input: str
    output: str
    status: str
    error: Optional[str] = None
    exception: Optional[DreamvidError] = field(default=None, repr=False)  # for front ends' own wording


@dataclass
class BatchReport:
    """What :func:`dream_batch` returns: one FileResult per input, in order."""

    files: List[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "failed" for f in self.files)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.files)

    def summary(self) -> List[str]:
        """Lines for people: the counts, then each failed file with why."""
        n = len(self.files)
        head = (f"batch: {n} files: {self.count('done')} done, {self.count('resumed')} resumed, "
                f"{self.count('skipped')} already done before, {self.count('failed')} failed")
        return [head] + [f"failed: {f.input}: {f.error}" for f in self.files if f.status == "failed"]


def _digest(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _read_record(folder: str) -> dict:
    try:
        with open(os.path.join(folder, RECORD)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def dream_batch(inputs: Sequence[str], folder: str, settings: Optional[DreamSettings] = None,
                video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None,
                dreamer: Optional[Dreamer] = None, *, vary: Optional[Mapping[str, Varying]] = None,
                mask: Optional[MaskInput] = None, mask_settings: Optional[MaskSettings] = None,
                on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None) -> BatchReport:
    """Dream every file of `inputs` (videos; images too) into `folder` (see the module doc).

    settings, video, run, vary, mask: as for dream_video, the same for every file (images use the
    dream settings, video.max_side and a still mask). The model is loaded once. Returns a
    :class:`BatchReport`; a failing file does not stop the batch, a stop raises Cancelled (the
    rerun resumes). `folder` must not be a file (DreamvidError, nothing written).
    """
    check_batch_folder(folder)
    if not inputs:
        raise DreamvidError("the batch has no inputs: no videos in that folder or pattern")
    outputs = batch_outputs(inputs, folder)
    video = (video or VideoSettings()).validate()
    run = (run or RunOptions()).validate()
    os.makedirs(folder, exist_ok=True)
    dreamer = build_dreamer(settings, run, dreamer)
    record = _read_record(folder)
    report = BatchReport()
    reporter = Reporter(on_event, cancel)
    for k, (src, out) in enumerate(zip(inputs, outputs), start=1):
        reporter.emit("file", index=k, total=len(inputs), text=src, output=out)
        key = os.path.basename(out)
        resumed = []

        def relay(e: Event) -> None:
            if e.kind == "start" and e.resumed_at:
                resumed.append(e.resumed_at)
            if on_event is not None:
                on_event(e)
        try:
            reporter.check(f"stopped before {src}: run the same command again to go on")
            if os.path.splitext(src)[1].lower() in IMAGE_EXTS:
                digest = _digest({"input": input_fingerprint(src), "dream": dreamer.identity,
                                  "max_side": video.max_side, "mask": _mask_key(mask, mask_settings)})
                if record.get(key) == digest and os.path.isfile(out):
                    report.files.append(FileResult(src, out, "skipped"))
                    continue
                dream_image(src, out, dreamer.settings, max_side=video.max_side, dreamer=dreamer, on_event=relay,
                            cancel=cancel, max_pixels=run.max_pixels, mask=mask, mask_settings=mask_settings)
            else:
                job, _ = video_job(src, None, video, run, vary, dreamer, mask=mask, mask_settings=mask_settings)
                digest = _digest({"job": job.identity(), "quality": run.quality})
                if record.get(key) == digest and os.path.exists(out):
                    job.close()
                    report.files.append(FileResult(src, out, "skipped"))
                    continue
                run_job(job, out, run, Reporter(relay, cancel))
        except (Cancelled, KeyboardInterrupt):
            raise
        except DreamvidError as e:
            reporter.message(f"{src}: {e}")
            report.files.append(FileResult(src, out, "failed", str(e), e))
            continue
        record = {**_read_record(folder), key: digest}
        atomic_write(os.path.join(folder, RECORD), json.dumps(record, indent=1, sort_keys=True).encode())
        report.files.append(FileResult(src, out, "resumed" if resumed else "done"))
    return report


def _mask_key(mask, mask_settings) -> Optional[dict]:
    """What identifies an image's mask for the batch record."""
    if mask is None:
        return None
    if hasattr(mask, "shape"):
        src = hashlib.sha256(mask.tobytes()).hexdigest()[:32]
    else:
        src = input_fingerprint(os.fspath(mask))
    return {"mask": src, "settings": (mask_settings or MaskSettings()).to_dict()}
