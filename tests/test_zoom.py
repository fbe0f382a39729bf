"""Zoom loops: the affine step, the loop plan, the seam metric, and tiny real renders."""

import os
from fractions import Fraction

import numpy as np
import pytest

from dreamvid import Dreamer, RunOptions, ZoomSettings, settings_from_preset
from dreamvid.__main__ import main
from dreamvid.errors import DreamvidError, Interrupted
from dreamvid.core.colour import match_colour, parse_colour
from dreamvid.core.motion import affine_matrix, zoom_step
from dreamvid.pipeline.zoom import fade_weight, loop_plan, read_loop, start_image, zoom_loop
from dreamvid.temporal.metrics import loop_stats

SMALL = settings_from_preset(None, iterations=2, octaves=1)
TINY = ZoomSettings(frames=4, size=(72, 64), frame_octaves=1, frame_iterations=1)
QUIET = RunOptions(device="cpu")


@pytest.fixture(scope="module")
def dreamer():
    return Dreamer(SMALL, "cpu")


def folder(tmp_path, name):
    return str(tmp_path / name) + "/"


def frames_of(path):
    return list(read_loop(str(path)))


def square(size=101, side=21):
    img = np.zeros((size, size, 3), np.float32)
    a = (size - side) // 2
    img[a:a + side, a:a + side] = 1.0
    return img


def bright_box(img):
    """(side_x, side_y, centre_x, centre_y) of the pixels above 0.5."""
    ys, xs = np.nonzero(img[..., 0] > 0.5)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1, xs.mean(), ys.mean()


# ------------------------------------------------------------------------------- the motion

@pytest.mark.parametrize("zoom", [1.25, 0.8])
def test_zoom_scales_a_centred_square_about_the_centre(zoom):
    img = square(side=41)
    area0 = (img[..., 0] > 0.5).sum()
    out = zoom_step(img, zoom)
    area = (out[..., 0] > 0.5).sum()
    assert area / area0 == pytest.approx(zoom ** 2, rel=0.06)  # >1 zooms in: content grows
    w, h, cx, cy = bright_box(out)
    assert (cx, cy) == (pytest.approx(50, abs=0.01), pytest.approx(50, abs=0.01))


def test_zoom_compounds_per_frame():
    img = square(size=201, side=21)
    out = img
    for _ in range(5):
        out = zoom_step(out, 1.1)
    side = bright_box(out)[0]
    assert side == pytest.approx(21 * 1.1 ** 5, abs=1.5)


def test_rotation_is_counter_clockwise_and_translation_moves_content():
    img = np.zeros((101, 101, 3), np.float32)
    img[48:53, 78:83] = 1.0  # a dot 30 px right of the centre
    _, _, cx, cy = bright_box(zoom_step(img, 1.0, rotate=90))
    assert (cx, cy) == (pytest.approx(50, abs=0.5), pytest.approx(20, abs=0.5))  # now above it
    _, _, cx, cy = bright_box(zoom_step(img, 1.0, translate=(-7, 5)))
    assert (cx, cy) == (pytest.approx(73, abs=0.5), pytest.approx(55, abs=0.5))


def test_affine_matrix_is_the_documented_one():
    m = affine_matrix(11, 21, 2.0)
    centre = np.array([5.0, 10.0, 1.0])
    assert m @ centre == pytest.approx([5.0, 10.0])  # the centre stays put
    assert m @ np.array([6.0, 10.0, 1.0]) == pytest.approx([7.0, 10.0])


def test_zooming_out_shows_no_black_border():
    img = np.full((40, 60, 3), 200, np.uint8)
    out = zoom_step(img, 0.5, rotate=30, translate=(10, -10))
    assert out.dtype == np.float32 and out.shape == (40, 60, 3)
    assert out.min() > 0.7


# ------------------------------------------------------------------------------- pieces

def test_parse_colour():
    assert parse_colour("#203040") == (0x20, 0x30, 0x40)
    assert parse_colour("#234") == (0x22, 0x33, 0x44)
    assert parse_colour("photo.jpg") is None
    for bad in ("#12345", "#ggg", "#", "#1234567"):
        with pytest.raises(DreamvidError):
            parse_colour(bad)


