"""The carry on the device (temporal/sampling.py, motion.py, anchor.py, carry.py): tiny tensors
with exact expectations, OpenCV as the reference where it has the same operation, and every test
on each device this machine has (CUDA too, where there is one)."""

import cv2
import numpy as np
import pytest
import torch

import dreamvid.temporal.carry as carry_module
from dreamvid.core.convert import download, quantize, quantize_tensor, to_tensor, to_unit, unit, upload
from dreamvid.temporal.anchor import Anchor
from dreamvid.temporal.carry import carry_anchored, carry_one_step, carry_still, estimate_flows
from dreamvid.temporal.flow import FlowEstimator, occlusion_mask as occlusion_mask_np
from dreamvid.temporal.motion import Motion
from dreamvid.temporal.sampling import gaussian_blur, resize, warp, warp_at, warp_grid

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def texture(h, w, seed, sigma=2.5):
    """Smooth random RGB texture, float32 (h, w, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.normal(size=(h, w, 3)).astype(np.float32), (0, 0), sigma,
                         borderType=cv2.BORDER_REFLECT)
    t -= t.min()
    return t / t.max()


def shifted(dx, dy, h=96, w=128, seed=0):
    """(prev, cur) RGB uint8 crops of one texture; the content moves by (dx, dy) from prev to cur."""
    big = (texture(h + 40, w + 40, seed) * 255).round().astype(np.uint8)
    prev = big[20:20 + h, 20:20 + w]
    cur = big[20 - dy:20 - dy + h, 20 - dx:20 - dx + w]
    return np.ascontiguousarray(prev), np.ascontiguousarray(cur)


def t(a, device="cpu"):
    """(H, W, C) numpy -> (1, C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None].contiguous().to(device)


def n(x):
    return x[0].permute(1, 2, 0).cpu().numpy()


def motion_of(cur, prev, device, max_side=None):
    flows = estimate_flows(FlowEstimator(max_side=max_side), cur, prev)
    return Motion(flows.backward, flows.forward, cur.shape[:2], torch.device(device))


# ------------------------------------------------------------------------------------ sampling

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kernel,flag,tol", [("linear", cv2.INTER_LINEAR, 1e-4), ("cubic", cv2.INTER_CUBIC, 1e-4),
                                             ("nearest", cv2.INTER_NEAREST, None)])
