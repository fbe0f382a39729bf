"""The preview sheet: chosen frames × presets, each cell the first-frame dream of its frame."""

import os

import numpy as np
import pytest

from conftest import make_video
from dreamvid.__main__ import main
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import VideoSettings
from dreamvid.io.images import read_image
from dreamvid.io.sources import open_source
from dreamvid.pipeline.preview import preview_frames, preview_sheet
from dreamvid.pipeline.video import dream_video

TINY = dict(iterations=1, octaves=1)


def test_sheet_cells_are_first_frame_dreams(tmp_path):
    src = make_video(tmp_path, size="96x72", frames=9)
    presets = {name: settings_from_preset(name, **TINY) for name in ("dreamy", "lite-texture")}
    video = VideoSettings(max_side=64)
    sheet = preview_sheet(src, presets, video, frames=[0, 4, 8])
    assert [(c.frame, c.preset) for c in sheet.cells] == [(f, p) for p in presets for f in (0, 4, 8)]
    assert sheet.image.dtype == np.uint8 and sheet.image.ndim == 3
    for c in sheet.cells:
        assert c.label[:2] == [f"frame {c.frame}", c.preset]
        assert any(line.startswith("layers=") for line in c.label)  # the presets differ in their layers
        x, y, w, h = c.box
        assert (w, h) == (64, 48) and np.array_equal(sheet.image[y:y + h, x:x + w], c.image)
        assert sheet.image[y - 14:y, x:x + w].max() > 200  # label text drawn above the cell
    # each cell = the first frame of a render that starts at that frame
    for c in (sheet.cells[1], sheet.cells[5]):
        out = str(tmp_path / f"r{c.frame}{c.preset}") + "/"
        dream_video(src, out, presets[c.preset], VideoSettings(start=c.frame, end=c.frame + 1, max_side=64))
        assert np.array_equal(next(iter(open_source(out).frames())), c.image)


def test_preview_cli_writes_the_sheet(tmp_path, capfd):
    src = make_video(tmp_path, size="96x72", frames=6)
    out = tmp_path / "sheet.png"
    assert main(["preview", src, "-o", str(out), "--count", "2", "--run-up", "1", "--max-side", "64",
                 "--iterations", "1", "--octaves", "1", "--device", "cpu", "--quiet"]) == 0
    sheet = read_image(str(out))
    assert sheet.shape[1] == 3 * 4 + 2 * 64  # two cells side by side, gaps of 4 px
    assert main(["preview", src, "-o", str(tmp_path / "x.png"), "--frames", "0,99", "--quiet"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--frames" in err and "99" in err
    assert not os.path.exists(tmp_path / "x.png")


def test_preview_frames():
    assert preview_frames(0, 241, count=3) == [0, 120, 240]
    assert preview_frames(10, 12, count=5) == [10, 11]
    assert preview_frames(0, 5, frames=[4, 0]) == [4, 0]
