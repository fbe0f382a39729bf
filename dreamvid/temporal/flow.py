"""Optical flow (OpenCV, on the CPU), and backward warping and occlusion masks on numpy arrays.

The render's carry runs on the device (motion.py, sampling.py, carry.py); the numpy functions here
are for evaluation (metrics.py) and tests: :func:`occlusion_mask` is the device formula run on
the CPU, :func:`warp` OpenCV's remap.

Conventions used everywhere in this module
------------------------------------------
* Images are RGB, ``HxWx3`` uint8 (0..255) or float32 (0..1); ``HxW`` single channel also works
  where noted.
* A flow is ``HxWx2`` float32 in pixels, ``flow[..., 0]`` = x (column) displacement,
  ``flow[..., 1]`` = y (row) displacement.
* ``est.calc(src, dst)`` returns the flow that *starts in src*: ``src(p) ≈ dst(p + flow(p))``.
* ``warp(img, flow)`` is backward warping: ``out(p) = img(p + flow(p))``. So to pull ``dst`` into
  ``src``'s coordinates use ``warp(dst, est.calc(src, dst))``.

For the render loop, with ``cur`` = frame t and ``prev`` = frame t-1:

* ``backward_flow(est, cur, prev)`` = ``est.calc(cur, prev)``, the flow from cur to prev; it lives
  in cur's pixel grid, and ``warp(prev_anything, backward_flow)`` moves prev's content onto cur.
  (docs/architecture.md: ``f = dis.calc(gray_t, gray_prev)``, then ``remap(prev, xx + fx, yy + fy)``.)
* ``forward_flow(est, cur, prev)`` = ``est.calc(prev, cur)``, the flow from prev to cur; only used
  for the forward-backward consistency check. Warping prev with it, or with the negated backward
  flow, is wrong.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np
import torch

from ..errors import DreamvidError
from . import motion as _motion

__all__ = [
    "METHODS",
    "DIS_PRESETS",
    "FlowEstimator",
    "backward_flow",
    "forward_flow",
    "warp",
    "occlusion_mask",
]

#: Valid flow methods, the first is the default.
METHODS = ("dis", "farneback")

#: Valid DIS presets (name -> OpenCV constant).
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_gray_u8(img: np.ndarray) -> np.ndarray:
    """RGB uint8/float32 ``HxWx3`` (or ``HxW``) -> contiguous ``HxW`` uint8 gray."""
    img = np.asarray(img)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        elif img.shape[2] in (3, 4):
            code = cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
            if img.dtype not in (np.uint8, np.float32):
                img = img.astype(np.float32)
            img = cv2.cvtColor(np.ascontiguousarray(img), code)
        else:
            raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {img.shape}")
    elif img.ndim != 2:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    # Float images are in [0, 1]: scale, round and saturate to uint8.
    img = cv2.max(np.asarray(img, np.float32), 0.0)  # convertScaleAbs would fold negatives up
    return cv2.convertScaleAbs(img, alpha=255.0)


class FlowEstimator:
    """Dense optical flow between two frames; the OpenCV object is built once and reused.

    Args:
        method: ``"dis"`` (cv2.DISOpticalFlow, fast) or ``"farneback"`` (~3x slower than DIS medium, and
            weak on flat regions; kept as an independent second method).
        preset: DIS preset, one of ``"ultrafast"``, ``"fast"``, ``"medium"`` (ignored for
            farneback). ``"medium"`` is the default. Measured at 640x360 on two CPU threads:
            end-point error on known affine motions of real photos 0.56 / 0.35 / 0.14 px and
            ~3 / ~5 / ~20 ms per flow (ultrafast / fast / medium); on real footage
            (Big Buck Bunny, bikes) medium's warped-frame MSE is 35-45 % below fast's at the
            same mask coverage. Farneback: ~60 ms, 3 px (it fails on flat regions).

        max_side: estimate on frames shrunk (area filter) so that their long side is at most this
            many pixels; None = always at full size. Frames already that small are untouched.
            :meth:`estimate` returns the flow at that size (what a render uploads), :meth:`calc`
            scales it back up (bilinear, vectors scaled by the size ratio) to the frames' size.
            DIS medium works on a half-size pyramid level at most, so at 1080p a flow costs ~0.2 s
            on one thread at full size and ~0.03 s at 640 px; renders default to 640
            (VideoSettings.flow_max_side, where the measurements are).

    ``calc(src, dst)`` returns ``HxWx2`` float32 with ``src(p) ≈ dst(p + flow(p))``. Its result does
    not depend on OpenCV's thread count (OpenCV 5.1: bit-identical at 1, 3, 8 and 16 threads;
    tests/test_overlap.py checks it), so flows estimated in a pool of any size are the flows
    estimated inline.
    """

    def __init__(self, method: str = "dis", preset: str = "medium", max_side: Optional[int] = None):
        method = str(method).lower()
        if method not in METHODS:
            raise DreamvidError(
                f"unknown flow method {method!r}; valid methods: {', '.join(METHODS)}"
            )
        self.method = method
        self.preset = str(preset).lower()
        if max_side is not None and max_side < 32:
            raise DreamvidError(f"flow max_side {max_side} is too small: use at least 32 px (or None)")
        self.max_side = max_side
        self._dis = None
        if method == "dis":
            if self.preset not in DIS_PRESETS:
                raise DreamvidError(
                    f"unknown DIS preset {preset!r}; valid presets: {', '.join(DIS_PRESETS)}"
                )
            self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])

    def __repr__(self) -> str:
        side = "" if self.max_side is None else f", max_side={self.max_side}"
        if self.method == "dis":
            return f"FlowEstimator(method='dis', preset={self.preset!r}{side})"
        return f"FlowEstimator(method='farneback'{side})"

    def estimation_size(self, height: int, width: int) -> Tuple[int, int]:
        """(h, w) the flow of frames height x width is estimated at (see max_side)."""
        side = max(height, width)
        if self.max_side is None or side <= self.max_side:
            return height, width
        s = self.max_side / side
        return max(1, round(height * s)), max(1, round(width * s))

    def calc(
        self, src: np.ndarray, dst: np.ndarray, init: Optional[np.ndarray] = None
    ) -> np.ndarray:
        """Flow that starts in ``src``: ``src(p) ≈ dst(p + flow(p))``.

        Args:
            src, dst: ``HxWx3`` RGB (uint8 0..255 or float 0..1), or ``HxW`` gray; same size.
            init: optional ``HxWx2`` float32 initial guess (warm start), e.g. the previous frame's
                flow in the same direction; left untouched. On real footage it changed DIS's
                error by under 3 %, so nothing in dreamvid needs it; it is here for callers.

        Returns:
            ``HxWx2`` float32 flow in pixels, a new array.
        """
        g0 = to_gray_u8(src)
        g1 = to_gray_u8(dst)
        if g0.shape != g1.shape:
            raise ValueError(f"frames differ in size: {g0.shape} vs {g1.shape}")
        if init is not None:
            init = np.asarray(init)
            if init.shape != g0.shape + (2,):
                raise ValueError(f"init flow has shape {init.shape}, expected {g0.shape + (2,)}")
        h, w = g0.shape
        hs, ws = self.estimation_size(h, w)
        if (hs, ws) == (h, w):
            return self._calc(g0, g1, init)
        if init is not None:
            init = _resize_flow(np.asarray(init, np.float32), hs, ws)
        return _resize_flow(self._calc(self.gray(g0), self.gray(g1), init), h, w)

    def gray(self, img: np.ndarray) -> np.ndarray:
        """A frame as :meth:`estimate` sees it: gray uint8 at the estimation size (a caller that
        estimates each frame's flows both ways converts it once)."""
        g = to_gray_u8(img)
        hs, ws = self.estimation_size(*g.shape)
        return g if (hs, ws) == g.shape else cv2.resize(g, (ws, hs), interpolation=cv2.INTER_AREA)

    def estimate(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """The flow of :meth:`calc` at the estimation size (:meth:`estimation_size`), in pixels of
        that size: what the render uploads (the device resizes it where the frame needs it).
        src, dst: what :meth:`calc` takes, or :meth:`gray` of it; returns ``hxwx2`` float32."""
        g0, g1 = self.gray(src), self.gray(dst)
        if g0.shape != g1.shape:
            raise ValueError(f"frames differ in size: {g0.shape} vs {g1.shape}")
        return self._calc(g0, g1, None)

    def _calc(self, g0: np.ndarray, g1: np.ndarray, init: Optional[np.ndarray]) -> np.ndarray:
        """The flow of two same-sized gray uint8 frames at their own size."""
        flow = None if init is None else np.array(init, dtype=np.float32, order="C", copy=True)
        if self._dis is not None:
            # DIS uses a same-sized CV_32FC2 `flow` argument as its initial approximation.
            return self._dis.calc(g0, g1, flow)
        flags = cv2.OPTFLOW_USE_INITIAL_FLOW if flow is not None else 0
        return cv2.calcOpticalFlowFarneback(
            g0, g1, flow, pyr_scale=0.5, levels=4, winsize=15, iterations=3,
            poly_n=5, poly_sigma=1.2, flags=flags,
        )


def _resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """``HxWx2`` flow resampled (bilinear) to height x width, its vectors scaled to the new grid."""
    h, w = flow.shape[:2]
    out = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= width / w
    out[..., 1] *= height / h
    return out


def backward_flow(
    est: FlowEstimator, cur: np.ndarray, prev: np.ndarray, init: Optional[np.ndarray] = None
) -> np.ndarray:
    """Flow from ``cur`` to ``prev`` (= ``est.calc(cur, prev)``), in cur's pixel grid.

    ``cur(p) ≈ prev(p + f(p))``; so ``warp(prev_img, f)`` brings anything aligned with prev
    (e.g. the previous dreamed frame) into cur's coordinates. This is the flow to warp with.
    Shapes: cur, prev ``HxWx3`` -> ``HxWx2`` float32.
    """
    return est.calc(cur, prev, init)


def forward_flow(
    est: FlowEstimator, cur: np.ndarray, prev: np.ndarray, init: Optional[np.ndarray] = None
) -> np.ndarray:
    """Flow from ``prev`` to ``cur`` (= ``est.calc(prev, cur)``), in prev's pixel grid.

    ``prev(p) ≈ cur(p + g(p))``. Used only for the forward-backward consistency check; do NOT
    warp prev into cur with it (nor with its negation). Note the argument order: (cur, prev),
    the same as :func:`backward_flow`. Shapes: ``HxWx3`` -> ``HxWx2`` float32.
    """
    return est.calc(prev, cur, init)


_GRIDS: dict = {}


def pixel_grid(h: int, w: int) -> np.ndarray:
    """Cached pixel-coordinate grid, ``HxWx2`` float32 with ``[..., 0]`` = x, ``[..., 1]`` = y."""
    g = _GRIDS.get((h, w))
    if g is None:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        g = _GRIDS[(h, w)] = np.ascontiguousarray(np.dstack([xx, yy]))
        g.setflags(write=False)
    return g


def sampling_maps(flow: np.ndarray) -> np.ndarray:
    """Absolute sampling positions ``p + flow(p)``, ``HxWx2`` float32 (a CV_32FC2 remap map)."""
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"expected an HxWx2 flow, got shape {flow.shape}")
    return flow + pixel_grid(flow.shape[0], flow.shape[1])


def remap(img: np.ndarray, maps: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        img = img.astype(np.float32)
    if img.ndim == 3 and img.shape[2] > 4:  # remap handles up to 4 channels
        return np.concatenate(
            [remap(img[..., i:i + 4], maps, interpolation) for i in range(0, img.shape[2], 4)], axis=2
        )
    out = cv2.remap(img, maps, None, interpolation, borderMode=cv2.BORDER_REPLICATE)
    if img.ndim == 3 and out.ndim == 2:  # OpenCV drops a trailing singleton channel
        out = out[..., None]
    return out


def warp(img: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """Backward warp: ``out(p) = img(p + flow(p))`` (bilinear, or bicubic with ``cubic``: it
    blurs less, which matters for a dream carried over many frames; border replicated).

    Args:
        img: ``HxW`` or ``HxWxC`` (uint8 or float32); the image to sample from.
        flow: ``HxWx2`` float32, starting in the *output's* grid (e.g. the backward flow cur→prev
            to bring prev into cur).

    Returns:
        Same shape and dtype as ``img``.
    """
    img = np.asarray(img)
    if img.shape[:2] != np.shape(flow)[:2]:
        raise ValueError(f"image {img.shape[:2]} and flow {np.shape(flow)[:2]} differ in size")
    return remap(img, sampling_maps(flow), cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR)


def occlusion_mask(flow_fwd: np.ndarray, flow_bwd: np.ndarray) -> np.ndarray:
    """Reliability mask in the grid where ``flow_bwd`` starts (1 = reliable, 0 = occluded), for
    callers holding numpy flows at the frame's size (metrics, tests): temporal.motion.occlusion_mask
    (Ruder et al.'s forward-backward and motion-boundary checks, the formulas there) run on the CPU.

    Pass as ``flow_bwd`` the flow that starts in the frame you want the mask for, and as
    ``flow_fwd`` the flow in the opposite direction. Args: ``HxWx2`` float32 each. Returns ``HxW``
    float32 in [0, 1].
    """
    if np.shape(flow_fwd) != np.shape(flow_bwd):
        raise ValueError(f"flows differ in shape: {np.shape(flow_fwd)} vs {np.shape(flow_bwd)}")
    cpu = torch.device("cpu")
    return _motion.occlusion_mask(_motion.upload_flow(flow_fwd, cpu), _motion.upload_flow(flow_bwd, cpu))[0, 0].numpy()