def test_warp_is_opencv_remap(device, kernel, flag, tol):
    img = texture(40, 60, 1)
    flow = (np.random.default_rng(2).normal(size=(40, 60, 2)) * 3).astype(np.float32)
    yy, xx = np.mgrid[0:40, 0:60].astype(np.float32)
    maps = np.dstack([xx + flow[..., 0], yy + flow[..., 1]])
    ref = cv2.remap(img, maps, None, flag, borderMode=cv2.BORDER_REPLICATE)
    got = n(warp(t(img, device), t(flow, device), kernel))
    if tol is None:  # nearest: OpenCV rounds positions to 1/32 px first; ties may go either way
        assert np.mean(np.all(got == ref, axis=-1)) > 0.98
    else:
        np.testing.assert_allclose(got, ref, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_integer_flow_warps_exactly_and_the_border_is_replicated(device):
    img = texture(30, 40, 3)
    flow = np.zeros((30, 40, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2  # out(p) = img(p + (3, -2))
    for kernel in ("nearest", "linear", "cubic"):
        got = n(warp(t(img, device), t(flow, device), kernel))
        np.testing.assert_allclose(got[2:, :-3], img[:-2, 3:], atol=1e-5)
        np.testing.assert_allclose(got[:, -1], img[np.clip(np.arange(30) - 2, 0, 29), -1], atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_warp_at_a_few_pixels_is_the_whole_warp_there(device):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 3, 50, 70, generator=g).to(device)
    d = (torch.randn(1, 2, 50, 70, generator=g) * 4).to(device)
    pixels = torch.randperm(50 * 70, generator=g)[:400].to(device)
    for kernel in ("nearest", "linear", "cubic"):
        whole = warp(img, d, kernel).reshape(1, 3, -1)[:, :, pixels]
        assert torch.equal(warp_at(img, warp_grid(d), pixels, kernel).reshape(1, 3, -1), whole)


def test_resize_and_blur_are_opencvs():
    field = texture(23, 37, 4)[..., :2].copy()
    np.testing.assert_allclose(n(resize(t(field), 70, 110)), cv2.resize(field, (110, 70)), atol=1e-5)
    m = texture(31, 29, 5)[..., :1].copy()
    ref = cv2.GaussianBlur(m[..., 0], (5, 5), 0.8, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(n(gaussian_blur(t(m), 0.8))[..., 0], ref, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_quantise_upload_and_back_are_the_numpy_rules_bit_for_bit(device):
    x = torch.rand(1, 3, 37, 53, generator=torch.Generator().manual_seed(1)) * 1.2 - 0.1
    x[0, 0, 0, :6] = torch.tensor([0.5 / 255, 1.5 / 255, 254.5 / 255, 0.0, 1.0, -0.0])
    numpy_frame = quantize(x[0].permute(1, 2, 0).numpy().copy())
    saved = quantize_tensor(x.to(device))
    assert np.array_equal(download(saved), numpy_frame)
    assert torch.equal(unit(saved).cpu(), to_tensor(numpy_frame, torch.device("cpu")))
    assert torch.equal(upload(numpy_frame, torch.device(device)).cpu(), t(to_unit(numpy_frame)))
    assert upload(numpy_frame, torch.device(device)).is_contiguous()


# ------------------------------------------------------------------------------- the mask

def test_mask_of_numpy_flows_is_the_device_formula():
    fb = np.full((40, 50, 2), -2.0, np.float32)
    ff = np.full((40, 50, 2), 2.0, np.float32)
    assert occlusion_mask_np(ff, fb)[8:-8, 8:-8].min() == pytest.approx(1.0)
    ff[15:25, 15:25] = 0.0  # read at p + fb(p), i.e. the patch shifted by (-2, -2) in cur
    m = occlusion_mask_np(ff, fb)
    assert m[19, 19] < 0.1 and m[5, 40] > 0.99
    assert m[:, :1].max() < 0.5 and m[:1, :].max() < 0.5  # sources outside the frame


@pytest.mark.parametrize("device", DEVICES)
def test_mask_on_a_reduced_flow_grid_agrees_with_the_full_one(device):
    """A square moving over a background: the strip it uncovers is unreliable, the rest reliable,
    with flows at the frame's size and at half of it (mask computed in frame pixels either way)."""
    bg = texture(120, 160, 1)
    sq = texture(40, 40, 2, sigma=1.5)
    prev, cur = bg.copy(), bg.copy()
    prev[40:80, 50:90] = sq
    cur[40:80, 58:98] = sq  # moved right by 8
    prev8, cur8 = quantize(prev), quantize(cur)
    masks = {}
    for side in (None, 80):
        motion = motion_of(cur8, prev8, device, max_side=side)
        assert motion.flow_size == ((120, 160) if side is None else (60, 80))
        masks[side] = n(motion.frame_mask())[..., 0]
    for m in masks.values():
        assert np.mean(m[44:76, 51:57] < 0.5) > 0.7  # the uncovered strip
        far = np.concatenate([m[:28].ravel(), m[92:].ravel()])
        assert np.mean(far > 0.5) > 0.9
    assert abs(masks[None].mean() - masks[80].mean()) < 0.05


# ------------------------------------------------------------------------------- the carry

@pytest.mark.parametrize("device", DEVICES)
def test_still_carry_is_the_plain_blend_and_blend_zero_the_raw_frame(device):
    raw, prev_raw = t(texture(20, 30, 7), device), t(texture(20, 30, 8), device)
    dream = (prev_raw + 0.3 * (t(texture(20, 30, 9), device) - 0.5)).clamp(0, 1)
    c = carry_still(raw, prev_raw, dream, 0.6)
    torch.testing.assert_close(c.init, (raw + 0.6 * (dream - prev_raw)).clamp(0, 1))
    assert c.target is None and c.motion is None and float(c.mask.min()) == 1.0
    assert torch.equal(carry_still(raw, prev_raw, dream, 0.0).init, raw)


@pytest.mark.parametrize("device", DEVICES)
def test_one_step_carry_moves_the_dream_with_the_content(device):
    dx, dy = 5, 4
    prev8, cur8 = shifted(dx, dy, seed=9)
    raw_prev, raw_cur = upload(prev8, torch.device(device)), upload(cur8, torch.device(device))
    pattern = 0.2 * (texture(96, 128, 10, sigma=1.5) - 0.5)
    dream = raw_prev + t(pattern, device)
    c = carry_one_step(raw_cur, raw_prev, dream, motion_of(cur8, prev8, device), 1.0)
    carried = n(c.init - raw_cur)
    moved = np.zeros_like(pattern)
    moved[dy:, dx:] = pattern[:-dy, :-dx]  # the pattern, stuck to the content, moved by d

    def mse(a, b):
        return float(np.mean((a[16:-16, 16:-16] - b[16:-16, 16:-16]) ** 2))

    assert mse(carried, moved) < 0.05 * mse(carried, pattern)
    assert np.abs(carried[:, :dx - 2]).max() < 0.02  # sources outside prev: no dream
    assert np.abs(carried[:dy - 2, :]).max() < 0.02
    np.testing.assert_allclose(n(c.target - raw_cur)[16:-16, 16:-16], moved[16:-16, 16:-16], atol=0.03)
    assert float(c.init.max()) <= 1.0 and float(c.init.min()) >= 0.0


@pytest.mark.parametrize("device", DEVICES)
def test_anchored_carry_where_trusted_is_the_anchor_sampled(device):
    """Nothing moves: the anchor's residual comes back exactly (nearest, zero displacement), and
    the init is raw + blend · residual."""
    rgb = (texture(48, 64, 11) * 255).astype(np.uint8)
    raw = upload(rgb, torch.device(device))
    residual = 0.1 * (t(texture(48, 64, 12), device) - 0.5)
    motion = motion_of(rgb, rgb, device)
    anchor = Anchor(0, residual, "nearest", motion.flow_size)
    anchor.follow(motion)
    c = carry_anchored(raw, raw, (raw + residual).clamp(0, 1), motion, anchor, 0.85)
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    torch.testing.assert_close(c.target[inner], (raw + residual).clamp(0, 1)[inner], atol=1e-6, rtol=0)
    torch.testing.assert_close(c.init[inner], (raw + 0.85 * residual).clamp(0, 1)[inner], atol=1e-6, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_anchored_carry_is_the_same_computed_sparse_or_whole(device, monkeypatch):
    prev8, cur8 = shifted(2, 1, seed=13)
    dev = torch.device(device)
    raw_prev, raw_cur = upload(prev8, dev), upload(cur8, dev)
    dream = (raw_prev + 0.1 * (t(texture(96, 128, 14), device) - 0.5)).clamp(0, 1)
    outs = []
    for share in (0.0, 1.0):  # 0: always the whole frame; 1: only the pixels that need it
        monkeypatch.setattr(carry_module, "SPARSE_BELOW", share)
        motion = motion_of(cur8, prev8, device)
        anchor = Anchor(0, dream - raw_prev, "nearest", motion.flow_size)
        anchor.follow(motion)
        assert 0.0 < anchor.trusted_share < 1.0
        outs.append(carry_anchored(raw_cur, raw_prev, dream, motion, anchor, 0.85))
    assert torch.equal(outs[0].init, outs[1].init) and torch.equal(outs[0].target, outs[1].target)
