"""Region masks: where a render dreams. White = dream fully, black = keep the input, grey between.

A mask is an image (one mask for every frame), a video, a frame folder or a glob (one mask per
frame), or a numpy array: (H, W) or (H, W, 3|4) for a still, (N, H, W) for one per frame; uint8
0..255 or float in [0, 1]. Colour masks are read as their luma. Each frame's mask is resized to the
working frame size (any size of the input's aspect ratio will do), inverted (MaskSettings.invert),
feathered (a Gaussian of MaskSettings.feather px) and weighted by the strength in force at that
frame (``mask_strength`` may vary): m' = 1 − strength · (1 − m).

The mask acts inside the ascent (engine/ascent.py: every step and the dream carried up the
octaves are weighted by it) and on the carried dream of a video (pipeline/video.py: the carried
residual is weighted by it), so a masked-out region never gathers dream over frames.

A per-frame mask has either one frame per frame of the input file (mask frame i is input frame i)
or one per frame of the render's range (mask frame k is input frame start + k).
"""

from __future__ import annotations

import hashlib
import os
from typing import Iterator, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from ..config.settings import MAX_PIXELS, MaskSettings
from ..config.vary import FrameSettings
from ..errors import DreamvidError, SettingError
from ..io.images import IMAGE_EXTS
from ..io.sources import FrameSource, open_source

MaskInput = Union[str, "os.PathLike[str]", np.ndarray]

#: Aspect ratios of a mask and its input may differ by this share (rounding of scaled sizes).
ASPECT_TOLERANCE = 0.02


def _gray(frame: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4), uint8 or float -> float32 (H, W) in [0, 1]."""
    a = np.asarray(frame)
    if a.ndim == 3:
        a = a[..., :3]
        if a.shape[2] == 1:
            a = a[..., 0]
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    a = a.astype(np.float32) / np.float32(scale)
    if a.ndim == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
    return np.clip(a, 0.0, 1.0)


def _file_hash(files) -> str:
    """sha256 of the files' contents, in order (masks are small; a video mask is read once)."""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:32]


