"""Sampling images and fields at given pixel positions, on the device (torch).

What the carry is made of: backward warping (``out(p) = img(p + d(p))``, on the whole frame or
at a few of its pixels), resizing a field between the flow's grid and the frame's, and a small
Gaussian. The same functions on every device; they define the carry's pixels (within ~1e-6 of
OpenCV's ``remap`` and ``resize`` on the same input: tests/test_carry.py).

Shapes: images and fields are ``(N, C, H, W)`` float32 tensors; a displacement ``(1, 2, H, W)``
is in pixels (channel 0 = x, the column; 1 = y, the row). Outside the source the border is
replicated (positions clamped), as ``cv2.BORDER_REPLICATE`` does.
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

#: grid_sample's names for the kernels the carry uses (VideoSettings.carry_kernel names them);
#: "cubic" is Keys' cubic with a = -0.75, as OpenCV's INTER_CUBIC. "lanczos" (8x8 taps) has no
#: grid_sample mode: OpenCV's remap samples it, on the CPU (a round trip from other devices).
MODES = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic"}

_GRIDS: Dict[Tuple[int, int, str, bool], torch.Tensor] = {}


def _grid(height: int, width: int, device: torch.device, normalised: bool) -> torch.Tensor:
    key = (height, width, str(device), normalised)
    g = _GRIDS.get(key)
    if g is None:
        if len(_GRIDS) > 16:
            _GRIDS.clear()
        ys = torch.arange(height, dtype=torch.float32, device=device)
        xs = torch.arange(width, dtype=torch.float32, device=device)
        if normalised:  # grid_sample's layout (1, H, W, 2), in its [-1, 1] units (align_corners=True)
            g = torch.stack([xs.expand(height, width) * _unit(width) - 1.0,
                             ys[:, None].expand(height, width) * _unit(height) - 1.0], dim=-1)[None]
        else:
            g = torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])[None]
        _GRIDS[key] = g = g.contiguous()
    return g


def _unit(size: int) -> float:
    """One pixel in grid_sample's units (align_corners=True: -1 and 1 are the first and last centres)."""
    return 2.0 / max(size - 1, 1)


def pixel_grid(height: int, width: int, device: torch.device) -> torch.Tensor:
    """Each pixel's own coordinates, ``(1, 2, H, W)`` float32 (x, y); cached, do not modify."""
    return _grid(height, width, device, False)


def _grid_sample(img: torch.Tensor, grid: torch.Tensor, kernel: str) -> torch.Tensor:
    return F.grid_sample(img, grid.expand(img.shape[0], -1, -1, -1), MODES[kernel], "border",
                         align_corners=True)


def warp_grid(displacement: torch.Tensor) -> torch.Tensor:
    """The sampling grid of :func:`warp` for `displacement` ``(1, 2, H, W)`` (pixels): made once,
    it serves several images and :func:`warp_at`. ``(1, H, W, 2)`` in grid_sample's units, and
    contiguous (a permuted grid makes grid_sample's CPU kernel ~3x slower)."""
    h, w = displacement.shape[-2:]
    scale = torch.tensor([_unit(w), _unit(h)], device=displacement.device)
    out = torch.empty(1, h, w, 2, device=displacement.device)
    return torch.addcmul(_grid(h, w, displacement.device, True), displacement.permute(0, 2, 3, 1), scale, out=out)


def warp(img: torch.Tensor, displacement: torch.Tensor, kernel: str = "linear",
         grid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Backward warp: ``out(p) = img(p + displacement(p))``; img ``(N, C, H, W)``, displacement
    ``(1, 2, H, W)`` pixels, both on one grid (or its :func:`warp_grid`); returns ``(N, C, H, W)``."""
    if kernel == "lanczos":
        return _sample_lanczos(img, pixel_grid(*img.shape[-2:], img.device) + displacement)
    return _grid_sample(img, warp_grid(displacement) if grid is None else grid, kernel)


def warp_at(img: torch.Tensor, grid: torch.Tensor, pixels: torch.Tensor, kernel: str = "linear") -> torch.Tensor:
    """:func:`warp` by the :func:`warp_grid` `grid`, at the pixels with flat indices `pixels`
    ``(K,)`` only: ``(N, C, 1, K)``, the values :func:`warp` gives there (grid_sample reads each
    output pixel at its own position alone)."""
    return _grid_sample(img, grid.view(-1, 2).index_select(0, pixels)[None, None], kernel)


def _sample_lanczos(img: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    maps = np.ascontiguousarray(positions[0].permute(1, 2, 0).float().cpu().numpy())
    out = []
    for image in img.float().cpu().numpy():  # (C, H, W), up to 4 channels per remap
        hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
        r = cv2.remap(hwc, maps, None, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REPLICATE)
        out.append(torch.from_numpy(r.reshape(r.shape[0], r.shape[1], -1)).permute(2, 0, 1))
    return torch.stack(out).to(img.device)


def resize(field: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A field ``(N, C, h, w)`` resized to ``(N, C, H, W)`` (bilinear, pixel centres aligned as
    ``cv2.resize`` aligns them; values unchanged, so a flow's vectors are NOT rescaled here)."""
    if field.shape[-2:] == (height, width):
        return field
    return F.interpolate(field, size=(height, width), mode="bilinear", align_corners=False)


@functools.lru_cache(maxsize=8)
def _gaussian_taps(sigma: float, radius: int) -> Tuple[float, ...]:
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-t * t / (2.0 * sigma * sigma))
    return tuple(float(v) for v in (k / k.sum()).astype(np.float32))


def gaussian_blur(x: torch.Tensor, sigma: float, radius: int = 2) -> torch.Tensor:
    """``(N, C, H, W)`` smoothed by a Gaussian of `sigma` px over ``2·radius + 1`` taps (as
    ``cv2.GaussianBlur(x, (5, 5), sigma)`` for radius 2), border replicated. Shifted sums, not a
    convolution: one-channel convolutions are slow on CPUs."""
    taps = _gaussian_taps(float(sigma), radius)
    h, w = x.shape[-2:]
    p = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    rows = sum(p[..., :, i:i + w] * taps[i] for i in range(len(taps)))
    p = F.pad(rows, (0, 0, radius, radius), mode="replicate")
    return sum(p[..., i:i + h, :] * taps[i] for i in range(len(taps)))
