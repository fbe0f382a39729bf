"""Frame sources and sinks: video files, frame folders, images, ffmpeg encoding and audio.

Everything that crosses this edge is an RGB uint8 array of shape (H, W, 3); frame rates are
``fractions.Fraction`` (29.97 fps stays 30000/1001). Decoding goes through OpenCV; encoding,
probing and audio go through the ffmpeg binary that ships with imageio-ffmpeg.

Outputs are never half-written under their final name: sinks write to a hidden temporary name in
the same folder and ``os.replace`` it into place only when everything succeeded.
"""

from __future__ import annotations

import abc
import glob
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np

from .errors import DreamvidError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OUTPUT_KINDS = ("mp4", "webm", "gif", "folder")
DEFAULT_FOLDER_FPS = Fraction(25)
DEFAULT_CRF = {"mp4": 18, "webm": 32}
CRF_RANGE = {"mp4": (0, 51), "webm": (0, 63)}
JPEG_QUALITY = 95

# NTSC rates that containers and UIs round (29.97, 23.976); snapped back to their exact value.
_NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))
# Short videos are counted by decoding (exact); longer ones trust the container's frame count.
# The budget is in pixels so a long tiny clip and a short 4K clip cost about the same to count.
_COUNT_BY_DECODING_MAX_PIXELS = 400_000_000
# Channel layouts each audio encoder accepts; anything else is remixed to the nearest of these.
# (libopus rejects e.g. 2.1, 4.0 and 7.1(wide); the native aac encoder rejects e.g. 5.1.4.)
_AAC_LAYOUTS = "mono|stereo|2.1|3.0|4.0|quad|5.0|5.1|5.1(side)|6.1|7.1|7.1(wide)"
_OPUS_LAYOUTS = "mono|stereo|3.0|quad|5.0|5.1|6.1|7.1"
_FRAME_NAME = "frame_{:06d}.png"
_FRAME_NAME_RE = re.compile(r"frame_\d+\.png")


# --------------------------------------------------------------------------------------------
# ffmpeg
# --------------------------------------------------------------------------------------------

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
    fps = None
    if videos:
        m = re.search(r"([\d.]+) fps", videos[0]) or re.search(r"([\d.]+) tbr", videos[0])
        fps = m.group(1) if m else None
    layout = None
    if audios:
        m = re.search(r"\d+ Hz, ([^,]+)", audios[0])
        layout = m.group(1).strip() if m else None
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    return MediaInfo(bool(videos), bool(audios), duration, fps, layout)


# --------------------------------------------------------------------------------------------
# Frame rates
# --------------------------------------------------------------------------------------------

def _snap_fps(x: float) -> Fraction:
    """A float rate as an exact Fraction: 29.97/29.97003 -> 30000/1001, 12.5 -> 25/2."""
    for rate in _NTSC_RATES:
        if abs(x - rate) < 1e-3:  # 29.97 vs 30000/1001 differ by 3e-5; 29.97 vs 30 by 3e-2
            return rate
    return Fraction(x).limit_denominator(1001)


