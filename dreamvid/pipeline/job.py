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

Streaming (mp4 / webm outputs of jobs whose frames play in the order they are rendered). Frames
are encoded into the output in chunks of ``RunOptions.chunk_frames`` as the render goes: each
frame of chunk c = [c·n, (c+1)·n) goes to that chunk's encoder (no audio) as soon as it is saved,
and when the last one is in, ``chunk_c.mp4`` is renamed into the checkpoint (from its temporary
name) and the chunk's PNGs deleted, but for the last saved frames, which a resume carries from. A
stop loses only the open chunk's partial encode: the next run feeds that chunk's saved frames to
a new encoder first (the same frames in the same order: the same bytes). Chunk boundaries are
fixed by frame index, so where a run was stopped never changes the output. At the end the chunks
are joined without re-encoding, the audio muxed once: disk in use stays about the output so far
plus one chunk of PNGs, and finishing costs seconds. GIF outputs need a palette from all frames
and zoom loops play their frames out of order: they keep every frame until the end. Folder
outputs get hard links to the checkpoint's PNGs (no second copy).
"""

from __future__ import annotations

import abc
import contextlib
from fractions import Fraction
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from ..config.settings import RunOptions
from ..core.atomic import remove_stale_temporaries
from ..errors import Cancelled, DreamvidError
from ..io.sinks import CRF_RANGE, AudioSpec, FfmpegSink, FolderSink, crf_for, join_chunks, open_sink, output_kind
from ..store.checkpoint import Checkpoint, DamagedFrame, checkpoint_folder
from .events import Reporter
from .writer import FrameWriter, InlineWriter

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

    #: True when order() is the rendered order, so finished frames can be encoded as they come.
    streamable = False
    #: The last saved frames resume() reads (kept when encoded chunks' frames are pruned).
    carry_frames = 1


def run_job(job: FrameJob, output: str, run: RunOptions, reporter: Reporter, encode: bool = True,
            segment_chunks: Optional[Tuple[str, range]] = None) -> str:
    """Render `job` into `output` through its checkpoint (see the module doc); returns `output`.

    encode=False stops after the last frame is saved, keeping the checkpoint (a segment of a
    distributed render: its frames are joined later). segment_chunks=(kind, span) streams such a
    segment's frames `span` into chunks of that kind ("mp4" or "webm") as it goes, for the final
    output's join; the frames outside `span` stay PNGs.
    """
    span = None
    if encode:
        kind = output_kind(output)
        stream = job.streamable and kind in ("mp4", "webm") and bool(run.chunk_frames)
    else:  # a segment has no output of its own
        kind, span = segment_chunks if segment_chunks else ("folder", None)
        stream = segment_chunks is not None and kind in ("mp4", "webm") and bool(run.chunk_frames)
    if kind in CRF_RANGE:  # a quality the encoder refuses is said before any frame is dreamed
        crf_for(kind, run.quality)
    identity = job.identity()
    if stream:  # chunks already encoded must match: the format and quality are part of the run
        identity["stream"] = {"kind": kind, "chunk_frames": run.chunk_frames, "quality": run.quality}
        if span is not None:
            identity["stream"]["span"] = [span.start, span.stop]
    ckpt = Checkpoint(checkpoint_folder(output, run.checkpoint_dir), identity, job.total,
                      run.chunk_frames if stream else None, "." + kind, span,
                      transient=stream and not run.keep_frames)
    with ckpt:
        done = ckpt.open(fresh=run.fresh)
        if encode:  # the lock is ours: a killed run's half-written output (or join list) can go
            remove_stale_temporaries(output)
        if stream and not run.keep_frames:
            ckpt.prune(job.carry_frames)
        if 0 < done < job.total:
            reporter.message(f"resuming at {job.position(done)}")
        elif done == job.total and encode:
            reporter.message(f"all {job.total} frames are in the checkpoint; encoding")
        reporter.emit("start", total=job.total, resumed_at=done, output=output)
        chunks = ChunkEncoder(ckpt, job.fps, run, job.carry_frames) if stream else None
        produce_frames(job, ckpt, done, reporter, chunks, overlap=run.overlap)
        if not encode:
            reporter.emit("done", output=ckpt.folder)
            return output
        if stream:
            join_output(ckpt, output, job.fps, job.audio(), run, reporter)
        else:
            encode_frames(ckpt, job.order(), output, job.fps, job.audio(), run, reporter)
    if not run.keep_frames:
        ckpt.remove()
    reporter.emit("done", output=output)
    return output


def produce_frames(job: FrameJob, ckpt: Checkpoint, done: int, reporter: Reporter,
                   chunks: Optional["ChunkEncoder"] = None, overlap: bool = False) -> None:
    """Make frames done … total − 1 into `ckpt`, one "frame" event each (once the frame is handed
    to the writer); `chunks` gets every saved frame (and first encodes what a stopped run left).
    overlap: saves (and the chunk encodes) run in a background writer (pipeline/writer.py), in
    order; all are saved when this returns or raises."""
    writer = None
    after_save = None if chunks is None else chunks.saved
    try:
        if chunks is not None:
            chunks.catch_up()
        if done < job.total:
            job.resume(ckpt, done)
        writer = FrameWriter(ckpt, after_save) if overlap else InlineWriter(ckpt, after_save)
        for k in range(done, job.total):
            reporter.check()
            frame = job.make(k, reporter.check)
            writer.put(k, frame)
            reporter.emit("frame", index=k, total=job.total, frame=frame)
        writer.flush()
    except (Cancelled, KeyboardInterrupt):
        if writer is not None:
            writer.flush()  # the frames made before the stop are kept
        k = ckpt.completed  # a frame saved just as the stop came is kept too
        if k == 0:  # nothing to keep (a checkpoint this run made is removed on the way out)
            raise Cancelled(f"stopped at {job.position(0)}, before any frame was finished: run the "
                            "same command again to start") from None
        raise Cancelled(f"stopped at {job.position(k)}; the {k} finished frames are kept in "
                        f"{ckpt.folder}: run the same command again to resume") from None
    finally:
        if writer is not None:
            writer.close()
        if chunks is not None:
            chunks.close()  # an open chunk's partial encode goes: the next run redoes it
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
            if isinstance(sink, FolderSink):  # the checkpoint's PNGs are the output: link them
                frames = (ckpt.frame_path(i) for i in order)
                first = next(frames)
            for n, frame in enumerate(_chain(first, frames), start=1):
                reporter.check()
                sink.write_png(frame) if isinstance(frame, str) else sink.write(frame)
                reporter.emit("encode", index=n, total=len(order))
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled(f"stopped while encoding {output}; {kept}: run the same command again "
                        "to encode them") from None
    except DamagedFrame:
        raise
    except DreamvidError as e:  # e.g. ffmpeg failed: keep the checkpoint, say so
        raise DreamvidError(f"{e}; {kept}: run the same command again to encode them "
                            "without dreaming again") from None


def encode_chunks(ckpt: Checkpoint, fps: Fraction, run: RunOptions, keep_last: int = 1) -> None:
    """Encode every chunk whose frames are all saved (see the module doc), then drop their PNGs
    but for the last `keep_last` saved frames (FrameJob.carry_frames)."""
    while (c := ckpt.pending_chunk()) is not None:
        span = ckpt.chunk_range(c)
        frames = ckpt.frames(span)
        first = next(frames)
        with _chunk_sink(ckpt, c, fps, run, first) as sink:
            for frame in _chain(first, frames):
                sink.write(frame)
        ckpt.chunk_written(c)
    if not run.keep_frames:
        ckpt.prune(keep_last)  # older frames are no longer the carry's start


def _chunk_sink(ckpt: Checkpoint, c: int, fps: Fraction, run: RunOptions, like: np.ndarray) -> FfmpegSink:
    """The encoder of chunk c (its temporary file, renamed into place when closed) for frames like `like`."""
    height, width = like.shape[:2]
    return FfmpegSink(ckpt.chunk_path(c), ckpt.chunk_ext.lstrip("."), fps, width, height, quality=run.quality,
                      chunk=True)


class ChunkEncoder:
    """A streamed render's chunks, encoded as their frames are saved (see the module doc).

    :meth:`saved` is called with each frame just saved, in order (the writer's thread); a chunk's
    encoder starts at its first frame, fed first the frames of that chunk an earlier run saved.
    """

    def __init__(self, ckpt: Checkpoint, fps: Fraction, run: RunOptions, keep_last: int = 1):
        self.ckpt, self.fps, self.run, self.keep_last = ckpt, fps, run, keep_last
        self._chunk: Optional[int] = None
        self._sink: Optional[FfmpegSink] = None

    def catch_up(self) -> None:
        """Encode the chunks whose frames were all saved by an earlier run."""
        encode_chunks(self.ckpt, self.fps, self.run, self.keep_last)

    def saved(self, k: int, frame: np.ndarray) -> None:
        if self.ckpt.chunk_from <= k < self.ckpt.chunk_until:  # else a frame kept as a PNG
            self._encode(k, frame)
        if not self.run.keep_frames:
            self.ckpt.prune(self.keep_last)  # older frames are no longer the carry's start

    def _encode(self, k: int, frame: np.ndarray) -> None:
        ckpt = self.ckpt
        c = (k - ckpt.chunk_from) // ckpt.chunk_frames
        span = ckpt.chunk_range(c)
        if self._chunk != c:
            self.close()
            self._sink, self._chunk = _chunk_sink(ckpt, c, self.fps, self.run, frame), c
            for earlier in ckpt.frames(range(span.start, k)):  # saved before a stop
                self._sink.write(earlier)
        self._sink.write(frame)
        if k == span.stop - 1:
            sink, self._sink, self._chunk = self._sink, None, None
            sink.close()
            ckpt.chunk_written(c)

    def close(self) -> None:
        """Drop an unfinished chunk's encode (its frames stay saved)."""
        sink, self._sink, self._chunk = self._sink, None, None
        if sink is not None:
            sink.abort()


def join_output(ckpt: Checkpoint, output: str, fps: Fraction, audio: Optional[AudioSpec],
                run: RunOptions, reporter: Reporter) -> None:
    """The output from the checkpoint's chunks, joined without re-encoding (audio muxed once)."""
    with join_errors(output, f"the {ckpt.total} dreamed frames are kept in {ckpt.folder}"):
        reporter.check()
        encode_chunks(ckpt, fps, run)  # a run stopped right after its last frame
        parts = [ckpt.chunk_path(c) for c in range(ckpt.chunks)]
        join_chunks(parts, output, ckpt.total, fps, audio)
        reporter.emit("encode", index=ckpt.total, total=ckpt.total)


@contextlib.contextmanager
def join_errors(output: str, kept: str):
    """A stop or a failure while joining `output`, said the same way everywhere: the frames are
    kept (`kept` says where) and the same command joins them."""
    try:
        yield
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled(f"stopped while joining {output}; {kept}: run the same command again "
                        "to join them") from None
    except DamagedFrame:
        raise
    except DreamvidError as e:
        raise DreamvidError(f"{e}; {kept}: run the same command again to join them "
                            "without dreaming again") from None


def _chain(first, rest):
    yield first
    yield from rest
