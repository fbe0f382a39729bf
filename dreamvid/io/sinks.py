"""Frame sinks: mp4 / webm / gif through ffmpeg (audio muxed) or a folder of PNGs.

Outputs are never half-written under their final name: sinks write to a hidden temporary name in
the same folder and ``os.replace`` it into place only when everything succeeded."""

from __future__ import annotations

import abc
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional

import numpy as np

from ..core.atomic import make_dirs, remove_empty_dirs, remove_path, tmp_name
from ..errors import DreamvidError
from .ffmpeg import _ffmpeg_path, _last_error_line, _run_ffmpeg, ffmpeg_exe, probe
from .fps import parse_fps
from .images import _check_rgb, _encode_image


OUTPUT_KINDS = ("mp4", "webm", "gif", "folder")

DEFAULT_CRF = {"mp4": 18, "webm": 32}

CRF_RANGE = {"mp4": (0, 51), "webm": (0, 63)}

# Channel layouts each audio encoder accepts; anything else is remixed to the nearest of these.
# (libopus rejects e.g. 2.1, 4.0 and 7.1(wide); the native aac encoder rejects e.g. 5.1.4.)
_AAC_LAYOUTS = "mono|stereo|2.1|3.0|4.0|quad|5.0|5.1|5.1(side)|6.1|7.1|7.1(wide)"

_OPUS_LAYOUTS = "mono|stereo|3.0|quad|5.0|5.1|6.1|7.1"

_FRAME_NAME = "frame_{:06d}.png"

_FRAME_NAME_RE = re.compile(r"frame_\d+\.png")

@dataclass(frozen=True)
class AudioSpec:
    """Audio to mux into the output: the audio of `path` from `start_s` on, for `duration_s`
    seconds (None = as long as the frames written)."""

    path: str
    start_s: float = 0.0
    duration_s: Optional[float] = None

def output_kind(path: str) -> str:
    """'mp4' | 'webm' | 'gif' | 'folder' for an output path (a folder ends in '/' or exists)."""
    path = os.fspath(path)
    seps = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if path.endswith(seps) or os.path.isdir(path):
        if os.path.isfile(path.rstrip("/" + os.sep)):
            raise DreamvidError(f"output folder {path} exists as a file; choose another path")
        return "folder"
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if ext in ("mp4", "webm", "gif"):
        return ext
    raise DreamvidError(f"unsupported output {path}: use a .mp4, .webm or .gif file, "
                        f"or a folder path ending in '/'")

