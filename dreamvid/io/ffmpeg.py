"""The ffmpeg binary (imageio-ffmpeg's), found once, lazily; every run's exit status checked; probing."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import List, Optional, Tuple


from ..errors import DreamvidError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (imageio-ffmpeg's), looked up once, on first use."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:  # no bundled binary for this platform and none on PATH
        raise DreamvidError(f"ffmpeg not found ({e}); install ffmpeg or set IMAGEIO_FFMPEG_EXE")

def _ffmpeg_path(path: str) -> str:
    # "file:" stops ffmpeg reading "a:b.mp4" as protocol "a"; abspath keeps "-x.mp4" from
    # looking like an option.
    return "file:" + os.path.abspath(path)

def _last_error_line(stderr: str) -> str:
    """The last meaningful line of ffmpeg's stderr, without the '@ 0x55..' noise."""
    lines = [ln.strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and ln != "Conversion failed!"]
    if not lines:
        return "no error message"
    return re.sub(r"\[([\w:#/.-]+) @ 0x[0-9a-f]+\] ", r"[\1] ", lines[-1])

def _run_ffmpeg(args: List[str], what: str) -> None:
    """Run one ffmpeg command to completion; DreamvidError naming `what` if it fails."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        msg = _last_error_line(proc.stderr.decode("utf-8", "replace"))
        raise DreamvidError(f"ffmpeg failed {what}: {msg}")

@dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg says about a media file (from `ffmpeg -i`)."""

    has_video: bool
    has_audio: bool
    duration_s: Optional[float]  # container duration, None when unknown
    fps_text: Optional[str]  # the first video stream's rate as printed ("29.97"), None if absent
    audio_layout: Optional[str]  # the first audio stream's channel layout ("5.1", "stereo")
    size: Optional[Tuple[int, int]] = None  # the first video stream's coded (width, height)

def probe(path: str) -> MediaInfo:
    """Ask ffmpeg what streams `path` holds. DreamvidError if ffmpeg cannot read it at all."""
    if not os.path.isfile(path):
        raise DreamvidError(f"input not found: {path} (check the path)")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", _ffmpeg_path(path)]
    # Without an output ffmpeg exits 1 by design; the stream list on stderr is what we want.
    err = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).stderr
    text = err.decode("utf-8", "replace")
    if "Input #0" not in text:
        raise DreamvidError(f"cannot read {path}: {_last_error_line(text)}")
    streams = re.findall(r"^\s*Stream #\d+:\d+\S*: (Video|Audio): (.*)$", text, re.MULTILINE)
    videos = [s for kind, s in streams if kind == "Video" and "(attached pic)" not in s]
    audios = [s for kind, s in streams if kind == "Audio"]
    fps = size = None
    if videos:
        # ", 1920x1080" (a codec tag such as "/ 0x31637661" has no comma before it)
        m = re.search(r", (\d+)x(\d+)", videos[0])
        size = (int(m.group(1)), int(m.group(2))) if m else None
        m = re.search(r"([\d.]+) fps", videos[0]) or re.search(r"([\d.]+) tbr", videos[0])
        fps = m.group(1) if m else None
    layout = None
    if audios:
        m = re.search(r"\d+ Hz, ([^,]+)", audios[0])
        layout = m.group(1).strip() if m else None
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    return MediaInfo(bool(videos), bool(audios), duration, fps, layout, size)
