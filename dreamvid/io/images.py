"""Image files: read (within a pixel budget), write (atomically), sizes, natural order of frame files."""

from __future__ import annotations

import os
import re
from typing import Optional, Tuple

import cv2
import numpy as np

from ..core.atomic import atomic_write, make_dirs, remove_empty_dirs
from ..config.settings import MAX_PIXELS
from ..errors import DreamvidError
from .headers import check_pixels, header_size


IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

JPEG_QUALITY = 95

def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8
            and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got "
                         f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")

def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); alpha is dropped, grey becomes RGB.

    InputTooLarge, before decoding, when the header says it has more than `max_pixels` pixels."""
    if not os.path.isfile(path):
        raise DreamvidError(f"image not found: {path} (check the path)")
    size = header_size(path)
    if size is not None:
        check_pixels(path, *size, max_pixels, what="an image")
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


def _image_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image file: from its header when cheap, else by decoding it."""
    size = header_size(path)
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
