"""Exact affine camera motion of zoom loops (zoom, rotation, shift about the centre, per frame)."""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np


def affine_matrix(width: int, height: int, zoom: float, rotate: float = 0.0,
                  translate: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The 2x3 matrix of one frame's motion (source -> destination pixel coordinates).

    Scale by `zoom` (>1 zooms in: content grows) and rotate by `rotate` degrees counter-clockwise
    about the image centre ((width-1)/2, (height-1)/2), then shift content by `translate` (dx, dy) px.
    """
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    m = cv2.getRotationMatrix2D(centre, float(rotate), float(zoom))
    m[0, 2] += float(translate[0])
    m[1, 2] += float(translate[1])
    return m


def zoom_step(rgb: np.ndarray, zoom: float, rotate: float = 0.0,
              translate: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """One frame's motion: (H, W, 3) uint8 or float32 in [0, 1] -> float32 (H, W, 3) in [0, 1].

    Bicubic resampling; borders reflected, so zooming out or shifting never shows black edges.
    """
    h, w = rgb.shape[:2]
    x = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32, copy=False)
    m = affine_matrix(w, h, zoom, rotate, translate)
    out = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0.0, 1.0, out=out)
