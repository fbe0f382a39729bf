"""The ascent engine: objectives rise, seeds reproduce, tiles match, presets are valid."""

import numpy as np
import pytest
import torch
from skimage import data

from dreamvid.config.settings import DreamSettings
from dreamvid.core.imageops import lap_normalize
from dreamvid.core.rng import make_generator
from dreamvid.engine.ascent import Ascent, ascend, dream, octave_shapes
from dreamvid.core.convert import to_tensor
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import DreamvidError
from dreamvid.engine.models import layer_table, load_model
from dreamvid.engine.objectives import build_objective, channel, class_logit, layer, parse_channel, parse_layer_weights
from dreamvid.config.presets import DEFAULT_PRESET, PRESETS, settings_from_preset


@pytest.fixture(scope="module")
def lite():
    return load_model("efficientnet_lite0")  # the real offline ImageNet weights


@pytest.fixture(scope="module")
def photo():
    import cv2
    return cv2.resize(data.coffee(), (128, 96), interpolation=cv2.INTER_AREA)


def _loss(model, objective, x):
    with torch.no_grad():
        return float(objective(model(x, sorted(objective.layers))))


@pytest.mark.parametrize("make", [
    lambda m, x: layer("block6", 0.5) + layer("block9", 1.0),
    lambda m, x: channel("block9", 17),
    lambda m, x: class_logit(285),
    lambda m, x: build_objective(m, [("block9", 1.0)], guide_image=torch.rand(1, 3, 96, 96)),
], ids=["layer-mix", "channel", "class", "guide"])
def test_objectives_rise_under_ascent(lite, photo, make):
    x = to_tensor(photo, torch.device("cpu"))
    objective = make(lite, x)
    settings = DreamSettings(step=0.01, iterations=6, jitter=4)
    before = _loss(lite, objective, x)
    out = ascend(x, Ascent(lite, objective, 1024), settings, make_generator(0))
    after = _loss(lite, objective, out)
    assert after > before + 0.05 * abs(before) + 1e-3
    assert out.min() >= 0 and out.max() <= 1


def test_composed_objective_is_weighted_sum(lite, photo):
    x = to_tensor(photo, torch.device("cpu"))
    a, b = layer("block6"), layer("block9")
    combined = 0.5 * a + b * 2.0
    expect = 0.5 * _loss(lite, a, x) + 2.0 * _loss(lite, b, x)
    assert _loss(lite, combined, x) == pytest.approx(expect, rel=1e-5)
    assert combined.layers == {"block6", "block9"}


def test_layer_loss_is_keras_form():
    act = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) / 100
    expect = 1.5 * (act[..., 2:-2, 2:-2] ** 2).sum() / act.numel()
    assert float(layer("x", 1.5)({"x": act})) == pytest.approx(float(expect))


def test_seed_reproduces_and_differs(lite, photo):
    settings = settings_from_preset(None, iterations=3, octaves=2, seed=7)
    d = Dreamer(settings, "cpu")
    a, b = d(photo, index=3), d(photo, index=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, d(photo, index=4))  # frame index salts the seed
    other = Dreamer(settings.replace(seed=8), "cpu")
    assert not np.array_equal(a, other(photo, index=3))


def test_tiled_gradient_matches_untiled(lite):
    """A 320x240 photo in 128 px tiles (random grid offsets, overlapping margins) vs whole."""
    import cv2
    x = to_tensor(cv2.resize(data.coffee(), (320, 240), interpolation=cv2.INTER_AREA), torch.device("cpu"))
    obj = layer("block6") + layer("block9")
    whole_ascent, tiled_ascent = Ascent(lite, obj, 1024), Ascent(lite, obj, 128)
    _, g_whole = whole_ascent(x, make_generator(2))
    for seed in (2, 3):  # two different random tile grids
        _, g_tiled = tiled_ascent(x, make_generator(seed))
        cos = torch.nn.functional.cosine_similarity(g_whole.flatten(), g_tiled.flatten(), dim=0)
        assert cos > 0.99
    settings = DreamSettings(step=0.01, iterations=1, jitter=0)
    whole = ascend(x, whole_ascent, settings, make_generator(1))
    tiled = ascend(x, tiled_ascent, settings, make_generator(1))
    change = (whole - x).abs().mean()
    assert change > 0.005  # it did dream
    # (Over many steps any two ascents drift apart: a 1e-4 input perturbation does as much.)
    assert (tiled - whole).abs().mean() < 0.1 * change