def parse_fps(value: Union[Fraction, int, float, str]) -> Fraction:
    """A frame rate as an exact positive Fraction.

    Accepts Fraction, int, float or text ('25', '30000/1001', '29.97'). Decimal forms of the NTSC
    rates (23.976, 29.97, 59.94) become 24000/1001, 30000/1001, 60000/1001.
    """
    try:
        if isinstance(value, (Fraction, int)) and not isinstance(value, bool):
            fps = Fraction(value)
        elif isinstance(value, str) and "/" in value:
            fps = Fraction(value.strip())
        else:
            fps = _snap_fps(float(value))
    except (TypeError, ValueError, ZeroDivisionError):
        raise DreamvidError(f"invalid frame rate {value!r}: use e.g. 25, 29.97 or 30000/1001")
    if fps <= 0:
        raise DreamvidError(f"invalid frame rate {value!r}: it must be positive")
    return fps


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8
            and rgb.ndim == 3 and rgb.shape[2] == 3):
        raise ValueError(f"expected an RGB uint8 array of shape (H, W, 3), got "
                         f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")


def read_image(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); alpha is dropped, grey becomes RGB."""
    if not os.path.isfile(path):
        raise DreamvidError(f"image not found: {path} (check the path)")
    # np.fromfile + imdecode instead of imread: imread fails on non-ASCII paths on some systems.
    bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DreamvidError(f"cannot decode image {path}: the file is corrupt or not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _encode_image(ext: str, rgb: np.ndarray) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DreamvidError(f"OpenCV could not encode a {ext} image")
    return buf.tobytes()


def _tmp_name(final: str, ext: str = "") -> str:
    """Hidden temporary sibling of `final`: 'dir/.name.tmp-<pid><ext>' (same folder = same disk)."""
    folder, name = os.path.split(os.path.abspath(final))
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}{ext}")


def write_image(path: str, rgb: np.ndarray) -> None:
    """Write RGB uint8 (H, W, 3) as PNG or JPEG (by extension), atomically; makes parent folders."""
    _check_rgb(rgb)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".jpg", ".jpeg"):
        raise DreamvidError(f"cannot write image {path}: use a .png, .jpg or .jpeg file name")
    data = _encode_image(ext, rgb)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = _tmp_name(path, ext)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def resize_to_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink (H, W, 3) so max(H, W) <= max_side, aspect kept (INTER_AREA); never enlarges."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _header_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) from a PNG or JPEG header without decoding; None for other formats."""
    with open(path, "rb") as f:
        head = f.read(24)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:2] != b"\xff\xd8":
            return None
        f.seek(2)
        while True:  # walk the JPEG segments up to the start-of-frame one
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                return None
            code = marker[1]
            if code == 0x01 or 0xD0 <= code <= 0xD8 or code == 0xFF:  # no length field
                if code == 0xFF:
                    f.seek(-1, 1)  # fill byte: the real marker code follows
                continue
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                return None
            if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
                sof = f.read(5)
                if len(sof) < 5:
                    return None
                _, h, w = struct.unpack(">BHH", sof)
                return w, h
            f.seek(struct.unpack(">H", length_bytes)[0] - 2, 1)


def _image_size(path: str) -> Tuple[int, int]:
    """(width, height) of an image file: from its header when cheap, else by decoding it."""
    try:
        size = _header_size(path)
    except OSError:
        size = None
    if size is None:
        h, w = read_image(path).shape[:2]
        size = (w, h)
    return size


def _natural_key(path: str):
    """Sort key putting 'frame2' before 'frame10' (digit runs compare as numbers)."""
    parts = re.split(r"(\d+)", path)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], path


def _is_image_file(path: str) -> bool:
    name = os.path.basename(path)
    return (os.path.isfile(path) and not name.startswith(".")
            and os.path.splitext(name)[1].lower() in IMAGE_EXTS)


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------

