"""Resumable render state: one lossless PNG per finished frame, a manifest, and a lock.

Layout of a checkpoint folder (``out.mp4.dreamvid/`` beside the output by default)::

    manifest.json     what identifies the run (input, pixel settings, model, weights, version)
                      and how far it got
    lock              held with flock() by the rendering process (released by the OS on kill -9)
    frame_000000.png  finished frames, numbered from 0 = the first rendered frame

Every file is written to a temporary name, fsynced and renamed, so a file under its final
name is complete; a frame that is truncated or unreadable anyway (a full disk, a crash of the
file system) is detected on resume and redone.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Iterator, Optional

import cv2
import numpy as np

from . import __version__
from .errors import DreamvidError

try:  # POSIX; elsewhere the lock is advisory only through the pid written in it
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MANIFEST = "manifest.json"
LOCK = "lock"
_PNG_END = b"IEND\xaeB`\x82"  # the last 8 bytes of every complete PNG


def checkpoint_folder(output: str, checkpoint_dir: Optional[str] = None) -> str:
    """``out.mp4`` -> ``out.mp4.dreamvid`` beside it, or inside `checkpoint_dir`."""
    base = os.path.basename(os.path.normpath(output)) + ".dreamvid"
    parent = checkpoint_dir if checkpoint_dir else os.path.dirname(os.path.abspath(os.path.normpath(output)))
    return os.path.join(parent, base)


def input_fingerprint(path: str) -> Dict[str, object]:
    """Path, size, mtime and a content hash of the first and last MiB of a file (or of a folder's files)."""
    import hashlib

    def one(p: str) -> Dict[str, object]:
        st = os.stat(p)
        h = hashlib.sha256()
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
            if st.st_size > 2 << 20:
                f.seek(-(1 << 20), os.SEEK_END)
                h.update(f.read(1 << 20))
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": h.hexdigest()[:32]}

    if os.path.isfile(path):
        return {"path": os.path.abspath(path), **one(path)}
    return {"path": path}


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _flatten(d, prefix: str = "") -> Dict[str, object]:
    out: Dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.loads(json.dumps(v))  # tuples -> lists, as they come back from JSON
    return out


def describe_differences(old: dict, new: dict) -> str:
    """'settings.blend: 0.7 -> 0.5, input.mtime_ns: … -> …' for the keys that differ."""
    a, b = _flatten(old), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys)


class Checkpoint:
    """The checkpoint of one render. Use as a context manager (holds the lock)."""

    def __init__(self, folder: str, identity: dict, total: int):
        self.folder = folder
        self.identity = {**identity, "dreamvid": __version__}
        self.total = total
        self._lock_file = None

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, fresh: bool = False) -> int:
        """Lock the folder, check or write the manifest; return how many frames are done.

        Refuses (DreamvidError) when another process holds the lock, or when the folder was
        made by a different input or pixel setting (unless `fresh`, which discards it).
        """
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise DreamvidError(f"checkpoint path {self.folder} is a file: move it away or use --checkpoint-dir")
        os.makedirs(self.folder, exist_ok=True)
        self._lock()
        manifest = self._read_manifest()
        if manifest is not None and not fresh and manifest.get("identity") != _roundtrip(self.identity):
            diff = describe_differences(manifest.get("identity", {}), self.identity)
            self.close()
            raise DreamvidError(f"the checkpoint {self.folder} belongs to a different run ({diff}): "
                                "run the same command as before to resume it, or add --fresh to start over")
        if manifest is None or fresh:
            self._clear_frames()
            self._write_manifest(0)
            return 0
        return self.done()

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def remove(self) -> None:
        """Delete the whole folder (after a successful encode)."""
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames ----------------------------------------------------------------------------

    def frame_path(self, index: int) -> str:
        return os.path.join(self.folder, f"frame_{index:06d}.png")

    def save(self, index: int, rgb: np.ndarray) -> None:
        """Write frame `index` (RGB uint8 H×W×3) losslessly and atomically, then record progress."""
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise DreamvidError(f"could not encode frame {index} as PNG")
        try:
            _atomic_write(self.frame_path(index), buf.tobytes())
            self._write_manifest(index + 1)
        except OSError as e:
            raise DreamvidError(f"could not write checkpoint frame to {self.folder} ({e.strerror}): "
                                "free some disk space or use --checkpoint-dir, then run again to resume") from None

    def load(self, index: int) -> Optional[np.ndarray]:
        """Frame `index` as RGB uint8, or None if missing, truncated or unreadable."""
        path = self.frame_path(index)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if not data.endswith(_PNG_END):
            return None
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return None if img is None else np.ascontiguousarray(img[..., ::-1])

    def done(self) -> int:
        """Number of leading frames (0, 1, …) that are complete on disk; a bad one ends the run."""
        n = 0
        while n < self.total and os.path.exists(self.frame_path(n)):
            n += 1
        # Only the last few can be damaged by a crash (all earlier ones were renamed in place
        # before later ones began), but a frame is cheap to check: check the last one fully.
        while n > 0 and self.load(n - 1) is None:
            n -= 1
        for stale in range(n, self.total):
            if os.path.exists(self.frame_path(stale)):
                os.remove(self.frame_path(stale))
        return n

    def frames(self, count: int) -> Iterator[np.ndarray]:
        """Frames 0..count-1 as RGB uint8, for the final encode."""
        for i in range(count):
            img = self.load(i)
            if img is None:
                raise DreamvidError(f"checkpoint frame {self.frame_path(i)} is damaged: run the same command "
                                    "again to redo it")
            yield img

    # -- internals -------------------------------------------------------------------------

    def _lock(self) -> None:
        path = os.path.join(self.folder, LOCK)
        f = open(path, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                other = f.read().strip() or "unknown"
                f.close()
                raise DreamvidError(f"another dreamvid process (pid {other}) is rendering this output "
                                    f"(checkpoint {self.folder} is locked): wait for it or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lock_file = f

    def _read_manifest(self) -> Optional[dict]:
        path = os.path.join(self.folder, MANIFEST)
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _write_manifest(self, done: int) -> None:
        data = {"identity": self.identity, "progress": {"done": done, "total": self.total}}
        _atomic_write(os.path.join(self.folder, MANIFEST), json.dumps(data, indent=1).encode())

    def _clear_frames(self) -> None:
        for name in os.listdir(self.folder):
            if name.startswith("frame_") or ".tmp-" in name:
                os.remove(os.path.join(self.folder, name))


def _roundtrip(d: dict) -> dict:
    return json.loads(json.dumps(d))
