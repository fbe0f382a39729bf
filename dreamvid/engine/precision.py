"""Numeric precision of the network pass: the choice, hardware detection, autocast, fp16 loss scaling.

Only the network runs in lower precision (``torch.autocast``): the image, its gradient and the
update stay float32, and every objective reduces its activations in float32.

``auto`` picks, per device:

- CPU: bf16 where the CPU has native bf16 arithmetic (x86 ``avx512_bf16`` or ``amx_bf16``,
  Arm ``bf16``), read from /proc/cpuinfo; fp32 elsewhere (emulated bf16 is slower than fp32).
- CUDA: bf16 on GPUs with native bf16 (compute capability 8.0+, Ampere and later); fp16 on older
  ones, with the loss scaled so that small gradients do not underflow (:class:`LossScaler`).
- MPS and anything else: fp32. (MPS autocast's op coverage and its bf16 support depend on the
  macOS version, and we cannot measure it; ``--precision fp16`` may still be asked for.)
"""

from __future__ import annotations

import contextlib
import functools
import platform
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch

from ..config.settings import PRECISIONS
from ..errors import SettingError

Activations = Dict[str, torch.Tensor]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The CPU feature flags the kernel reports (x86 ``flags``, Arm ``Features``); empty if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 natively (AVX512-BF16 / AMX-BF16 on x86, BF16 on Arm)."""
    flags = cpu_flags()
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def cuda_has_native_bf16(device: torch.device) -> bool:
    """True for CUDA GPUs with bf16 tensor cores (compute capability 8.0 and later)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


@dataclass(frozen=True)
class Precision:
    """A resolved precision: ``name`` is "fp32", "bf16" or "fp16" (never "auto")."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def scaled(self) -> bool:
        """fp16 needs loss scaling (5 exponent bits: gradients below ~6e-8 become zero)."""
        return self.name == "fp16"

    def autocast(self):
        """Context in which the network runs in this precision (a no-op for fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


FP32 = Precision("fp32", "cpu")  # fp32 runs no autocast, so it fits every device


def resolve_precision(choice: str, device: torch.device) -> Precision:
    """"auto" | "fp32" | "bf16" | "fp16" on `device` -> Precision; SettingError if unusable there."""
    if choice not in PRECISIONS:
        raise SettingError("precision", choice, f"must be one of {', '.join(PRECISIONS)}")
    kind = device.type
    if choice == "auto":
        if kind == "cpu":
            choice = "bf16" if cpu_has_native_bf16() else "fp32"
        elif kind == "cuda":
            choice = "bf16" if cuda_has_native_bf16(device) else "fp16"
        else:
            choice = "fp32"
    if choice != "fp32":
        from torch.amp.autocast_mode import is_autocast_available
        if not is_autocast_available(kind):
            raise SettingError("precision", choice, f"is not available on {kind}: use fp32 or auto")
        if kind == "cuda" and choice == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
            raise SettingError("precision", choice, "is not supported by this GPU: use fp16 or auto")
    return Precision(choice, kind)


class LossScaler:
    """Dynamic loss scale for fp16 (as torch.amp.GradScaler, but for a gradient w.r.t. the input).

    The loss is backpropagated as loss · scale and the gradient divided by scale. A non-finite
    gradient halves the scale and the backward pass is redone (down to scale 1; past that the
    caller recomputes in fp32); every `growth_interval` clean passes double it again. One scaler
    lives for one dream() call, so a frame's pixels depend on that frame alone.
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth_interval: int = 16, max_scale: float = 2.0 ** 24):
        self.scale = init_scale
        self.growth_interval = growth_interval
        self.max_scale = max_scale
        self._clean = 0

    def input_grad(self, loss: torch.Tensor, x: torch.Tensor) -> Optional[torch.Tensor]:
        """d loss / d x (same shape as x), unscaled; None if it overflowed even at scale 1."""
        while True:
            (g,) = torch.autograd.grad(loss * self.scale, x, retain_graph=True)
            if bool(torch.isfinite(g).all()):
                self._clean += 1
                if self._clean % self.growth_interval == 0:
                    self.scale = min(self.scale * 2.0, self.max_scale)
                return g / self.scale
            self._clean = 0
            if self.scale <= 1.0:
                return None
            self.scale = max(self.scale / 2.0, 1.0)


def loss_and_grad(net: Callable[[], Activations], objective: Callable[[Activations], torch.Tensor],
                  x: torch.Tensor, precision: Precision,
                  scaler: Optional[LossScaler] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Loss (detached scalar) and d loss / d x (same shape as x).

    net() runs the network on x (which requires grad) and returns its activations; only it runs
    in `precision`, the objective reduces them in float32 outside autocast. fp16 goes through
    `scaler`; a gradient that overflows even unscaled is recomputed in fp32.
    """
    with precision.autocast():
        acts = net()
    loss = objective(acts)
    if scaler is None or not precision.scaled:
        (g,) = torch.autograd.grad(loss, x)
        return loss.detach(), g
    g = scaler.input_grad(loss, x)
    if g is None:
        del acts
        loss = objective(net())
        (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g
