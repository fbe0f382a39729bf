"""Shared test fixtures: real media made with the ffmpeg binary that imageio-ffmpeg ships."""

import subprocess
from pathlib import Path
from typing import List, Optional

import imageio_ffmpeg
import numpy as np
import pytest


def ffmpeg(*args: str) -> str:
    """Run ffmpeg with `args`; fail the test with ffmpeg's stderr if it fails. Returns stderr."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        pytest.fail(f"ffmpeg {' '.join(args)} failed:\n{proc.stderr.decode(errors='replace')}")
    return proc.stderr.decode(errors="replace")


def make_video(tmp_path: Path, name: str = "in.mp4", size: str = "64x48", rate: str = "25",
               frames: int = 10, audio: Optional[str] = None, extra: List[str] = ()) -> str:
    """A testsrc video (moving counter pattern) of `frames` frames at `rate` in tmp_path/name.

    audio: None for no audio track, or an ffmpeg `aevalsrc` expression spec like
    "sin(2*PI*440*t):c=stereo" (channels after ':c='), cut to the video's duration.
    The codec follows the extension (.mp4 H.264/AAC, .webm VP9/Opus, .gif, .mkv H.264).
    """
    out = str(tmp_path / name)
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}"]
    if audio is not None:
        args += ["-f", "lavfi", "-i", f"aevalsrc={audio}:s=48000"]
    args += ["-frames:v", str(frames), "-map", "0:v"]
    ext = name.rsplit(".", 1)[-1]
    if ext in ("mp4", "mkv"):
        w, h = (int(v) for v in size.split("x"))
        # yuv420p like real-world files; it needs even sizes, so odd ones get yuv444p
        pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt]
    elif ext == "webm":
        args += ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
    if audio is not None:
        args += ["-map", "1:a", "-shortest", "-c:a", "libopus" if ext == "webm" else "aac"]
    ffmpeg(*args, *extra, out)
    return out


def decode_audio(path: str, rate: int = 48000) -> np.ndarray:
    """The first audio track of `path`, downmixed to mono float32 at `rate` Hz."""
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(path),
           "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return np.frombuffer(proc.stdout, dtype=np.float32)


@pytest.fixture
def video_factory(tmp_path):
    """make_video bound to this test's tmp_path: video_factory(name=..., frames=..., ...)."""
    return lambda **kw: make_video(tmp_path, **kw)