class FrameMask:
    """The mask of one render: ``at(i, (h, w), strength)`` -> float32 (h, w) in [0, 1].

    mask: a path or an array (see the module doc); settings: feather, invert, strength.
    input_size: (width, height) of the input's frames (for the aspect check); input_frames: the
    frames of the input file; span: (start, end) of the render's range; still: refuse per-frame
    masks (images, zoom loops). Bad masks raise DreamvidError now, before any work.
    """

    def __init__(self, mask: MaskInput, settings: Optional[MaskSettings], input_size: Tuple[int, int],
                 input_frames: int = 1, span: Optional[Tuple[int, int]] = None, still: bool = False,
                 max_pixels: int = MAX_PIXELS, what: str = "input"):
        self.settings = (settings or MaskSettings()).validate()
        self.span = span or (0, input_frames)
        self._source: Optional[FrameSource] = None
        self._still: Optional[np.ndarray] = None
        self._iter: Optional[Iterator[np.ndarray]] = None
        self._pos = -1
        self._cache: Tuple[Optional[int], Optional[np.ndarray]] = (None, None)
        self._resized: dict = {}
        if isinstance(mask, np.ndarray):
            self._open_array(mask)
        else:
            self._open_file(os.fspath(mask), max_pixels)
        self._check_size(input_size, what)
        self.count = 1 if self._still is not None else self._frames_count()
        if self.count > 1 and still:
            raise DreamvidError(f"the mask {self.name} has {self.count} frames; this render takes a still "
                                "mask: give one image")
        if self.count > 1:
            start, end = self.span
            if self.count == input_frames:
                self.offset = 0
            elif self.count == end - start:
                self.offset = start
            else:
                rng = f"{end - start} frames of the range {start}..{end - 1}" if (start, end) != (0, input_frames) \
                    else f"{input_frames} frames"
                raise DreamvidError(f"the mask {self.name} has {self.count} frames, the {what} {input_frames}: "
                                    f"a mask video or folder needs one frame per frame ({rng}), or give one "
                                    "image for every frame")

    # -- opening -------------------------------------------------------------------------------

    def _open_array(self, a: np.ndarray) -> None:
        self.name = f"array {'x'.join(map(str, a.shape))}"
        if a.ndim not in (2, 3, 4) or a.size == 0 or (a.ndim == 4 and a.shape[-1] not in (1, 3, 4)):
            raise SettingError("mask", self.name, "must be (H, W), (H, W, 3) for one mask, or (N, H, W) for "
                               "one per frame", whole=False)
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            raise SettingError("mask", self.name, "must be uint8 (0..255) or float (0..1)")
        per_frame = a.ndim == 4 or (a.ndim == 3 and a.shape[-1] not in (3, 4))
        if per_frame:
            self._frames = a
        else:
            self._still = _gray(a)
        self._array_hash = hashlib.sha256(np.ascontiguousarray(a).tobytes() + str(a.shape).encode()
                                          + str(a.dtype).encode()).hexdigest()[:32]
        self._size = (a.shape[2], a.shape[1]) if per_frame else (a.shape[1], a.shape[0])

    def _open_file(self, path: str, max_pixels: int) -> None:
        self.name = path
        if not os.path.exists(path) and not any(c in path for c in "*?["):
            raise DreamvidError(f"mask not found: {path} (check the path)")
        try:
            source = open_source(path, max_pixels=max_pixels)
        except DreamvidError as e:
            raise DreamvidError(f"the mask {path} is not an image, a video or a folder of images ({e})") from None
        files = getattr(source, "files", None) or [path]
        self._hash = _file_hash(files)
        self._size = (source.width, source.height)
        if source.num_frames == 1 and (not source.is_video or os.path.splitext(path)[1].lower() in IMAGE_EXTS):
            frame = source.read(0)
            self._still = _gray(frame)
        else:
            self._source = source

    def _frames_count(self) -> int:
        return len(self._frames) if self._source is None else self._source.num_frames

    def _check_size(self, input_size: Tuple[int, int], what: str) -> None:
        (mw, mh), (iw, ih) = self._size, input_size
        if abs(mw * ih - mh * iw) > ASPECT_TOLERANCE * mh * iw:
            raise DreamvidError(f"the mask {self.name} is {mw}x{mh}, the {what} {iw}x{ih}: a mask needs the "
                                f"{what}'s aspect ratio (it is resized to the frame size)")

    # -- frames --------------------------------------------------------------------------------

    @property
    def per_frame(self) -> bool:
        return self._still is None

    def _raw(self, i: int) -> np.ndarray:
        """Mask frame for input frame i, float32 (h, w) at the mask's own size."""
        if self._still is not None:
            return self._still
        k = i - self.offset
        if not 0 <= k < self.count:
            raise DreamvidError(f"the mask {self.name} has no frame for frame {i}")
        if self._cache[0] == k:
            return self._cache[1]
        if self._source is None:
            m = _gray(self._frames[k])
        else:
            if self._iter is None or k != self._pos + 1:
                self._iter = self._source.frames(k)
            try:
                m = _gray(next(self._iter))
            except StopIteration:
                raise DreamvidError(f"the mask {self.name} ended early, at frame {k}") from None
            self._pos = k
        self._cache = (k, m)
        return m

    def base(self, i: int, shape: Tuple[int, int]) -> np.ndarray:
        """Frame i's mask at `shape` (h, w), inverted and feathered, before the strength."""
        key = (None if self._still is not None else i, tuple(shape))
        hit = self._resized.get(key)
        if hit is not None:
            return hit
        m = self._raw(i)
        h, w = shape
        if m.shape != (h, w):
            shrink = h < m.shape[0] or w < m.shape[1]
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if self.settings.invert:
            m = 1.0 - m
        if self.settings.feather > 0:
            m = cv2.GaussianBlur(m, (0, 0), self.settings.feather, borderType=cv2.BORDER_REFLECT_101)
        m = np.clip(m, 0.0, 1.0).astype(np.float32)
        if self._still is not None:
            self._resized[key] = m
        return m

    def at(self, i: int, shape: Tuple[int, int], strength: Optional[float] = None) -> np.ndarray:
        """The mask in force at frame i, float32 `shape` (h, w) in [0, 1]: m' = 1 − s·(1 − m),
        s = `strength` (default MaskSettings.strength)."""
        s = self.settings.strength if strength is None else strength
        m = self.base(i, shape)
        return m if s == 1.0 else (1.0 - np.float32(s) * (1.0 - m)).astype(np.float32)

    def strength(self, frames: Optional[FrameSettings], i: int) -> float:
        """The strength at frame i: ``mask_strength`` from `frames` when it varies, else the setting."""
        if frames is None or "mask_strength" not in frames.vary:
            return self.settings.strength
        v = frames.value("mask_strength", i)
        if not 0.0 <= v <= 1.0:
            raise SettingError("mask_strength", v, "must be in [0, 1] (1 = the mask as drawn, 0 = off)", i)
        return v

    def identity(self) -> dict:
        """What identifies the mask's pixels in a checkpoint: its content hash and settings."""
        name = os.path.abspath(self.name) if os.path.exists(self.name) else self.name
        ident = {"source": name, "sha256": getattr(self, "_hash", None) or self._array_hash,
                 "frames": self.count, **self.settings.to_dict()}
        if self.count > 1:
            ident["offset"] = self.offset
        return ident


def open_mask(mask: Optional[MaskInput], settings: Optional[MaskSettings], source: FrameSource,
              span: Tuple[int, int], max_pixels: int = MAX_PIXELS) -> Optional[FrameMask]:
    """The FrameMask of a video render of `source` over `span` (start, end), or None without one.
    MaskSettings without a mask are refused (they would do nothing)."""
    if mask is None:
        if settings is not None and settings != MaskSettings():
            raise SettingError("mask", None, "settings were given without a mask: give the mask (an image, "
                               "a video or a folder of frames)", whole=False)
        return None
    return FrameMask(mask, settings, (source.width, source.height), source.num_frames, span,
                     max_pixels=max_pixels)


def still_mask(mask: Optional[MaskInput], settings: Optional[MaskSettings], size: Tuple[int, int],
               max_pixels: int = MAX_PIXELS, what: str = "input") -> Optional[FrameMask]:
    """The FrameMask of an image or a zoom loop (a still mask only) of `size` (w, h), or None."""
    if mask is None:
        if settings is not None and settings != MaskSettings():
            raise SettingError("mask", None, "settings were given without a mask: give the mask image",
                               whole=False)
        return None
    return FrameMask(mask, settings, size, 1, None, still=True, max_pixels=max_pixels, what=what)


def limit(x: torch.Tensor, raw: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``raw + m ⊙ (x − raw)``: `x` (1, 3, H, W) kept to `raw` where the mask m (1, 1, H, W) is 0."""
    return raw + m * (x - raw)
