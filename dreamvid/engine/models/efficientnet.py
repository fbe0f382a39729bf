"""EfficientNet-Lite0 (lukemelas/EfficientNet-PyTorch parameter names), its layer table and stages."""

from __future__ import annotations

from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dream_model import LOGITS, Stage
from .ops import _SameConv2d

# EfficientNet-Lite0: (expand ratio, kernel, stride, out channels, repeats) per stage.
EFFNET_LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                       (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
EFFNET_LITE0_LAYERS = [("stem", 32, 2)]
EFFNET_LITE0_ALIASES = {}
_stride, _block = 2, 0
for _s, (_e, _k, _st, _out, _r) in enumerate(EFFNET_LITE0_STAGES, start=1):
    _stride *= _st
    for _ in range(_r):
        EFFNET_LITE0_LAYERS.append((f"block{_block}", _out, _stride))
        EFFNET_LITE0_ALIASES[f"blocks.{_block}"] = f"block{_block}"
        _block += 1
    EFFNET_LITE0_ALIASES[f"stage{_s}"] = f"block{_block - 1}"  # a stage's output is its last block
EFFNET_LITE0_LAYERS.append(("head", 1280, 32))


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=1e-3, momentum=0.01)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excite (the Lite variant), ReLU6."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self.expand = expand
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with lukemelas/EfficientNet-PyTorch parameter names (``_conv_stem``, ...)."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = _SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in EFFNET_LITE0_STAGES:
            for i in range(repeats):
                blocks.append(_MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)


def _effnet_stages(net: EfficientNetLite0) -> List[Stage]:
    stages: List[Stage] = [("stem", lambda h: F.relu6(net._bn0(net._conv_stem(h))))]
    stages += [(f"block{i}", blk) for i, blk in enumerate(net._blocks)]
    stages.append(("head", lambda h: F.relu6(net._bn1(net._conv_head(h)))))
    stages.append((LOGITS, lambda h: net._fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))))
    return stages
