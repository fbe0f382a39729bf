"""torchvision's InceptionV3, GoogLeNet and VGG16: layer tables, aliases and stages."""

from __future__ import annotations

from typing import Callable, List

import torch
import torch.nn as nn

from .dream_model import LOGITS, Stage

# --------------------------------------------------------------------------- layer tables
# (canonical name, channels, total stride). Data, checked against real forward passes in tests.

INCEPTION_V3_LAYERS = [
    ("Conv2d_1a_3x3", 32, 2), ("Conv2d_2a_3x3", 32, 2), ("Conv2d_2b_3x3", 64, 2),
    ("maxpool1", 64, 4), ("Conv2d_3b_1x1", 80, 4), ("Conv2d_4a_3x3", 192, 4), ("maxpool2", 192, 8),
    ("Mixed_5b", 256, 8), ("Mixed_5c", 288, 8), ("Mixed_5d", 288, 8),
    ("Mixed_6a", 768, 16), ("Mixed_6b", 768, 16), ("Mixed_6c", 768, 16), ("Mixed_6d", 768, 16),
    ("Mixed_6e", 768, 16),
    ("Mixed_7a", 1280, 32), ("Mixed_7b", 2048, 32), ("Mixed_7c", 2048, 32),
]
# Keras InceptionV3 names the same blocks mixed0..mixed10.
INCEPTION_V3_ALIASES = {
    f"mixed{i}": name
    for i, name in enumerate(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                              "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"])
}

GOOGLENET_LAYERS = [
    ("conv1", 64, 2), ("maxpool1", 64, 4), ("conv2", 64, 4), ("conv3", 192, 4), ("maxpool2", 192, 8),
    ("inception3a", 256, 8), ("inception3b", 480, 8), ("maxpool3", 480, 16),
    ("inception4a", 512, 16), ("inception4b", 512, 16), ("inception4c", 512, 16),
    ("inception4d", 528, 16), ("inception4e", 832, 16), ("maxpool4", 832, 32),
    ("inception5a", 832, 32), ("inception5b", 1024, 32),
]
# Caffe / Google-notebook names: inception_4c and inception_4c/output.
GOOGLENET_ALIASES = {}
for _name, _, _ in GOOGLENET_LAYERS:
    if _name.startswith("inception"):
        _caffe = "inception_" + _name[len("inception"):]
        GOOGLENET_ALIASES[_caffe] = _name
        GOOGLENET_ALIASES[_caffe + "/output"] = _name

# torchvision's vgg16.features, module by module. Only ReLU and pool outputs are dreamable: the
# ReLUs are in-place, so a conv output would be overwritten by the ReLU after it.
VGG16_FEATURES = []
_VGG16_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
for _b, (_ch, _n) in enumerate(_VGG16_BLOCKS, start=1):
    for _i in range(1, _n + 1):
        VGG16_FEATURES.append((f"conv{_b}_{_i}", _ch, 2 ** (_b - 1)))
        VGG16_FEATURES.append((f"relu{_b}_{_i}", _ch, 2 ** (_b - 1)))
    VGG16_FEATURES.append((f"pool{_b}", _ch, 2 ** _b))
VGG16_LAYERS = [row for row in VGG16_FEATURES if not row[0].startswith("conv")]


def _inception_v3_stages(net) -> List[Stage]:
    names = [n for n, _, _ in INCEPTION_V3_LAYERS]
    stages = [(n, getattr(net, n)) for n in names]
    head = lambda h: net.fc(torch.flatten(net.avgpool(h), 1))  # noqa: E731 (dropout is a no-op in eval)
    return stages + [(LOGITS, head)]


def _googlenet_stages(net) -> List[Stage]:
    stages = [(n, getattr(net, n)) for n, _, _ in GOOGLENET_LAYERS]
    return stages + [(LOGITS, lambda h: net.fc(torch.flatten(net.avgpool(h), 1)))]


def _vgg16_stages(net) -> List[Stage]:
    stages = [(n, net.features[i]) for i, (n, _, _) in enumerate(VGG16_FEATURES)]
    return stages + [(LOGITS, lambda h: net.classifier(torch.flatten(net.avgpool(h), 1)))]


def _tv(builder: str, **kw) -> Callable[[], nn.Module]:
    def build():
        import torchvision.models as tvm
        return getattr(tvm, builder)(weights=None, **kw)
    return build