def test_batched_tiles_give_the_same_gradient(lite):
    """Same-sized tiles in one network pass: the same loss and gradient up to rounding."""
    x = torch.rand(1, 3, 300, 400, generator=make_generator(0))
    obj = layer("block6") + layer("block9", 0.5)
    (l1, g1), (l4, g4) = (Ascent(lite, obj, 128, batch_tiles=b)(x, make_generator(5)) for b in (1, 4))
    assert l4 == pytest.approx(l1, rel=1e-4)
    assert (g4 - g1).abs().max() <= 1e-4 * g1.abs().max()


def test_octave_shapes_and_small_octaves_dropped():
    shapes = octave_shapes(360, 640, 4, 1.4, 32)
    assert shapes[-1] == (360, 640) and len(shapes) == 4
    assert shapes[0] == (round(360 / 1.4 ** 3), round(640 / 1.4 ** 3))
    shapes = octave_shapes(100, 100, 6, 1.4, 96)
    assert shapes == [(100, 100)]


def test_image_too_small_for_layer_is_a_user_error(lite):
    objective = layer("block14")
    with pytest.raises(DreamvidError, match="too small"):
        dream(torch.rand(1, 3, 40, 40), lite, objective, DreamSettings(), make_generator(0))


def test_lap_normalize_equalises_bands():
    g = torch.randn(1, 3, 64, 64)
    g[..., :32, :] *= 10  # uneven energy
    out = lap_normalize(g, 4)
    assert out.shape == g.shape and torch.isfinite(out).all()
    assert not torch.allclose(out / out.abs().mean(), g / g.abs().mean())


def test_class_visualisation_from_noise_raises_class_score(lite):
    gen = make_generator(0)
    x = torch.rand(1, 3, 128, 128, generator=gen) * 0.2 + 0.4
    obj = class_logit(285)
    settings = DreamSettings(step=0.02, iterations=10, jitter=8, l2_decay=0.01, blur_every=4, octaves=1)
    before = _loss(lite, obj, x)
    out = dream(x, lite, obj, settings, gen)
    assert _loss(lite, obj, out) > before + 1.0


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid(name):
    s = settings_from_preset(name)
    table = {n for n, _, _ in layer_table(s.model)} | {a for _, _, al in layer_table(s.model) for a in al}
    assert all(layer_name in table for layer_name, _ in s.layers)
    assert s.iterations >= 1 and s.step > 0 and s.octaves >= 1


def test_keras_presets_convert_step_and_keep_table_values():
    seals = settings_from_preset("seals")
    assert seals.model == "inception_v3"
    assert dict(seals.layers) == {"mixed2": 0.2, "mixed3": 0.5, "mixed4": 2.0, "mixed5": 1.5}
    assert seals.step == pytest.approx(0.005)  # Keras 0.01 on [-1, 1] inputs
    assert (seals.octaves, seals.octave_scale, seals.iterations, seals.max_loss) == (6, 1.4, 20, 10)
    ocean = settings_from_preset("ocean")
    assert (ocean.iterations, ocean.octaves, ocean.step) == (50, 7, pytest.approx(0.01))
    classic = settings_from_preset("classic")
    assert classic.model == "bvlc_googlenet" and classic.jitter == 32 and classic.step == pytest.approx(1.5 / 255)
    assert classic.layers == (("inception_4c/output", 1.0),) and (classic.octaves, classic.iterations) == (4, 10)


