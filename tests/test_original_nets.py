"""The original DeepDream networks (inception5h, BVLC GoogLeNet, Places365 GoogLeNet), with random
weights: tap shapes at odd and even sizes, TF SAME padding, LRN formulas, the conversions' state-
dict keys, the verified download (from a loopback HTTP server: no test downloads anything)."""

import functools
import hashlib
import http.server
import math
import os
import subprocess
import sys
import threading
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from dreamvid.engine.models import (MODELS, LocalResponseNorm, git_blob_id, layer_table, load_model, same_max_pool2d,
                                    same_padding)
from dreamvid.engine.models import caffe_googlenet, inception5h
from dreamvid.engine.models.weights import fetch_verified
from dreamvid.engine.objectives import build_objective
from dreamvid.errors import DreamvidError

NEW = ["inception5h", "bvlc_googlenet", "googlenet_places365"]


def _side(name: str, side: int, stride: int) -> int:
    """Side after the log2(stride) stride-2 layers: TF SAME gives ceil(n / 2) for convs and pools;
    Caffe's conv1 (pad 3) gives floor((n - 1) / 2) + 1, its ceil-mode pools ceil((n - 3) / 2) + 1."""
    for i in range(int(math.log2(stride))):
        if name == "inception5h":
            side = -(-side // 2)
        else:
            side = (side - 1) // 2 + 1 if i == 0 else -(-(side - 3) // 2) + 1
    return side


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("size", [(224, 224), (193, 257)])
def test_every_tap_has_its_channels_and_size(name, size):
    model = load_model(name, weights="random")
    table = layer_table(name)
    with torch.no_grad():
        acts = model(torch.rand(1, 3, *size), [n for n, _, _ in table] + ["logits"])
    for tap, channels, _ in table:
        stride = model.strides[tap]
        assert acts[tap].shape == (1, channels, _side(name, size[0], stride), _side(name, size[1], stride)), tap
    assert acts["logits"].shape == (1, {"inception5h": 1008, "googlenet_places365": 365}.get(name, 1000))


def test_inception5h_channel_counts_are_the_graphs():
    rows = {n: c for n, c, _ in layer_table("inception5h")}
    assert rows["mixed4a_3x3_pre_relu"] == 204 and rows["mixed4a"] == 508  # not Caffe's 208 / 512
    assert rows["mixed5a_5x5_bottleneck_pre_relu"] == 48 and rows["mixed4d_3x3_bottleneck_pre_relu"] == 144
    assert rows["mixed5b"] == 1024
    assert sum(n.endswith("_pre_relu") for n in rows) == 57  # the conversion's convolutions
    assert sum(isinstance(m, torch.nn.Conv2d) for m in load_model("inception5h", weights="random").modules()) == 57
    caffe = {n: c for n, c, _ in layer_table("bvlc_googlenet")}
    assert caffe["inception_4a/3x3"] == 208 and caffe["inception_4a/output"] == 512


def test_taps_use_the_graphs_and_caffes_names():
    m = load_model("inception5h", weights="random")
    assert m.resolve("import/mixed4d_3x3_bottleneck_pre_relu/conv") == "mixed4d_3x3_bottleneck_pre_relu"
    assert m.resolve("import/mixed4d") == "mixed4d"
    c = load_model("bvlc_googlenet", weights="random")
    assert c.resolve("inception_4c") == c.resolve("inception4c") == "inception_4c/output"


def test_pre_relu_is_the_convolution_with_bias_and_the_relu_follows():
    m = load_model("inception5h", weights="random")
    x = torch.rand(1, 3, 99, 130)
    with torch.no_grad():
        a = m(x, ["mixed4c", "mixed4d_3x3_bottleneck_pre_relu", "mixed4d_3x3_bottleneck"])
        ref = m.net.mixed4d_3x3_bottleneck_pre_relu_conv(a["mixed4c"])
    assert torch.equal(a["mixed4d_3x3_bottleneck_pre_relu"], ref)
    assert (a["mixed4d_3x3_bottleneck_pre_relu"] < 0).any()  # before the ReLU
    assert torch.equal(a["mixed4d_3x3_bottleneck"], F.relu(ref))


# --------------------------------------------------------------------------- SAME padding, LRN

@pytest.mark.parametrize("size,kernel,stride,pads", [
    (224, 7, 2, (2, 3)), (225, 7, 2, (3, 3)), (112, 3, 2, (0, 1)), (113, 3, 2, (1, 1)), (56, 3, 1, (1, 1)),
])
def test_same_padding_is_tensorflows_formula(size, kernel, stride, pads):
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    assert same_padding(size, kernel, stride) == pads == (total // 2, total - total // 2)


@pytest.mark.parametrize("size", [(14, 14), (15, 15), (14, 17), (9, 8)])
def test_same_max_pool_takes_the_max_over_the_window_inside_the_image(size):
    """TF's SAME max pool: output (ceil(H/2), ceil(W/2)); each output is the max over the 3x3
    window at (2i - pad_top, 2j - pad_left), clipped to the image."""
    x = torch.randn(1, 2, *size)
    out = same_max_pool2d(x, 3, 2)
    (top, _), (left, _) = same_padding(size[0], 3, 2), same_padding(size[1], 3, 2)
    assert out.shape[-2:] == (-(-size[0] // 2), -(-size[1] // 2))
    for i in range(out.shape[-2]):
        for j in range(out.shape[-1]):
            r0, c0 = 2 * i - top, 2 * j - left
            window = x[..., max(r0, 0):r0 + 3, max(c0, 0):c0 + 3]
            assert torch.equal(out[..., i, j], window.amax(dim=(-2, -1)))


def _tf_lrn_by_hand(x, depth_radius, bias, alpha, beta):
    """tf.nn.local_response_normalization as its documentation writes it, channel by channel."""
    c = x.shape[1]
    out = torch.empty_like(x)
    for d in range(c):
        sqr_sum = (x[:, max(0, d - depth_radius):d + depth_radius + 1] ** 2).sum(1)
        out[:, d] = x[:, d] / (bias + alpha * sqr_sum) ** beta
    return out


def test_lrn_matches_tensorflows_formula():
    x = torch.rand(1, 64, 5, 6) * 50  # activations of 0-255 inputs are large: the bias matters
    ours = LocalResponseNorm(64, **inception5h.LRN)(x)
    torch.testing.assert_close(ours, _tf_lrn_by_hand(x, 5, 2.0, 1e-4, 0.5), rtol=1e-5, atol=1e-6)
    # PyTorch's own LRN with the alpha it divides by the window: the same, up to summation order
    torch.testing.assert_close(ours, F.local_response_norm(x, 11, 0.0011, 0.5, 2.0), rtol=1e-6, atol=1e-6)
    xcl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(LocalResponseNorm(64, **inception5h.LRN)(xcl), ours, rtol=1e-6, atol=1e-6)
    assert LocalResponseNorm(64, **inception5h.LRN).state_dict() == {}  # the conversions' keys stay as they are


def test_caffe_lrn_is_caffes_formula_in_the_network():
    """Caffe's LRN: x / (1 + alpha/n · Σ x² over n=5 channels)^0.75 (its alpha is per window)."""
    m = load_model("bvlc_googlenet", weights="random")
    with torch.no_grad():
        a = m(torch.rand(1, 3, 64, 80), ["pool1/3x3_s2", "pool1/norm1"])
    x = a["pool1/3x3_s2"]
    ref = _tf_lrn_by_hand(x, 2, 1.0, 1e-4 / 5, 0.75)
    torch.testing.assert_close(a["pool1/norm1"], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a["pool1/norm1"], F.local_response_norm(x, 5, 1e-4, 0.75, 1.0), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- preprocessing

@pytest.mark.parametrize("name,bgr,mean", [
    ("inception5h", False, (117.0, 117.0, 117.0)), ("bvlc_googlenet", True, (104.0, 117.0, 123.0)),
    ("googlenet_places365", True, (104.051, 112.514, 116.676)),
])
def test_preprocessing_round_trip(name, bgr, mean):
    m = load_model(name, weights="random")
    x = torch.rand(2, 3, 8, 9)
    h = m.normalize(x)
    order = [2, 1, 0] if bgr else [0, 1, 2]
    expected = x[:, order] * 255 - torch.tensor(mean).view(1, 3, 1, 1)
    torch.testing.assert_close(h, expected, rtol=0, atol=1e-4)
    back = (h + torch.tensor(mean).view(1, 3, 1, 1)) / 255
    torch.testing.assert_close(back[:, order], x, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- the conversions' keys

def _published_inception5h_keys():
    """Parameter names and shapes of ProGamerGov's Inception5h definition (inception5h.py)."""
    shapes = {"conv2d0_pre_relu_conv": (64, 3, 7), "conv2d1_pre_relu_conv": (64, 64, 1),
              "conv2d2_pre_relu_conv": (192, 64, 3)}
    published = {  # block: in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce
        "mixed3a": (192, 64, 96, 128, 16, 32, 32), "mixed3b": (256, 128, 128, 192, 32, 96, 64),
        "mixed4a": (480, 192, 96, 204, 16, 48, 64), "mixed4b": (508, 160, 112, 224, 24, 64, 64),
        "mixed4c": (512, 128, 128, 256, 24, 64, 64), "mixed4d": (512, 112, 144, 288, 32, 64, 64),
        "mixed4e": (528, 256, 160, 320, 32, 128, 128), "mixed5a": (832, 256, 160, 320, 48, 128, 128),
        "mixed5b": (832, 384, 192, 384, 48, 128, 128)}
    for b, (cin, c1, c3b, c3, c5b, c5, cp) in published.items():
        shapes.update({f"{b}_1x1_pre_relu_conv": (c1, cin, 1), f"{b}_3x3_bottleneck_pre_relu_conv": (c3b, cin, 1),
                       f"{b}_3x3_pre_relu_conv": (c3, c3b, 3), f"{b}_5x5_bottleneck_pre_relu_conv": (c5b, cin, 1),
                       f"{b}_5x5_pre_relu_conv": (c5, c5b, 5), f"{b}_pool_reduce_pre_relu_conv": (cp, cin, 1)})
    sd = {}
    for k, (o, i, ks) in shapes.items():
        sd[f"{k}.weight"], sd[f"{k}.bias"] = torch.randn(o, i, ks, ks) * 0.05, torch.randn(o) * 0.05
    sd["softmax2_pre_activation_matmul.weight"] = torch.randn(1008, 1024) * 0.01
    sd["softmax2_pre_activation_matmul.bias"] = torch.zeros(1008)
    return sd


def _published_caffe_keys(classes: int, with_main_classifier: bool):
    """Parameter names and shapes of ProGamerGov's BVLC_GOOGLENET / GoogLeNetPlaces365 definitions,
    auxiliary heads included (loss1_*, loss2_*)."""
    shapes = {"conv1_7x7_s2": (64, 3, 7), "conv2_3x3_reduce": (64, 64, 1), "conv2_3x3": (192, 64, 3),
              "loss1_conv": (128, 512, 1), "loss2_conv": (128, 528, 1)}
    published = {"3a": (192, 64, 96, 128, 16, 32, 32), "3b": (256, 128, 128, 192, 32, 96, 64),
                 "4a": (480, 192, 96, 208, 16, 48, 64), "4b": (512, 160, 112, 224, 24, 64, 64),
                 "4c": (512, 128, 128, 256, 24, 64, 64), "4d": (512, 112, 144, 288, 32, 64, 64),
                 "4e": (528, 256, 160, 320, 32, 128, 128), "5a": (832, 256, 160, 320, 32, 128, 128),
                 "5b": (832, 384, 192, 384, 48, 128, 128)}
    for b, (cin, c1, c3r, c3, c5r, c5, cp) in published.items():
        p = f"inception_{b}_"
        shapes.update({p + "1x1": (c1, cin, 1), p + "3x3_reduce": (c3r, cin, 1), p + "3x3": (c3, c3r, 3),
                       p + "5x5_reduce": (c5r, cin, 1), p + "5x5": (c5, c5r, 5), p + "pool_proj": (cp, cin, 1)})
    sd = {}
    for k, (o, i, ks) in shapes.items():
        sd[f"{k}.weight"], sd[f"{k}.bias"] = torch.randn(o, i, ks, ks) * 0.05, torch.randn(o) * 0.05
    linears = {"loss1_fc_1": (1024, 2048), "loss1_classifier_1": (classes, 1024),
               "loss2_fc_1": (1024, 2048), "loss2_classifier_1": (classes, 1024)}
    if with_main_classifier:
        linears["loss3_classifier"] = (classes, 1024)
    for k, shape in linears.items():
        sd[f"{k}.weight"], sd[f"{k}.bias"] = torch.randn(*shape) * 0.01, torch.zeros(shape[0])
    return sd


def test_inception5h_conversion_keys_load_strictly(tmp_path):
    sd = _published_inception5h_keys()
    net = inception5h.Inception5h()
    net.load_state_dict(inception5h.adapt_state_dict(sd), strict=True)
    path = tmp_path / "inception5h.pth"
    torch.save(sd, path)
    model = load_model("inception5h", weights=str(path))
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        # at an even size TF SAME is the conversion's fixed pad (2, 3, 2, 3)
        torch.testing.assert_close(model(x, ["conv2d0_pre_relu"])["conv2d0_pre_relu"],
                                   F.conv2d(F.pad(model.normalize(x), [2, 3, 2, 3]), sd["conv2d0_pre_relu_conv.weight"],
                                            sd["conv2d0_pre_relu_conv.bias"], 2), rtol=1e-5, atol=1e-4)
        assert model(x, ["logits"])["logits"].shape == (1, 1008)


@pytest.mark.parametrize("name,classes", [("bvlc_googlenet", 1000), ("googlenet_places365", 365)])
def test_caffe_conversion_keys_load_strictly(name, classes, tmp_path):
    sd = _published_caffe_keys(classes, with_main_classifier=True)
    net = caffe_googlenet.CaffeGoogLeNet(classes)
    net.load_state_dict(caffe_googlenet.adapt_state_dict(sd), strict=True)  # aux heads dropped
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    model = load_model(name, weights=str(path))
    assert model.num_classes == classes
    with torch.no_grad():
        assert model(torch.rand(1, 3, 96, 96), ["logits"])["logits"].shape == (1, classes)


def test_a_conversion_without_the_main_classifier_dreams_but_has_no_classes(tmp_path):
    """ProGamerGov's definitions end at pool5 (no loss3 classifier): such a file still loads."""
    path = tmp_path / "w.pth"
    torch.save(_published_caffe_keys(1000, with_main_classifier=False), path)
    model = load_model("bvlc_googlenet", weights=str(path))
    assert model.num_classes == 0
    with torch.no_grad():
        assert model(torch.rand(1, 3, 96, 96), ["inception_4c/output"])["inception_4c/output"].shape[1] == 512
    with pytest.raises(DreamvidError, match="no classifier"):
        build_objective(model, (), class_index=3)


@pytest.mark.parametrize("name,top", [("inception5h", 1007), ("googlenet_places365", 364)])
def test_class_range_is_the_models(name, top):
    model = load_model(name, weights="random")
    build_objective(model, (), class_index=top)
    with pytest.raises(DreamvidError, match=f"0..{top}"):
        build_objective(model, (), class_index=top + 1)


# --------------------------------------------------------------------------- verified download

def test_git_blob_id_is_gits(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(1000) + b"\0tail")
    expected = hashlib.sha1(b"blob 1005\0" + path.read_bytes()).hexdigest()
    assert git_blob_id(str(path)) == expected
    git = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True)
    if git.returncode == 0:
        assert git.stdout.strip() == expected


class _Server:
    """A loopback HTTP server for a folder; `truncate` (file name -> bytes) sends a full
    Content-Length but closes after that many bytes (a dropped connection)."""

    def __init__(self, folder):
        truncate = self.truncate = {}

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def copyfile(self, source, outputfile):
                name = os.path.basename(self.path)
                if name in truncate:
                    outputfile.write(source.read(truncate[name]))
                    return
                super().copyfile(source, outputfile)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path):
    """A random-weights inception5h state dict with the conversion's keys, served over loopback."""
    folder = tmp_path / "srv"
    folder.mkdir()
    torch.save(_published_inception5h_keys(), folder / "inception5h.pth")
    server = _Server(folder)
    yield server, folder / "inception5h.pth"
    server.close()


def test_download_is_verified_before_it_is_cached(served, tmp_path):
    server, path = served
    blob = git_blob_id(str(path))
    dest = tmp_path / "cache" / "inception5h.pth"
    fetch_verified(f"{server.url}/inception5h.pth", str(dest), blob)
    assert dest.read_bytes() == path.read_bytes()
    assert os.listdir(dest.parent) == ["inception5h.pth"]  # no temp file left


def test_corrupted_or_truncated_downloads_cache_nothing(served, tmp_path):
    server, path = served
    good = git_blob_id(str(path))
    dest = tmp_path / "cache" / "inception5h.pth"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path.parent / "corrupt.pth").write_bytes(bytes(data))
    with pytest.raises(DreamvidError, match="not the expected file") as e:
        fetch_verified(f"{server.url}/corrupt.pth", str(dest), good)
    assert "\n" not in str(e.value)
    (path.parent / "short.pth").write_bytes(path.read_bytes()[:-4096])  # a complete download of a short file
    with pytest.raises(DreamvidError, match="not the expected file"):
        fetch_verified(f"{server.url}/short.pth", str(dest), good)
    server.truncate["inception5h.pth"] = 10000  # the connection drops mid-file
    with pytest.raises(DreamvidError, match="nothing was cached"):
        fetch_verified(f"{server.url}/inception5h.pth", str(dest), good)
    assert os.listdir(dest.parent) == []


def test_load_model_downloads_once_into_the_hub_cache(served, tmp_path, monkeypatch):
    server, path = served
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    spec = MODELS["inception5h"]
    local = replace(spec.weights, url=f"{server.url}/inception5h.pth", blob_id=git_blob_id(str(path)))
    monkeypatch.setitem(MODELS, "inception5h", replace(spec, weights=local))
    from dreamvid.engine.models import weights_cached
    assert not weights_cached("inception5h")
    model = load_model("inception5h")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "inception5h.pth"
    assert cached.read_bytes() == path.read_bytes() and weights_cached("inception5h")
    assert model.weights_id == f"url:inception5h.pth:{local.blob_id[:12]}"
    server.close()  # from now on offline: the cache serves
    again = load_model("inception5h")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x, ["mixed3a"])["mixed3a"], again(x, ["mixed3a"])["mixed3a"])


def test_offline_the_error_names_the_url_and_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    spec = MODELS["bvlc_googlenet"]
    url = "http://127.0.0.1:9/bvlc_googlenet.pth"  # the discard port: nothing listens (as offline)
    monkeypatch.setitem(MODELS, "bvlc_googlenet", replace(spec, weights=replace(spec.weights, url=url)))
    with pytest.raises(DreamvidError) as e:
        load_model("bvlc_googlenet")
    msg = str(e.value)
    assert url in msg and "--weights PATH" in msg and "efficientnet_lite0" in msg and "\n" not in msg
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "bvlc_googlenet.pth").exists()


