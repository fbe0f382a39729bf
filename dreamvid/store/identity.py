"""What identifies a render's input, for checkpoint manifests."""

from __future__ import annotations

import hashlib
import os
from typing import Dict, Optional, Sequence


def input_fingerprint(path: str, files: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """What identifies an input: for a file its path, byte size, mtime and a hash of its first
    and last MiB; for a folder or glob (`files`) a hash of every file's name, size and mtime.

    For anything else (a colour, 'noise') just ``{"path": path}``.
    """
    if files and (len(files) > 1 or files[0] != path):
        listing = hashlib.sha256()
        for f in files:
            st = os.stat(f)
            listing.update(f"{os.path.basename(f)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return {"path": path, "files": len(files), "listing_sha256": listing.hexdigest()[:32]}
    if not os.path.isfile(path):
        return {"path": path}
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return {"path": os.path.abspath(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "sha256_ends": h.hexdigest()[:32]}
