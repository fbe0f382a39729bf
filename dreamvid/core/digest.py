"""Content digests of files (weights, uploads): read in 1 MiB pieces, never whole into memory."""

from __future__ import annotations

import hashlib


def file_sha256(path: str) -> str:
    """Hex SHA-256 of the file at `path`."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
