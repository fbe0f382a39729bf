"""Dream one image file into another."""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
from tqdm import tqdm

from ..config.presets import settings_from_preset
from ..config.settings import DreamSettings
from ..core.convert import quantize
from ..core.imageops import resize_to_max_side
from ..core.noise import smooth_noise
from ..engine.dreamer import Dreamer
from ..errors import DreamvidError
from ..io.images import read_image, write_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


NOISE_SIDE = 448  # size of the "noise" start image (square) when --max-side is not given


def dream_image(input_path: str, output_path: str, settings: Optional[DreamSettings] = None,
                max_side: Optional[int] = None, device: str = "auto", weights: Optional[str] = None,
                quiet: bool = False, dreamer: Optional[Dreamer] = None) -> np.ndarray:
    """Dream `input_path` (or "noise") and write the result to `output_path` (PNG or JPEG by extension).

    settings: DreamSettings (default: the default preset). max_side: dream at a reduced size.
    Returns the dreamed image, RGB uint8 (H, W, 3). The output is written atomically.
    """
    if not output_path.lower().endswith(IMAGE_EXTENSIONS):
        raise DreamvidError(f"cannot write an image to {output_path}: use a .png or .jpg output")
    if os.path.isdir(output_path):
        raise DreamvidError(f"output {output_path} is a folder: give an image file name")
    if input_path == "noise":
        side = max_side or NOISE_SIDE
        rgb = quantize(smooth_noise(side, side, settings.seed if settings else 0))
    else:
        rgb = read_image(input_path)
    if max_side:
        rgb = resize_to_max_side(rgb, max_side)
    settings = settings or settings_from_preset()
    dreamer = dreamer or Dreamer(settings, device, weights, quiet=quiet)
    h, w = rgb.shape[:2]
    total, per_octave = dreamer.steps(h, w), dreamer.settings.iterations
    octaves = total // per_octave

    with tqdm(total=total, desc=f"octave 1/{octaves}", unit="step", disable=quiet, leave=False) as bar:
        def step():
            bar.update(1)
            bar.set_description(f"octave {min(bar.n // per_octave + 1, octaves)}/{octaves}", refresh=False)
        out = dreamer(rgb, index=0, on_step=step)
    result = quantize(out)
    write_image(output_path, result)
    return result
