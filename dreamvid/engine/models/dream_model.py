"""The wrapper every backbone is dreamed through: RGB in [0, 1] in, named activations out."""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ...errors import DreamvidError

LOGITS = "logits"  # every model's last stage: its class scores (B, num_classes)

#: A stage: (name, fn). fn(h) -> h; a stage that holds taps of its own (an inception block's
#: branches) is called fn(h, record) and puts them into the dict `record`.
Stage = Tuple[str, Callable[..., torch.Tensor]]


class DreamModel(nn.Module):
    """A backbone cut into named stages, fed RGB in [0, 1].

    ``forward(x, layers)`` takes x of shape (B, 3, H, W) in [0, 1] and returns
    ``{layer: activation (B, C, h, w)}`` for the canonical layer names asked for
    (``"logits"`` gives (B, num_classes)), running the network only as deep as needed.
    Input normalisation belongs to the weights: ``bgr`` flips the channels to BGR first, then
    ``(x - mean) / std`` (a Caffe net's "BGR 0-255 minus mean" is mean = m/255, std = 1/255).
    Taps inside a stage (``inner``: tap -> stage) are recorded by that stage when asked for.
    """

    def __init__(self, name: str, net: nn.Module, stages: List[Stage], layer_table, aliases,
                 mean: Sequence[float], std: Sequence[float], weights_id: str, *,
                 bgr: bool = False, num_classes: int = 1000, inner: Optional[Mapping[str, str]] = None):
        super().__init__()
        self.name = name
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)  # we differentiate w.r.t. the image only
        self._stages = stages
        self.channels: Dict[str, int] = {n: c for n, c, _ in layer_table}
        self.strides: Dict[str, int] = {n: s for n, _, s in layer_table}
        self.aliases: Dict[str, str] = dict(aliases)
        self.weights_id = weights_id
        self.bgr = bgr
        self.num_classes = num_classes  # 0: the weights carry no classifier
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self._order = {n: i for i, (n, _) in enumerate(stages)}
        self._inner: Dict[str, str] = dict(inner or {})
        for tap, stage in self._inner.items():
            self._order[tap] = self._order[stage]
        self.channels_last = False  # inputs are converted to this memory format (set by load_model)
        self.bn_folded = False

    def resolve(self, layer: str) -> str:
        """Canonical name of a layer or alias; DreamvidError naming the valid ones otherwise."""
        if layer == LOGITS and not self.num_classes:
            raise DreamvidError(f"the weights of model {self.name} carry no classifier: "
                                "dream layers or channels instead of a class")
        if layer in self.channels or layer == LOGITS:
            return layer
        if layer in self.aliases:
            return self.aliases[layer]
        raise DreamvidError(f"unknown layer '{layer}' for model {self.name}: "
                            f"see 'dreamvid --list-layers {self.name}'")

    def depth(self, layer: str) -> int:
        """Position of `layer` in the network (0 = first stage); deeper layers cost more."""
        return self._order[self.resolve(layer)]

    def min_side(self, layers: Iterable[str]) -> int:
        """Smallest input side that leaves the deepest of `layers` at least ~6 px after the border crop."""
        strides = [self.strides.get(self.resolve(l), 32) for l in layers] or [32]
        return max(32, 6 * max(strides))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] (B, 3, H, W) -> what the weights were trained on (same shape)."""
        if self.bgr:
            x = x.flip(1)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> Dict[str, torch.Tensor]:
        wanted = {self.resolve(l) for l in layers}
        last = max(self._order[l] for l in wanted)
        inner: Dict[str, List[str]] = {}
        for tap in wanted & self._inner.keys():
            inner.setdefault(self._inner[tap], []).append(tap)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.normalize(x)
        out = {}
        for name, fn in self._stages[: last + 1]:
            if name in inner:
                record: Dict[str, torch.Tensor] = {}
                h = fn(h, record)
                out.update({tap: record[tap] for tap in inner[name]})
            else:
                h = fn(h)
            if name in wanted:
                out[name] = h
        return out
