"""A ready-to-use dreamer: model, objective and settings built once per run, fed numpy frames."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch

from ..config.settings import DEFAULT_PRECISION, DreamSettings
from ..core.convert import to_float, to_tensor
from ..core.rng import make_generator
from ..errors import SettingError
from .ascent import dream, steps_total
from .cpu_memory import keep_freed_memory
from .cuda_step import GraphCache, MemoryBudget
from .models import load_model, resolve_device
from .objectives import Objective, build_objective
from .precision import resolve_precision

#: DreamSettings fields that need another network or objective structure: fixed for a Dreamer.
FIXED_FIELDS = ("model", "channel", "class_index", "guide", "tile_size", "seed")


class Dreamer:
    """Builds the model and objective for `settings` once; ``dreamer(rgb, frame_index)`` dreams one image.

    device: "auto" | "cpu" | "cuda" | "mps" or a torch.device; weights: see models.load_model.
    guide_image: RGB uint8 (H, W, 3), the image `settings.guide` names (read by the caller: the
    engine reads no files). precision: "auto" | "fp32" | "bf16" | "fp16" for the network pass
    (engine/precision.py); the resolved one is part of :attr:`identity`. batch_tiles: tiles of a
    large image per network pass (see ascent.Ascent; for GPUs, measure with bench/gpu.py).

    Per-frame settings: every call takes ``settings=`` (the DreamSettings in force at that frame)
    overriding the ascent knobs and the layer weights for that call. The model is never rebuilt;
    the objective is rebuilt (cheaply, cached) only when the layer weights differ. Fields that
    need another network or objective structure (:data:`FIXED_FIELDS` and the layer names) must
    equal the base settings', else SettingError.
    """

    def __init__(self, settings: DreamSettings, device="auto", weights: Optional[str] = None, *,
                 guide_image: Optional[np.ndarray] = None, precision: str = DEFAULT_PRECISION,
                 batch_tiles: int = 1, cuda_graphs: bool = True):
        self.settings = settings.validate()
        self.batch_tiles = batch_tiles
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.precision = resolve_precision(precision, self.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # each pass would page-fault its working set in anew (cpu_memory.py)
        if settings.guide and guide_image is None:
            raise SettingError("guide", settings.guide, "needs the guide image: read it and pass it "
                               "as Dreamer(..., guide_image=RGB uint8 HxWx3)")
        self.model = load_model(settings.model, weights, self.device, precision=self.precision.name)
        guide = to_tensor(guide_image, self.device) if settings.guide else None
        self.objective = build_objective(self.model, settings.layers, settings.channel,
                                         settings.class_index, guide)
        # A channel, a class or a guide replaces the layer mix: then weights change nothing.
        self._weighted = not (settings.channel or settings.class_index is not None or settings.guide)
        self._objectives: Dict[Tuple[Tuple[str, float], ...], Objective] = {settings.layers: self.objective}
        # CUDA: tile only what would not fit the memory free now; replay each shape's step as a CUDA
        # graph (engine/cuda_step.py). Nothing of it on other devices.
        cuda = self.device.type == "cuda"
        self.budget = MemoryBudget(self.device) if cuda else None
        self.graphs = GraphCache() if cuda and cuda_graphs else None

    @property
    def identity(self) -> dict:
        """What identifies this dreamer's pixels (for checkpoint manifests)."""
        # The device, torch version, precision and memory layout are part of it: other kernels
        # give slightly different pixels, so a resume with another runtime would not be exact.
        runtime = {"device": self.device.type, "torch": torch.__version__,
                   "precision": self.precision.name, "channels_last": self.model.channels_last,
                   "bn_folded": self.model.bn_folded}
        if self.device.type == "cpu":  # CPU kernels split their sums by thread: another count, other last bits
            runtime["cpu_threads"] = torch.get_num_threads()
        if self.device.type == "cuda":  # graphs replay the eager kernels; recorded all the same
            runtime["cuda_graphs"] = self.graphs is not None
            runtime["tiling"] = "by free memory"
        return {"settings": self.settings.to_dict(), "model": self.model.name,
                "weights": self.model.weights_id, "runtime": runtime}

    def _frame(self, settings: Optional[DreamSettings]) -> Tuple[DreamSettings, Objective]:
        """The settings and objective of one call (the base ones when `settings` is None)."""
        if settings is None or settings is self.settings:
            return self.settings, self.objective
        base = self.settings
        for name in FIXED_FIELDS:
            if getattr(settings, name) != getattr(base, name):
                raise SettingError(name, getattr(settings, name),
                                   f"cannot change per frame (it was {getattr(base, name)!r} when the "
                                   "dreamer was built): build another Dreamer")
        names = tuple(n for n, _ in settings.layers)
        if names != tuple(n for n, _ in base.layers):
            raise SettingError("layers", settings.layers, "cannot change per frame: only the layer "
                               "weights may vary, the layer names are fixed when the dreamer is built")
        settings.validate()
        if not self._weighted:
            return settings, self.objective
        objective = self._objectives.get(settings.layers)
        if objective is None:
            if len(self._objectives) > 256:  # a weight varying over a long render
                self._objectives = {base.layers: self.objective}
            objective = self._objectives[settings.layers] = build_objective(self.model, settings.layers)
        return settings, objective

    def steps(self, height: int, width: int, octaves: Optional[int] = None,
              iterations: Optional[int] = None, *, settings: Optional[DreamSettings] = None,
              fine_iterations: Optional[int] = None) -> int:
        """How many times on_step will be called for an image of this size (progress bars)."""
        s, objective = self._frame(settings)
        return steps_total(height, width, self.model, objective, s, octaves, iterations, fine_iterations)

    def dream_tensor(self, x: torch.Tensor, index: int = 0, on_step: Optional[Callable[[], None]] = None,
                     octaves: Optional[int] = None, iterations: Optional[int] = None, *,
                     settings: Optional[DreamSettings] = None, extra=None,
                     fine_iterations: Optional[int] = None,
                     mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(1, 3, H, W) in [0, 1] -> dreamed (1, 3, H, W); randomness seeded by (seed, index) only.

        on_step() is called after every ascent step; whatever it raises (e.g. Cancelled)
        propagates and leaves nothing behind. settings: this call's DreamSettings (see class doc);
        `octaves` / `iterations` override it in turn. extra: extends each ascent step's transforms
        (see ascent.dream; video frames pass transforms.carried_dream). fine_iterations: steps at
        the full-size octave when they differ from the others' (ascent.dream). mask: (1, 1, H, W)
        in [0, 1], where to dream (ascent.dream; None = everywhere).
        """
        s, objective = self._frame(settings)
        gen = make_generator(s.seed, index)
        return dream(x.to(self.device), self.model, objective, s, gen, on_step, octaves, iterations,
                     self.precision, self.batch_tiles, extra=extra, fine_iterations=fine_iterations,
                     budget=self.budget, graphs=self.graphs,
                     mask=None if mask is None else mask.to(self.device))

    def __call__(self, rgb: np.ndarray, index: int = 0, on_step: Optional[Callable[[], None]] = None,
                 octaves: Optional[int] = None, iterations: Optional[int] = None, *,
                 settings: Optional[DreamSettings] = None, extra=None,
                 fine_iterations: Optional[int] = None, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """RGB (H, W, 3) uint8 or float32 [0, 1] -> dreamed float32 (H, W, 3) in [0, 1].
        mask: float32 (H, W) in [0, 1] (1 = dream, 0 = keep `rgb`), or None."""
        m = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask, np.float32))[None, None]
        return to_float(self.dream_tensor(to_tensor(rgb, self.device), index, on_step, octaves, iterations,
                                          settings=settings, extra=extra, fine_iterations=fine_iterations,
                                          mask=m))
