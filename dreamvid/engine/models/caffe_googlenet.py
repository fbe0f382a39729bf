"""The Caffe GoogLeNet (BVLC's, Google's DeepDream notebook's; and Places365's) as a plain module.

Parameter names follow ProGamerGov's public PyTorch conversions (pytorch-old-caffemodels
``bvlc_googlenet.pth``, pytorch-places ``googlenet_places365.pth``): the Caffe layer names with
``/`` as ``_`` (``inception_4c_3x3_reduce.weight`` ...). Caffe pads convolutions symmetrically and
rounds pooled sizes up (ceil mode); LRN(5, 1e-4, 0.75). Inputs: BGR 0-255 minus the mean.
Taps carry Caffe's blob names: ``conv2/3x3``, ``inception_4c/output``, ``inception_4c/3x3`` ...
(the branches are taken after their in-place ReLU, as Caffe's blobs are).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dream_model import LOGITS, Stage
from .ops import LocalResponseNorm

#: (block, in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj, total stride)
BLOCKS = [
    ("3a", 192, 64, 96, 128, 16, 32, 32, 8), ("3b", 256, 128, 128, 192, 32, 96, 64, 8),
    ("4a", 480, 192, 96, 208, 16, 48, 64, 16), ("4b", 512, 160, 112, 224, 24, 64, 64, 16),
    ("4c", 512, 128, 128, 256, 24, 64, 64, 16), ("4d", 512, 112, 144, 288, 32, 64, 64, 16),
    ("4e", 528, 256, 160, 320, 32, 128, 128, 16),
    ("5a", 832, 256, 160, 320, 32, 128, 128, 32), ("5b", 832, 384, 192, 384, 48, 128, 128, 32),
]
POOL_BEFORE = {"4a": ("pool3/3x3_s2", 480), "5a": ("pool4/3x3_s2", 832)}
_BRANCHES = ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")


def _convs(block) -> List[Tuple[str, int, int, int]]:
    """[(branch, in channels, out channels, kernel)] of one block."""
    _, cin, c1, c3r, c3, c5r, c5, cp, _ = block
    return [("1x1", cin, c1, 1), ("3x3_reduce", cin, c3r, 1), ("3x3", c3r, c3, 3),
            ("5x5_reduce", cin, c5r, 1), ("5x5", c5r, c5, 5), ("pool_proj", cin, cp, 1)]


def _table() -> Tuple[list, Dict[str, str], Dict[str, str]]:
    """([(tap, channels, stride)], {inner tap: its stage}, {alias: tap})."""
    rows = [("conv1/7x7_s2", 64, 2), ("pool1/3x3_s2", 64, 4), ("pool1/norm1", 64, 4),
            ("conv2/3x3_reduce", 64, 4), ("conv2/3x3", 192, 4), ("conv2/norm2", 192, 4), ("pool2/3x3_s2", 192, 8)]
    aliases = {"conv1": "conv1/7x7_s2", "conv2": "conv2/3x3", "pool1": "pool1/3x3_s2", "pool2": "pool2/3x3_s2",
               "pool3": "pool3/3x3_s2", "pool4": "pool4/3x3_s2"}
    inner: Dict[str, str] = {}
    for block in BLOCKS:
        b, cin, stride = block[0], block[1], block[-1]
        out = f"inception_{b}/output"
        if b in POOL_BEFORE:
            rows.append((POOL_BEFORE[b][0], cin, stride))
        for branch, _, cout, _ in _convs(block):
            if branch == "pool_proj":
                rows.append((f"inception_{b}/pool", cin, stride))
                inner[f"inception_{b}/pool"] = out
            rows.append((f"inception_{b}/{branch}", cout, stride))
            inner[f"inception_{b}/{branch}"] = out
        rows.append((out, sum(block[i] for i in (2, 4, 6, 7)), stride))
        aliases[f"inception_{b}"] = aliases[f"inception{b}"] = out  # and torchvision's spelling
    return rows, inner, aliases


LAYERS, INNER, ALIASES = _table()


class CaffeGoogLeNet(nn.Module):
    """GoogLeNet's main column with Caffe's layer names; run it through :func:`stages`."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1_7x7_s2 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.conv2_3x3_reduce = nn.Conv2d(64, 64, 1)
        self.conv2_3x3 = nn.Conv2d(64, 192, 3, padding=1)
        # Caffe's LRN(local_size 5, alpha 1e-4, beta 0.75, k 1) divides alpha by the window size.
        self.pool1_norm1 = LocalResponseNorm(64, 2, 1.0, 1e-4 / 5, 0.75)  # (no parameters)
        self.conv2_norm2 = LocalResponseNorm(192, 2, 1.0, 1e-4 / 5, 0.75)
        for block in BLOCKS:
            for branch, cin, cout, k in _convs(block):
                setattr(self, f"inception_{block[0]}_{branch}", nn.Conv2d(cin, cout, k, padding=k // 2))
        self.loss3_classifier = nn.Linear(1024, num_classes) if num_classes else None


def _pool(h: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(h, 3, 2, ceil_mode=True)  # Caffe rounds the pooled size up


def _block(net: CaffeGoogLeNet, b: str):
    conv = {branch: getattr(net, f"inception_{b}_{branch}") for branch in _BRANCHES}

    def run(x: torch.Tensor, record: Optional[dict] = None) -> torch.Tensor:
        t = {"1x1": F.relu(conv["1x1"](x)), "3x3_reduce": F.relu(conv["3x3_reduce"](x)),
             "5x5_reduce": F.relu(conv["5x5_reduce"](x)), "pool": F.max_pool2d(x, 3, 1, 1, ceil_mode=True)}
        t["3x3"] = F.relu(conv["3x3"](t["3x3_reduce"]))
        t["5x5"] = F.relu(conv["5x5"](t["5x5_reduce"]))
        t["pool_proj"] = F.relu(conv["pool_proj"](t["pool"]))
        if record is not None:
            record.update({f"inception_{b}/{k}": v for k, v in t.items()})
        return torch.cat([t["1x1"], t["3x3"], t["5x5"], t["pool_proj"]], 1)
    return run


def stages(net: CaffeGoogLeNet) -> List[Stage]:
    out: List[Stage] = [
        ("conv1/7x7_s2", lambda h: F.relu(net.conv1_7x7_s2(h))), ("pool1/3x3_s2", _pool), ("pool1/norm1", net.pool1_norm1),
        ("conv2/3x3_reduce", lambda h: F.relu(net.conv2_3x3_reduce(h))),
        ("conv2/3x3", lambda h: F.relu(net.conv2_3x3(h))), ("conv2/norm2", net.conv2_norm2), ("pool2/3x3_s2", _pool)]
    for block in BLOCKS:
        if block[0] in POOL_BEFORE:
            out.append((POOL_BEFORE[block[0]][0], _pool))
        out.append((f"inception_{block[0]}/output", _block(net, block[0])))
    if net.loss3_classifier is not None:
        # Caffe's pool5/7x7_s1 is the global mean at 224x224; any size gets the global mean.
        out.append((LOGITS, lambda h: net.loss3_classifier(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))))
    return out


def adapt_state_dict(sd: dict) -> dict:
    """Drop the auxiliary heads (loss1_*, loss2_*) the conversions carry; the main column's
    keys are ours as they are."""
    return {k: v for k, v in sd.items() if not k.startswith(("loss1_", "loss2_"))}