class FrameSink(abc.ABC):
    """Where frames go. write() RGB uint8 (height, width, 3) frames, then close() to publish the
    output under its final name, or abort() to drop it. As a context manager it closes on
    success and aborts on an exception. The folders a sink had to create for its output are
    removed again when it aborts (if nothing else was put in them)."""

    def __init__(self, path: str, kind: str, fps: Fraction, width: int, height: int):
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        self.path, self.kind, self.fps = path, kind, parse_fps(fps)
        self.width, self.height = width, height
        self.frames_written = 0
        self._done = False
        self._made: List[str] = []  # folders created for the output, outermost first

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 (height, width, 3) frame."""
        if self._done:
            raise ValueError(f"sink for {self.path} is already closed")
        _check_rgb(rgb)
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}x{rgb.shape[0]} but the sink for "
                             f"{self.path} was opened for {self.width}x{self.height}")
        self._write(rgb)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output and move it to its final name (no-op if already done)."""
        if self._done:
            return
        try:
            if self.frames_written == 0:
                raise DreamvidError(f"no frames were written to {self.path}; nothing to save")
            self._finish()
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Stop and delete the temporary output; an existing final output is left untouched."""
        self._done = True
        try:
            self._discard()
        finally:
            remove_empty_dirs(self._made)
            self._made = []

    def __enter__(self) -> "FrameSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        # A sink dropped without close()/abort() must not leave its temporary output behind.
        if not getattr(self, "_done", True):
            try:
                self.abort()
            except Exception:
                pass

    @abc.abstractmethod
    def _write(self, rgb: np.ndarray) -> None:
        """Implemented by each kind of sink."""

    @abc.abstractmethod
    def _finish(self) -> None:
        """Implemented by each kind of sink."""

    @abc.abstractmethod
    def _discard(self) -> None:
        """Implemented by each kind of sink."""

class FolderSink(FrameSink):
    """Numbered PNGs frame_000001.png, ... in a folder; published by renaming a temp folder."""

    def __init__(self, path: str, fps: Fraction, width: int, height: int):
        super().__init__(path, "folder", fps, width, height)
        self._final = os.path.abspath(path)
        _check_replaceable_folder(self._final)
        self._made = make_dirs(os.path.dirname(self._final))
        self._tmp = tmp_name(self._final)
        try:
            remove_path(self._tmp)
            os.makedirs(self._tmp)
        except BaseException:
            self.abort()
            raise

    def _write(self, rgb: np.ndarray) -> None:
        name = _FRAME_NAME.format(self.frames_written + 1)
        with open(os.path.join(self._tmp, name), "wb") as f:
            f.write(_encode_image(".png", rgb))

    def write_png(self, path: str) -> None:
        """Append a frame that already is a PNG file of the right size (a checkpoint frame): a
        hard link where the file system allows one, so the output costs no second copy."""
        if self._done:
            raise ValueError(f"sink for {self.path} is already closed")
        dst = os.path.join(self._tmp, _FRAME_NAME.format(self.frames_written + 1))
        try:
            os.link(path, dst)
        except OSError:  # another disk, or no hard links here: copy
            shutil.copyfile(path, dst)
        self.frames_written += 1

    def _finish(self) -> None:
        if os.path.exists(self._final):
            _check_replaceable_folder(self._final)
            # A non-empty folder cannot be replaced in one rename: move it aside first.
            old = tmp_name(self._final, ".old")
            os.replace(self._final, old)
            os.replace(self._tmp, self._final)
            remove_path(old)
        else:
            os.replace(self._tmp, self._final)

    def _discard(self) -> None:
        if hasattr(self, "_tmp"):
            remove_path(self._tmp)

def _check_replaceable_folder(path: str) -> None:
    """An existing output folder is only replaced if it holds nothing but our frame files,
    so pointing the output at e.g. a home folder cannot delete anything else."""
    if not os.path.isdir(path):
        return
    others = [n for n in os.listdir(path) if not _FRAME_NAME_RE.fullmatch(n)]
    if others:
        raise DreamvidError(f"output folder {path} holds other files (e.g. {others[0]}); "
                            f"choose a new or empty folder")

class FfmpegSink(FrameSink):
    """mp4 (H.264) / webm (VP9) / gif written by an ffmpeg process fed raw rgb24 on stdin.

    mp4 needs even sizes (yuv420p in libx264): odd widths/heights are padded by one pixel at the
    right/bottom, copying the edge pixels, so the file is (width + width % 2, height + height % 2).
    webm and gif keep the exact size. With `audio`, the video is encoded first and the audio cut
    and muxed in a second, cheap pass at close(), when the rendered duration is known.

    chunk=True writes a piece of a longer video that join_chunks will concatenate: H.264 without
    B-frames, since a chunk whose B-frames delay its first timestamp and a short last chunk
    without any would not line up (the join's frame rate came out 23.98 for 29.97).
    """

    def __init__(self, path: str, kind: str, fps: Fraction, width: int, height: int,
                 audio: Optional[AudioSpec] = None, quality: Optional[int] = None, chunk: bool = False):
        super().__init__(path, kind, fps, width, height)
        self._final = os.path.abspath(path)
        ext = "." + kind
        self._tmp = tmp_name(self._final, ext)
        if audio is not None and kind in ("mp4", "webm"):
            if audio.start_s < 0 or (audio.duration_s is not None and audio.duration_s <= 0):
                raise ValueError(f"bad audio range start={audio.start_s} "
                                 f"duration={audio.duration_s}")
            self._audio = audio if probe(audio.path).has_audio else None  # no audio: no error
        else:
            self._audio = None  # gif has no audio
        # With audio the encoder writes a video-only file that the mux pass reads.
        self._video_tmp = tmp_name(self._final, ".video" + ext) if self._audio else self._tmp
        self._pad = kind == "mp4" and (width % 2 or height % 2)
        pw, ph = width + (width % 2 if self._pad else 0), height + (height % 2 if self._pad else 0)

        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostats", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{pw}x{ph}",
               "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", "pipe:0",
               *self._codec_args(kind, quality), *(["-bf", "0"] if chunk and kind == "mp4" else []),
               *(["-movflags", "+faststart"] if kind == "mp4" and not self._audio else []),
               _ffmpeg_path(self._video_tmp)]
        self._made = make_dirs(os.path.dirname(self._final))
        # stderr goes to a file, not a pipe: a full pipe would block ffmpeg while we block on
        # stdin. A new session keeps Ctrl-C (SIGINT to the terminal's group) away from ffmpeg,
        # so the caller decides whether to close or abort.
        try:
            self._stderr = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, start_new_session=True)
        except BaseException:
            self.abort()
            raise

    @staticmethod
    def _codec_args(kind: str, quality: Optional[int]) -> List[str]:
        if kind == "gif":
            # One pass: split the stream, build a palette from all frames, map frames onto it.
            return ["-filter_complex",
                    "[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=sierra2_4a",
                    "-loop", "0"]  # 0 = loop forever (writes the NETSCAPE2.0 extension)
        crf = crf_for(kind, quality)
        # RGB -> YUV with the BT.709 matrix, and say so in the stream: players guess BT.709 for
        # untagged HD but BT.601 for SD, so an untagged file shifts colours in one of the two.
        # One filter thread: the conversion is a few ms a frame, and ffmpeg's default pool (a
        # thread per core, woken every frame) cost a 1080p encode ~13 ms of CPU a frame more on 2
        # cores, in system time (bench/RESULTS.md). The same bytes either way.
        colour = ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-filter_threads", "1",
                  "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                  "-color_range", "tv"]
        if kind == "mp4":
            # veryfast: 3x quicker than medium (13 vs 40 ms a 640x360 frame here), so encoding
            # stays a small share of a frame's time; CRF keeps the quality, files grow a little.
            return [*colour, "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
                    "-pix_fmt", "yuv420p"]
        return [*colour, "-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", "-pix_fmt", "yuv420p",
                "-row-mt", "1", "-deadline", "good", "-cpu-used", "2"]

    def _ffmpeg_error(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        return _last_error_line(text) if text.strip() else f"exit status {self._proc.returncode}"

    def _write(self, rgb: np.ndarray) -> None:
        if self._pad:
            h, w = rgb.shape[:2]
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb).data)
        except (BrokenPipeError, OSError):
            self._proc.wait()
            msg = f"ffmpeg stopped while writing {self.path}: {self._ffmpeg_error()}"
            self.abort()
            raise DreamvidError(msg)

    def _finish(self) -> None:
        try:
            self._proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the exit status below tells what happened
        if self._proc.wait() != 0:
            raise DreamvidError(f"ffmpeg failed writing {self.path}: {self._ffmpeg_error()}")
        self._stderr.close()
        if self._audio is not None:
            self._mux_audio()
            remove_path(self._video_tmp)
        os.replace(self._tmp, self._final)

    def _mux_audio(self) -> None:
        """Copy the encoded video and add the audio cut to [start_s, start_s + duration)."""
        a = self._audio
        duration = a.duration_s if a.duration_s is not None else self.frames_written / self.fps
        _run_ffmpeg(["-i", _ffmpeg_path(self._video_tmp), *_audio_args(self.kind, a, float(duration)),
                     _ffmpeg_path(self._tmp)],
                    f"adding the audio of {a.path} to {self.path}")

    def _discard(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc is not None and proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if hasattr(self, "_stderr"):
            self._stderr.close()
        for p in {getattr(self, "_tmp", None), getattr(self, "_video_tmp", None)} - {None}:
            remove_path(p)

def open_sink(path: str, fps: Fraction, width: int, height: int,
              audio: Optional[AudioSpec] = None, quality: Optional[int] = None) -> FrameSink:
    """Open an output for frames of size (height, width, 3) at `fps`.

    Kind by path (see output_kind). `audio` is muxed into mp4 (AAC) / webm (Opus) and ignored for
    gif/folder; `quality` is the CRF for mp4 (default 18) / webm (default 32).
    """
    path = os.fspath(path)
    kind = output_kind(path)
    if kind == "folder":
        return FolderSink(path, fps, width, height)
    if os.path.isdir(path):
        raise DreamvidError(f"output {path} is an existing folder; choose a file name")
    return FfmpegSink(path, kind, fps, width, height, audio=audio, quality=quality)


def _audio_args(kind: str, audio: AudioSpec, duration: float) -> List[str]:
    """ffmpeg arguments after the video input (input 0): the audio input cut to
    [start_s, start_s + duration), the maps (video copied), the audio codec for `kind`."""
    layouts = _AAC_LAYOUTS if kind == "mp4" else _OPUS_LAYOUTS
    if kind == "mp4":
        codec = ["-c:a", "aac"]
    else:  # mapping family 1 lets Opus carry up to 8 channels (5.1, 7.1), not just stereo
        codec = ["-c:a", "libopus", "-mapping_family", "1"]
    # -ss/-t before -i: decode-accurate cut of the source, in sync with frame 0
    return ["-ss", f"{audio.start_s:.6f}", "-t", f"{duration:.6f}", "-i", _ffmpeg_path(audio.path),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
            "-af", f"aformat=channel_layouts={layouts}", *codec,
            *(["-movflags", "+faststart"] if kind == "mp4" else [])]


def crf_for(kind: str, quality: Optional[int]) -> int:
    """The CRF an mp4 or webm of `kind` is encoded with (`quality`, or the format's default);
    DreamvidError when it is out of the encoder's range."""
    crf = DEFAULT_CRF[kind] if quality is None else int(quality)
    lo, hi = CRF_RANGE[kind]
    if not lo <= crf <= hi:
        raise DreamvidError(f"quality {quality} out of range for {kind}: use a CRF from {lo} "
                            f"(best) to {hi} (smallest)")
    return crf


def join_chunks(parts: List[str], output: str, frames: int, fps: Fraction,
                audio: Optional[AudioSpec] = None) -> None:
    """Concatenate encoded chunks (one codec and setting, as the chunk sinks wrote them) into
    `output` without re-encoding (ffmpeg's concat demuxer, streams copied), muxing `audio` once.

    frames / fps: the whole output's length, for the audio cut. Written to a temporary name and
    renamed, like every output: a failure leaves an existing `output` untouched.
    """
    kind = output_kind(output)
    if kind not in ("mp4", "webm") or not parts:
        raise ValueError(f"cannot join chunks into {output}")
    final = os.path.abspath(output)
    made = make_dirs(os.path.dirname(final))
    tmp = tmp_name(final, "." + kind)
    listing = tmp_name(final, ".txt")
    try:
        with open(listing, "w") as f:
            for p in parts:  # the concat demuxer's quoting: ' closes, \' is a literal quote
                f.write("file '" + os.path.abspath(p).replace("'", "'\\''") + "'\n")
        args = ["-f", "concat", "-safe", "0", "-i", _ffmpeg_path(listing)]
        if audio is not None and probe(audio.path).has_audio:
            args += _audio_args(kind, audio, float(Fraction(frames) / parse_fps(fps)))
        else:
            args += ["-map", "0:v:0", "-c:v", "copy", *(["-movflags", "+faststart"] if kind == "mp4" else [])]
        _run_ffmpeg([*args, _ffmpeg_path(tmp)], f"joining the chunks of {output}")
        os.replace(tmp, final)
    except BaseException:
        remove_path(tmp)
        remove_empty_dirs(made)
        raise
    finally:
        remove_path(listing)
