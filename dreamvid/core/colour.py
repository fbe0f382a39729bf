"""Colour: per-channel statistics, colour hold, contrast-keeping blends, '#RRGGBB' parsing."""

from __future__ import annotations

import re
from typing import Optional, Tuple

import numpy as np

from ..errors import DreamvidError

_COLOUR_RE = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def channel_stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of (H, W, 3) float."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return flat.mean(0), flat.std(0)


def match_colour(x: np.ndarray, mean: np.ndarray, std: np.ndarray, strength: float) -> np.ndarray:
    """Move (H, W, 3) float32 [0, 1] a fraction `strength` of the way to the per-channel `mean`/`std`.

    strength 0 leaves x alone, 1 matches exactly. The std gain is bounded (0.5 … 2) so a nearly flat
    frame is not blown up into noise.
    """
    if strength <= 0:
        return x
    m, s = channel_stats(x)
    gain = np.clip(std / np.maximum(s, 1e-6), 0.5, 2.0)
    matched = (x - m) * gain + mean
    out = x + strength * (matched.astype(np.float32) - x)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def blend_keep_contrast(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(1 − w)·a + w·b with each channel's contrast kept at the blend of the two contrasts.

    Averaging two unrelated textures halves their contrast mid-fade (a visible grey dip); the
    std is rescaled to (1 − w)·std(a) + w·std(b) so the fade keeps its punch.
    """
    if w <= 0:
        return a
    if w >= 1:
        return b
    x = (1.0 - w) * a + w * b
    (ma, sa), (mb, sb) = channel_stats(a), channel_stats(b)
    return match_colour(x, (1 - w) * ma + w * mb, (1 - w) * sa + w * sb, 1.0)


def parse_colour(spec: str) -> Optional[Tuple[int, int, int]]:
    """'#203040' or '#234' -> (r, g, b) ints; None if `spec` does not start with '#'.

    Raises DreamvidError for a '#...' that is not a 3- or 6-digit hex colour.
    """
    if not spec.startswith("#"):
        return None
    m = _COLOUR_RE.fullmatch(spec.strip())
    if not m:
        raise DreamvidError(f"bad colour '{spec}': write it as #RRGGBB or #RGB, e.g. #203040 (quote it in the shell)")
    hexa = m.group(1)
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    return tuple(int(hexa[i:i + 2], 16) for i in (0, 2, 4))
