"""Resumable render state: one lossless PNG per finished frame, a manifest, and a lock.

Layout of a checkpoint folder (``out.mp4.dreamvid/`` beside the output by default)::

    manifest.json     what identifies the run (input, pixel settings, model, weights, device,
                      versions), the frame count, and how far it got
    lock              held with flock() by the rendering process (the OS releases it on kill -9);
                      holds that process's pid, for the message a second process prints
    frame_000000.png  finished frames, numbered from 0 = the first rendered frame

Crash safety. Every file is written to a temporary name (``*.tmp-<pid>``), fsynced, renamed
into place, and the folder itself fsynced, so after a crash or power cut a file under its final
name is complete and durable, and frame i+1 never exists without frame i. Temporaries a killed
process left behind are deleted when the checkpoint is next opened. Frames on disk, not the
manifest's progress counter, say how far a render got: on resume every frame is checked (PNG
structure and the CRC of every chunk, so truncation and flipped bits are both caught) and the
run continues after the last good frame of the unbroken run 0, 1, …; a damaged frame is redone,
and frames after it are rendered again (they depend on it through the temporal carry).

Identity. A checkpoint is resumed only by the run that made it: the manifest's identity (and
frame count) must equal the new run's, else :class:`DreamvidError` names what differs, e.g.
``settings.blend was 0.7, now 0.5``. A checkpoint with no finished frame is simply replaced,
since nothing would be lost. ``open(fresh=True)`` discards any checkpoint.
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import zlib
from typing import Dict, Iterable, Iterator, List, Optional

import cv2
import numpy as np

from .. import __version__
from ..core.atomic import TMP_MARK, atomic_write, fsync_dir, make_dirs, remove_empty_dirs, remove_path
from ..errors import DreamvidError

try:  # POSIX; elsewhere the lock is advisory only through the pid written in it
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MANIFEST = "manifest.json"
LOCK = "lock"
_FRAME_PREFIX, _FRAME_SUFFIX = "frame_", ".png"
_CHUNK_PREFIX = "chunk_"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def checkpoint_folder(output: str, checkpoint_dir: Optional[str] = None) -> str:
    """``out.mp4`` -> ``out.mp4.dreamvid`` beside it, or inside `checkpoint_dir`."""
    base = os.path.basename(os.path.normpath(output)) + ".dreamvid"
    parent = checkpoint_dir if checkpoint_dir else os.path.dirname(os.path.abspath(os.path.normpath(output)))
    return os.path.join(parent, base)


class DamagedFrame(DreamvidError):
    """A checkpoint frame turned out unreadable while encoding; the next run redoes it."""


def png_intact(data: bytes) -> bool:
    """True if `data` is a structurally complete PNG whose every chunk's CRC is right.

    Catches truncation, garbage appended and flipped bits without decoding pixels (~1 GB/s).
    """
    if not data.startswith(_PNG_SIGNATURE):
        return False
    pos, n, first = len(_PNG_SIGNATURE), len(data), True
    while pos + 12 <= n:
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > n or (first and kind != b"IHDR"):
            return False
        crc = struct.unpack(">I", data[end - 4:end])[0]
        if zlib.crc32(data[pos + 4:end - 4]) != crc:
            return False
        if kind == b"IEND":
            return end == n
        pos, first = end, False
    return False


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


#: The most a zlib "stored" block holds (its LEN field is 16 bits).
_STORED_MAX = 65535


def png_stored(rgb: np.ndarray) -> bytes:
    """RGB uint8 (H, W, 3) as an uncompressed PNG: no row filters, zlib "stored" blocks, one IDAT.

    Lossless and an ordinary PNG (any decoder reads it, png_intact checks it). The zlib stream is
    laid out here rather than by ``zlib.compress(level=0)``, which copies through small buffers:
    one buffer, two copies, one Adler-32 and one CRC (1080p: ~10 ms; zlib's level 0 ~18 ms;
    OpenCV's level 0, which still filters every row, ~120 ms).
    """
    h, w, c = rgb.shape
    if c != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    rows = np.empty((h, 1 + 3 * w), np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = rgb.reshape(h, 3 * w)
    raw = rows.reshape(-1)
    n = raw.size
    full, rest = divmod(n, _STORED_MAX)
    blocks = full + (1 if rest else 0)
    zsize = 2 + 5 * blocks + n + 4
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    head = _PNG_SIGNATURE + _png_chunk(b"IHDR", header) + struct.pack(">I", zsize) + b"IDAT"
    out = np.empty(len(head) + zsize + 4 + 12, np.uint8)
    out[:len(head)] = np.frombuffer(head, np.uint8)
    z = out[len(head):len(head) + zsize]
    z[:2] = (0x78, 0x01)  # deflate, 32K window, no dictionary, "fastest" level
    if full:  # blocks of _STORED_MAX bytes: BFINAL/BTYPE byte, LEN and its complement, little-endian
        grid = z[2:2 + full * (_STORED_MAX + 5)].reshape(full, _STORED_MAX + 5)
        grid[:, :5] = (0, 0xFF, 0xFF, 0x00, 0x00)
        grid[:, 5:] = raw[:full * _STORED_MAX].reshape(full, _STORED_MAX)
    if rest:
        at = 2 + full * (_STORED_MAX + 5)
        z[at:at + 5] = np.frombuffer(struct.pack("<BHH", 1, rest, rest ^ 0xFFFF), np.uint8)
        z[at + 5:at + 5 + rest] = raw[full * _STORED_MAX:]
    else:
        z[2 + (full - 1) * (_STORED_MAX + 5)] = 1  # the last block is final
    z[-4:] = np.frombuffer(struct.pack(">I", zlib.adler32(raw)), np.uint8)
    tail = len(head) + zsize
    out[tail:tail + 4] = np.frombuffer(struct.pack(">I", zlib.crc32(z, zlib.crc32(b"IDAT"))), np.uint8)
    out[tail + 4:] = np.frombuffer(_png_chunk(b"IEND", b""), np.uint8)
    return out.tobytes()


# -- differences, readable -----------------------------------------------------------------

def _flatten(d, prefix: str = "") -> Dict[str, object]:
    out: Dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.loads(json.dumps(v))  # tuples -> lists, as they come back from JSON
    return out


def _show(key: str, value: object) -> str:
    if value is None:
        return "unset"
    if key.endswith("mtime_ns") and isinstance(value, int):
        t = datetime.datetime.fromtimestamp(value / 1e9)
        return t.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, list) and all(isinstance(v, list) and len(v) == 2 for v in value):
        return ",".join(f"{a}={b}" for a, b in value)  # layer mixes: block8=1.0,block10=0.5
    text = (value or '""') if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:28] + "…" + text[-28:]


def describe_differences(old: dict, new: dict, limit: int = 3) -> str:
    """'settings.blend was 0.7, now 0.5; input.bytes was …, now …' for the keys that differ.

    Keys are the identity's nested names without the top-level group ('dream.settings.step' is
    shown as 'settings.step'); at most `limit` are listed, then '(and N more)'.
    """
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))

    def name(k: str) -> str:
        for group in ("dream.", "runtime."):  # 'dream.runtime.device' reads 'device'
            if k.startswith(group):
                k = k[len(group):]
        return k

    shown = [f"{name(k)} was {_show(k, a.get(k))}, now {_show(k, b.get(k))}" for k in keys[:limit]]
    more = f" (and {len(keys) - limit} more)" if len(keys) > limit else ""
    return "; ".join(shown) + more


def lock_folder(folder: str):
    """Take the exclusive lock of `folder` (flock on its ``lock`` file; the OS releases it when the
    process dies, even by kill -9) and write our pid in it. Returns the open file: closing it
    releases the lock. DreamvidError naming the holder's pid when another process has it."""
    f = os.fdopen(os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o644), "r+")
    if fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            other = f.read().strip() or "unknown"
            f.close()
            raise DreamvidError(f"another dreamvid process (pid {other}) is rendering this output "
                                f"(checkpoint {folder} is locked): wait for it or stop it") from None
    pid = str(os.getpid())
    os.pwrite(f.fileno(), pid.encode(), 0)  # overwrite in place: a reader never sees it empty
    os.ftruncate(f.fileno(), len(pid))
    return f


