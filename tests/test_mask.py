"""Region masks: the dream limited inside the ascent and the carry (pipeline/mask.py).

Real frames (ffmpeg's testsrc, PNG and H.264), real EfficientNet-Lite0 weights with tiny
settings. Where the mask is 0 the output must be the input: exactly for lossless frames, within
the encoder's rounding for H.264; where it is 1 the frame must be dreamed; in a feather between.
"""

import os

import numpy as np
import pytest

from conftest import ffmpeg, make_video
from dreamvid.__main__ import main
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import MaskSettings, RunOptions, VideoSettings, ZoomSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import DreamvidError, SettingError
from dreamvid.io.images import read_image, write_image
from dreamvid.io.sources import open_source
from dreamvid.pipeline.image import dream_image
from dreamvid.pipeline.mask import FrameMask
from dreamvid.pipeline.video import dream_video, render_segment
from dreamvid.pipeline.zoom import zoom_loop
from dreamvid.store.checkpoint import Checkpoint

W, H = 96, 72
BASE = ["--iterations", "2", "--octaves", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def dreamer():
    return Dreamer(settings_from_preset(None, iterations=2, octaves=1), "cpu")


def png_frames(folder, n=4, size=f"{W}x{H}"):
    """testsrc frames as lossless PNGs: folder/f000.png …"""
    os.makedirs(folder, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate=25", "-frames:v", str(n),
           os.path.join(str(folder), "f%03d.png"))
    return str(folder)


def half_mask(path, right=True, w=W, h=H):
    """A mask image: the right (or left) half white, the other black."""
    m = np.zeros((h, w, 3), np.uint8)
    if right:
        m[:, w // 2:] = 255
    else:
        m[:, :w // 2] = 255
    write_image(str(path), m)
    return str(path)


def frames(path):
    return [f.astype(np.int16) for f in open_source(str(path)).frames()]


def test_masked_render_keeps_mask_0_exactly_and_dreams_mask_1(tmp_path, dreamer):
    src = png_frames(tmp_path / "in")
    mask = half_mask(tmp_path / "mask.png")
    out = str(tmp_path / "out") + "/"
    dream_video(src, out, dreamer=dreamer, mask=mask)
    ins, outs = frames(src), frames(out)
    assert len(outs) == 4
    for i, o in zip(ins, outs):  # every frame: the carried dream never reaches the left half
        assert np.array_equal(o[:, :W // 2], i[:, :W // 2])
        assert np.abs(o[:, W // 2 + 4:] - i[:, W // 2 + 4:]).mean() > 3


def test_feather_blends_the_edge(tmp_path, dreamer):
    src = png_frames(tmp_path / "in", n=1)
    mask = half_mask(tmp_path / "mask.png")
    out = str(tmp_path / "out") + "/"
    dream_video(src, out, dreamer=dreamer, mask=mask, mask_settings=MaskSettings(feather=6))
    d = np.abs(frames(out)[0] - frames(src)[0]).mean(axis=(0, 2))  # per column
    left, edge, right = d[:W // 2 - 20].mean(), d[W // 2 - 6:W // 2 + 6].mean(), d[W // 2 + 20:].mean()
    assert left < 0.5 and right > 3
    assert left + 0.5 < edge < right  # in between: blended, not cut


def test_mp4_masked_within_encoder_rounding(tmp_path, dreamer):
    src = make_video(tmp_path, size=f"{W}x{H}", frames=3)
    mask = half_mask(tmp_path / "mask.png", right=False)  # dream the left half
    black = tmp_path / "black.png"
    write_image(str(black), np.zeros((H, W, 3), np.uint8))
    out, floor = tmp_path / "out.mp4", tmp_path / "floor.mp4"
    assert main([src, "-o", str(out), "--mask", mask, *BASE]) == 0
    assert main([src, "-o", str(floor), "--mask", str(black), *BASE]) == 0  # all kept: the input re-encoded
    ins, outs, floors = frames(src), frames(out), frames(floor)
    assert len(outs) == 3
    right, left = np.s_[:, W // 2 + 4:], np.s_[:, :W // 2 - 4]
    for i, o, f in zip(ins, outs, floors):  # measured: kept 2.77-2.99 vs the floor's 2.85-2.97
        assert np.abs(o[right] - i[right]).mean() < np.abs(f[right] - i[right]).mean() + 0.3
        assert np.abs(o[left] - i[left]).mean() > np.abs(f[left] - i[left]).mean() + 1.5  # 5.1 vs 2.6


def test_per_frame_mask_and_strength_schedule(tmp_path, dreamer):
    """A mask folder, one per frame (the white half switching sides): what frame 0 dreamed on the
    right is carried into frame 1, whose mask keeps the right: it must be the input there."""
    src = png_frames(tmp_path / "in", n=3)
    os.makedirs(tmp_path / "masks")
    for k in range(3):
        half_mask(tmp_path / "masks" / f"m{k}.png", right=k % 2 == 0)
    out = str(tmp_path / "out") + "/"
    dream_video(src, out, dreamer=dreamer, mask=str(tmp_path / "masks"))
    ins, outs = frames(src), frames(out)
    for k, (i, o) in enumerate(zip(ins, outs)):
        kept = slice(0, W // 2) if k % 2 == 0 else slice(W // 2, W)
        assert np.array_equal(o[:, kept], i[:, kept]), k
    # mask_strength varies: 0 at frame 0 (the mask is off: dream everywhere), 1 after
    out2 = str(tmp_path / "out2") + "/"
    dream_video(src, out2, dreamer=dreamer, mask=half_mask(tmp_path / "r.png"),
                vary={"mask_strength": lambda t: 0.0 if t == 0 else 1.0})
    o2 = frames(out2)
    assert np.abs(o2[0][:, :W // 2] - ins[0][:, :W // 2]).mean() > 3
    assert np.array_equal(o2[1][:, :W // 2], ins[1][:, :W // 2])


def test_mask_array_images_zoom_and_segments(tmp_path, dreamer):
    src = png_frames(tmp_path / "in", n=3)
    m = np.zeros((H, W), np.float32)
    m[:, W // 2:] = 1.0
    first = read_image(os.path.join(src, "f001.png")).astype(np.int16)
    img = dream_image(os.path.join(src, "f001.png"), str(tmp_path / "d.png"), dreamer=dreamer, mask=m)
    assert np.array_equal(img[:, :W // 2], first[:, :W // 2])
    # a zoom loop with a still mask (array): frame 0 keeps the start image where the mask is 0
    zoom_loop(os.path.join(src, "f001.png"), str(tmp_path / "z") + "/", zoom=ZoomSettings(frames=2, loop=False,
              max_side=None), dreamer=dreamer, mask=m, mask_settings=MaskSettings(invert=True))
    z0 = frames(tmp_path / "z")[0]
    assert np.array_equal(z0[:, W // 2:], first[:, W // 2:])  # inverted: the right half is kept
    assert np.abs(z0[:, :W // 2] - first[:, :W // 2]).mean() > 3
    # a segment (what a Ray worker renders) equals the plain render's frames
    video = VideoSettings(carry_anchor=0)
    whole = str(tmp_path / "whole") + "/"
    dream_video(src, whole, video=video, dreamer=dreamer, mask=m)
    render_segment(src, str(tmp_path / "seg.dreamvid"), 1, 3, warmup=1, video=video, dreamer=dreamer, mask=m)
    seg = Checkpoint.open_finished(str(tmp_path / "seg.dreamvid"))
    try:
        for k, w in enumerate(frames(whole)[1:3]):
            assert np.array_equal(seg.load(k).astype(np.int16), w)
    finally:
        seg.close()


def test_mask_is_part_of_the_checkpoint(tmp_path, dreamer):
    src = png_frames(tmp_path / "in", n=3)
    a, b = half_mask(tmp_path / "a.png"), half_mask(tmp_path / "b.png", right=False)
    out = str(tmp_path / "out") + "/"
    run = RunOptions(keep_frames=True)
    dream_video(src, out, dreamer=dreamer, mask=a, run=run)
    with pytest.raises(DreamvidError, match="mask"):
        dream_video(src, out, dreamer=dreamer, mask=b, run=run)
    with pytest.raises(DreamvidError, match="mask"):
        dream_video(src, out, dreamer=dreamer, mask=a, mask_settings=MaskSettings(feather=2), run=run)


def test_mask_resized_and_settings_checked(tmp_path):
    big = half_mask(tmp_path / "big.png", w=2 * W, h=2 * H)
    fm = FrameMask(big, MaskSettings(strength=0.5), (W, H))
    m = fm.at(0, (H, W))
    assert m.shape == (H, W) and m[:, :W // 2 - 1].max() == pytest.approx(0.5) and m[:, W // 2 + 1:].min() == 1.0
    with pytest.raises(SettingError, match="mask_feather"):
        MaskSettings(feather=-1).validate()
    with pytest.raises(SettingError, match="mask_strength"):
        MaskSettings(strength=2).validate()


# ------------------------------------------------------------------------------ bad input: one line

def _err_line(capfd):
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dreamvid: error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("case", ["not_media", "too_few", "wrong_size", "video_count", "no_mask"])
def test_bad_masks_are_one_line_and_overwrite_nothing(tmp_path, capfd, case):
    src = make_video(tmp_path, size=f"{W}x{H}", frames=4)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"old output")
    if case == "not_media":
        bad = tmp_path / "mask.txt"
        bad.write_text("this is not an image")
        args = ["--mask", str(bad)]
    elif case == "too_few":
        os.makedirs(tmp_path / "masks")
        for k in range(2):
            half_mask(tmp_path / "masks" / f"m{k}.png")
        args = ["--mask", str(tmp_path / "masks")]
    elif case == "wrong_size":
        args = ["--mask", half_mask(tmp_path / "sq.png", w=50, h=50)]
    elif case == "video_count":
        args = ["--mask", make_video(tmp_path, name="m.mp4", size=f"{W}x{H}", frames=3)]
    else:
        args = ["--mask-feather", "3"]
    assert main([src, "-o", str(out), *args, *BASE]) == 2
    err = _err_line(capfd)
    assert {"not_media": "not an image, a video", "too_few": "has 2 frames", "wrong_size": "aspect ratio",
            "video_count": "has 3 frames", "no_mask": "add --mask"}[case] in err
    assert out.read_bytes() == b"old output"
    assert sorted(os.listdir(tmp_path)) == sorted(set(os.listdir(tmp_path)) - {"out.mp4.dreamvid"})
    assert not os.path.exists(str(out) + ".dreamvid")


def test_zoom_refuses_a_mask_video(tmp_path, capfd):
    img = tmp_path / "start.png"
    write_image(str(img), np.full((H, W, 3), 128, np.uint8))
    masks = make_video(tmp_path, name="m.mp4", size=f"{W}x{H}", frames=3)
    assert main(["zoom", str(img), "-o", str(tmp_path / "z.gif"), "--mask", masks, *BASE]) == 2
    assert "still mask" in _err_line(capfd)
