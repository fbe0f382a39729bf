"""A failed run leaves nothing behind: not its output, nor the folders it created for it.

Folders that existed before are never removed, nor folders holding anything else; a checkpoint
with finished frames stays (it is how the run resumes).
"""

import os

import numpy as np
import pytest

from dreamvid.__main__ import main
from dreamvid.core.atomic import make_dirs, remove_empty_dirs, remove_stale_temporaries, tmp_name
from dreamvid.errors import DreamvidError
from dreamvid.io import images as images_module
from dreamvid.io.images import write_image
from dreamvid.io.sinks import FfmpegSink, open_sink
from dreamvid.store.checkpoint import Checkpoint

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
PHOTO = os.path.join(SAMPLES, "coffee.jpg")
VIDEO = os.path.join(SAMPLES, "bunny.mp4")
FRAME = np.full((32, 48, 3), 99, np.uint8)


def tree(root):
    """Every path under `root`, relative, sorted."""
    out = []
    for folder, dirs, files in os.walk(root):
        out += [os.path.relpath(os.path.join(folder, n), root) for n in dirs + files]
    return sorted(out)


def test_make_dirs_reports_what_it_made(tmp_path):
    made = make_dirs(str(tmp_path / "a" / "b" / "c"))
    assert made == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c")]
    assert make_dirs(str(tmp_path / "a" / "b")) == []
    (tmp_path / "a" / "keep.txt").write_text("someone else's")
    remove_empty_dirs(made)
    assert tree(tmp_path) == ["a", "a/keep.txt"]  # stops at the first folder that holds something


def test_stale_temporaries_of_dead_writers_go_live_ones_stay(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out.mp4"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no longer runs: a writer killed with -9 mid-join
    (tmp_path / f".out.mp4.tmp-{dead.pid}.txt").write_text("file 'chunk_000000.mp4'")
    (tmp_path / f".out.mp4.tmp-{dead.pid}.mp4").write_bytes(b"half")
    os.makedirs(tmp_path / f".out.mp4.tmp-{dead.pid}")  # a folder output's temporary
    live = tmp_name(str(out), ".mp4")  # this process's: in use
    open(live, "wb").close()
    (tmp_path / f".other.mp4.tmp-{dead.pid}.mp4").write_bytes(b"not ours")
    removed = remove_stale_temporaries(str(out))
    assert len(removed) == 3
    assert tree(tmp_path) == sorted([os.path.basename(live), f".other.mp4.tmp-{dead.pid}.mp4"])


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "frames/"])
def test_aborted_sink_removes_the_folders_it_made(tmp_path, name):
    (tmp_path / "existing").mkdir()
    path = os.path.join(str(tmp_path), "existing", "new", "deeper", name)
    with pytest.raises(RuntimeError):
        with open_sink(path, 10, 48, 32) as sink:
            sink.write(FRAME)
            raise RuntimeError("the render failed")
    assert tree(tmp_path) == ["existing"]  # the folder that was there stays


def test_failed_encode_removes_the_folders_it_made(tmp_path, monkeypatch):
    def fail(self):
        raise DreamvidError("ffmpeg failed")
    monkeypatch.setattr(FfmpegSink, "_finish", fail)
    sink = open_sink(str(tmp_path / "new" / "out.mp4"), 10, 48, 32)
    sink.write(FRAME)
    with pytest.raises(DreamvidError):
        sink.close()
    assert tree(tmp_path) == []


def test_published_output_keeps_its_folders(tmp_path):
    with open_sink(str(tmp_path / "new" / "out.gif"), 10, 48, 32) as sink:
        sink.write(FRAME)
    assert tree(tmp_path) == ["new", "new/out.gif"]


def test_failed_image_write_removes_the_folders_it_made(tmp_path, monkeypatch):
    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(images_module, "atomic_write", full_disk)
    with pytest.raises(OSError):
        write_image(str(tmp_path / "new" / "deeper" / "out.png"), FRAME)
    assert tree(tmp_path) == []


