"""Precision of the network pass: the choice, fp16 loss scaling, closeness to fp32, identity."""

import os

import cv2
import numpy as np
import pytest
import torch

import dreamvid.engine.precision as precision
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import PRECISIONS, DreamSettings
from dreamvid.core.rng import make_generator
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.precision import LossScaler, Precision, loss_and_grad, resolve_precision
from dreamvid.errors import DreamvidError, SettingError

CPU = torch.device("cpu")
SAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "samples")


@pytest.fixture(scope="module")
def coffee():
    rgb = cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, "coffee.jpg")), cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (224, 160), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- the choice

@pytest.mark.parametrize("machine,flags,expect", [
    ("x86_64", {"avx512f", "avx512_bf16"}, "bf16"),
    ("x86_64", {"avx512f", "amx_bf16"}, "bf16"),
    ("x86_64", {"avx512f", "avx2"}, "fp32"),        # bf16 would be emulated: slower than fp32
    ("aarch64", {"asimd", "bf16"}, "bf16"),
    ("aarch64", {"asimd"}, "fp32"),
    ("x86_64", set(), "fp32"),                        # no /proc/cpuinfo: stay safe
])
def test_auto_on_cpu_follows_native_bf16(monkeypatch, machine, flags, expect):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    assert resolve_precision("auto", CPU).name == expect


def test_auto_on_this_cpu():
    flags = precision.cpu_flags()
    native = bool({"avx512_bf16", "amx_bf16"} & flags) or ("bf16" in flags and "asimd" in flags)
    assert resolve_precision("auto", CPU).name == ("bf16" if native else "fp32")


def test_default_is_auto_with_the_fast_layout():
    from dreamvid.config.settings import DEFAULT_PRECISION, RunOptions
    assert DEFAULT_PRECISION == RunOptions().precision == "auto"
    runtime = Dreamer(settings_from_preset(None), "cpu").identity["runtime"]
    assert runtime["precision"] == resolve_precision("auto", CPU).name
    assert runtime["channels_last"] and runtime["bn_folded"]


def test_explicit_choices_and_bad_values():
    assert [resolve_precision(p, CPU).name for p in ("fp32", "bf16", "fp16")] == ["fp32", "bf16", "fp16"]
    assert resolve_precision("fp16", CPU).scaled and not resolve_precision("bf16", CPU).scaled
    assert set(PRECISIONS) == {"auto", "fp32", "bf16", "fp16"}
    with pytest.raises(SettingError) as e:
        resolve_precision("fp8", CPU)
    assert e.value.field == "precision"
    with pytest.raises(SettingError):
        Dreamer(settings_from_preset(None), "cpu", precision="half")


# --------------------------------------------------------------------------- fp16 loss scaling

def _tiny_net():
    gen = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 3, padding=1))
    for p in net.parameters():
        p.data.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        p.requires_grad_(False)
    return net


def test_fp16_loss_scaling_keeps_small_gradients():
    """A tiny objective's gradient underflows to zero in fp16 unless the loss is scaled."""
    net = _tiny_net()
    x = torch.rand(1, 3, 16, 16, generator=make_generator(1)).requires_grad_(True)
    objective = lambda acts: acts["y"].float().pow(2).sum() / acts["y"].numel() * 1e-7  # noqa: E731
    forward = lambda: {"y": net(x)}  # noqa: E731
    fp16 = Precision("fp16", "cpu")
    _, ref = loss_and_grad(forward, objective, x, Precision("fp32", "cpu"))
    _, unscaled = loss_and_grad(forward, objective, x, fp16, scaler=None)
    assert ref.abs().max() > 0 and unscaled.abs().max() == 0  # the fp16 backward underflowed
    scaler = LossScaler()
    _, scaled = loss_and_grad(forward, objective, x, fp16, scaler)
    assert scaled.dtype == torch.float32 and (scaled != 0).float().mean() > 0.9
    cos = torch.nn.functional.cosine_similarity(scaled.flatten(), ref.flatten(), dim=0)
    assert cos > 0.99 and float((scaled.abs().mean() / ref.abs().mean())) == pytest.approx(1, rel=0.05)


def test_loss_scaler_backs_off_on_overflow_and_grows_back():
    x = torch.ones(4, requires_grad=True)
    scaler = LossScaler(init_scale=2.0 ** 20, growth_interval=2)
    big = (x * 1e34).sum()  # 1e34 · 2^20 overflows float32: the scale must come down
    g = scaler.input_grad(big, x)
    assert g is not None and torch.allclose(g, torch.full((4,), 1e34)) and scaler.scale < 2.0 ** 20
    s = scaler.scale
    scaler.input_grad((x * 1.0).sum(), x)
    assert scaler.scale == 2 * s  # second clean pass in a row: grows
    inf = (x * float("inf")).sum()
    assert LossScaler(init_scale=4.0).input_grad(inf, x) is None  # even scale 1 fails: caller goes fp32


# --------------------------------------------------------------------------- closeness to fp32
#
# A whole dream is chaotic: any last-bit difference (another layout, half a uint8 level of noise
# on the input) grows over the steps into the same look with its details elsewhere, so a whole
# dream is compared with that "chaos floor" (fp32 on the input plus ±0.5/255 noise), and the
# precision itself is judged per step, by the cosine of its gradient with the fp32 gradient.

def _grad(name, prec, x, cl=True, fold=True):
    from dreamvid.engine.ascent import Ascent
    from dreamvid.engine.models import load_model
    from dreamvid.engine.objectives import build_objective
    torch.manual_seed(0)  # the same random weights for every load
    m = load_model(name, None if name == "efficientnet_lite0" else "random", CPU, channels_last=cl, fold_bn=fold)
    ascent = Ascent(m, build_objective(m, LAYERS[name]), 4096,
                    resolve_precision(prec, CPU))
    return ascent(x, make_generator(0))[1].double().flatten()


