"""Dream one image file into another."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from ..config.presets import settings_from_preset
from ..config.settings import MAX_PIXELS, DreamSettings, MaskSettings, RunOptions
from ..core.convert import quantize
from ..core.imageops import resize_to_max_side
from ..core.noise import smooth_noise
from ..engine.dreamer import Dreamer
from ..errors import Cancelled, DreamvidError
from ..io.images import read_image, write_image
from .common import build_dreamer
from .events import CancelToken, EventHandler, Reporter
from .mask import MaskInput, still_mask

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


NOISE_SIDE = 448  # size of the "noise" start image (square) when --max-side is not given


def dream_image(input_path: str, output_path: str, settings: Optional[DreamSettings] = None,
                max_side: Optional[int] = None, device: str = "auto", weights: Optional[str] = None,
                dreamer: Optional[Dreamer] = None, *, on_event: Optional[EventHandler] = None,
                cancel: Optional[CancelToken] = None, max_pixels: int = MAX_PIXELS,
                mask: Optional[MaskInput] = None, mask_settings: Optional[MaskSettings] = None) -> np.ndarray:
    """Dream `input_path` (or "noise") and write the result to `output_path` (PNG or JPEG by extension).

    settings: DreamSettings (default: the default preset). max_side: dream at a reduced size.
    on_event: receives "start" (total ascent steps), one "step" per ascent step (with its octave),
    "frame" (the result) and "done"; cancel: anything with ``is_set()``, checked between steps
    (a stop raises Cancelled and writes nothing). An input past `max_pixels` pixels (by its header)
    raises InputTooLarge before it is decoded. Returns the dreamed image, RGB uint8 (H, W, 3).
    The output is written atomically. mask: where to dream (an image path or an array, white =
    dream, black = keep the input; pipeline/mask.py), mask_settings: feather, inversion, strength.
    """
    if not output_path.lower().endswith(IMAGE_EXTENSIONS):
        raise DreamvidError(f"cannot write an image to {output_path}: use a .png or .jpg output")
    if os.path.isdir(output_path):
        raise DreamvidError(f"output {output_path} is a folder: give an image file name")
    settings = settings or (dreamer.settings if dreamer is not None else settings_from_preset())
    if input_path == "noise":
        side = max_side or NOISE_SIDE
        rgb = quantize(smooth_noise(side, side, settings.seed))
    else:
        rgb = read_image(input_path, max_pixels)
    if max_side:
        rgb = resize_to_max_side(rgb, max_side)
    fmask = still_mask(mask, mask_settings, (rgb.shape[1], rgb.shape[0]), max_pixels)
    m = None if fmask is None else fmask.at(0, rgb.shape[:2])
    dreamer = build_dreamer(settings, RunOptions(device=device, weights=weights), dreamer)
    reporter = Reporter(on_event, cancel)
    h, w = rgb.shape[:2]
    total, per_octave = dreamer.steps(h, w), dreamer.settings.iterations
    octaves = total // per_octave
    done = 0

    def step() -> None:
        nonlocal done
        reporter.check()
        done += 1
        reporter.emit("step", index=done, total=total, octave=min((done - 1) // per_octave + 1, octaves),
                      octaves=octaves)

    reporter.emit("start", total=total, resumed_at=0, output=output_path)
    try:
        reporter.check()
        out = dreamer(rgb, index=0, on_step=step, mask=m)
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled(f"stopped while dreaming {input_path}; nothing was written") from None
    result = quantize(out)
    write_image(output_path, result)
    reporter.emit("frame", index=0, total=1, frame=result)
    reporter.emit("done", output=output_path)
    return result
