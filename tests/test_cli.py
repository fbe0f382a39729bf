"""The CLI for single images and the information flags; bad input → one line, exit 2, nothing left."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dreamvid.__main__ import main
from dreamvid.io.images import read_image

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
PHOTO = os.path.join(SAMPLES, "coffee.jpg")
VIDEO = os.path.join(SAMPLES, "bunny.mp4")
QUICK = ["--max-side", "96", "--iterations", "2", "--octaves", "2", "--quiet"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *words):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dreamvid: error: ")
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0]


def test_dream_photo_png_and_jpeg(tmp_path, capsys):
    out_png = tmp_path / "dream.png"
    code, _, err = run(capsys, PHOTO, "-o", out_png, *QUICK)
    assert code == 0, err
    dreamed = read_image(str(out_png))
    original = read_image(PHOTO)
    assert max(dreamed.shape[:2]) == 96
    import cv2
    small = cv2.resize(original, dreamed.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(dreamed.astype(float) - small).mean() > 3  # visibly changed
    out_jpg = tmp_path / "dream.jpg"
    assert run(capsys, PHOTO, "-o", out_jpg, *QUICK)[0] == 0
    assert read_image(str(out_jpg)).shape == dreamed.shape
    assert sorted(os.listdir(tmp_path)) == ["dream.jpg", "dream.png"]  # no temp files left


def test_library_dream_image_matches_cli(tmp_path, capsys):
    from dreamvid import dream_image, settings_from_preset
    run(capsys, PHOTO, "-o", tmp_path / "cli.png", *QUICK, "--seed", "3")
    result = dream_image(PHOTO, str(tmp_path / "lib.png"),
                         settings_from_preset(None, iterations=2, octaves=2, seed=3), max_side=96)
    assert np.array_equal(result, read_image(str(tmp_path / "cli.png")))


def test_list_flags(capsys):
    code, out, _ = run(capsys, "--list-models")
    assert code == 0 and {"inception_v3", "googlenet", "vgg16", "efficientnet_lite0"} <= {
        line.split()[0] for line in out.splitlines()}
    code, out, _ = run(capsys, "--list-presets")
    names = {line.split()[0] for line in out.splitlines()}
    assert {"seals", "spaniel", "whisper", "polar-bears", "gentle", "intense", "wild", "wild-deep",
            "ocean", "classic", "dreamy"} <= names
    code, out, _ = run(capsys, "--list-layers", "inception_v3")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert "768 channels" in rows["Mixed_6b"] and "mixed4" in rows["Mixed_6b"]


@pytest.mark.parametrize("args,words", [
    (["missing.jpg", "-o", "{out}"], ["missing.jpg"]),
    (["{garbage}", "-o", "{out}"], ["garbage.jpg"]),
    ([PHOTO, "-o", "{out}", "--preset", "nope"], ["unknown preset 'nope'"]),
    ([PHOTO, "-o", "{out}", "--layers", "mixed99"], ["unknown layer 'mixed99'"]),
    ([PHOTO, "-o", "{out}", "--model", "alexnet"], ["unknown model 'alexnet'"]),
    ([PHOTO, "-o", "{out}", "--channel", "block9:9999"], ["out of range"]),
    ([PHOTO, "-o", "{out}", "--step", "-1"], ["--step"]),
    ([PHOTO, "-o", "{out}", "--octaves", "x"], ["--octaves"]),
    ([PHOTO, "-o", "{out}", "--weights", "{missing_weights}"], ["weights file not found"]),
    ([PHOTO], ["-o OUTPUT"]),
    (["--list-layers", "resnet"], ["unknown model"]),
], ids=["missing", "unreadable", "preset", "layer", "model", "channel", "step", "octaves-type",
        "weights-file", "no-output", "list-layers"])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, args, words):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not a JPEG")
    out = tmp_path / "out.png"
    subst = {"{out}": str(out), "{garbage}": str(garbage), "{missing_weights}": str(tmp_path / "w.pth")}
    code, _, err = run(capsys, *[subst.get(a, a) for a in args])
    assert_one_line_error(code, err, *words)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["garbage.jpg"]


def test_weights_unavailable_offline(tmp_path, capsys, monkeypatch):
    """No cached ImageNet weights and no network: one line naming --weights and the offline model."""
    import torch
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))

    def offline(url, dst, *a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = tmp_path / "out.png"
    code, _, err = run(capsys, PHOTO, "-o", out, "--preset", "seals", "--quiet")
    assert_one_line_error(code, err, "--weights", "efficientnet_lite0")
    assert not out.exists()


def test_existing_output_untouched_on_failure(tmp_path, capsys):
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, PHOTO, "-o", out, "--layers", "nope")
    assert code == 2
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("ext,quality,words", [("mp4", "99", ["quality 99", "mp4", "0", "51"]),
                                                ("webm", "-1", ["quality -1", "webm", "0", "63"])])
def test_video_quality_out_of_range_before_any_frame(tmp_path, capsys, ext, quality, words):
    """The encoder's CRF range is checked before the render starts: no frame dreamed, no
    checkpoint left, an existing output untouched."""
    out = tmp_path / f"keep.{ext}"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, VIDEO, "-o", out, "--quality", quality, "--end", "3", "--quiet")
    assert_one_line_error(code, err, *words)
    assert out.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == [f"keep.{ext}"]


def test_console_script_and_module_entry_points(tmp_path):
    """`python -m dreamvid` and the installed `dreamvid` script, as a user runs them."""
    proc = subprocess.run([sys.executable, "-m", "dreamvid", "missing.jpg", "-o", str(tmp_path / "x.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    script = shutil.which("dreamvid", path=os.path.dirname(sys.executable))
    if script:  # installed by pip (always, with the README's install command)
        proc = subprocess.run([script, "--list-presets"], capture_output=True, text=True)
        assert proc.returncode == 0 and "seals" in proc.stdout


def test_flow_max_side_flag_maps_zero_to_the_frames_own_size():
    from dreamvid.app.cli import _video_settings, build_main_parser
    from dreamvid.config.settings import VideoSettings
    video = os.path.join(SAMPLES, "bunny.mp4")
    parse = lambda *extra: _video_settings(build_main_parser().parse_args([video, "-o", "o.mp4", *extra]))  # noqa: E731
    assert parse().flow_max_side == VideoSettings().flow_max_side == 640
    assert parse("--flow-max-side", "0").flow_max_side is None
    assert parse("--flow-max-side", "320").flow_max_side == 320
