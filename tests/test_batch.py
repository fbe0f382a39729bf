"""Batches: several inputs into one folder, model loaded once, one checkpoint per file, a failing
file reported and skipped over, a rerun that resumes file by file (pipeline/batch.py, the CLI)."""

import os
import threading

import numpy as np
import pytest

import dreamvid.pipeline.batch as batch_module
from conftest import make_video
from dreamvid.__main__ import main
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import RunOptions, VideoSettings
from dreamvid.engine.dreamer import Dreamer
from dreamvid.errors import Cancelled
from dreamvid.io.sources import open_source
from dreamvid.pipeline.batch import batch_inputs, dream_batch

TINY = ["--iterations", "1", "--octaves", "1", "--device", "cpu", "--quiet", "--max-side", "64"]


def clips(tmp_path, broken=True):
    """clips/a.mp4, clips/b.mp4 (3 frames each) and clips/broken.mp4 (not a video)."""
    folder = tmp_path / "clips"
    folder.mkdir()
    a = make_video(folder, name="a.mp4", frames=3)
    b = make_video(folder, name="b.mp4", frames=3)
    out = [a, b]
    if broken:
        bad = folder / "broken.mp4"
        bad.write_bytes(b"\x00\x01 not a video at all" * 50)
        out.insert(1, str(bad))
    return out


def counting(monkeypatch):
    """Count Dreamer builds and dreamed frames."""
    counts = {"built": 0, "dreamed": 0}
    init, call = Dreamer.__init__, Dreamer.dream_tensor

    def counted_init(self, *a, **kw):
        counts["built"] += 1
        init(self, *a, **kw)

    def counted_call(self, *a, **kw):
        counts["dreamed"] += 1
        return call(self, *a, **kw)
    monkeypatch.setattr(Dreamer, "__init__", counted_init)
    monkeypatch.setattr(Dreamer, "dream_tensor", counted_call)  # images and videos both end there
    return counts


def test_batch_of_three_with_a_broken_file(tmp_path, capfd, monkeypatch):
    files = clips(tmp_path)
    out = tmp_path / "dreamed"
    counts = counting(monkeypatch)
    assert main([*files, "-o", f"{out}/", *TINY]) == 2
    err = capfd.readouterr().err
    assert sorted(os.listdir(out)) == [".dreamvid-batch.json", "a.mp4", "b.mp4"]  # no checkpoints left
    for name in ("a.mp4", "b.mp4"):
        assert open_source(str(out / name)).num_frames == 3
    assert counts == {"built": 1, "dreamed": 6}  # the model loaded once
    assert "file 2 of 3" in err and "2 done, 0 resumed, 0 already done before, 1 failed" in err
    failed = [line for line in err.splitlines() if line.startswith("dreamvid: failed:")]
    assert len(failed) == 1 and "broken.mp4" in failed[0]
    assert "Traceback" not in err
    mtimes = {n: os.stat(out / n).st_mtime_ns for n in ("a.mp4", "b.mp4")}
    # again: the finished files are not redone, the broken one still fails
    counts.update(built=0, dreamed=0)
    assert main([*files, "-o", str(out), *TINY]) == 2
    err = capfd.readouterr().err
    assert "0 done, 0 resumed, 2 already done before, 1 failed" in err
    assert counts["dreamed"] == 0
    assert {n: os.stat(out / n).st_mtime_ns for n in ("a.mp4", "b.mp4")} == mtimes
    # a changed setting redoes them; all succeed: exit 0
    assert main([files[0], files[2], "-o", str(out), *TINY, "--seed", "3"]) == 0
    assert "2 done" in capfd.readouterr().err


def test_stopped_batch_resumes_file_by_file(tmp_path, monkeypatch):
    a, b = clips(tmp_path, broken=False)
    out = str(tmp_path / "dreamed")
    dreamer = Dreamer(settings_from_preset(None, iterations=1, octaves=1), "cpu")
    stop = threading.Event()
    seen = []

    def on_event(e):
        seen.append(e.kind)
        if e.kind == "frame" and e.index == 0 and seen.count("file") == 2:
            stop.set()  # in b, after its first frame
    video, run = VideoSettings(max_side=64), RunOptions(device="cpu")
    with pytest.raises(Cancelled):
        dream_batch([a, b], out, video=video, run=run, dreamer=dreamer, on_event=on_event, cancel=stop)
    assert os.path.isfile(os.path.join(out, "a.mp4")) and os.path.isdir(os.path.join(out, "b.mp4.dreamvid"))
    counts = counting(monkeypatch)
    report = dream_batch([a, b], out, video=video, run=run, dreamer=dreamer)
    assert [f.status for f in report.files] == ["skipped", "resumed"] and report.ok
    assert counts["dreamed"] == 2  # only b's last two frames
    assert open_source(os.path.join(out, "b.mp4")).num_frames == 3


def test_batch_inputs_and_output_folder(tmp_path, capfd):
    a, b = clips(tmp_path, broken=False)
    folder = os.path.dirname(a)
    assert batch_inputs([folder]) == [a, b]  # a folder of videos
    assert batch_inputs([os.path.join(folder, "*.mp4")]) == [a, b]  # a glob of videos
    assert batch_inputs([a]) is None  # one video: a plain render
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "f1.png").write_bytes(b"")
    assert batch_inputs([str(frames)]) is None  # a frame folder stays one input
    # -o an existing file: one line, nothing overwritten
    target = tmp_path / "taken.mp4"
    target.write_bytes(b"keep me")
    assert main([a, b, "-o", str(target), *TINY]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert target.read_bytes() == b"keep me"
    assert main([folder, "-o", str(tmp_path / "new.mp4"), *TINY]) == 2
    assert "looks like a file name" in capfd.readouterr().err
    assert not os.path.exists(tmp_path / "new.mp4")
    with pytest.raises(Exception, match="would both be written"):
        batch_module.batch_outputs([a, os.path.join(str(tmp_path), "a.mp4")], str(tmp_path / "o"))