def test_the_real_urls_and_ids_are_the_issues():
    w = {n: MODELS[n].weights for n in NEW}
    assert w["inception5h"].url == "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"
    assert w["bvlc_googlenet"].blob_id == "9038679730b000111aebc5d3baddfe1936bfda0b"
    assert w["googlenet_places365"].blob_id == "7f83954afe4e2035ada302e78e0932a5166fc911"
    assert "CC BY" in w["googlenet_places365"].credit


# --------------------------------------------------------------------------- fast paths, CLI

@pytest.mark.parametrize("name", ["inception5h", "bvlc_googlenet"])
def test_channels_last_and_bf16_autocast_compute_the_same_network(name):
    gen = torch.Generator().manual_seed(0)
    plain = load_model(name, weights="random", channels_last=False)
    path_sd = plain.net.state_dict()
    fast = load_model(name, weights="random", channels_last=True)
    fast.net.load_state_dict(path_sd)
    assert fast.channels_last and not fast.bn_folded  # nothing to fold: no BatchNorm
    layer = "mixed4c" if name == "inception5h" else "inception_4c/output"
    x = torch.rand(1, 3, 97, 130, generator=gen)
    grads = []
    for model, autocast in ((plain, False), (fast, False), (fast, True)):
        xx = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            act = model(xx, [layer])[layer]
        act.float().pow(2).mean().backward()
        grads.append(xx.grad)
    assert F.cosine_similarity(grads[0].flatten(), grads[1].flatten(), dim=0) > 0.9999
    # bf16 keeps 8 mantissa bits; random weights on 0-255 inputs, ~20 layers deep: measured 0.96-0.97
    assert F.cosine_similarity(grads[0].flatten(), grads[2].flatten(), dim=0) > 0.95


