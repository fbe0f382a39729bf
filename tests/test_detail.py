"""Fine detail of the carried dream: sampled once from an anchor instead of blurred every frame.

A synthetic textured scene moving at fractional speeds (DIS flows estimated on it, as a render
does), a dream-like fine residual on frame 0, carried 20 frames on; renders through the real
pipeline with the offline EfficientNet-Lite0 at one octave.
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
from dreamvid.core.convert import download, quantize, quantize_tensor, unit, upload
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.transforms import carried_dream
from dreamvid.pipeline.video import dream_video, next_schedule
from dreamvid.temporal.anchor import Anchor
from dreamvid.temporal.carry import carry_anchored, carry_one_step, estimate_flows
from dreamvid.temporal.flow import FlowEstimator
from dreamvid.temporal.metrics import detail_energy
from dreamvid.temporal.motion import Motion
from dreamvid.temporal.sampling import warp

SPEED = (0.37, 0.23)  # px per frame, x and y: every frame lands between pixels


def moving_scene(frames: int, size=(96, 80), seed=5):
    """`frames` RGB float32 frames of a smooth texture translating by SPEED px per frame (exact
    subpixel shifts of one large texture), and a fine zero-mean residual that moves with it
    (as a dream stuck to the scene does), also for every frame: (raw, residual) lists."""
    rng = np.random.default_rng(seed)
    w, h = size
    texture = cv2.GaussianBlur(rng.random((h + 40, w + 40, 3)).astype(np.float32), (0, 0), 2.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    fine = cv2.GaussianBlur(rng.standard_normal((h + 40, w + 40, 3)).astype(np.float32), (0, 0), 0.8)
    fine *= 0.1 / fine.std()
    raws, residuals = [], []
    for t in range(frames):
        m = np.float32([[1, 0, 20 + SPEED[0] * t], [0, 1, 20 + SPEED[1] * t]])
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        raws.append(cv2.warpAffine(texture, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT))
        residuals.append(cv2.warpAffine(fine, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT))
    return raws, residuals


def inner(a, margin=12):
    return a[margin:-margin, margin:-margin]


CPU = torch.device("cpu")


def t(a):
    """HxWxC numpy -> (1, C, H, W) tensor; and back with n()."""
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]


def n(x):
    return x[0].permute(1, 2, 0).numpy()


def motion_of(est, cur, prev) -> Motion:
    flows = estimate_flows(est, cur, prev)
    return Motion(flows.backward, flows.forward, cur.shape[:2], CPU)


def coast(raws, residual0, kernel: str, anchored: bool):
    """Carry frame 0's residual along the estimated flows to the last frame, no dreaming."""
    est = FlowEstimator()
    res = t(residual0)
    anchor = Anchor(0, res, kernel, residual0.shape[:2])
    for i in range(1, len(raws)):
        motion = motion_of(est, raws[i], raws[i - 1])
        if anchored:
            anchor.follow(motion)
            chained = warp(res, motion.frame_flow(), "cubic")
            res = torch.lerp(chained, anchor.sample(), anchor.frame_trust(motion.frame_size))
        else:
            res = warp(res, motion.frame_flow(), kernel)
    return n(res)


def test_the_anchor_keeps_the_detail_of_a_dream_carried_20_frames():
    raws, truth = moving_scene(21)
    kernel = VideoSettings().carry_kernel
    carried = coast(raws, truth[0], kernel, anchored=True)
    kept = detail_energy(inner(carried)) / detail_energy(inner(truth[20]))
    assert kept >= 0.85, f"the anchored carry kept {kept:.2f} of the detail"
    # ... and it is the same detail, where the scene took it (not noise of the same energy)
    corr = np.corrcoef(inner(carried).ravel(), inner(truth[20]).ravel())[0, 1]
    assert corr > 0.8
    # Carried frame to frame, resampling blurs the detail away (what the default did before).
    chained = detail_energy(inner(coast(raws, truth[0], "linear", anchored=False))) / detail_energy(inner(truth[20]))
    assert chained < 0.3


class Disoccluded(Motion):
    """A motion whose left 40 columns are unreliable, as if disoccluded."""

    @property
    def mask(self):
        m = super().mask.clone()
        m[..., :40] = 0.0
        return m


