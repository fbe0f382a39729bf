"""Google's inception5h: the TensorFlow GoogLeNet of the DeepDream tutorial, as a plain module.

Parameter names follow ProGamerGov's public PyTorch conversion (pytorch-old-tensorflow-models,
``inception5h.pth``): ``<tap>_conv`` for each of its 57 convolutions (``mixed4d_3x3_bottleneck_
pre_relu_conv.weight`` ...) and ``softmax2_pre_activation_matmul`` for the 1008-class classifier.
Unlike that conversion (fixed pads, right only for even sizes) the stride-2 layers pad as
TensorFlow's SAME does for the actual size; the LRNs are TF's (depth_radius 5, bias 2,
alpha 1e-4, beta 0.5). Inputs: RGB 0-255 minus 117.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dream_model import LOGITS, Stage
from .ops import LocalResponseNorm, _SameConv2d, same_max_pool2d

NUM_CLASSES = 1008
LRN = dict(depth_radius=5, bias=2.0, alpha=1e-4, beta=0.5)

#: (block, in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce, total stride).
#: Not Caffe's counts: mixed4a's 3x3 has 204 (4a is 508 wide), mixed5a's 5x5 bottleneck 48.
BLOCKS = [
    ("mixed3a", 192, 64, 96, 128, 16, 32, 32, 8), ("mixed3b", 256, 128, 128, 192, 32, 96, 64, 8),
    ("mixed4a", 480, 192, 96, 204, 16, 48, 64, 16), ("mixed4b", 508, 160, 112, 224, 24, 64, 64, 16),
    ("mixed4c", 512, 128, 128, 256, 24, 64, 64, 16), ("mixed4d", 512, 112, 144, 288, 32, 64, 64, 16),
    ("mixed4e", 528, 256, 160, 320, 32, 128, 128, 16),
    ("mixed5a", 832, 256, 160, 320, 48, 128, 128, 32), ("mixed5b", 832, 384, 192, 384, 48, 128, 128, 32),
]
POOL_BEFORE = {"mixed4a": "maxpool4", "mixed5a": "maxpool10"}  # the graph's stride-2 pools


def _branches(block) -> List[Tuple[str, int, int, int]]:
    """[(conv tap, in channels, out channels, kernel)] of one block, in graph order."""
    name, cin, c1, c3b, c3, c5b, c5, cp, _ = block
    return [(f"{name}_1x1_pre_relu", cin, c1, 1), (f"{name}_3x3_bottleneck_pre_relu", cin, c3b, 1),
            (f"{name}_3x3_pre_relu", c3b, c3, 3), (f"{name}_5x5_bottleneck_pre_relu", cin, c5b, 1),
            (f"{name}_5x5_pre_relu", c5b, c5, 5), (f"{name}_pool_reduce_pre_relu", cin, cp, 1)]


def _table() -> Tuple[list, Dict[str, str]]:
    """([(tap, channels, stride)] in graph order, {inner tap: the stage computing it})."""
    rows = [("conv2d0_pre_relu", 64, 2), ("conv2d0", 64, 2), ("maxpool0", 64, 4), ("localresponsenorm0", 64, 4),
            ("conv2d1_pre_relu", 64, 4), ("conv2d1", 64, 4), ("conv2d2_pre_relu", 192, 4), ("conv2d2", 192, 4),
            ("localresponsenorm1", 192, 4), ("maxpool1", 192, 8)]
    inner = {"conv2d0_pre_relu": "conv2d0", "conv2d1_pre_relu": "conv2d1", "conv2d2_pre_relu": "conv2d2"}
    for block in BLOCKS:
        name, cin, stride = block[0], block[1], block[-1]
        if name in POOL_BEFORE:
            rows.append((POOL_BEFORE[name], cin, stride))
        for tap, _, cout, _ in _branches(block):
            if tap == f"{name}_pool_reduce_pre_relu":
                rows.append((f"{name}_pool", cin, stride))
                inner[f"{name}_pool"] = name
            rows += [(tap, cout, stride), (tap[: -len("_pre_relu")], cout, stride)]
            inner[tap] = inner[tap[: -len("_pre_relu")]] = name
        rows.append((name, sum(block[i] for i in (2, 4, 6, 7)), stride))
    return rows, inner


LAYERS, INNER = _table()


def _aliases() -> Dict[str, str]:
    """The TF graph's own spellings: ``import/mixed4d``, ``import/mixed4d_3x3_pre_relu/conv``."""
    out = {}
    for tap, _, _ in LAYERS:
        out[f"import/{tap}"] = tap
        if tap.endswith("_pre_relu"):
            out[f"import/{tap}/conv"] = out[f"{tap}/conv"] = tap
    return out


