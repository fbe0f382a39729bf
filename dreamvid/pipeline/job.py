"""The job runner: one render's life, written once for videos, zoom loops and segments.

A :class:`FrameJob` says only how frame k of its render is made from the state before it.
:func:`run_job` does everything else: open or resume the checkpoint (refusing another run's),
produce the missing frames and save each (lossless, atomic), encode the output from the
checkpoint (audio muxed once), remove the checkpoint, and report all of it as events.

Stopping. The reporter's ``cancel`` is checked between frames and between ascent steps (the
jobs pass ``reporter.check`` to the engine as its step callback). A cancelled render — or a
``KeyboardInterrupt`` in a Python session — leaves a consistent checkpoint (every saved frame
is complete) and raises :class:`Cancelled` saying how far it got; the same call resumes it.
A failed encode keeps the checkpoint too, so the rerun only encodes.
"""

from __future__ import annotations

import abc
from fractions import Fraction
from typing import Callable, Optional, Sequence

import numpy as np

from ..config.settings import RunOptions
from ..errors import Cancelled, DreamvidError
from ..io.sinks import AudioSpec, open_sink
from ..store.checkpoint import Checkpoint, DamagedFrame, checkpoint_folder
from .events import Reporter

StepCallback = Callable[[], None]


class FrameJob(abc.ABC):
    """How the frames of one render are made. Frames are numbered k = 0 … total − 1 in the
    checkpoint (the order they are rendered in)."""

    total: int      # frames the render puts in its checkpoint
    fps: Fraction   # playback rate of the output

    @abc.abstractmethod
    def identity(self) -> dict:
        """Everything that changes the pixels (input, settings, model, runtime), JSON-able."""

    @abc.abstractmethod
    def position(self, k: int) -> str:
        """Frame k in the words users know it by, e.g. 'frame 112 of 250' (k = frames done)."""

    @abc.abstractmethod
    def resume(self, ckpt: Checkpoint, done: int) -> None:
        """Restore the state before frame `done` (0 = a fresh start) from the checkpoint."""

    @abc.abstractmethod
    def make(self, k: int, on_step: StepCallback) -> np.ndarray:
        """Frame k as RGB uint8 (H, W, 3); `on_step` is called after every ascent step."""

    def order(self) -> Sequence[int]:
        """Checkpoint frames in playing order (default: the rendered order)."""
        return range(self.total)

    def audio(self) -> Optional[AudioSpec]:
        """Sound to mux into video outputs, or None."""
        return None

    def close(self) -> None:
        """Release what the job holds (threads, decoders)."""


def run_job(job: FrameJob, output: str, run: RunOptions, reporter: Reporter, encode: bool = True) -> str:
    """Render `job` into `output` through its checkpoint (see the module doc); returns `output`.

    encode=False stops after the last frame is saved, keeping the checkpoint (a segment of a
    distributed render: its frames are joined later).
    """
    ckpt = Checkpoint(checkpoint_folder(output, run.checkpoint_dir), job.identity(), job.total)
    with ckpt:
        done = ckpt.open(fresh=run.fresh)
        if 0 < done < job.total:
            reporter.message(f"resuming at {job.position(done)}")
        elif done == job.total and encode:
            reporter.message(f"all {job.total} frames are in the checkpoint; encoding")
        reporter.emit("start", total=job.total, resumed_at=done, output=output)
        produce_frames(job, ckpt, done, reporter)
        if not encode:
            reporter.emit("done", output=ckpt.folder)
            return output
        encode_frames(ckpt, job.order(), output, job.fps, job.audio(), run, reporter)
    if not run.keep_frames:
        ckpt.remove()
    reporter.emit("done", output=output)
    return output


def produce_frames(job: FrameJob, ckpt: Checkpoint, done: int, reporter: Reporter) -> None:
    """Make frames done … total − 1 into `ckpt`, one "frame" event each."""
    try:
        if done < job.total:
            job.resume(ckpt, done)
        for k in range(done, job.total):
            reporter.check()
            frame = job.make(k, reporter.check)
            ckpt.save(k, frame)
            reporter.emit("frame", index=k, total=job.total, frame=frame)
    except (Cancelled, KeyboardInterrupt):
        k = ckpt.completed  # a frame saved just as the stop came is kept too
        raise Cancelled(f"stopped at {job.position(k)}; the {k} finished frames are kept in "
                        f"{ckpt.folder}: run the same command again to resume") from None
    finally:
        job.close()


def encode_frames(ckpt: Checkpoint, order: Sequence[int], output: str, fps: Fraction,
                  audio: Optional[AudioSpec], run: RunOptions, reporter: Reporter) -> None:
    """Write the checkpoint's frames in `order` to `output` (atomically, through the sink).

    A stop or a failure leaves `output` as it was and the checkpoint whole: the rerun encodes.
    """
    kept = f"the {len(order)} dreamed frames are kept in {ckpt.folder}"
    try:
        frames = ckpt.frames(order)
        first = next(frames)
        height, width = first.shape[:2]
        with open_sink(output, fps, width, height, audio=audio, quality=run.quality) as sink:
            for n, frame in enumerate(_chain(first, frames), start=1):
                reporter.check()
                sink.write(frame)
                reporter.emit("encode", index=n, total=len(order))
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled(f"stopped while encoding {output}; {kept}: run the same command again "
                        "to encode them") from None
    except DamagedFrame:
        raise
    except DreamvidError as e:  # e.g. ffmpeg failed: keep the checkpoint, say so
        raise DreamvidError(f"{e}; {kept}: run the same command again to encode them "
                            "without dreaming again") from None


def _chain(first, rest):
    yield first
    yield from rest