def test_start_images():
    z = ZoomSettings(size=(80, 48))
    noise, ident = start_image("noise", SMALL, z)
    assert noise.shape == (48, 80, 3) and noise.dtype == np.float32 and ident == {"noise": True}
    assert 0.35 < noise.mean() < 0.65 and noise.std() > 0.05
    again, _ = start_image("noise", SMALL, z)
    other, _ = start_image("noise", SMALL.replace(seed=1), z)
    assert np.array_equal(noise, again) and not np.array_equal(noise, other)
    flat, ident = start_image("#234", SMALL, z)
    assert ident == {"colour": "#223344"}
    assert flat.mean(axis=(0, 1)) == pytest.approx(np.array([0x22, 0x33, 0x44]) / 255, abs=0.01)


def test_match_colour_moves_stats_part_way():
    rng = np.random.default_rng(0)
    x = (rng.random((30, 30, 3)) * 0.2 + 0.1).astype(np.float32)
    mean, std = np.array([0.5, 0.5, 0.5]), x.reshape(-1, 3).std(0)
    half = match_colour(x, mean, std, 0.5)
    assert half.reshape(-1, 3).mean(0) == pytest.approx((x.reshape(-1, 3).mean(0) + 0.5) / 2, abs=1e-3)
    assert match_colour(x, mean, std, 0.0) is x


def test_loop_plan():
    p = loop_plan(10, loop=True)
    assert (p.frames, p.fade, p.rendered) == (10, 2, 12)
    assert p.order == [10, 11, 2, 3, 4, 5, 6, 7, 8, 9]
    assert loop_plan(10, loop=False).order == list(range(10))
    assert loop_plan(1).order == [0]
    assert loop_plan(3, fade=10).fade == 2  # at most N - 1


def test_fade_weight_makes_an_even_cross_fade():
    assert fade_weight(0.2, 0.2, 1, 4) == pytest.approx(0.25)  # first step of a linear fade
    assert fade_weight(0.2, 0.2, 2, 4) == pytest.approx(0.5)
    # the dream pushed the frames apart (0.3 instead of 0.15): pull harder to stay on the ramp
    assert fade_weight(0.3, 0.2, 2, 4) == pytest.approx(1 - 0.1 / 0.3)
    assert fade_weight(0.01, 0.2, 2, 4) == 0.0  # already closer than the ramp asks
    assert fade_weight(0.2, 0.2, 4, 4) == 1.0


def test_loop_stats_on_synthetic_loops():
    # A shade that rises and falls back: every step is 10 levels, the seam too.
    levels = [100, 110, 120, 130, 120, 110]
    frames = [np.full((8, 8, 3), v, np.uint8) for v in levels]
    s = loop_stats(frames)
    assert s.frames == 6 and s.seam_ratio == pytest.approx(1.0) and s.worst_step_ratio == pytest.approx(1.0)
    assert s.drift_percent == pytest.approx(30.0)  # frame 3 vs frame 0
    ramp = [np.full((8, 8, 3), 100 + 10 * i, np.uint8) for i in range(6)]
    assert loop_stats(ramp).seam_ratio == pytest.approx(5.0)  # a jump back by 5 steps


# ------------------------------------------------------------------------------- renders

def test_gif_has_the_frame_count_and_loops_forever(tmp_path, dreamer):
    out = tmp_path / "loop.gif"
    assert zoom_loop("noise", str(out), zoom=TINY, run=QUIET, dreamer=dreamer) == str(out)
    data = out.read_bytes()
    assert b"NETSCAPE2.0" in data
    frames = frames_of(out)
    assert len(frames) == TINY.frames and frames[0].shape == (64, 72, 3)
    assert not os.path.exists(str(out) + ".dreamvid")  # checkpoint removed after the encode


def test_seamless_loop_and_steady_brightness(tmp_path, dreamer):
    out = folder(tmp_path, "loop")
    zoom_loop("#8a6040", str(out), zoom=TINY.replace(frames=8), run=QUIET, dreamer=dreamer)
    stats = loop_stats(frames_of(out))
    assert stats.frames == 8
    assert stats.seam_ratio <= 1.5, stats
    assert stats.worst_step_ratio <= 3.0, stats
    assert abs(stats.drift_percent) <= 5.0, stats