ALIASES = _aliases()


class Inception5h(nn.Module):
    """inception5h's 57 convolutions and its classifier; run it through :func:`stages`."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.conv2d0_pre_relu_conv = _SameConv2d(3, 64, 7, stride=2)  # SAME for odd and even sizes
        self.conv2d1_pre_relu_conv = nn.Conv2d(64, 64, 1)
        self.conv2d2_pre_relu_conv = nn.Conv2d(64, 192, 3, padding=1)
        self.localresponsenorm0 = LocalResponseNorm(64, **LRN)  # (no parameters: the keys stay the conversion's)
        self.localresponsenorm1 = LocalResponseNorm(192, **LRN)
        for block in BLOCKS:
            for tap, cin, cout, k in _branches(block):
                setattr(self, f"{tap}_conv", nn.Conv2d(cin, cout, k, padding=k // 2))  # stride 1: SAME
        self.softmax2_pre_activation_matmul = nn.Linear(1024, num_classes) if num_classes else None


def _block(net: Inception5h, block):
    name = block[0]
    conv = {tap: getattr(net, f"{tap}_conv") for tap, _, _, _ in _branches(block)}

    def run(x: torch.Tensor, record: Optional[dict] = None) -> torch.Tensor:
        taps = {}

        def relu_of(tap: str, h: torch.Tensor) -> torch.Tensor:
            pre = conv[tap](h)
            taps[tap] = pre
            taps[tap[: -len("_pre_relu")]] = post = F.relu(pre)
            return post

        b1 = relu_of(f"{name}_1x1_pre_relu", x)
        b3 = relu_of(f"{name}_3x3_pre_relu", relu_of(f"{name}_3x3_bottleneck_pre_relu", x))
        b5 = relu_of(f"{name}_5x5_pre_relu", relu_of(f"{name}_5x5_bottleneck_pre_relu", x))
        taps[f"{name}_pool"] = pool = F.max_pool2d(x, 3, 1, 1)  # stride 1: SAME is symmetric
        bp = relu_of(f"{name}_pool_reduce_pre_relu", pool)
        if record is not None:
            record.update(taps)
        return torch.cat([b1, b3, b5, bp], 1)
    return run


def _conv_relu(conv: nn.Module, tap: str):
    def run(x: torch.Tensor, record: Optional[dict] = None) -> torch.Tensor:
        pre = conv(x)
        if record is not None:
            record[tap] = pre
        return F.relu(pre)
    return run


def stages(net: Inception5h) -> List[Stage]:
    pool = lambda h: same_max_pool2d(h, 3, 2)  # noqa: E731
    out: List[Stage] = [
        ("conv2d0", _conv_relu(net.conv2d0_pre_relu_conv, "conv2d0_pre_relu")), ("maxpool0", pool),
        ("localresponsenorm0", net.localresponsenorm0), ("conv2d1", _conv_relu(net.conv2d1_pre_relu_conv, "conv2d1_pre_relu")),
        ("conv2d2", _conv_relu(net.conv2d2_pre_relu_conv, "conv2d2_pre_relu")),
        ("localresponsenorm1", net.localresponsenorm1), ("maxpool1", pool)]
    for block in BLOCKS:
        if block[0] in POOL_BEFORE:
            out.append((POOL_BEFORE[block[0]], pool))
        out.append((block[0], _block(net, block)))
    if net.softmax2_pre_activation_matmul is not None:
        # The graph's 7x7 average pool is the global mean at 224x224; any size gets the global mean.
        out.append((LOGITS, lambda h: net.softmax2_pre_activation_matmul(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))))
    return out


def adapt_state_dict(sd: dict) -> dict:
    """The conversion's keys are ours; auxiliary heads (head0/head1, nn0/nn1, softmax0/1), if a
    file holds them, are not part of this network."""
    aux = ("head0_", "head1_", "nn0_", "nn1_", "softmax0_", "softmax1_")
    return {k: v for k, v in sd.items() if not k.startswith(aux)}
