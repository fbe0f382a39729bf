"""Conversions between the I/O edge (numpy RGB uint8 / float32 HxWx3) and tensors (1, 3, H, W).

There is one float -> uint8 rule (`quantize`): clip to [0, 1], scale by 255, round half up.
Every frame that is saved, carried or shown goes through it, so pixels agree everywhere.
"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """RGB uint8 (H, W, 3) or float32 in [0, 1] -> (1, 3, H, W) float32 in [0, 1] on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(rgb))
    x = x.float().div_(255.0) if rgb.dtype == np.uint8 else x.float()
    return x.permute(2, 0, 1).unsqueeze(0).to(device)


def to_float(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> float32 (H, W, 3) in [0, 1] on the CPU (no quantisation)."""
    return x[0].permute(1, 2, 0).clamp(0, 1).float().cpu().numpy()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> RGB uint8 (H, W, 3), rounded."""
    return quantize(to_float(x))


def quantize(x: np.ndarray) -> np.ndarray:
    """Float (H, W, 3) in [0, 1] -> RGB uint8 (H, W, 3): clipped, x·255 rounded half up."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (H, W, 3) in [0, 1]."""
    return rgb.astype(np.float32) / 255.0