def test_flags_override_preset_and_other_model_gets_its_default_layer():
    s = settings_from_preset("seals", iterations=3, step=None)
    assert s.iterations == 3 and s.step == pytest.approx(0.005)
    s = settings_from_preset(DEFAULT_PRESET, model="googlenet")
    assert s.layers == (("inception4c", 1.0),)


def test_max_loss_stops_octave_early(lite, photo):
    x = to_tensor(photo, torch.device("cpu"))
    steps = []
    ascend(x, Ascent(lite, layer("block9"), 1024), DreamSettings(iterations=5, max_loss=1e-9),
           make_generator(0), on_step=lambda: steps.append(1))
    assert len(steps) == 5  # the progress bar still completes


def test_parsers():
    assert parse_layer_weights("mixed3=0.5, mixed4=2") == [("mixed3", 0.5), ("mixed4", 2.0)]
    assert parse_layer_weights("mixed4") == [("mixed4", 1.0)]
    assert parse_channel("mixed4:70") == ("mixed4", 70)
    assert parse_channel("inception_4c/output:3") == ("inception_4c/output", 3)
    for bad in ("mixed4", "mixed4:x", ":3"):
        with pytest.raises(DreamvidError):
            parse_channel(bad)
    with pytest.raises(DreamvidError):
        parse_layer_weights("mixed4=abc")


# --------------------------------------------------------------------------- transforms

def test_transforms_compose_in_order_and_jitter_undoes_itself():
    from dreamvid.engine.transforms import StepState, clamp, compose, decay, jitter, undo
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(1, 3, 10, 7) / 210
    state = StepState(0, make_generator(3))
    rolled = jitter(4)(x, state)
    expect_gen = make_generator(3)
    dy = int(torch.randint(0, 9, (1,), generator=expect_gen)) - 4
    dx = int(torch.randint(0, 9, (1,), generator=expect_gen)) - 4
    assert torch.equal(rolled, torch.roll(x, (dy, dx), (2, 3)))  # dy drawn first, from the given generator
    assert torch.equal(undo(rolled, state), x) and state.undo == []
    f = compose([decay(0.5), clamp(0.4, 0.6)])
    assert torch.equal(f(x, state), (0.5 + (x - 0.5) * 0.5).clamp(0.4, 0.6))
    assert torch.equal(compose([])(x, state), x)


def test_step_transforms_follow_the_settings():
    from dreamvid.engine.transforms import StepState, step_transforms
    x = torch.rand(1, 3, 16, 16, generator=make_generator(0)) * 1.4 - 0.2
    plain = step_transforms(DreamSettings(jitter=0))
    s = StepState(0, make_generator(1))
    assert torch.equal(plain.before(x, s), x) and torch.equal(plain.after(x, s), x.clamp(0, 1))
    blur = step_transforms(DreamSettings(jitter=0, blur_every=2, blur_sigma=1.0))
    assert torch.equal(blur.after(x, StepState(0, make_generator(1))), x.clamp(0, 1))  # step 1 of 2: no blur
    assert not torch.equal(blur.after(x, StepState(1, make_generator(1))), x.clamp(0, 1))
    lap = step_transforms(DreamSettings(lap_norm=3))
    assert torch.equal(lap.gradient(x, s), lap_normalize(x, 3))


# --------------------------------------------------------------------------- per-frame settings

@pytest.fixture(scope="module")
def small_dreamer():
    settings = settings_from_preset(None, iterations=2, octaves=2, seed=4).replace(
        layers=(("block6", 1.0), ("block9", 1.0)))
    return Dreamer(settings, "cpu")