def test_open_sequence_is_the_plain_chain(tmp_path, dreamer):
    out = folder(tmp_path, "open")
    zoom_loop("noise", str(out), zoom=TINY.replace(frames=4, loop=False), run=RunOptions(
        device="cpu", keep_frames=True), dreamer=dreamer)
    frames = frames_of(out)
    ckpt = out.rstrip("/") + ".dreamvid"
    saved = sorted(f for f in os.listdir(ckpt) if f.startswith("frame_"))
    assert len(frames) == 4 and len(saved) == 4  # no extra frames rendered for a fade
    # Frames keep zooming in: each frame is closer to the zoomed previous one than to itself.
    a, b = frames[1].astype(np.float32) / 255, frames[2].astype(np.float32) / 255
    assert np.abs(zoom_step(a, TINY.zoom) - b).mean() < np.abs(a - b).mean()


def test_fps_changes_no_pixel(tmp_path, dreamer):
    z = TINY.replace(frames=3)
    a, b = folder(tmp_path, "a"), folder(tmp_path, "b")
    zoom_loop("noise", str(a), zoom=z.replace(fps=Fraction(6)), run=QUIET, dreamer=dreamer)
    zoom_loop("noise", str(b), zoom=z.replace(fps=Fraction(50)), run=QUIET, dreamer=dreamer)
    fa, fb = frames_of(a), frames_of(b)
    assert len(fa) == len(fb) == 3
    assert all(np.array_equal(x, y) for x, y in zip(fa, fb))


def test_resume_is_bit_identical(tmp_path, dreamer, capsys):
    z = TINY.replace(frames=4, fade=3)  # rendered: chain 0..3, cross-fade 4..6
    out = folder(tmp_path, "r")
    keep = RunOptions(device="cpu", keep_frames=True)
    zoom_loop("noise", out, zoom=z, run=keep, dreamer=dreamer)
    first = frames_of(out)
    ckpt = out.rstrip("/") + ".dreamvid"
    for lost, message in ((6, "resuming at frame 6 of 7"),   # inside the fade: its start is reloaded
                          (2, "resuming at frame 2 of 7")):  # on the chain: 2.. are all redone
        os.remove(os.path.join(ckpt, f"frame_{lost:06d}.png"))
        events = []
        zoom_loop("noise", out, zoom=z, run=keep, dreamer=dreamer, on_event=events.append)
        assert [e.text for e in events if e.kind == "message"] == [message]
        assert capsys.readouterr().err == ""  # the library never prints
        again = frames_of(out)
        assert len(again) == 4 and all(np.array_equal(x, y) for x, y in zip(first, again))


def test_ctrl_c_stops_cleanly_and_the_rerun_finishes(tmp_path, dreamer):
    calls = []

    class Stopping:
        settings, identity = dreamer.settings, dreamer.identity

        def __call__(self, *args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return dreamer(*args, **kwargs)

    z = TINY.replace(frames=4)
    out = tmp_path / "c.gif"
    with pytest.raises(Interrupted, match="stopped at frame 2 of 5") as e:
        zoom_loop("noise", str(out), zoom=z, run=QUIET, dreamer=Stopping())
    assert e.value.exit_code == 130 and not out.exists()
    zoom_loop("noise", str(out), zoom=z, run=QUIET, dreamer=dreamer)
    assert len(frames_of(out)) == 4


# ------------------------------------------------------------------------------- the CLI

@pytest.mark.parametrize("args, words", [
    (["#12345"], "bad colour"),
    (["noise", "--frames", "0"], "--frames"),
    (["noise", "--zoom", "0"], "--zoom"),
    (["noise", "--zoom", "-1.2"], "--zoom"),
    (["missing.jpg"], "not found"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, args, words):
    out = tmp_path / "x.gif"
    assert main(["zoom", *args, "-o", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and words in err, err
    assert not out.exists()


def test_cli_renders_a_tiny_loop(tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    rc = main(["zoom", "#234", "-o", str(out), "--frames", "3", "--size", "64x48", "--iterations", "1",
               "--octaves", "1", "--frame-iterations", "1", "--frame-octaves", "1", "--quiet",
               "--device", "cpu"])
    assert rc == 0
    frames = frames_of(out)
    assert len(frames) == 3 and frames[0].shape == (48, 64, 3)
