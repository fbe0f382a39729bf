"""Seeded noise start images."""

from __future__ import annotations

import math

import cv2
import numpy as np


def smooth_noise(width: int, height: int, seed: int, std: float = 0.15) -> np.ndarray:
    """Seeded multi-scale value noise (H, W, 3) float32 around mid-grey, `std` per channel.

    Coarse cells (64 px) weigh most, fine cells (4 px) least: blotches with some grain, which the
    network turns into patterns far better than white noise.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x20A4])
    out = np.zeros((height, width, 3), np.float32)
    for cell in (64, 32, 16, 8, 4):
        gh, gw = max(2, math.ceil(height / cell) + 1), max(2, math.ceil(width / cell) + 1)
        grid = rng.random((gh, gw, 3), dtype=np.float32) - 0.5
        out += math.sqrt(cell) * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    out -= out.reshape(-1, 3).mean(0)
    out *= std / max(float(out.std()), 1e-6)
    return np.clip(out + 0.5, 0.0, 1.0)
