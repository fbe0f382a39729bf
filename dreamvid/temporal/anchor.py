"""A carried dream that does not blur: sampled once from an anchor frame along composed flows.

Carried from frame to frame, the dream residual is resampled at a fractional offset every frame,
and resampling is a low-pass filter: bilinear at a half-pixel shift halves the amplitude at the
Nyquist frequency, bicubic loses less but still some, and after 20 frames the fine detail is
gone (the loss compounds geometrically). An :class:`Anchor` keeps the residual of one frame a and,
for every point of the latest frame t, where that point was in frame a (the backward flows
t → t−1 → … → a composed: resampling a smooth displacement field costs nothing visible). The
carried residual of frame t is then ``residual_a`` sampled *once* at those positions, however
many frames ago a was, so its detail survives. The share of a pixel that comes from the anchor is
its trust: the smallest occlusion mask along the chain (a pixel hidden or unreliable in
any frame since a has none, and is carried from the previous frame as before).

The displacement and the trust live on the flow grid (temporal/motion.py: flows carry no finer
detail than their grid), in frame pixels; the residual and its sampling on the frame grid.

Tensors on the device: residual ``(1, 3, H, W)`` (dream − raw on [0, 1] values), displacement
``(1, 2, h, w)`` (frame pixels: position in the anchor frame − own position), trust ``(1, 1, h, w)``
in [0, 1].
"""

from __future__ import annotations

import torch

from .motion import Motion, frame_positions
from .sampling import pixel_grid, resize, warp

#: A new anchor is taken where the old one carries less than this share of the frame (a pan that
#: has moved on, a large disocclusion): past it, most pixels would come from the one-step carry.
REFRESH_BELOW = 0.5

#: Trust this close to 1 counts as 1 (interpolating ones in float32 can give 0.99999994): the
#: one-step carry is then not needed there, so it is computed only where it counts.
TRUST_ONE = 1.0 - 1e-5


class Anchor:
    """The residual of anchor frame `index` and where the latest frame's points were in it.

    residual: ``(1, 3, H, W)`` on the device, the anchor frame's dream − raw; kernel: how it is
    sampled ("nearest", "linear" or "cubic"); flow_size: (h, w) of the flow grid.
    """

    def __init__(self, index: int, residual: torch.Tensor, kernel: str, flow_size):
        self.index = int(index)
        self.kernel = kernel
        self.residual = residual.float()
        h, w = flow_size
        self.displacement = torch.zeros(1, 2, h, w, device=residual.device)  # the anchor frame itself
        self.trust = torch.ones(1, 1, h, w, device=residual.device)

    def follow(self, motion: Motion) -> None:
        """Move on to the next frame along `motion` (its backward flow and occlusion mask). The
        displacements are composed; the trust becomes the smaller of the trust carried along and
        the mask (the least reliable step of the chain; a product would fade pixels that are
        merely near a smoothed mask edge a little more every frame), and 0 where the composed
        position leaves the anchor frame."""
        # Both fields read where each point was in the frame before, in one pass.
        moved = warp(torch.cat([self.displacement, self.trust], dim=1), motion.backward, "linear")
        self.displacement = motion.in_frame_pixels(motion.backward) + moved[:, :2]
        self.trust = torch.minimum(moved[:, 2:], motion.mask)
        h, w = motion.frame_size
        source = frame_positions(pixel_grid(*motion.flow_size, motion.device), motion.scale) + self.displacement
        x, y = source[:, 0:1], source[:, 1:2]
        self.trust = self.trust.masked_fill((x < 0) | (x > w - 1) | (y < 0) | (y > h - 1), 0.0)

    def frame_trust(self, frame_size) -> torch.Tensor:
        """The trust on the frame grid ``(1, 1, H, W)``, values within TRUST_ONE of 1 made 1."""
        t = resize(self.trust, *frame_size)
        return t.masked_fill(t >= TRUST_ONE, 1.0)

    def sample(self) -> torch.Tensor:
        """The anchor's residual at the latest frame's pixels, ``(1, 3, H, W)`` (one resampling,
        however many frames were followed)."""
        h, w = self.residual.shape[-2:]
        return warp(self.residual, resize(self.displacement, h, w), self.kernel)

    @property
    def trusted_share(self) -> float:
        """Mean trust over the frame: how much of it the anchor still carries."""
        return float(self.trust.mean())