def test_per_frame_settings_change_the_dream_not_the_model(small_dreamer, photo):
    d = small_dreamer
    model, base = d.model, d.settings
    ref = d(photo, index=2)
    # Equal settings (another object) give bit-identical output, through every entry point.
    same = base.replace()
    assert same is not base
    assert np.array_equal(d(photo, index=2, settings=same), ref)
    assert torch.equal(d.dream_tensor(to_tensor(photo, d.device), 2, settings=same),
                       d.dream_tensor(to_tensor(photo, d.device), 2))
    assert d.steps(96, 128, settings=same) == d.steps(96, 128)
    # A varying step or layer weight changes the result; the model is never rebuilt.
    stepped = d(photo, index=2, settings=base.replace(step=base.step * 2))
    weighted = d(photo, index=2, settings=base.replace(layers=(("block6", 0.0), ("block9", 3.0))))
    for out in (stepped, weighted):
        assert np.abs(out - ref).mean() > 1e-3
    assert d.model is model and np.array_equal(d(photo, index=2), ref)
    # The weighted objective is cached by its layers; the base one stays the base.
    assert base.replace(layers=(("block6", 0.0), ("block9", 3.0))).layers in d._objectives
    # Iterations/octaves from per-frame settings set the step count; the keywords still override.
    n_oct = d.steps(96, 128) // base.iterations
    assert d.steps(96, 128, settings=base.replace(iterations=5)) == n_oct * 5
    assert d.steps(96, 128, 1, 3, settings=base.replace(iterations=5)) == 3
    n = []
    d(photo, index=2, iterations=1, settings=base.replace(iterations=5), on_step=lambda: n.append(1))
    assert len(n) == n_oct


@pytest.mark.parametrize("field,value", [
    ("model", "googlenet"), ("channel", "block9:3"), ("class_index", 3), ("guide", "g.png"),
    ("tile_size", 512), ("seed", 99), ("layers", (("block6", 1.0), ("block10", 1.0))),
])
def test_per_frame_settings_cannot_change_structure(small_dreamer, photo, field, value):
    from dreamvid.errors import SettingError
    with pytest.raises(SettingError, match="cannot change per frame") as e:
        small_dreamer(photo, settings=small_dreamer.settings.replace(**{field: value}))
    assert e.value.field == field


def test_guide_image_is_passed_not_read(photo):
    from dreamvid.errors import SettingError
    settings = settings_from_preset(None, iterations=1, octaves=1).replace(guide="guide.png")
    with pytest.raises(SettingError) as e:
        Dreamer(settings, "cpu")
    assert e.value.field == "guide"
    d = Dreamer(settings, "cpu", guide_image=photo[::-1].copy())
    assert d.objective.name.startswith("guide@")
    assert d(photo).shape == photo.shape[:2] + (3,)


def test_engine_imports_no_io():
    import subprocess
    import sys
    code = ("import sys, dreamvid.engine.dreamer; "
            "print([m for m in sys.modules if m.startswith(('dreamvid.io', 'dreamvid.pipeline', "
            "'dreamvid.temporal', 'dreamvid.store'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- on_step and cancellation

def test_on_step_after_every_step_and_cancel_leaves_nothing_behind(small_dreamer, photo):
    from dreamvid.errors import Cancelled
    d = small_dreamer
    calls = []
    ref = d(photo, index=1, iterations=4, on_step=lambda: calls.append(1))
    assert len(calls) == d.steps(*photo.shape[:2], iterations=4) >= 4

    def cancel_at_3():
        calls.append(1)
        if len(calls) == 3:
            raise Cancelled("stopped")
    calls.clear()
    with pytest.raises(Cancelled):
        d(photo, index=1, iterations=4, on_step=cancel_at_3)
    assert len(calls) == 3
    assert np.array_equal(d(photo, index=1, iterations=4), ref)  # the next call is as if nothing had happened


def test_on_step_on_the_early_stop_path_may_cancel(lite, photo):
    from dreamvid.errors import Cancelled
    x = to_tensor(photo, torch.device("cpu"))
    calls = []

    def cancel_at_2():
        calls.append(1)
        if len(calls) == 2:
            raise Cancelled("stopped")
    with pytest.raises(Cancelled):  # the loss passes max_loss at once: the skipped steps still report
        ascend(x, Ascent(lite, layer("block9"), 1024), DreamSettings(iterations=5, max_loss=1e-9),
               make_generator(0), on_step=cancel_at_2)
    assert len(calls) == 2
