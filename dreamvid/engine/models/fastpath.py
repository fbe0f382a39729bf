"""CPU fast paths: BatchNorm folding and memory layout, per model and precision."""

from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn as nn

from .registry import MODELS


def fold_batchnorm(net: nn.Module) -> int:
    """Fold each eval-mode BatchNorm2d into the Conv2d registered just before it in the same parent
    module (the order every registered backbone applies them in); the BN becomes an Identity.
    Returns how many were folded. Only for frozen networks: the folded conv computes conv→BN
    with one kernel (and its backward w.r.t. the input skips the BN's)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(net.modules()):
        names = list(parent._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = parent._modules[a], parent._modules[b]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                    and conv.out_channels == bn.num_features and bn.track_running_stats):
                parent._modules[a] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                parent._modules[b] = nn.Identity()
                folded += 1
    return folded


#: Where the CPU fast paths pay, per model and precision: (channels_last, fold BatchNorm).
#: Measured with bench/engine.py (bench/RESULTS.md, "Engine speed", 640x360, 2 threads): both
#: pay for every model in bf16 and in fp32 (VGG16 and the Caffe/TF GoogLeNets have no BatchNorm
#: to fold; channels_last for those: bench/RESULTS.md, "The original DeepDream networks").
CPU_LAYOUT: Dict[str, Dict[str, Tuple[bool, bool]]] = {
    name: {p: (True, spec.has_batchnorm) for p in ("fp32", "bf16", "fp16")} for name, spec in MODELS.items()
}


def layout_for(name: str, device: torch.device, precision: str) -> Tuple[bool, bool]:
    """(channels_last, fold_bn) that `name` runs fastest with on `device` in `precision`."""
    if device.type in ("cpu", "cuda"):  # CUDA as the CPU (measure with bench/gpu.py)
        return CPU_LAYOUT[name][precision]
    return False, False