def test_checkpoint_without_frames_is_removed_with_its_folders(tmp_path):
    folder = str(tmp_path / "ck" / "a" / "out.mp4.dreamvid")
    with pytest.raises(RuntimeError):
        with Checkpoint(folder, {"x": 1}, 3) as ckpt:
            ckpt.open()
            raise RuntimeError("the first frame failed")
    assert tree(tmp_path) == []


def test_checkpoint_with_frames_is_kept(tmp_path):
    folder = str(tmp_path / "ck" / "out.mp4.dreamvid")
    with pytest.raises(RuntimeError):
        with Checkpoint(folder, {"x": 1}, 3) as ckpt:
            ckpt.open()
            ckpt.save(0, FRAME)
            raise RuntimeError("the second frame failed")
    assert "ck/out.mp4.dreamvid/frame_000000.png" in tree(tmp_path)


def test_removed_checkpoint_takes_its_new_parents(tmp_path):
    """After a successful encode the checkpoint goes, and so do the --checkpoint-dir folders made for it."""
    (tmp_path / "kept").mkdir()
    folder = str(tmp_path / "kept" / "new" / "out.mp4.dreamvid")
    with Checkpoint(folder, {"x": 1}, 1) as ckpt:
        ckpt.open()
        ckpt.save(0, FRAME)
    ckpt.remove()
    assert tree(tmp_path) == ["kept"]


def test_checkpoint_in_an_existing_folder_is_not_removed_on_failure(tmp_path):
    """A checkpoint folder this run did not create (an earlier run's) is left as it was."""
    folder = tmp_path / "out.mp4.dreamvid"
    folder.mkdir()
    with pytest.raises(RuntimeError):
        with Checkpoint(str(folder), {"x": 1}, 3) as ckpt:
            ckpt.open()
            raise RuntimeError("failed")
    assert folder.is_dir()


# ------------------------------------------------------------------------------ end to end (CLI)

TINY = ["--max-side", "96", "--iterations", "1", "--octaves", "1", "--layers", "block3", "--device", "cpu", "-q"]


def test_cli_failed_image_leaves_no_folder(tmp_path, capsys):
    assert main([PHOTO, "-o", str(tmp_path / "new" / "deeper" / "out.png"), "--layers", "nosuchlayer", "-q"]) == 2
    assert "unknown layer 'nosuchlayer'" in capsys.readouterr().err
    assert tree(tmp_path) == []


def test_cli_video_failing_before_any_frame_leaves_nothing(tmp_path, capsys):
    """Output and --checkpoint-dir folders are new; the dream fails (image too small for the layer)."""
    args = [VIDEO, "-o", str(tmp_path / "new" / "deeper" / "out.mp4"), "--checkpoint-dir", str(tmp_path / "ck" / "a"),
            "--max-side", "40", "--iterations", "1", "--octaves", "1", "--layers", "block13", "--end", "2",
            "--device", "cpu", "-q"]
    assert main(args) == 2
    assert "too small" in capsys.readouterr().err
    assert tree(tmp_path) == []


def test_cli_failed_encode_keeps_frames_not_output_folders(tmp_path, capsys, monkeypatch):
    """Encoding fails: the dreamed frames stay in the checkpoint (to encode on the rerun), the
    output's new folders go."""
    def fail(self):
        raise DreamvidError("ffmpeg failed writing it")
    monkeypatch.setattr(FfmpegSink, "_finish", fail)
    args = [VIDEO, "-o", str(tmp_path / "new" / "deeper" / "out.mp4"), "--checkpoint-dir", str(tmp_path / "ck"),
            "--end", "2", *TINY]
    assert main(args) == 2
    assert "ffmpeg failed writing it" in capsys.readouterr().err
    left = tree(tmp_path)
    assert not any(p.startswith("new") for p in left), left
    assert "ck/out.mp4.dreamvid/frame_000001.png" in left
