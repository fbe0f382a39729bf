"""Backbone registry: builders, weights, input normalisation, dreamable layers and their aliases.

Every model is wrapped in a :class:`DreamModel` that takes RGB in [0, 1] (its own input
normalisation is done inside) and runs its stages in order only as far as the deepest layer
asked for, so dreaming on ``mixed3`` never pays for ``mixed10``.

The package: ``registry`` (one :class:`ModelSpec` per network), ``weights`` (where weights come
from, verified downloads), ``dream_model`` (the wrapper), ``ops`` (TF SAME padding, TF LRN),
``fastpath`` (BatchNorm folding, layouts) and one file per family (``efficientnet``,
``torchvision_nets``, ``inception5h``, ``caffe_googlenet``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn

from ...config.settings import DEFAULT_MODEL
from ...errors import DreamvidError
from .dream_model import LOGITS, DreamModel, Stage
from .efficientnet import EfficientNetLite0
from .fastpath import CPU_LAYOUT, fold_batchnorm, layout_for
from .ops import LocalResponseNorm, _SameConv2d, same_max_pool2d, same_padding
from .registry import MODELS, ModelSpec, get_spec, layer_table
from .weights import WeightsSpec, effnet_lite0_weights_path, git_blob_id, is_cached

__all__ = ["LOGITS", "DreamModel", "Stage", "EfficientNetLite0", "CPU_LAYOUT", "fold_batchnorm", "layout_for",
           "_SameConv2d", "same_max_pool2d", "same_padding", "LocalResponseNorm", "MODELS", "ModelSpec", "get_spec",
           "layer_table", "WeightsSpec", "effnet_lite0_weights_path", "git_blob_id", "weights_cached",
           "resolve_device", "load_model"]


def weights_cached(name: str, weights: Optional[str] = None) -> bool:
    """False when loading `name` with `weights` will first download them (for a front end to say so)."""
    spec = get_spec(name)
    return weights not in (None, "imagenet") or is_cached(spec.weights)


def _load_weights(net: nn.Module, spec: ModelSpec, weights: Optional[str]) -> Tuple[str, int]:
    """Load `weights` into `net`; return (identity string for the checkpoint manifest, class count).

    A state dict without the classifier (a conversion of the convolutional column only) loads
    into a net without it: the model then has no ``logits``.
    """
    from .weights import state_dict_for
    sd, ident = state_dict_for(spec.name, spec.weights, weights)
    num_classes = spec.weights.num_classes
    if sd is None:
        return ident, num_classes
    sd = spec.adapt(sd)
    head = _classifier_name(net)
    if head is not None and f"{head}.weight" not in sd:
        setattr(net, head, None)  # (the converted Caffe/TF nets; their stages then end before logits)
        num_classes = 0
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if missing or unexpected:
        what = (f"{len(missing)} missing (e.g. {missing[0]})" if missing
                else f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise DreamvidError(f"weights {weights or 'imagenet'} do not fit model {spec.name}: {what} keys")
    return ident, num_classes


def _classifier_name(net: nn.Module) -> Optional[str]:
    """Attribute name of the converted nets' classifier (None for the others)."""
    for name in ("loss3_classifier", "softmax2_pre_activation_matmul"):
        if getattr(net, name, None) is not None:
            return name
    return None


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an unavailable explicit choice is a DreamvidError."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise DreamvidError(f"unknown device '{device}': use auto, cpu, cuda or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DreamvidError("--device cuda asked for, but no CUDA GPU is available: use --device auto or cpu")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DreamvidError("--device mps asked for, but MPS is not available: use --device auto or cpu")
    return torch.device(device)


def load_model(name: str = DEFAULT_MODEL, weights: Optional[str] = None,
               device: "str | torch.device" = "cpu", deterministic: bool = True, *,
               channels_last: Optional[bool] = None, fold_bn: Optional[bool] = None,
               precision: str = "fp32") -> DreamModel:
    """Build `name` with its weights on `device`.

    weights: None / "imagenet" (the model's own trained weights: shipped for efficientnet_lite0,
    downloaded once into the torch hub cache for the others, silently; see :mod:`.weights`), "random"
    (untrained; for tests and benchmarks), or a path to a local state dict. deterministic=False
    lets cuDNN autotune (faster on CUDA; resumed renders may then differ in the last bits).
    channels_last / fold_bn: memory format and BatchNorm folding; None = what is fastest for this
    model, device and `precision` (a resolved precision name, see :func:`layout_for`). Both change
    pixels in the last bits; the model records them (``model.channels_last``, ``model.bn_folded``).
    """
    spec = get_spec(name)
    dev = resolve_device(device) if isinstance(device, str) else device
    cl_default, fold_default = layout_for(name, dev, precision)
    channels_last = cl_default if channels_last is None else channels_last
    fold_bn = fold_default if fold_bn is None else fold_bn
    net = spec.build(spec.weights.num_classes)
    ident, num_classes = _load_weights(net, spec, weights)
    if fold_bn:
        fold_batchnorm(net.eval())
    w = spec.weights
    model = DreamModel(name, net, spec.stages(net), spec.layers, spec.aliases, w.mean, w.std, ident,
                       bgr=w.bgr, num_classes=num_classes, inner=spec.inner)
    model = model.to(dev).eval()
    model.bn_folded = bool(fold_bn)
    model.channels_last = bool(channels_last)
    if dev.type == "cuda":
        # Frames of one video share a few shapes (one per octave), so cuDNN's autotuner pays off;
        # but it may pick different kernels in another process, and a resumed render must be
        # bit-identical, so by default only deterministic kernels, chosen without timing.
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
