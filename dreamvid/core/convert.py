"""Conversions between the I/O edge (numpy RGB uint8 / float32 HxWx3) and tensors (1, 3, H, W).

There is one float -> uint8 rule: clip to [0, 1], scale by 255, round half up (`quantize` on
numpy, `quantize_tensor` on the device: the same float32 operations, so the same bytes). Every
frame that is saved, carried or shown goes through it, so pixels agree everywhere.
"""

from __future__ import annotations

import cv2
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


def quantize_tensor(x: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) float in [0, 1] -> (1, 3, H, W) uint8 on the same device, by `quantize`'s rule
    (the same float32 operations, one at a time: the same bytes)."""
    return x.float().clamp(0.0, 1.0).mul_(255.0).add_(0.5).to(torch.uint8)


def upload(rgb: np.ndarray, device: torch.device) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> (1, 3, H, W) float32 in [0, 1] on `device`, contiguous: sent as
    uint8 (a quarter of the bytes), converted there. The same values as :func:`to_tensor`."""
    u8 = torch.from_numpy(np.ascontiguousarray(rgb)).to(device)
    return unit(u8.permute(2, 0, 1)[None])


def unit(u8: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) uint8 (any memory layout) -> float32 in [0, 1], contiguous: a frame as saved,
    as the carry reads it (the values of :func:`to_unit` and :func:`to_tensor`)."""
    out = torch.empty(u8.shape, dtype=torch.float32, device=u8.device)
    if u8.is_contiguous():  # one pass (on a CPU ~2x quicker; from a permuted layout, slower)
        return torch.div(u8, 255.0, out=out)
    return out.copy_(u8).div_(255.0)


def download(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) uint8 on any device -> RGB uint8 (H, W, 3) numpy (the planes copied once, then
    interleaved by OpenCV, several times faster than a strided copy of bytes)."""
    planes = x[0].contiguous().cpu().numpy()
    return cv2.merge(list(planes)) if planes.shape[0] > 1 else np.ascontiguousarray(planes.transpose(1, 2, 0))


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (H, W, 3) in [0, 1]."""
    return rgb.astype(np.float32) / 255.0
