"""The motion from one frame back to the previous, on the device: flows, occlusion mask, positions.

The flows are estimated on the CPU at their estimation size (flow.FlowEstimator, often smaller
than the frame) and uploaded as they are. What the carry needs of them is computed on that flow
grid — the occlusion mask, the composition of an anchor's coordinates — in *frame* pixels, and
only resized to the frame where the dream's pixels are sampled. Flows carry no more detail than
their grid, so this costs nothing in accuracy and, for a 1080p frame with flows at 640 px, a
ninth of the work. With flows at the frame's size everything is on one grid.

Flow-grid point q (column, row) sits at frame position ``(q + 0.5) · s − 0.5`` with s = frame
size / flow size per axis (pixel centres aligned, as ``cv2.resize`` aligns them).

Shapes: flows ``(1, 2, h, w)`` (x, y) on the flow grid, masks ``(1, 1, h, w)``; frame-grid
versions ``(1, C, H, W)``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from .sampling import gaussian_blur, pixel_grid, resize, warp, warp_grid

# Forward-backward consistency and motion-boundary constants (Sundaram et al. 2010, as used by
# Ruder et al. 2016), in frame pixels.
FB_REL = 0.01
FB_ABS = 0.5
MB_REL = 0.01
MB_ABS = 0.002
MASK_SIGMA = 0.8


def upload_flow(flow: np.ndarray, device: torch.device) -> torch.Tensor:
    """``HxWx2`` float32 numpy flow -> ``(1, 2, H, W)`` on `device`."""
    return torch.from_numpy(np.ascontiguousarray(flow, np.float32)).permute(2, 0, 1)[None].to(device)


def _per_axis(values: Tuple[float, float], like: torch.Tensor) -> torch.Tensor:
    """(x, y) as a ``(1, 2, 1, 1)`` tensor beside `like`, to scale a two-channel field."""
    return torch.tensor(values, device=like.device).view(1, 2, 1, 1)


def frame_positions(points: torch.Tensor, scale: Tuple[float, float]) -> torch.Tensor:
    """Flow-grid positions ``(1, 2, h, w)`` -> the frame positions they stand for (pixel centres
    aligned: ``(q + 0.5) · s − 0.5``, s = (sx, sy) frame pixels per flow-grid pixel)."""
    return (points + 0.5) * _per_axis(scale, points) - 0.5


def _gradient(f: torch.Tensor, dim: int) -> torch.Tensor:
    """Central differences along `dim` ((f[i+1] − f[i−1]) / 2, one-sided at the ends), as np.gradient."""
    n = f.shape[dim]
    if n < 2:
        return torch.zeros_like(f)
    g = torch.empty_like(f)
    if n > 2:
        g.narrow(dim, 1, n - 2).copy_((f.narrow(dim, 2, n - 2) - f.narrow(dim, 0, n - 2)) * 0.5)
    g.narrow(dim, 0, 1).copy_(f.narrow(dim, 1, 1) - f.narrow(dim, 0, 1))
    g.narrow(dim, n - 1, 1).copy_(f.narrow(dim, n - 1, 1) - f.narrow(dim, n - 2, 1))
    return g


def occlusion_mask(forward: torch.Tensor, backward: torch.Tensor,
                   scale: Tuple[float, float] = (1.0, 1.0)) -> torch.Tensor:
    """Reliability of ``backward`` (1 = reliable, 0 = occluded), ``(1, 1, h, w)`` in [0, 1].

    Forward-backward check of Ruder et al. 2016 with the constants of Sundaram et al. 2010. With
    ``w = backward`` (cur→prev, lives in cur) and ``ŵ = forward`` (prev→cur) read at ``p + w(p)``,
    a pixel p of cur is unreliable when

    * ``|w + ŵ|² > 0.01 (|w|² + |ŵ|²) + 0.5`` (disocclusion / inconsistent flow), or
    * ``|∇u|² + |∇v|² > 0.01 |w|² + 0.002`` (motion boundary, gradients of w), or
    * ``p + w(p)`` falls more than one pixel outside the frame (content that entered across the
      border);

    then the binary result is smoothed by a Gaussian (σ = 0.8, 5 taps).

    forward, backward: ``(1, 2, h, w)`` in flow-grid pixels. scale: (sx, sy), frame pixels per
    flow-grid pixel; the tests above are made in frame pixels (1 when the flows are at the
    frame's size).
    """
    sx, sy = scale
    h, w = backward.shape[-2:]
    w_hat = warp(forward, backward, "linear")
    units = _per_axis(scale, backward)
    wb, wf = backward * units, w_hat * units  # frame pixels
    w2 = (wb * wb).sum(1, keepdim=True)
    s = wb + wf
    bad = (s * s).sum(1, keepdim=True) > FB_REL * (w2 + (wf * wf).sum(1, keepdim=True)) + FB_ABS
    # Gradients per frame pixel of the frame-pixel flow: d/dx over a flow-grid step of sx pixels.
    gx, gy = _gradient(wb, 3) / sx, _gradient(wb, 2) / sy
    grad2 = (gx * gx + gy * gy).sum(1, keepdim=True)
    bad |= grad2 > MB_REL * w2 + MB_ABS
    # Sources more than a frame pixel outside prev are new content (the replicated border is no match).
    source = frame_positions(pixel_grid(h, w, backward.device) + backward, scale)
    fx, fy = source[:, 0:1], source[:, 1:2]
    bad |= (fx < -1.0) | (fx > w * sx) | (fy < -1.0) | (fy > h * sy)
    return gaussian_blur((~bad).float(), MASK_SIGMA)


class Motion:
    """The motion of frame t back to frame t−1 on the device (see the module doc).

    backward, forward: the pair's flows as estimated (``hxwx2`` numpy, flow-grid pixels; forward
    None: no mask, all reliable); frame_size: (H, W) of the frames; device: where they go.
    """

    def __init__(self, backward: np.ndarray, forward: Optional[np.ndarray], frame_size: Tuple[int, int],
                 device: torch.device):
        self.frame_size = frame_size
        self.device = device
        self.backward = upload_flow(backward, device)  # flow-grid pixels
        self._forward = None if forward is None else upload_flow(forward, device)
        h, w = self.backward.shape[-2:]
        self.flow_size = (h, w)
        self.scale = (frame_size[1] / w, frame_size[0] / h)  # (sx, sy)
        self._mask: Optional[torch.Tensor] = None
        self._share: Optional[float] = None
        self._frame_grid: Optional[torch.Tensor] = None
        self._frame_mask: Optional[torch.Tensor] = None

    def prepare(self) -> "Motion":
        """Compute now what the carry reads of this motion (the mask, its share, the frame-sized
        flow and mask), e.g. in a worker thread ahead of the frame loop; returns self."""
        self._share = float(self.mask.mean())
        self.frame_grid()
        self.frame_mask()
        return self

    # -- on the flow grid ----------------------------------------------------------------------

    @property
    def mask(self) -> torch.Tensor:
        """The occlusion mask ``(1, 1, h, w)`` (ones without a forward flow)."""
        if self._mask is None:
            if self._forward is None:
                self._mask = torch.ones(1, 1, *self.flow_size, device=self.device)
            else:
                self._mask = occlusion_mask(self._forward, self.backward, self.scale)
        return self._mask

    def reliable_share(self) -> float:
        """The mask's mean: the share of frame t that carries (a scene cut when small)."""
        if self._share is None:
            self._share = float(self.mask.mean())
        return self._share

    def in_frame_pixels(self, field: torch.Tensor) -> torch.Tensor:
        """A displacement field on the flow grid ``(1, 2, h, w)`` in flow-grid pixels -> frame pixels."""
        return field * _per_axis(self.scale, field)

    # -- on the frame grid ---------------------------------------------------------------------

    def frame_flow(self) -> torch.Tensor:
        """The backward flow on the frame grid in frame pixels ``(1, 2, H, W)`` (made anew each call)."""
        return resize(self.in_frame_pixels(self.backward), *self.frame_size)

    def frame_grid(self) -> torch.Tensor:
        """:func:`~dreamvid.temporal.sampling.warp_grid` of :meth:`frame_flow`: how the frame before
        is read onto this one."""
        if self._frame_grid is None:
            self._frame_grid = warp_grid(self.frame_flow())
        return self._frame_grid

    def frame_mask(self) -> torch.Tensor:
        """The occlusion mask on the frame grid ``(1, 1, H, W)``."""
        if self._frame_mask is None:
            self._frame_mask = resize(self.mask, *self.frame_size)
        return self._frame_mask
