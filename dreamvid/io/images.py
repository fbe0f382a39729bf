"""Image files: read, write (atomically), sizes from headers, natural order of frame files."""

from __future__ import annotations

import os
import re
import struct
from typing import Optional, Tuple

import cv2
import numpy as np

from ..core.atomic import atomic_write, make_dirs, remove_empty_dirs
from ..errors import DreamvidError


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

JPEG_QUALITY = 95

def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8
            and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got "
                         f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")

def read_image(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); alpha is dropped, grey becomes RGB."""
    if not os.path.isfile(path):
        raise DreamvidError(f"image not found: {path} (check the path)")
    # np.fromfile + imdecode instead of imread: imread fails on non-ASCII paths on some systems.
    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DreamvidError(f"cannot decode image {path}: the file is corrupt or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

def _encode_image(ext: str, rgb: np.ndarray) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DreamvidError(f"OpenCV could not encode a {ext} image")
    return buf.tobytes()

def write_image(path: str, rgb: np.ndarray) -> None:
    """Write RGB uint8 (H, W, 3) as PNG or JPEG (by extension), atomically; makes parent folders
    (and removes the ones it made if the write fails)."""
    _check_rgb(rgb)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg"):
        raise DreamvidError(f"cannot write image {path}: use a .png, .jpg or .jpeg file name")
    data = _encode_image(ext, rgb)
    made = make_dirs(os.path.dirname(os.path.abspath(path)))
    try:
        atomic_write(path, data, ext=ext)
    except BaseException:
        remove_empty_dirs(made)
        raise


def _header_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:2] != b"\xff\xd8":
            return None
        f.seek(2)
        while True:  # walk the JPEG segments up to the start-of-frame one
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                return None
            code = marker[1]
            if code == 0x01 or 0xD0 <= code <= 0xD8 or code == 0xFF:  # no length field
                if code == 0xFF:
                    f.seek(-1, 1)  # fill byte: the real marker code follows
                continue
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                return None
            if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
                sof = f.read(5)
                if len(sof) < 5:
                    return None
                _, h, w = struct.unpack(">BHH", sof)
                return w, h
            f.seek(struct.unpack(">H", length_bytes)[0] - 2, 1)

def _image_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image file: from its header when cheap, else by decoding it."""
    try:
        size = _header_size(path)
    except OSError:
        size = None
    if size is None:
        h, w = read_image(path).shape[:2]
        size = (w, h)
    return size

def _natural_key(path: str):
    """Sort key putting 'frame2' before 'frame10' (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", path)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], path

def _is_image_file(path: str) -> bool:
    name = os.path.basename(path)
    return (os.path.isfile(path) and not name.startswith(".")
            and os.path.splitext(name)[1].lower() in IMAGE_EXTS)