class FrameSource(abc.ABC):
    """A sequence of RGB uint8 (H, W, 3) frames with a frame rate.

    Attributes: path, fps (Fraction), width, height, num_frames, is_video (a real video file,
    which may carry audio), has_audio.
    """

    path: str
    fps: Fraction
    width: int
    height: int
    num_frames: int
    is_video: bool = False
    has_audio: bool = False

    @abc.abstractmethod
    def frames(self, start: int = 0, end: Optional[int] = None) -> Iterator[np.ndarray]:
        """Yield frames start .. end-1 (end exclusive, None = to the last) as RGB uint8."""

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as RGB uint8 (H, W, 3)."""
        if not 0 <= index < self.num_frames:
            raise IndexError(f"frame {index} out of range 0..{self.num_frames - 1} in {self.path}")
        for frame in self.frames(index, index + 1):
            return frame
        raise DreamvidError(f"could not decode frame {index} of {self.path}; "
                            f"the file may be truncated")

    def _range(self, start: int, end: Optional[int]) -> Tuple[int, int]:
        end = self.num_frames if end is None else min(end, self.num_frames)
        if start < 0 or start > end:
            raise ValueError(f"bad frame range {start}..{end} for {self.num_frames} frames")
        return start, end

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, {self.width}x{self.height}, "
                f"{self.num_frames} frames @ {self.fps} fps, audio={self.has_audio})")


class ImageSequenceSource(FrameSource):
    """Frames from a list of image files (a folder, a glob, or one image)."""

    def __init__(self, path: str, files: List[str], fps: Fraction):
        self.path, self.files, self.fps = path, files, fps
        first = read_image(files[0])
        self.height, self.width = first.shape[:2]
        self.num_frames = len(files)
        # Check every size up front (headers only) so a bad frame fails now, not mid-render.
        reference = _image_size(files[0])
        for f in files[1:]:
            size = _image_size(f)
            if size != reference:
                raise DreamvidError(
                    f"frame {f} is {size[0]}x{size[1]} but {files[0]} is "
                    f"{reference[0]}x{reference[1]}; all frames in {path} must be the same size")

    def frames(self, start: int = 0, end: Optional[int] = None) -> Iterator[np.ndarray]:
        start, end = self._range(start, end)
        for f in self.files[start:end]:
            rgb = read_image(f)
            if rgb.shape[:2] != (self.height, self.width):  # e.g. a file replaced since opening
                raise DreamvidError(f"frame {f} is {rgb.shape[1]}x{rgb.shape[0]}, expected "
                                    f"{self.width}x{self.height}; all frames must be the same size")
            yield rgb


class VideoSource(FrameSource):
    """Frames decoded from a video file with OpenCV; fps, audio presence from ffmpeg/OpenCV."""

    is_video = True

    def __init__(self, path: str, fps: Optional[Fraction] = None):
        self.path = path
        info = probe(path)
        if not info.has_video:
            raise DreamvidError(f"{path} has no video stream; "
                                f"give a video, an image or a frame folder")
        self.has_audio = info.has_audio
        cap = self._open()
        try:
            ok, bgr = cap.read()
            if not ok:
                raise DreamvidError(f"{path} has no decodable video frames; check the file")
            # Size from a decoded frame: OpenCV applies rotation metadata, so it can differ
            # from the stream's coded size.
            self.height, self.width = bgr.shape[:2]
            # The file's own rate, kept apart from an override: seeking is checked against it.
            self._stream_fps = self._container_fps(cap, info)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.fps = fps if fps is not None else self._stream_fps
        if self.fps is None:
            raise DreamvidError(f"cannot tell the frame rate of {path}; give the rate explicitly")
        if count <= 0 or count * self.width * self.height <= _COUNT_BY_DECODING_MAX_PIXELS:
            count = self._count_by_decoding()
        self.num_frames = count

    def _open(self) -> "cv2.VideoCapture":
        cap = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            raise DreamvidError(f"cannot decode video {self.path}: unsupported or corrupt file")
        return cap

    @staticmethod
    def _container_fps(cap: "cv2.VideoCapture", info: MediaInfo) -> Optional[Fraction]:
        fps = cap.get(cv2.CAP_PROP_FPS)  # average rate as a float, e.g. 29.97002997
        if not (fps > 0 and np.isfinite(fps)) and info.fps_text:
            fps = float(info.fps_text)  # ffmpeg's rounded "29.97"; snapping restores NTSC
        return _snap_fps(fps) if fps > 0 and np.isfinite(fps) else None

    def _count_by_decoding(self) -> int:
        cap = self._open()
        try:
            n = 0
            while cap.grab():  # grab() decodes without the colour conversion
                n += 1
            return n
        finally:
            cap.release()

    def _seek(self, cap: "cv2.VideoCapture", index: int) -> bool:
        """Fast-seek to `index` and grab it; False if the landed frame is not verifiably right."""
        if self._stream_fps is None:
            return False
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        if not cap.grab():
            return False
        # The grabbed frame's own timestamp tells where we landed; for constant-rate video frame
        # i sits at i/fps. Variable-rate video fails this check and falls back to skipping.
        fps = float(self._stream_fps)
        return abs(cap.get(cv2.CAP_PROP_POS_MSEC) - 1000.0 * index / fps) < 500.0 / fps

    def frames(self, start: int = 0, end: Optional[int] = None) -> Iterator[np.ndarray]:
        start, end = self._range(start, end)
        if start == end:
            return
        cap = self._open()
        try:
            if start > 0 and not self._seek(cap, start):
                # Decode and skip: slow but exact by definition (frame i = i-th decoded frame).
                cap.release()
                cap = self._open()
                for _ in range(start + 1):
                    if not cap.grab():
                        return
            elif start == 0 and not cap.grab():
                return
            # Invariant: frame `i` has been grabbed and awaits retrieve().
            for i in range(start, end):
                if i > start and not cap.grab():
                    return  # shorter than the container said (truncated file)
                ok, bgr = cap.retrieve()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


def open_source(spec: str, fps: Optional[Fraction] = None) -> FrameSource:
    """Open a video file, a folder of frames, a glob ('shots/*.png') or a single image.

    Folders and globs are read in natural order (frame2 before frame10) at `fps` (default 25).
    For videos the rate comes from the file; a given `fps` overrides it.
    """
    fps = parse_fps(fps) if fps is not None else None
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        files = sorted((os.path.join(spec, n) for n in os.listdir(spec)), key=_natural_key)
        files = [f for f in files if _is_image_file(f)]
        if not files:
            raise DreamvidError(f"no image files ({', '.join(IMAGE_EXTS)}) in folder {spec}")
        return ImageSequenceSource(spec, files, fps or DEFAULT_FOLDER_FPS)
    if os.path.isfile(spec):
        if os.path.splitext(spec)[1].lower() in IMAGE_EXTS:
            return ImageSequenceSource(spec, [spec], fps or DEFAULT_FOLDER_FPS)
        return VideoSource(spec, fps)
    if glob.has_magic(spec):
        matches = sorted(glob.glob(spec), key=_natural_key)
        files = [f for f in matches if _is_image_file(f)]
        if not files:
            what = "matches no files" if not matches else "matches no image files"
            raise DreamvidError(f"pattern {spec} {what}; check the pattern (quote it in the shell)")
        return ImageSequenceSource(spec, files, fps or DEFAULT_FOLDER_FPS)
    raise DreamvidError(f"input not found: {spec} (check the path)")


# --------------------------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------------------------

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


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except FileNotFoundError:
        pass


class FrameSink(abc.ABC):
    """Where frames go. write() RGB uint8 (height, width, 3) frames, then close() to publish the
    output under its final name, or abort() to drop it. As a context manager it closes on
    success and aborts on an exception."""

    def __init__(self, path: str, kind: str, fps: Fraction, width: int, height: int):
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        self.path, self.kind, self.fps = path, kind, parse_fps(fps)
        self.width, self.height = width, height
        self.frames_written = 0
        self._done = False

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
        self._discard()

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
        os.makedirs(os.path.dirname(self._final), exist_ok=True)
        self._tmp = _tmp_name(self._final)
        _remove(self._tmp)
        os.makedirs(self._tmp)

    def _write(self, rgb: np.ndarray) -> None:
        name = _FRAME_NAME.format(self.frames_written + 1)
        with open(os.path.join(self._tmp, name), "wb") as f:
            f.write(_encode_image(".png", rgb))

    def _finish(self) -> None:
        if os.path.exists(self._final):
            _check_replaceable_folder(self._final)
            # A non-empty folder cannot be replaced in one rename: move it aside first.
            old = _tmp_name(self._final, ".old")
            os.replace(self._final, old)
            os.replace(self._tmp, self._final)
            _remove(old)
        else:
            os.replace(self._tmp, self._final)

    def _discard(self) -> None:
        if hasattr(self, "_tmp"):
            _remove(self._tmp)


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
    """

    def __init__(self, path: str, kind: str, fps: Fraction, width: int, height: int,
                 audio: Optional[AudioSpec] = None, quality: Optional[int] = None):
        super().__init__(path, kind, fps, width, height)
        self._final = os.path.abspath(path)
        ext = "." + kind
        self._tmp = _tmp_name(self._final, ext)
        if audio is not None and kind in ("mp4", "webm"):
            if audio.start_s < 0 or (audio.duration_s is not None and audio.duration_s <= 0):
                raise ValueError(f"bad audio range start={audio.start_s} "
                                 f"duration={audio.duration_s}")
            self._audio = audio if probe(audio.path).has_audio else None  # no audio: no error
        else:
            self._audio = None  # gif has no audio
        # With audio the encoder writes a video-only file that the mux pass reads.
        self._video_tmp = _tmp_name(self._final, ".video" + ext) if self._audio else self._tmp
        self._pad = kind == "mp4" and (width % 2 or height % 2)
        pw, ph = width + (width % 2 if self._pad else 0), height + (height % 2 if self._pad else 0)

        cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostats", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{pw}x{ph}",
               "-framerate", f"{self.fps.numerator}/{self.fps.denominator}", "-i", "pipe:0",
               *self._codec_args(kind, quality),
               *(["-movflags", "+faststart"] if kind == "mp4" and not self._audio else []),
               _ffmpeg_path(self._video_tmp)]
        os.makedirs(os.path.dirname(self._final), exist_ok=True)
        # stderr goes to a file, not a pipe: a full pipe would block ffmpeg while we block on
        # stdin. A new session keeps Ctrl-C (SIGINT to the terminal's group) away from ffmpeg,
        # so the caller decides whether to close or abort.
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr, start_new_session=True)

    @staticmethod
    def _codec_args(kind: str, quality: Optional[int]) -> List[str]:
        if kind == "gif":
            # One pass: split the stream, build a palette from all frames, map frames onto it.
            return ["-filter_complex",
                    "[0:v]split[a][b];[a]palettegen[p];[b][p]paletteuse=dither=sierra2_4a",
                    "-loop", "0"]  # 0 = loop forever (writes the NETSCAPE2.0 extension)
        crf = DEFAULT_CRF[kind] if quality is None else int(quality)
        lo, hi = CRF_RANGE[kind]
        if not lo <= crf <= hi:
            raise DreamvidError(f"quality {quality} out of range for {kind}: use a CRF from {lo} "
                                f"(best) to {hi} (smallest)")
        # RGB -> YUV with the BT.709 matrix, and say so in the stream: players guess BT.709 for
        # untagged HD but BT.601 for SD, so an untagged file shifts colours in one of the two.
        colour = ["-vf", "scale=out_color_matrix=bt709:out_range=tv", "-colorspace", "bt709",
                  "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
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
            _remove(self._video_tmp)
        os.replace(self._tmp, self._final)

    def _mux_audio(self) -> None:
        """Copy the encoded video and add the audio cut to [start_s, start_s + duration)."""
        a = self._audio
        duration = a.duration_s if a.duration_s is not None else self.frames_written / self.fps
        layouts = _AAC_LAYOUTS if self.kind == "mp4" else _OPUS_LAYOUTS
        if self.kind == "mp4":
            codec = ["-c:a", "aac"]
        else:  # mapping family 1 lets Opus carry up to 8 channels (5.1, 7.1), not just stereo
            codec = ["-c:a", "libopus", "-mapping_family", "1"]
        _run_ffmpeg(["-i", _ffmpeg_path(self._video_tmp),
                     # -ss/-t before -i: decode-accurate cut of the source, in sync with frame 0
                     "-ss", f"{a.start_s:.6f}", "-t", f"{float(duration):.6f}",
                     "-i", _ffmpeg_path(a.path),
                     "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
                     "-af", f"aformat=channel_layouts={layouts}", *codec,
                     *(["-movflags", "+faststart"] if self.kind == "mp4" else []),
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
            _remove(p)


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