def _cos(a, b):
    a, b = a / a.abs().max(), b / b.abs().max()  # random-weight gradients are ~1e-10
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


LAYERS = {"efficientnet_lite0": [("block8", 1.0), ("block10", 0.5)], "googlenet": [("inception4c", 1.0)],
          "inception_v3": [("mixed3", 0.5), ("mixed5", 1.5)]}


@pytest.mark.parametrize("name", list(LAYERS))
def test_low_precision_gradients_are_as_close_as_input_noise_allows(coffee, name):
    """bf16 moves the gradient about as much as half a uint8 level of input noise does; fp16
    (loss-scaled: random-weight gradients here are ~1e-10) and the fp32 fast layout less."""
    from dreamvid.core.convert import to_tensor
    x = to_tensor(coffee, CPU)
    noise = (torch.rand(x.shape, generator=make_generator(9)) - 0.5) / 255
    ref = _grad(name, "fp32", x, cl=False, fold=False)
    floor = _cos(_grad(name, "fp32", x + noise, cl=False, fold=False), ref)
    assert _cos(_grad(name, "fp32", x), ref) > 0.999  # channels_last + folded BN
    bf16, fp16 = _cos(_grad(name, "bf16", x), ref), _cos(_grad(name, "fp16", x), ref)
    assert bf16 > 0.8 and bf16 > floor - 0.05, (bf16, floor)
    assert fp16 > 0.9 and fp16 > floor - 0.05, (fp16, floor)


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def test_whole_dreams_differ_no_more_than_input_noise_makes_them(coffee):
    """fp32 fast layout (channels_last + folded BN) and bf16 vs the plain fp32 network (today's
    pixels): one step moves no pixel by more than a uint8 level; a whole dream (the default
    preset's schedule, shortened) differs from plain fp32 no more than plain fp32 differs from itself on a noisy input,
    with the same dream strength."""
    from dreamvid.core.convert import to_tensor
    from dreamvid.engine.ascent import dream
    from dreamvid.engine.models import load_model
    from dreamvid.engine.objectives import build_objective
    settings = settings_from_preset(None, seed=2, iterations=5, octaves=3)
    x = to_tensor(coffee, CPU)
    noise = (torch.rand(x.shape, generator=make_generator(9)) - 0.5) / 255
    runs = {"plain": ("fp32", False, x), "noisy": ("fp32", False, (x + noise).clamp(0, 1)),
            "fast": ("fp32", True, x), "bf16": ("bf16", True, x)}
    models = {(p, fast): load_model(settings.model, device=CPU, channels_last=fast, fold_bn=fast)
              for p, fast, _ in runs.values()}

    def run(key, **kw):
        p, fast, inp = runs[key]
        m = models[(p, fast)]
        out = dream(inp, m, build_objective(m, settings.layers), settings.replace(**kw), make_generator(2),
                    precision=resolve_precision(p, CPU))
        return _u8(out[0].permute(1, 2, 0).numpy()).astype(int)

    one = {k: run(k, iterations=1, octaves=1) for k in ("plain", "fast")}
    assert np.abs(one["plain"] - one["fast"]).max() <= 1
    out = {k: run(k) for k in runs}
    strength = {k: np.abs(v - coffee).mean() for k, v in out.items()}
    floor = np.abs(out["noisy"] - out["plain"]).mean()
    for k in ("fast", "bf16"):
        assert np.abs(out[k] - out["plain"]).mean() < 1.25 * floor, k
        assert strength[k] == pytest.approx(strength["plain"], rel=0.15), k


# --------------------------------------------------------------------------- identity

def test_precision_is_part_of_the_identity_and_a_resume_with_another_is_refused(tmp_path):
    from dreamvid.store.checkpoint import Checkpoint
    settings = settings_from_preset(None, iterations=1, octaves=1)
    fp32, bf16 = (Dreamer(settings, "cpu", precision=p) for p in ("fp32", "bf16"))
    assert fp32.identity["runtime"]["precision"] == "fp32" and bf16.identity["runtime"]["precision"] == "bf16"
    assert fp32.identity != bf16.identity
    assert Dreamer(settings, "cpu", precision="auto").identity["runtime"]["precision"] == \
        resolve_precision("auto", CPU).name  # the resolved choice, not "auto"
    folder = str(tmp_path / "ckpt")
    with Checkpoint(folder, {"dream": fp32.identity}, 2) as ck:
        ck.open()
        ck.save(0, np.zeros((8, 8, 3), np.uint8))
    with Checkpoint(folder, {"dream": bf16.identity}, 2) as ck:
        with pytest.raises(DreamvidError, match="precision"):
            ck.open()
    with Checkpoint(folder, {"dream": fp32.identity}, 2) as ck:
        assert ck.open() == 1  # the same precision resumes


def test_image_and_update_stay_float32():
    d = Dreamer(DreamSettings(iterations=1, octaves=1), "cpu", precision="bf16")
    out = d.dream_tensor(torch.rand(1, 3, 96, 128, generator=make_generator(0)))
    assert out.dtype == torch.float32


def test_the_cpu_thread_count_is_part_of_the_identity():
    """On a CPU the thread count changes the last bits (sums split by thread): a resume with
    another count would not be exact, so the checkpoint refuses it by name."""
    from dreamvid.store.checkpoint import describe_differences
    d = Dreamer(settings_from_preset(None), "cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = d.identity
        torch.set_num_threads(2)
        two = d.identity
    finally:
        torch.set_num_threads(before)
    assert describe_differences(one, two) == "cpu_threads was 1, now 2"