def test_masked_out_pixels_start_from_the_raw_frame():
    raws, truth = moving_scene(3)
    flows = estimate_flows(FlowEstimator(), raws[1], raws[0])
    motion = Disoccluded(flows.backward, flows.forward, raws[1].shape[:2], CPU)
    anchor = Anchor(0, t(truth[0]), "nearest", raws[0].shape[:2])
    anchor.follow(motion)
    dream0 = t(np.clip(raws[0] + truth[0], 0, 1))
    init, _, target, _ = carry_anchored(t(raws[1]), t(raws[0]), dream0, motion, anchor, blend=0.85)
    init, target = n(init), n(target)
    np.testing.assert_array_equal(init[:, :40], raws[1][:, :40])
    np.testing.assert_array_equal(target[:, :40], raws[1][:, :40])
    assert np.abs(target[:, 50:] - raws[1][:, 50:]).mean() > 0.02  # the dream is carried elsewhere


# ------------------------------------------------------------------ renders through the pipeline

RUN = RunOptions(device="cpu", audio=False)


@pytest.fixture(scope="module")
def dreamer():
    """One octave, 2 steps on the first frame (1 on later ones)."""
    return Dreamer(settings_from_preset(None, octaves=1, iterations=2), "cpu")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The moving scene as a 10-frame PNG folder."""
    raws, _ = moving_scene(10)
    folder = tmp_path_factory.mktemp("moving")
    for t, f in enumerate(raws):
        cv2.imwrite(str(folder / f"f{t:03d}.png"), cv2.cvtColor(quantize(f), cv2.COLOR_RGB2BGR))
    return str(folder)


def test_resume_with_an_anchor_is_exact_when_chunks_pruned_its_frames(scene, tmp_path, dreamer):
    """A streamed .mp4 in chunks of 2 frames: encoded frames are deleted, but for those back to the
    anchor, which the resume rebuilds the carry from; the output is byte for byte the same."""
    video = VideoSettings(fps=Fraction(10), carry_anchor=4)
    run = RunOptions(device="cpu", audio=False, chunk_frames=2)
    ref = str(tmp_path / "ref.mp4")
    dream_video(scene, ref, video=video, run=run, dreamer=dreamer)
    out = str(tmp_path / "out.mp4")
    frames = []

    class StopAt7:
        def is_set(self):
            return len(frames) >= 7

    with pytest.raises(Cancelled):
        dream_video(scene, out, video=video, run=run, dreamer=dreamer, cancel=StopAt7(),
                    on_event=lambda e: frames.append(e.index) if e.kind == "frame" else None)
    kept = sorted(n for n in os.listdir(out + ".dreamvid") if n.startswith("frame_"))
    assert len(kept) < 7, "encoded chunks' frames were pruned"
    messages = []
    dream_video(scene, out, video=video, run=run, dreamer=dreamer,
                on_event=lambda e: messages.append(e.text) if e.kind == "message" else None)
    assert "resuming at frame 7 of 10" in messages
    assert open(out, "rb").read() == open(ref, "rb").read()


def test_with_the_new_parts_off_a_render_is_the_one_step_carry(scene, tmp_path, dreamer):
    """carry_anchor 0, temporal_band 0, a linear carry and the same steps at every octave: frame t
    is dreamed from carry_one_step's init with the pull toward its target (the method before the
    anchor), composed here from the public parts; the render gives the same bytes."""
    video = VideoSettings(fps=Fraction(10), end=4, carry_anchor=0, temporal_band=0.0, carry_kernel="linear",
                          next_fine_iterations=None)
    out = str(tmp_path / "old") + "/"
    dream_video(scene, out, video=video, run=RUN, dreamer=dreamer)
    got = [cv2.cvtColor(cv2.imread(os.path.join(out, n)), cv2.COLOR_BGR2RGB) for n in sorted(os.listdir(out))]
    raws = [cv2.cvtColor(cv2.imread(os.path.join(scene, f"f{t:03d}.png")), cv2.COLOR_BGR2RGB) for t in range(4)]
    est = FlowEstimator(video.flow)
    octaves, iterations = next_schedule(dreamer.settings, video)
    prev_rgb = prev_raw = prev = None
    for i, rgb in enumerate(raws):
        raw = upload(rgb, dreamer.device)
        if prev is None:
            frame = quantize_tensor(dreamer.dream_tensor(raw, index=i))
        else:
            c = carry_one_step(raw, prev_raw, prev, motion_of(est, rgb, prev_rgb), video.blend)
            term = carried_dream(c.target, c.mask, video.temporal_weight, video.temporal_damping,
                                 video.temporal_fresh)
            frame = quantize_tensor(dreamer.dream_tensor(c.init, index=i, octaves=octaves, iterations=iterations,
                                                         extra=term))
        np.testing.assert_array_equal(got[i], download(frame))
        prev_rgb, prev_raw, prev = rgb, raw, unit(frame)
