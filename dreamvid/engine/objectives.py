"""What to maximise. Objectives compose: ``layer("mixed3", 0.5) + layer("mixed4", 2.0)``.

An objective names the layers it reads (``.layers``) and maps the activations a
:class:`~dreamvid.models.DreamModel` returns to a scalar to ascend. Every term is a mean over the
activation, so its size does not depend on the image size (``max_loss`` thresholds stay valid
on any frame size and on tiles).
"""

from __future__ import annotations

from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

import torch

from ..errors import DreamvidError, SettingError

Activations = Dict[str, torch.Tensor]

BORDER = 2  # the Keras notebook drops a 2-pixel border of each activation map (edge artifacts)


class Objective:
    """A scalar function of activations: ``obj(acts) -> tensor ()``; ``+`` and ``*`` compose."""

    def __init__(self, fn: Callable[[Activations], torch.Tensor], layers: Sequence[str], name: str):
        self.fn = fn
        self.layers: FrozenSet[str] = frozenset(layers)
        self.name = name

    def __call__(self, acts: Activations) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other: "Objective") -> "Objective":
        return Objective(lambda a: self(a) + other(a), self.layers | other.layers,
                         f"{self.name} + {other.name}")

    def __mul__(self, k: float) -> "Objective":
        return Objective(lambda a: k * self(a), self.layers, f"{k:g}*({self.name})")

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _crop_border(act: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, h-4, w-4) where the map is big enough to spare the border."""
    if act.shape[-1] > 2 * BORDER and act.shape[-2] > 2 * BORDER:
        return act[..., BORDER:-BORDER, BORDER:-BORDER]
    return act


def layer(name: str, weight: float = 1.0) -> Objective:
    """The seeds' loss: weight · sum(act²) / numel(act), border dropped from the sum."""
    def fn(acts: Activations) -> torch.Tensor:
        act = acts[name]
        return weight * _crop_border(act).float().pow(2).sum() / act.numel()
    return Objective(fn, [name], f"{weight:g}*{name}")


def channel(name: str, index: int, weight: float = 1.0) -> Objective:
    """Mean activation of one channel of `name` (lucent's ``"mixed4:70"``)."""
    def fn(acts: Activations) -> torch.Tensor:
        act = acts[name]
        if not 0 <= index < act.shape[1]:
            raise DreamvidError(f"channel {index} is out of range for layer {name} "
                                f"(it has {act.shape[1]} channels: 0..{act.shape[1] - 1})")
        return weight * _crop_border(act[:, index]).float().mean()
    return Objective(fn, [name], f"{name}:{index}")


def class_logit(index: int, weight: float = 1.0, num_classes: int = 1000) -> Objective:
    """Class visualisation: the pre-softmax score of class `index` (0..num_classes-1; the
    class count belongs to the model's weights: 1000 ImageNet, 1008 inception5h, 365 Places365)."""
    if not 0 <= index < num_classes:
        raise DreamvidError(f"class {index} is out of range: this model's classes are 0..{num_classes - 1}")
    return Objective(lambda a: weight * a["logits"][:, index].float().mean(), ["logits"], f"class {index}")


def guide(name: str, guide_features: torch.Tensor, weight: float = 1.0) -> Objective:
    """Google's guided dream: each position ascends toward its best-matching guide feature.

    guide_features: (C, N) activations of the guide image at `name`, flattened over space.
    For activations X (C, HW) the matches are argmax over N of Xᵀ·G; the loss is the mean over
    positions of x·g_match, whose gradient w.r.t. X is the matched guide features themselves.
    """
    g = guide_features.detach()

    def fn(acts: Activations) -> torch.Tensor:
        act = acts[name]
        b, c, h, w = act.shape
        x = act.float().reshape(b, c, h * w)
        gg = g.to(x.device, x.dtype)
        best = torch.einsum("bcp,cn->bpn", x.detach(), gg).argmax(dim=2)  # (B, HW)
        matched = gg[:, best].permute(1, 0, 2)  # (B, C, HW)
        return weight * (x * matched).sum() / x.numel()
    return Objective(fn, [name], f"guide@{name}")


# --------------------------------------------------------------------------- parsing (CLI strings)

def parse_layer_weights(text: str) -> List[Tuple[str, float]]:
    """``"mixed3=0.5,mixed4=2.0"`` (a bare name means weight 1) -> [("mixed3", 0.5), ("mixed4", 2.0)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, w = part.partition("=")
        try:
            out.append((name.strip(), float(w) if w else 1.0))
        except ValueError:
            raise SettingError("layers", text, f"bad layer weight '{part}': write LAYER=WEIGHT, e.g. mixed4=2.0",
                               whole=True) from None
    if not out:
        raise SettingError("layers", text, "no layers given: write e.g. {layers} mixed3=0.5,mixed4=2.0")
    return out


def parse_channel(text: str) -> Tuple[str, int]:
    """``"mixed4:70"`` -> ("mixed4", 70)."""
    name, sep, idx = text.rpartition(":")
    if not sep or not name or not idx.strip().isdigit():
        raise SettingError("channel", text, f"bad channel '{text}': write LAYER:N, e.g. mixed4:70", whole=True)
    return name, int(idx)


def build_objective(model, layers: Sequence[Tuple[str, float]] = (), channel_spec: Optional[str] = None,
                    class_index: Optional[int] = None, guide_image: Optional[torch.Tensor] = None,
                    guide_layer: Optional[str] = None) -> Objective:
    """Resolve names against `model` and sum the requested terms.

    guide_image: (1, 3, H, W) in [0, 1] on the model's device; its features at `guide_layer`
    (default: the deepest of `layers`) define a guide term. A guide or a channel or a class
    replaces the layer mix; they may also be combined with each other.
    """
    terms: List[Objective] = []
    if channel_spec:
        name, idx = parse_channel(channel_spec)
        name = model.resolve(name)
        if idx >= model.channels[name]:
            raise DreamvidError(f"channel {idx} is out of range for layer {name} "
                                f"(it has {model.channels[name]} channels: 0..{model.channels[name] - 1})")
        terms.append(channel(name, idx))
    if class_index is not None:
        model.resolve("logits")  # a model whose weights carry no classifier says so
        terms.append(class_logit(class_index, num_classes=model.num_classes))
    if guide_image is not None:
        resolved = [model.resolve(n) for n, _ in layers]
        name = model.resolve(guide_layer) if guide_layer else max(resolved, key=model.depth)
        with torch.no_grad():
            feats = model(guide_image, [name])[name][0]
        terms.append(guide(name, feats.reshape(feats.shape[0], -1)))
    if not terms:
        if not layers:
            raise DreamvidError("nothing to maximise: give --layers, --channel, --class or --guide")
        terms = [layer(model.resolve(n), w) for n, w in layers]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total
