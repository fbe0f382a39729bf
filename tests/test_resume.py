"""Resumable renders: kill -9, Ctrl-C and SIGTERM mid-render, damaged frames, changed inputs and
settings, the lock, and where the checkpoint lives. Real renders with the offline weights.

A render here is tiny: a 96x64 testsrc video of 12 frames, dreamed at 64x43 with one octave and
one iteration on a shallow layer. Every "identical" below compares decoded output frames (a
folder of lossless PNGs) with an uninterrupted render of the same command, exactly.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_video
from dreamvid.__main__ import main
from dreamvid.store.checkpoint import Checkpoint, DamagedFrame, MANIFEST, checkpoint_folder, describe_differences, png_intact
from dreamvid.errors import DreamvidError
from dreamvid.config.settings import VideoSettings

FRAMES = 12
FLAGS = ["--max-side", "64", "--layers", "block3", "--iterations", "1", "--octaves", "1",
         "--device", "cpu", "-q"]


# ------------------------------------------------------------------------------- helpers

def frame_files(folder) -> list:
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.startswith("frame_") and n.endswith(".png"))


def read_frames(folder) -> list:
    return [cv2.imread(os.path.join(folder, n), cv2.IMREAD_UNCHANGED) for n in frame_files(folder)]


def assert_same_frames(folder, reference, count=FRAMES):
    got = read_frames(folder)
    assert len(got) == count, f"{folder} holds {len(got)} frames, expected {count}"
    for i, (a, b) in enumerate(zip(got, reference[:count])):
        assert a.shape == b.shape and np.array_equal(a, b), f"frame {i} differs from the uninterrupted render"


def cli(args, cwd, **kw) -> subprocess.Popen:
    """`python -m dreamvid ARGS` in `cwd` as a real process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DREAMVID_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "dreamvid", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def run_cli(args, cwd, timeout=240):
    p = cli(args, cwd)
    out, err = p.communicate(timeout=timeout)
    return p.returncode, err


