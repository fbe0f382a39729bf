"""A carried dream that does not blur: sampled once from an anchor frame along composed flows.

Carried from frame to frame, the dream residual is resampled at a fractional offset every frame,
and resampling is a low-pass filter: bilinear at a half-pixel shift halves the amplitude at the
Nyquist frequency, bicubic loses less but still some, and after 20 frames the fine detail is
gone (the loss compounds geometrically). An :class:`Anchor` keeps the residual of one frame a and,
for every pixel of the latest frame t, where that pixel was in frame a (the backward flows
t → t−1 → … → a composed: resampling a smooth coordinate field costs nothing visible). The
carried residual of frame t is then ``residual_a`` sampled *once* at those coordinates, however
many frames ago a was, so its detail survives. The share of a pixel that comes from the anchor is
its trust: the smallest occlusion mask along the chain (a pixel hidden or unreliable in
any frame since a has none, and is carried from the previous frame as before).

Arrays: residual ``HxWx3`` float32 (dream − raw on [0, 1] values), coordinates ``HxWx2`` float32
(absolute x, y in the anchor frame), trust ``HxW`` float32 in [0, 1]; flows as in flow.py.
"""

from __future__ import annotations

import cv2
import numpy as np

from .flow import pixel_grid, sampling_maps, remap

#: A new anchor is taken where the old one carries less than this share of the frame (a pan that
#: has moved on, a large disocclusion): past it, most pixels would come from the one-step carry.
REFRESH_BELOW = 0.5

#: How the anchor's residual is sampled (VideoSettings.carry_kernel names them).
INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST,
                 "lanczos": cv2.INTER_LANCZOS4}


class Anchor:
    """The residual of anchor frame `index` and where the latest frame's pixels were in it.

    residual: ``HxWx3`` float32, the anchor frame's dream − raw.
    """

    def __init__(self, index: int, residual: np.ndarray, kernel: str = "cubic"):
        self.index = int(index)
        self.interpolation = INTERPOLATION[kernel]
        self.residual = np.ascontiguousarray(residual, dtype=np.float32)
        h, w = self.residual.shape[:2]
        self.coords = pixel_grid(h, w)  # the anchor frame itself: every pixel where it is
        self.trust = np.ones((h, w), np.float32)

    def follow(self, backward: np.ndarray, mask: np.ndarray) -> None:
        """Move on to the next frame: backward flow ``HxWx2`` (next → latest), its occlusion mask
        ``HxW`` (1 = reliable). The coordinates are composed along the flow; the trust becomes the
        smaller of the trust carried along and the mask (the least reliable step of the chain; a
        product would fade pixels that are merely near a smoothed mask edge a little more every
        frame), and 0 where the composed position leaves the anchor frame."""
        maps = sampling_maps(backward)
        self.coords = remap(self.coords, maps)
        self.trust = np.minimum(remap(self.trust, maps), np.asarray(mask, np.float32))
        h, w = self.trust.shape
        x, y = self.coords[..., 0], self.coords[..., 1]
        self.trust[(x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)] = 0.0

    def sample(self) -> np.ndarray:
        """The anchor's residual at the latest frame's pixels, ``HxWx3`` float32 (one bicubic
        resampling, however many frames were followed)."""
        return remap(self.residual, self.coords, self.interpolation)

    def carry(self, chained: np.ndarray) -> np.ndarray:
        """The carried residual of the latest frame, ``HxWx3``: the anchor's where it is trusted,
        `chained` (the previous frame's residual warped one step) where it is not."""
        t = self.trust[..., None]
        return t * self.sample() + (1.0 - t) * np.asarray(chained, np.float32)

    @property
    def trusted_share(self) -> float:
        """Mean trust over the frame: how much of it the anchor still carries."""
        return float(self.trust.mean())
