"""The temporal term of video frames after the first (Ruder et al. 2016 as a per-step pull).

Fast: a synthetic textured scene panning 2 px per frame (PNG frame folder), the offline
EfficientNet-Lite0 at one octave, a few frames.
"""

import os
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from dreamvid import Cancelled
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.transforms import StepState, StepTransforms, carried_dream
from dreamvid.errors import SettingError
from dreamvid.io.sources import open_source
from dreamvid.pipeline.video import dream_video
from dreamvid.temporal.metrics import coherence_stats

RUN = RunOptions(device="cpu")
TERM = dict(temporal_weight=0.5, temporal_damping=0.0, temporal_fresh=0.0)
OFF = dict(temporal_weight=0.0, temporal_damping=0.0, temporal_fresh=0.0)


class StopAfter:
    """A cancel token that turns set on its n-th check (each ascent step and each frame checks)."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def is_set(self):
        self.calls += 1
        return self.calls >= self.n


@pytest.fixture(scope="module")
def dreamer():
    """One octave, 2 steps on the first frame (1 on later ones: ceil(2 x 0.25))."""
    return Dreamer(settings_from_preset(None, octaves=1, iterations=2), "cpu")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A smooth random texture, 96x64 frames panning 2 px per frame to the left: 6 PNGs."""
    rng = np.random.default_rng(3)
    big = cv2.GaussianBlur(rng.random((64, 120, 3)).astype(np.float32), (0, 0), 3)
    big = (big - big.min()) / (big.max() - big.min())
    folder = tmp_path_factory.mktemp("scene")
    frames = []
    for t in range(6):
        f = (big[:, 2 * t:2 * t + 96] * 255).round().astype(np.uint8)
        cv2.imwrite(str(folder / f"f{t:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        frames.append(f)
    return str(folder), frames


def frames_of(path):
    return list(open_source(str(path)).frames())


def render(scene, tmp_path, name, dreamer, **video):
    out = str(tmp_path / name) + "/"
    dream_video(scene[0], out, video=VideoSettings(fps=Fraction(10), **video), run=RUN, dreamer=dreamer)
    return frames_of(out)


def test_temporal_term_lowers_flicker_and_keeps_the_dream(scene, tmp_path, dreamer):
    raw = scene[1]
    with_term = coherence_stats(raw, render(scene, tmp_path, "term", dreamer, **TERM))
    without = coherence_stats(raw, render(scene, tmp_path, "off", dreamer, **OFF))
    none = coherence_stats(raw, render(scene, tmp_path, "none", dreamer, flow="none"))
    assert with_term.e_warp_output < 0.8 * without.e_warp_output
    assert with_term.strength >= 0.85 * none.strength


def test_weight_zero_is_the_plain_carry_exactly(scene, tmp_path, dreamer):
    """--temporal-weight 0 (and no damping/fresh) renders today's method bit for bit: the dreamer is
    called without any extra transforms."""
    calls = []

    class Spy:
        def __init__(self, d):
            self.d, self.settings, self.device = d, d.settings, d.device

        def __getattr__(self, name):
            return getattr(self.d, name)

        def dream_tensor(self, *a, **kw):
            calls.append("extra" in kw)
            return self.d.dream_tensor(*a, **kw)

    render(scene, tmp_path, "spy", Spy(dreamer), end=3, **OFF)
    assert calls and not any(calls)


def test_masked_out_pixels_are_not_pulled():
    target = torch.full((1, 3, 8, 8), 0.9)
    mask = torch.zeros((1, 1, 8, 8))
    mask[..., 4:] = 1.0  # right half reliable, left half disoccluded
    ident = StepTransforms(lambda x, s: x, lambda g, s: g, lambda x, s: x)
    t = carried_dream(target, mask, weight=0.5, damping=0.5)(ident)
    x0 = torch.full((1, 3, 8, 8), 0.2)
    state = StepState(0, torch.Generator().manual_seed(0))
    x = t.before(x0, state)
    x = t.after(x + 0.1, state)  # a dream step of +0.1 everywhere
    assert torch.allclose(x[..., :4], torch.tensor(0.3)), "c = 0: the full dream step, no pull"
    # c = 1: step damped to 0.05, then half the gap to the target closed: 0.25 + 0.5 * (0.9 - 0.25)
    assert torch.allclose(x[..., 4:], torch.tensor(0.575))


def test_fresh_enlarges_the_step_only_where_nothing_carries():
    target = torch.full((1, 3, 4, 4), 0.5)
    mask = torch.zeros((1, 1, 4, 4))
    mask[..., 2:] = 1.0
    ident = StepTransforms(lambda x, s: x, lambda g, s: g, lambda x, s: x)
    t = carried_dream(target, mask, weight=0.0, fresh=1.0)(ident)
    state = StepState(0, torch.Generator().manual_seed(0))
    x = t.after(t.before(torch.full((1, 3, 4, 4), 0.5), state) + 0.1, state)
    assert torch.allclose(x[..., :2], torch.tensor(0.7)) and torch.allclose(x[..., 2:], torch.tensor(0.6))


def test_resume_with_the_temporal_term_is_bit_identical(scene, tmp_path, dreamer):
    video = dict(TERM, temporal_fresh=1.0, temporal_damping=0.3)
    ref = render(scene, tmp_path, "ref", dreamer, **video)
    out = str(tmp_path / "stopped") + "/"
    v = VideoSettings(fps=Fraction(10), **video)
    with pytest.raises(Cancelled):  # stops after a few frames (each step and each frame checks)
        dream_video(scene[0], out, video=v, run=RUN, dreamer=dreamer, cancel=StopAfter(2 + 1 + 3 + 2))
    ckpt = out.rstrip("/") + ".dreamvid"
    done = sorted(n for n in os.listdir(ckpt) if n.startswith("frame_"))
    assert 0 < len(done) < len(ref)
    dream_video(scene[0], out, video=v, run=RUN, dreamer=dreamer)
    got = frames_of(out)
    assert len(got) == len(ref)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("field,value", [("temporal_weight", 1.5), ("temporal_damping", -0.1),
                                         ("temporal_fresh", 5.0)])
def test_temporal_settings_ranges(field, value):
    with pytest.raises(SettingError) as e:
        VideoSettings(**{field: value}).validate()
    assert e.value.field == field