def test_cli_lists_the_graphs_layers_and_dreams_the_seed_example(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dreamvid", "--list-layers", "inception5h"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    rows = [line.split() for line in out if "channels" in line]
    assert rows[0][:2] == ["conv2d0_pre_relu", "64"] and rows[-1][:2] == ["mixed5b", "1024"]
    assert ["mixed4d_3x3_bottleneck_pre_relu", "144"] in [r[:2] for r in rows]
    png = tmp_path / "flowers.png"
    proc = subprocess.run([sys.executable, "-m", "dreamvid", "noise", "-o", str(png), "--model", "inception5h",
                           "--channel", "mixed4d_3x3_bottleneck_pre_relu:139", "--weights", "random",
                           "--max-side", "96", "--octaves", "2", "--iterations", "2", "-q"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert png.stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "dreamvid", "noise", "-o", str(tmp_path / "x.png"), "--model",
                          "inception5h", "--channel", "mixed4d_3x3_bottleneck_pre_relu:144", "--weights", "random",
                          "--max-side", "96", "-q"], capture_output=True, text=True)
    assert bad.returncode == 2 and "0..143" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_listings_credit_the_weights_and_mark_downloads(capsys):
    from dreamvid.app.cli import main
    assert main(["--list-models"]) == 0
    out = capsys.readouterr().out
    assert "CC BY" in out.split("googlenet_places365", 1)[1]  # the credit follows its model
    assert main(["--list-presets"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["classic"].split()[1] == "bvlc_googlenet" and "downloads its weights" in rows["classic"]
    assert rows["tf-mixed4c"].split()[1] == "inception5h" and rows["places"].split()[1] == "googlenet_places365"
    assert "downloads" not in rows["dreamy"]  # shipped with the package
