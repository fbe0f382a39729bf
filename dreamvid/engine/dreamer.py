"""A ready-to-use dreamer: model, objective and settings built once per run, fed numpy frames."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from ..config.settings import DreamSettings
from ..core.convert import to_float, to_tensor
from ..core.rng import make_generator
from .ascent import dream, steps_total
from .models import load_model, resolve_device
from .objectives import build_objective








class Dreamer:
    """Builds the model and objective for `settings` once; ``dreamer(rgb, frame_index)`` dreams one image.

    device: "auto" | "cpu" | "cuda" | "mps" or a torch.device; weights: see models.load_model.
    """

    def __init__(self, settings: DreamSettings, device="auto", weights: Optional[str] = None,
                 quiet: bool = False):
        self.settings = settings.validate()
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.model = load_model(settings.model, weights, self.device, quiet=quiet)
        guide = None
        if settings.guide:
            from ..io.images import read_image  # the guide image is the only file a dreamer reads
            guide = to_tensor(read_image(settings.guide), self.device)
        self.objective = build_objective(self.model, settings.layers, settings.channel,
                                         settings.class_index, guide)

    @property
    def identity(self) -> dict:
        """What identifies this dreamer's pixels (for checkpoint manifests)."""
        # The device and torch version are part of it: CPU and GPU kernels (autocast, other
        # algorithms) give slightly different pixels, so a resume elsewhere would not be exact.
        return {"settings": self.settings.to_dict(), "model": self.model.name,
                "weights": self.model.weights_id,
                "runtime": {"device": self.device.type, "torch": torch.__version__}}

    def steps(self, height: int, width: int, octaves: Optional[int] = None,
              iterations: Optional[int] = None) -> int:
        return steps_total(height, width, self.model, self.objective, self.settings, octaves, iterations)

    def dream_tensor(self, x: torch.Tensor, index: int = 0, on_step: Optional[Callable[[], None]] = None,
                     octaves: Optional[int] = None, iterations: Optional[int] = None) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] -> dreamed (1, 3, H, W); randomness seeded by (seed, index) only."""
        gen = make_generator(self.settings.seed, index)
        return dream(x.to(self.device), self.model, self.objective, self.settings, gen, on_step,
                     octaves, iterations)

    def __call__(self, rgb: np.ndarray, index: int = 0, on_step: Optional[Callable[[], None]] = None,
                 octaves: Optional[int] = None, iterations: Optional[int] = None) -> np.ndarray:
        """RGB (H, W, 3) uint8 or float32 [0, 1] -> dreamed float32 (H, W, 3) in [0, 1]."""
        return to_float(self.dream_tensor(to_tensor(rgb, self.device), index, on_step, octaves, iterations))
