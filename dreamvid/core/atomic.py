"""Atomic, durable files: an output is either the old file or the whole new one, never a torn one.

Everything is written to a hidden temporary sibling (same folder, so the same disk), then renamed
into place. A temporary's name carries TMP_MARK, so a folder's leftovers from a killed process can
be found and deleted.
"""

from __future__ import annotations

import os
import shutil
from typing import List, Optional

TMP_MARK = ".tmp-"


def tmp_name(final: str, ext: str = "") -> str:
    """Hidden temporary sibling of `final`: 'dir/.name.tmp-<pid><ext>'."""
    folder, name = os.path.split(os.path.abspath(final))
    return os.path.join(folder, f".{name}{TMP_MARK}{os.getpid()}{ext}")


def remove_stale_temporaries(final: str) -> List[str]:
    """Delete the temporaries of `final` left by processes that no longer run (a kill -9 mid-write
    cannot clean up after itself); return the paths removed. A live writer's are kept."""
    folder, name = os.path.split(os.path.abspath(final))
    prefix = f".{name}{TMP_MARK}"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        if not entry.startswith(prefix):
            continue
        digits = entry[len(prefix):].split(".", 1)[0]
        if digits.isdigit() and not _process_alive(int(digits)):
            remove_path(os.path.join(folder, entry))
            removed.append(os.path.join(folder, entry))
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: asks whether the process exists, sends nothing
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but is someone else's, or cannot tell: keep it
        return True
    return True


def remove_path(path: str) -> None:
    """Delete a file or a folder tree; a missing one is fine."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


def make_dirs(path: str) -> List[str]:
    """Create folder `path` and its missing parents; return the folders this call created,
    outermost first (empty if `path` existed), for :func:`remove_empty_dirs` on a failure."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    os.makedirs(missing[0] if missing else path, exist_ok=True)
    return missing[::-1]


def remove_empty_dirs(created: List[str]) -> None:
    """Remove the folders of `created` (as make_dirs returned them) that are empty, innermost
    first; stop at the first one that is not (it holds something else, now or by someone else)."""
    for path in reversed(created):
        try:
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError:
            return


def fsync_dir(path: str) -> None:
    """Make renames and creations inside folder `path` durable (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder; nothing better to do there
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, dir_fd: Optional[int] = None, ext: str = "") -> None:
    """Write `data` to `path` so that `path` is either the old file or the whole new one,
    durably: temporary name, fsync, rename, fsync of the folder (`dir_fd` if given).

    ext: suffix of the temporary's name (some tools pick a format by extension).
    """
    tmp = tmp_name(path, ext)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, or Ctrl-C: leave no temporary behind
        remove_path(tmp)
        raise
    if dir_fd is not None:
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
    else:
        fsync_dir(os.path.dirname(os.path.abspath(path)))
