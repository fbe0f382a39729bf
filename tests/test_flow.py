"""Flow direction, warping, the occlusion mask and the temporal metrics (the carry: test_carry.py)."""

import cv2
import numpy as np
import pytest

from dreamvid.errors import DreamvidError
from dreamvid.temporal.flow import FlowEstimator, backward_flow, forward_flow, occlusion_mask, warp
from dreamvid.temporal.metrics import dream_strength, temporal_stats, warping_error

H, W = 120, 160
M = 16  # interior margin ignored by the checks


def texture(h, w, seed, sigma=2.5, channels=3):
    """Smooth random texture, float32 in [0, 1], ``h x w x channels``."""
    rng = np.random.default_rng(seed)
    n = rng.normal(size=(h, w, channels)).astype(np.float32)
    t = cv2.GaussianBlur(n, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    if t.ndim == 2:
        t = t[..., None]
    t -= t.min()
    return t / t.max()


def shifted_pair(dx, dy, seed=0):
    """(prev, cur) uint8 crops of one texture; content moves by (dx, dy) from prev to cur."""
    big = (texture(H + 40, W + 40, seed) * 255).round().astype(np.uint8)
    prev = big[20:20 + H, 20:20 + W]
    cur = big[20 - dy:20 - dy + H, 20 - dx:20 - dx + W]  # cur(p) = prev(p - d)
    return np.ascontiguousarray(prev), np.ascontiguousarray(cur)


def interior(a):
    return a[M:-M, M:-M]


def mse(a, b):
    return float(np.mean((interior(a).astype(np.float32) - interior(b).astype(np.float32)) ** 2))


ESTIMATORS = [("dis", "medium"), ("dis", "fast"), ("farneback", "medium")]


@pytest.mark.parametrize("method,preset", ESTIMATORS)
def test_backward_flow_direction_and_warp(method, preset):
    est = FlowEstimator(method, preset)
    dx, dy = 4, -3
    prev, cur = shifted_pair(dx, dy)
    fb = backward_flow(est, cur, prev)  # cur -> prev: cur(p) = prev(p - d), so fb = -d
    ff = forward_flow(est, cur, prev)  # prev -> cur: fb's opposite
    assert fb.shape == (H, W, 2) and fb.dtype == np.float32
    assert np.median(interior(fb[..., 0])) == pytest.approx(-dx, abs=0.25)
    assert np.median(interior(fb[..., 1])) == pytest.approx(-dy, abs=0.25)
    assert np.median(interior(ff[..., 0])) == pytest.approx(dx, abs=0.25)
    assert np.median(interior(ff[..., 1])) == pytest.approx(dy, abs=0.25)

    prevf = prev.astype(np.float32) / 255
    curf = cur.astype(np.float32) / 255
    right = mse(warp(prevf, fb), curf)
    wrong = mse(warp(prevf, ff), curf)  # the classic mistake: warping with calc(prev, cur)
    unwarped = mse(prevf, curf)
    assert right < 2e-4
    assert wrong > 20 * right and unwarped > 20 * right
    # uint8 and single-channel images warp the same way
    w8 = warp(prev, fb)
    assert w8.dtype == np.uint8 and w8.shape == prev.shape
    assert mse(w8.astype(np.float32) / 255, curf) < 2e-4
    assert warp(prevf[..., 0], fb).shape == (H, W)


def test_warp_is_exact_for_integer_flow():
    img = texture(30, 40, 3)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0] = 2  # out(p) = img(p + (2, 1))
    flow[..., 1] = 1
    out = warp(img, flow)
    np.testing.assert_allclose(out[:-1, :-2], img[1:, 2:], atol=1e-6)
    np.testing.assert_allclose(out[:, -1], img[np.r_[1:30, 29], -1], atol=1e-6)  # replicated
    np.testing.assert_allclose(warp(img, flow, cubic=True)[:-1, :-2], img[1:, 2:], atol=1e-5)


def test_cubic_warp_blurs_less_than_bilinear():
    """A dream carried over many frames is resampled each time: bicubic keeps fine detail longer."""
    img = texture(80, 100, 5, sigma=1.0)
    flow = np.full((80, 100, 2), 0.5, np.float32)  # half-pixel shifts: bilinear's worst case
    back = -flow
    lin, cub = img.copy(), img.copy()
    for _ in range(6):
        lin = warp(warp(lin, flow), back)
        cub = warp(warp(cub, flow, cubic=True), back, cubic=True)
    assert mse(cub, img) < 0.5 * mse(lin, img)