# -- the checkpoint ------------------------------------------------------------------------

class Checkpoint:
    """The checkpoint of one render. Use as a context manager (closing releases the lock).

    folder: where it lives (see checkpoint_folder); identity: a JSON-able dict of everything
    that affects the frames' pixels; total: how many frames the render makes.
    """

    def __init__(self, folder: str, identity: dict, total: int, chunk_frames: Optional[int] = None,
                 chunk_ext: str = ".mp4", chunk_span: Optional[range] = None, transient: bool = False):
        self.folder = folder
        self.identity = {**identity, "dreamvid": __version__}
        self.total = total
        # Streamed renders: frames [a + c·n, a + (c+1)·n) of the span [a, b) (all frames unless
        # given) are encoded into chunk c as they are saved (pipeline/job.py, ChunkEncoder), and
        # their PNGs deleted once it is complete (but for the last saved frames, which the carry
        # needs). Frames outside the span stay PNGs (a segment's cross-faded first frames and its
        # lead-out, which the driver blends).
        self.chunk_frames, self.chunk_ext = chunk_frames, chunk_ext
        span = range(0, total) if chunk_span is None else chunk_span
        self.chunk_from, self.chunk_until = span.start, min(span.stop, total)
        # Frames that live only until their chunk is encoded are stored uncompressed (png_stored:
        # a fraction of level 1's time a frame, a third more bytes, still lossless and CRC-checked);
        # frames that stay (GIF, zoom and folder outputs, --keep-frames) are compressed.
        self._png_level = 0 if transient else 1
        self.completed = 0  # length of the unbroken run of finished frames 0, 1, …
        self._lock_file = None
        self._dir_fd: Optional[int] = None
        self._made: List[str] = []  # folders open() created (the checkpoint's, parents first)

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, fresh: bool = False) -> int:
        """Lock the folder, check or write the manifest; return how many frames are done.

        Refuses (DreamvidError) when another process holds the lock, or when the folder holds
        finished frames of a different input or pixel setting (unless `fresh`, which discards
        it). Temporaries of a killed process are deleted; damaged frames are redone.
        """
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise DreamvidError(f"checkpoint path {self.folder} is a file: move it away or use --checkpoint-dir")
        existed = os.path.isdir(self.folder)
        try:
            self._made = make_dirs(self.folder)
        except OSError as e:
            raise DreamvidError(f"cannot create the checkpoint folder {self.folder} ({e.strerror}): "
                                "use --checkpoint-dir DIR to keep it elsewhere") from None
        if not existed:
            fsync_dir(os.path.dirname(os.path.abspath(self.folder)))
        self._lock()
        try:
            self._dir_fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            self._dir_fd = None
        try:
            return self._open_locked(fresh)
        except BaseException:
            self.close()
            raise

    def _open_locked(self, fresh: bool) -> int:
        self._remove_temporaries()
        has_frames = bool(self._frame_numbers() or self._chunk_numbers())
        manifest = None if fresh else self._read_manifest()
        if manifest is None and has_frames and not fresh:
            raise DreamvidError(f"the checkpoint {self.folder} has frames but its {MANIFEST} is missing or "
                                "unreadable, so they cannot be matched to this run: add --fresh to start over")
        if manifest is not None and has_frames:
            old = dict(manifest.get("identity") or {})
            old_total = (manifest.get("progress") or {}).get("total")
            if old != _roundtrip(self.identity) or old_total != self.total:
                diff = describe_differences(old, self.identity)
                if old_total != self.total:
                    diff = "; ".join(filter(None, [f"frame count was {old_total}, now {self.total}", diff]))
                raise DreamvidError(f"the checkpoint {self.folder} is from a different run ({diff}): "
                                    "run the same command as before to resume it, or add --fresh to start over")
            return self.done()
        # Nothing to keep: no manifest and no frames, a frameless checkpoint, or --fresh.
        self._clear_frames()
        self._write_manifest(0)
        self.completed = 0
        return 0

    @classmethod
    def open_finished(cls, folder: str) -> "Checkpoint":
        """A finished checkpoint another run made (a segment), locked and checked: every frame
        intact. Its identity is the manifest's. DreamvidError if it is missing or unfinished."""
        probe = cls(folder, {}, 0)
        manifest = probe._read_manifest() if os.path.isdir(folder) else None
        if manifest is None:
            raise DreamvidError(f"{folder} is not a dreamvid checkpoint (no readable {MANIFEST}): "
                                "render its segment first")
        identity = dict(manifest.get("identity") or {})
        identity.pop("dreamvid", None)
        total = int((manifest.get("progress") or {}).get("total") or 0)
        stream = identity.get("stream") if isinstance(identity.get("stream"), dict) else {}
        span = stream.get("span") or [0, total]
        ckpt = cls(folder, identity, total, stream.get("chunk_frames"), "." + str(stream.get("kind", "mp4")),
                   range(int(span[0]), int(span[1])))
        ckpt.identity = manifest.get("identity") or {}
        ckpt._lock()
        try:
            done = ckpt.done()
        except BaseException:
            ckpt.close()
            raise
        if done < ckpt.total:
            ckpt.close()
            raise DreamvidError(f"the checkpoint {folder} is not finished ({done} of {ckpt.total} frames): "
                                "render its segment again to finish it")
        return ckpt

    @classmethod
    def recorded_done(cls, folder: str) -> int:
        """Frames the manifest of `folder` says are saved (0 if none or unreadable): unlocked and
        unchecked, for a quick look at another run's progress (open() checks the frames)."""
        data = cls(folder, {}, 0)._read_manifest() if os.path.isdir(folder) else None
        try:
            return int(((data or {}).get("progress") or {}).get("done") or 0)
        except (AttributeError, TypeError, ValueError):
            return 0

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def remove(self) -> None:
        """Delete the whole folder (after a successful encode).

        Frames go first and the manifest and lock last, so a crash midway leaves either a
        resumable checkpoint or one without frames; the lock is held until its file is gone,
        so a process starting meanwhile either refuses or makes a new folder of its own.
        """
        if self._lock_file is None:  # not opened by us: take the lock before deleting
            if not os.path.isdir(self.folder):
                return
            self._lock()
        try:
            # Last frame first: a crash midway leaves a prefix 0..k, still a valid checkpoint.
            for name in sorted(os.listdir(self.folder), reverse=True):
                if name not in (MANIFEST, LOCK):
                    remove_path(os.path.join(self.folder, name))
            remove_path(os.path.join(self.folder, MANIFEST))
            remove_path(os.path.join(self.folder, LOCK))
            try:
                os.rmdir(self.folder)
            except OSError:  # another process already made new files in it: theirs now
                pass
            else:
                remove_empty_dirs(self._made)  # and the parents this run made (--checkpoint-dir)
        finally:
            self.close()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # A run that stopped before saving any frame leaves nothing: not the checkpoint it
        # created, nor the folders made for it (it would resume from nothing all the same).
        if exc_type is not None and self._made and self._lock_file is not None:
            try:
                empty = not self._frame_numbers()
            except OSError:
                empty = False
            if empty:
                self.remove()
                return
        self.close()

    # -- frames ----------------------------------------------------------------------------

    def frame_path(self, index: int) -> str:
        return os.path.join(self.folder, f"{_FRAME_PREFIX}{index:06d}{_FRAME_SUFFIX}")

    def save(self, index: int, rgb: np.ndarray) -> None:
        """Write frame `index` (RGB uint8 H×W×3) losslessly, atomically and durably; record progress.

        Frames are saved in order (frame k+1 after frame k: the manifest's progress is the unbroken
        run); pipeline/writer.py calls this from its one thread."""
        if self._png_level == 0:
            data = png_stored(np.ascontiguousarray(rgb))
        else:
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]),
                                   [cv2.IMWRITE_PNG_COMPRESSION, self._png_level])
            if not ok:
                raise DreamvidError(f"could not encode frame {index} as PNG")
            data = buf.tobytes()
        try:
            atomic_write(self.frame_path(index), data, self._dir_fd)
            if index == self.completed:
                self.completed = index + 1
            self._write_manifest(self.completed)
        except OSError as e:
            raise DreamvidError(f"could not write checkpoint frame to {self.folder} ({e.strerror}): "
                                "free some disk space or use --checkpoint-dir, then run again to resume") from None

    # -- chunks (streamed renders) -----------------------------------------------------------

    def chunk_path(self, c: int) -> str:
        return os.path.join(self.folder, f"{_CHUNK_PREFIX}{c:06d}{self.chunk_ext}")

    def chunk_range(self, c: int) -> range:
        """The frames chunk c holds: fixed by frame index, whenever the render was stopped."""
        n, a = self.chunk_frames, self.chunk_from
        return range(a + c * n, min(a + (c + 1) * n, self.chunk_until))

    @property
    def chunks(self) -> int:
        """How many chunks the whole render has (0 when not streamed)."""
        span = self.chunk_until - self.chunk_from
        return -(-span // self.chunk_frames) if self.chunk_frames and span > 0 else 0

    def encoded_chunks(self) -> int:
        """Length of the unbroken run of encoded chunks 0, 1, … on disk."""
        present, c = set(self._chunk_numbers()), 0
        while c < self.chunks and c in present:
            c += 1
        return c

    def pending_chunk(self) -> Optional[int]:
        """The next chunk whose frames are all saved but which is not encoded yet, or None."""
        c = self.encoded_chunks()
        if c < self.chunks and self.chunk_range(c).stop <= self.completed:
            return c
        return None

    def chunk_written(self, c: int) -> None:
        """Chunk c is in place (renamed there by its writer): make the rename durable."""
        if self._dir_fd is not None:
            try:
                os.fsync(self._dir_fd)
            except OSError:
                pass

    def prune(self, keep_last: int = 1) -> None:
        """Delete the PNGs of encoded chunks, but for the last `keep_last` saved frames (what a
        resume carries from: the last frame, or those back to the carry's anchor)."""
        covered = self.chunk_range(self.encoded_chunks() - 1).stop if self.encoded_chunks() else 0
        for i in self._frame_numbers():
            if self.chunk_from <= i < covered and i < self.completed - keep_last:
                remove_path(self.frame_path(i))

    def load(self, index: int) -> Optional[np.ndarray]:
        """Frame `index` as RGB uint8, or None if missing, truncated, damaged or unreadable."""
        data = self._read_frame(index)
        if data is None:
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if img is None else np.ascontiguousarray(img[..., ::-1])

    def done(self) -> int:
        """Number of leading frames (0, 1, …) that are complete and intact on disk.

        Every frame is checked; the first missing or damaged one ends the run, and it and all
        later frames are deleted (they will be rendered again).
        """
        chunks = self.encoded_chunks() if self.chunk_frames else 0
        present = set(self._frame_numbers())

        def intact(i: int) -> bool:
            return i in present and self._read_frame(i) is not None

        if chunks and not all(intact(i) for i in range(self.chunk_from)):
            chunks = 0  # a frame before the chunks is lost: everything after it is redone
        n = self.chunk_range(chunks - 1).stop if chunks else 0
        for stale in (c for c in self._chunk_numbers() if c >= chunks):  # after a gap: redone
            remove_path(self.chunk_path(stale))

        while True:
            start = n
            while n < self.total and intact(n):
                n += 1
            if n > start or not chunks or n >= self.total or intact(n - 1):
                break
            # The carry starts from the frame before n, and it is gone: redo the last chunk.
            chunks -= 1
            remove_path(self.chunk_path(chunks))
            n = self.chunk_range(chunks - 1).stop if chunks else 0
        for stale in sorted(i for i in present if i >= n):
            remove_path(self.frame_path(stale))
        self.completed = n
        return n

    def frames(self, order: Iterable[int]) -> Iterator[np.ndarray]:
        """The frames numbered in `order` as RGB uint8, for the final encode."""
        for i in order:
            img = self.load(i)
            if img is None:
                raise DamagedFrame(f"checkpoint frame {self.frame_path(i)} is damaged: run the same command "
                                   "again to redo it")
            yield img

    # -- internals -------------------------------------------------------------------------

    def _read_frame(self, index: int) -> Optional[bytes]:
        try:
            with open(self.frame_path(index), "rb") as f:
                data = f.read()
        except OSError:
            return None
        return data if png_intact(data) else None

    def _frame_numbers(self) -> List[int]:
        out = []
        for name in os.listdir(self.folder):
            if name.startswith(_FRAME_PREFIX) and name.endswith(_FRAME_SUFFIX):
                digits = name[len(_FRAME_PREFIX):-len(_FRAME_SUFFIX)]
                if digits.isdigit():
                    out.append(int(digits))
        return out

    def _lock(self) -> None:
        self._lock_file = lock_folder(self.folder)

    def _read_manifest(self) -> Optional[dict]:
        path = os.path.join(self.folder, MANIFEST)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_manifest(self, done: int) -> None:
        data = {"identity": self.identity, "progress": {"done": done, "total": self.total}}
        atomic_write(os.path.join(self.folder, MANIFEST), json.dumps(data, indent=1).encode(), self._dir_fd)

    def _remove_temporaries(self) -> None:
        for name in os.listdir(self.folder):
            if TMP_MARK in name:
                remove_path(os.path.join(self.folder, name))

    def _chunk_numbers(self) -> List[int]:
        out = []
        for name in os.listdir(self.folder):
            stem = os.path.splitext(name)[0]
            if name.startswith(_CHUNK_PREFIX) and stem[len(_CHUNK_PREFIX):].isdigit():
                out.append(int(stem[len(_CHUNK_PREFIX):]))
        return out

    def _clear_frames(self) -> None:
        for name in os.listdir(self.folder):
            if name.startswith((_FRAME_PREFIX, _CHUNK_PREFIX)) or TMP_MARK in name:
                remove_path(os.path.join(self.folder, name))


def _roundtrip(d: dict) -> dict:
    return json.loads(json.dumps(d))