def wait_for_frames(proc, folder, n, timeout=180):
    """Poll until `folder` holds at least `n` finished frames; fail if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while len(frame_files(folder)) < n:
        if proc.poll() is not None:
            pytest.fail(f"render ended (rc {proc.returncode}) before {n} frames: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {n} frames in {folder} after {timeout} s")
        time.sleep(0.05)


def run_main(args, capsys):
    rc = main(args)
    return rc, capsys.readouterr().err


def one_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]

# The seeded checkpoints hold every frame as PNG: these mp4 runs encode once at the end
# (tests/test_stream.py covers the streamed chunks).
END_ENCODE = ["--chunk-frames", "0"]


# ------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """The input video (one path for the whole module: checkpoints name it) and the uninterrupted
    render of it: its output frames and its kept checkpoint."""
    root = tmp_path_factory.mktemp("resume")
    video = make_video(root, "in.mp4", size="96x64", frames=FRAMES)
    rc, err = run_cli([video, "-o", "ref/", *FLAGS, "--keep-frames"], cwd=root)
    assert rc == 0, err
    ckpt = checkpoint_folder(str(root / "ref/"))
    assert len(frame_files(ckpt)) == FRAMES
    return {"root": root, "video": video, "ref": read_frames(root / "ref"), "ref_ckpt": ckpt}


def seed_checkpoint(media, output, frames=FRAMES) -> str:
    """Copy the reference's checkpoint (its first `frames` frames) to `output`'s place."""
    dst = checkpoint_folder(str(output))
    shutil.copytree(media["ref_ckpt"], dst)
    for n in frame_files(dst)[frames:]:
        os.remove(os.path.join(dst, n))
    return dst


# ------------------------------------------------------------------------------- real processes

@pytest.mark.slow
def test_kill_9_then_rerun_is_identical_and_the_lock_names_the_pid(media, tmp_path):
    args = [media["video"], "-o", "out/", *FLAGS]
    ckpt = checkpoint_folder(str(tmp_path / "out/"))
    first = cli(args, cwd=tmp_path)
    try:
        wait_for_frames(first, ckpt, 3)
        # Freeze it mid-render (deterministic), then a second process on the same output.
        first.send_signal(signal.SIGSTOP)
        rc, err = run_cli(args, cwd=tmp_path)
        assert rc == 2
        assert f"pid {first.pid}" in one_line(err) and "another dreamvid process" in err
        first.send_signal(signal.SIGCONT)
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    done = len(frame_files(ckpt))
    assert 3 <= done < FRAMES and not (tmp_path / "out").exists()

    rc, err = run_cli(args, cwd=tmp_path)
    assert rc == 0, err
    assert one_line(err) == f"dreamvid: resuming at frame {done} of {FRAMES}"
    assert_same_frames(tmp_path / "out", media["ref"])
    assert not os.path.exists(ckpt), "the checkpoint is removed after a successful encode"


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line_then_resumes_identically(media, tmp_path):
    keep = tmp_path / "keep"
    args = [media["video"], "-o", "out/", *FLAGS, "--checkpoint-dir", str(keep), "--keep-frames"]
    ckpt = checkpoint_folder(str(tmp_path / "out/"), str(keep))
    assert ckpt == str(keep / "out.dreamvid")
    p = cli(args, cwd=tmp_path)
    wait_for_frames(p, ckpt, 3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    line = one_line(err)
    assert line.startswith("dreamvid: stopped at frame ") and "run the same command again to resume" in line
    done = len(frame_files(ckpt))
    assert f"the {done} finished frames are kept in {ckpt}" in line
    assert not (tmp_path / "out.dreamvid").exists(), "--checkpoint-dir puts it elsewhere"

    rc, err = run_cli(args, cwd=tmp_path)
    assert rc == 0, err
    assert one_line(err) == f"dreamvid: resuming at frame {done} of {FRAMES}"
    assert_same_frames(tmp_path / "out", media["ref"])
    # --keep-frames: the checkpoint stays, and its frames are the uninterrupted run's too.
    assert_same_frames(ckpt, read_frames(media["ref_ckpt"]))


@pytest.mark.slow
def test_sigterm_stops_like_ctrl_c(media, tmp_path):
    p = cli([media["video"], "-o", "out/", *FLAGS], cwd=tmp_path)
    ckpt = checkpoint_folder(str(tmp_path / "out/"))
    wait_for_frames(p, ckpt, 2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert "run the same command again to resume" in one_line(err)
    ck = Checkpoint(ckpt, {}, FRAMES)  # consistent: every frame on disk is intact
    assert ck.done() == len(frame_files(ckpt)) >= 2


# ------------------------------------------------------------------------------- in-process CLI

def test_truncated_last_frame_is_redone(media, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = seed_checkpoint(media, tmp_path / "out/")
    last = os.path.join(ckpt, frame_files(ckpt)[-1])
    size = os.path.getsize(last)
    with open(last, "r+b") as f:
        f.truncate(size // 2)
    rc, err = run_main([media["video"], "-o", "out/", *FLAGS], capsys)
    assert rc == 0, err
    assert one_line(err) == f"dreamvid: resuming at frame {FRAMES - 1} of {FRAMES}"
    assert_same_frames(tmp_path / "out", media["ref"])
    assert not os.path.exists(ckpt)


def test_changed_setting_or_input_is_refused_and_fresh_starts_over(media, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = seed_checkpoint(media, tmp_path / "out/", frames=5)
    args = [media["video"], "-o", "out/", *FLAGS]

    rc, err = run_main([*args, "--blend", "0.5"], capsys)
    assert rc == 2
    line = one_line(err)
    assert f"blend was {VideoSettings.blend}, now 0.5" in line and "--fresh" in line

    rc, err = run_main([*args, "--iterations", "2", "--seed", "3"], capsys)
    assert rc == 2 and "iterations was 1, now 2" in err and "seed was 0, now 3" in err

    st = os.stat(media["video"])
    try:
        os.utime(media["video"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touch
        rc, err = run_main(args, capsys)
        assert rc == 2 and "input.mtime_ns was" in one_line(err)
    finally:
        os.utime(media["video"], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert len(frame_files(ckpt)) == 5, "a refusal leaves the checkpoint alone"

    rc, err = run_main([*args, "--end", "3", "--fresh"], capsys)
    assert rc == 0, err
    assert "resuming" not in err
    assert_same_frames(tmp_path / "out", media["ref"], count=3)
    assert not os.path.exists(ckpt)


def _must_not_dream(*a, **k):  # pragma: no cover
    raise AssertionError("dreamed a frame that was in the checkpoint")


def test_non_pixel_options_may_change_on_resume(media, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seed_checkpoint(media, tmp_path / "out.mp4", frames=FRAMES - 1)
    rc, err = run_main([media["video"], "-o", "out.mp4", *[f for f in FLAGS if f != "-q"], *END_ENCODE,
                        "--quality", "30", "--no-audio", "--keep-frames"], capsys)
    assert rc == 0, err
    assert f"dreamvid: resuming at frame {FRAMES - 1} of {FRAMES}" in err
    assert (tmp_path / "out.mp4").stat().st_size > 0
    assert len(frame_files(checkpoint_folder("out.mp4"))) == FRAMES


def test_failed_encode_keeps_the_checkpoint_and_the_rerun_only_encodes(media, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = seed_checkpoint(media, tmp_path / "out.mp4")
    real = __import__("imageio_ffmpeg").get_ffmpeg_exe()
    fake = tmp_path / "ffmpeg"  # the real ffmpeg, except that encoding raw frames fails
    fake.write_text(f'#!/bin/sh\ncase "$*" in *rawvideo*) echo "Simulated encoder failure" >&2; exit 1;; esac\n'
                    f'exec "{real}" "$@"\n')
    fake.chmod(0o755)
    import dreamvid.io.ffmpeg as ffmpeg_mod
    import dreamvid.io.sinks as sinks_mod
    for mod in (ffmpeg_mod, sinks_mod):
        monkeypatch.setattr(mod, "ffmpeg_exe", lambda: str(fake))
    monkeypatch.setattr("dreamvid.engine.dreamer.Dreamer.__call__", _must_not_dream)
    rc, err = run_main([media["video"], "-o", "out.mp4", *FLAGS, *END_ENCODE], capsys)
    assert rc == 2
    assert one_line(err.split("\n", 1)[1]).startswith("dreamvid: error: ffmpeg ")
    line = err.splitlines()[-1]
    assert "Simulated encoder failure" in line and f"kept in {ckpt}" in line
    assert len(frame_files(ckpt)) == FRAMES and not (tmp_path / "out.mp4").exists()

    for mod in (ffmpeg_mod, sinks_mod):
        monkeypatch.setattr(mod, "ffmpeg_exe", lambda: real)
    rc, err = run_main([media["video"], "-o", "out.mp4", *[f for f in FLAGS if f != "-q"], *END_ENCODE], capsys)
    assert rc == 0, err
    assert f"dreamvid: all {FRAMES} frames are in the checkpoint; encoding" in err
    assert (tmp_path / "out.mp4").stat().st_size > 0 and not os.path.exists(ckpt)


def test_ctrl_c_while_encoding_keeps_the_checkpoint(media, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = seed_checkpoint(media, tmp_path / "out.mp4")
    import dreamvid.io.sinks as media_mod
    real_write = media_mod.FfmpegSink._write
    calls = []

    def write(self, rgb):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        real_write(self, rgb)

    monkeypatch.setattr(media_mod.FfmpegSink, "_write", write)
    rc, err = run_main([media["video"], "-o", "out.mp4", *FLAGS, *END_ENCODE], capsys)
    assert rc == 130
    assert err.startswith(f"dreamvid: all {FRAMES} frames are in the checkpoint; encoding\n")
    line = one_line(err.split("\n", 1)[1])
    assert "stopped while encoding" in line and "run the same command again" in line
    assert len(frame_files(ckpt)) == FRAMES and not (tmp_path / "out.mp4").exists()
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n], "the half-encoded file is gone"


# ------------------------------------------------------------------------------- the Checkpoint itself

def _rgb(seed, h=24, w=32):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


IDENT = {"input": {"path": "/x.mp4", "mtime_ns": 1}, "dream": {"settings": {"blend": 0.7, "seed": 0}}}


def _filled(folder, n=6, total=8, ident=IDENT):
    with Checkpoint(str(folder), ident, total) as ck:
        assert ck.open() == 0
        for i in range(n):
            ck.save(i, _rgb(i))
    return str(folder)


def test_save_load_roundtrip_and_resume_count(tmp_path):
    folder = _filled(tmp_path / "c", n=3)
    with Checkpoint(folder, IDENT, 8) as ck:
        assert ck.open() == 3
        assert all(np.array_equal(ck.load(i), _rgb(i)) for i in range(3))
        assert ck.load(3) is None
        frames = list(Checkpoint.frames(ck, range(3)))
        assert len(frames) == 3


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage_after"])
def test_damaged_frame_is_detected_and_it_and_later_frames_redone(tmp_path, damage):
    folder = _filled(tmp_path / "c", n=6)
    path = os.path.join(folder, "frame_000003.png")
    data = bytearray(Path(path).read_bytes())
    if damage == "truncate":
        data = data[:len(data) - 20]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x10
    elif damage == "empty":
        data = b""
    else:
        data += b"\0" * 7
    assert not png_intact(bytes(data))
    Path(path).write_bytes(bytes(data))
    with Checkpoint(folder, IDENT, 8) as ck:
        assert ck.open() == 3
        assert frame_files(folder) == [f"frame_{i:06d}.png" for i in range(3)]
        with pytest.raises(DamagedFrame):
            list(ck.frames(range(4)))


def test_stale_temporaries_are_cleaned_on_open(tmp_path):
    folder = _filled(tmp_path / "c", n=2)
    for name in ("frame_000002.png.tmp-99999", "manifest.json.tmp-99999"):
        Path(folder, name).write_bytes(b"half")
    with Checkpoint(folder, IDENT, 8) as ck:
        assert ck.open() == 2
    assert not [n for n in os.listdir(folder) if ".tmp-" in n]


def test_unreadable_manifest_refuses_if_frames_exist_else_starts_over(tmp_path):
    folder = _filled(tmp_path / "c", n=2)
    Path(folder, MANIFEST).write_text('{"identity": {"inp')  # half-written
    with pytest.raises(DreamvidError, match="unreadable.*--fresh"):
        Checkpoint(folder, IDENT, 8).open()
    assert len(frame_files(folder)) == 2
    with Checkpoint(folder, IDENT, 8) as ck:
        assert ck.open(fresh=True) == 0
    assert frame_files(folder) == []
    Path(folder, MANIFEST).write_text("")
    with Checkpoint(folder, IDENT, 8) as ck:  # nothing to lose: just start
        assert ck.open() == 0


def test_different_identity_refused_unless_frameless_or_fresh(tmp_path):
    other = {**IDENT, "dream": {"settings": {"blend": 0.5, "seed": 0}}}
    folder = _filled(tmp_path / "c", n=2)
    with pytest.raises(DreamvidError, match=r"settings\.blend was 0\.7, now 0\.5.*--fresh"):
        Checkpoint(folder, other, 8).open()
    with pytest.raises(DreamvidError, match="frame count was 8, now 9"):
        Checkpoint(folder, IDENT, 9).open()
    empty = _filled(tmp_path / "e", n=0)
    with Checkpoint(empty, other, 8) as ck:  # a checkpoint without frames loses nothing
        assert ck.open() == 0


def test_describe_differences_is_readable():
    old = {"input": {"mtime_ns": 1_700_000_000_000_000_000, "path": "/a.mp4"},
           "dream": {"settings": {"layers": [["block8", 1.0]], "guide": None}},
           "runtime": {"device": "cpu"}}
    new = {"input": {"mtime_ns": 1_700_000_001_000_000_000, "path": "/a.mp4"},
           "dream": {"settings": {"layers": [["block8", 2.0]], "guide": "g.png"}},
           "runtime": {"device": "cuda"}}
    text = describe_differences(old, new)
    assert text.startswith("settings.guide was unset, now g.png; settings.layers was block8=1.0, now block8=2.0; ")
    assert text.endswith("(and 1 more)")
    text = describe_differences(old, new, limit=9)
    assert "input.mtime_ns was 2023-" in text and text.endswith("; device was cpu, now cuda")


def test_lock_refuses_a_second_opener_naming_the_pid(tmp_path):
    folder = str(tmp_path / "c")
    with Checkpoint(folder, IDENT, 8) as ck:
        ck.open()
        with pytest.raises(DreamvidError, match=f"pid {os.getpid()}"):
            Checkpoint(folder, IDENT, 8).open()
    with Checkpoint(folder, IDENT, 8) as ck:  # released on close
        ck.open()


def test_remove_deletes_the_folder(tmp_path):
    folder = _filled(tmp_path / "c", n=3)
    ck = Checkpoint(folder, IDENT, 8)
    ck.open()
    ck.remove()
    assert not os.path.exists(folder)


def test_writes_are_fsynced_renamed_then_the_folder_fsynced(tmp_path, monkeypatch):
    import stat
    folder = str(tmp_path / "c")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(a, b):
        events.append("rename " + os.path.basename(b))
        real_replace(a, b)

    with Checkpoint(folder, IDENT, 8) as ck:
        ck.open()
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)
        ck.save(0, _rgb(0))
    assert events == ["fsync-file", "rename frame_000000.png", "fsync-dir",
                      "fsync-file", "rename manifest.json", "fsync-dir"]