def test_occlusion_mask_marks_disoccluded_strip():
    bg = texture(H, W, 1)
    sq = texture(40, 40, 2, sigma=1.5)
    y0, x0, step = 40, 50, 8
    prev = bg.copy()
    prev[y0:y0 + 40, x0:x0 + 40] = sq
    cur = bg.copy()
    cur[y0:y0 + 40, x0 + step:x0 + step + 40] = sq  # square moved right by `step`
    est = FlowEstimator("dis", "medium")
    fb = backward_flow(est, cur, prev)
    ff = forward_flow(est, cur, prev)
    mask = occlusion_mask(ff, fb)
    assert mask.shape == (H, W) and mask.dtype == np.float32
    assert mask.min() >= 0 and mask.max() <= 1
    # in cur, the strip the square uncovered has no counterpart in prev
    strip = mask[y0 + 4:y0 + 36, x0 + 1:x0 + step - 1]
    assert np.mean(strip < 0.5) > 0.7, np.round(strip, 2)
    # far-away background, and the inside of the square, are reliable
    far = np.concatenate([mask[:y0 - 12, :].ravel(), mask[y0 + 52:, :].ravel()])
    assert np.mean(far > 0.5) > 0.9
    inside = mask[y0 + 8:y0 + 32, x0 + step + 8:x0 + step + 32]
    assert np.mean(inside > 0.5) > 0.9


def test_occlusion_mask_constants_on_exact_flows():
    # consistent flows: reliable; an inconsistent patch beyond 0.5 px²: unreliable
    fb = np.full((40, 50, 2), -2.0, np.float32)
    ff = np.full((40, 50, 2), 2.0, np.float32)
    assert interior(occlusion_mask(ff, fb)).min() == pytest.approx(1.0)
    ff[15:25, 15:25] = 0.0  # read at p + fb(p), i.e. the patch shifted by (-2, -2) in cur
    m = occlusion_mask(ff, fb)
    assert m[19, 19] < 0.1 and m[5, 40] > 0.99
    # flows pointing out of the frame (new content at the border) are unreliable
    assert m[:, :1].max() < 0.5 and m[:1, :].max() < 0.5


def pan(big, n, dx):
    """n crops of ``big`` whose content moves right by dx px per frame."""
    return [big[:, (n - i) * dx:(n - i) * dx + W].copy() for i in range(n)]


def video(n, dx, seed=11):
    """n frames (float32 [0,1]) of a texture panning right by dx px per frame."""
    return pan(texture(H, W + n * dx, seed), n, dx)


def test_warping_error_static_is_zero_and_noise_is_not():
    frame = texture(H, W, 12)
    static = [frame] * 4
    est = FlowEstimator()
    assert warping_error(static, static, est) < 1e-8
    rng = np.random.default_rng(0)
    noisy = [np.clip(frame + rng.normal(0, 0.05, frame.shape).astype(np.float32), 0, 1)
             for _ in range(4)]
    assert warping_error(static, noisy, est) > 1e-3


def test_warping_error_prefers_dream_that_moves_with_the_content():
    scene = 0.1 + 0.8 * texture(H, W + 15, 11)
    pattern = 0.2 * (texture(H, W + 15, 13, sigma=1.5) - 0.5)
    frames = pan(scene, 5, 3)
    moving = pan(scene + pattern, 5, 3)  # dream attached to the content
    stuck = [f + pattern[:, :W] for f in frames]  # dream stuck to the screen
    est = FlowEstimator()
    s = temporal_stats(frames, moving, est)
    assert s.e_warp_input < 2e-4  # the floor: flow errors only
    assert s.e_warp_output < 3 * s.e_warp_input + 2e-4
    assert warping_error(frames, stuck, est) > 10 * s.e_warp_output
    assert s.frames == 5 and s.pairs == 4 and not s.truncated


def test_warping_error_resizes_input_to_output_size():
    frames8 = [(f * 255).round().astype(np.uint8) for f in video(4, 2)]
    small = [cv2.resize(f, (W // 2, H // 2), interpolation=cv2.INTER_AREA) for f in frames8]
    s = temporal_stats(frames8, small)
    assert s.dream_strength < 1e-6
    assert s.e_warp_output == pytest.approx(s.e_warp_input)
    assert s.ratio == pytest.approx(1.0)


def test_dream_strength_constant_offset_and_length_check():
    frames = [0.2 + 0.6 * texture(H, W, s) for s in (14, 15, 16)]
    out = [f + 0.1 for f in frames]
    assert dream_strength(frames, out) == pytest.approx(0.1, abs=1e-5)
    frames8 = [(f * 255).round().astype(np.uint8) for f in frames]
    assert dream_strength(frames8, frames8) == 0.0
    with pytest.raises(DreamvidError):
        dream_strength(frames, out[:2])
    with pytest.raises(DreamvidError):
        warping_error(frames, out[:2])
    s = temporal_stats(frames, out[:2], strict=False)
    assert s.truncated and s.frames == 2


def test_unknown_method_or_preset():
    with pytest.raises(DreamvidError, match="dis, farneback"):
        FlowEstimator("raft")
    with pytest.raises(DreamvidError, match="medium"):
        FlowEstimator("dis", "slow")
    est = FlowEstimator()
    assert est.method == "dis" and est.preset == "medium"


def test_warm_start_accepts_previous_flow():
    prev, cur = shifted_pair(3, 1, seed=17)
    for method in ("dis", "farneback"):
        est = FlowEstimator(method)
        f0 = est.calc(cur, prev)
        init = f0.copy()
        f1 = est.calc(cur, prev, init)
        np.testing.assert_array_equal(init, f0)  # not written into
        assert np.median(interior(f1[..., 0])) == pytest.approx(-3, abs=0.25)
