"""Frame sources: a video file, a folder of frames, a glob or one image, behind one interface.

Every frame is RGB uint8 (H, W, 3); the rate is a Fraction."""

from __future__ import annotations

import abc
import glob
import os
from fractions import Fraction
from typing import Iterator, List, Optional, Tuple

import cv2
import numpy as np

from ..config.settings import MAX_PIXELS
from ..errors import DreamvidError
from .ffmpeg import MediaInfo, probe
from .fps import parse_fps, snap_fps
from .headers import check_pixels, gif_frame_count, header_size
from .images import IMAGE_EXTS, _image_size, _is_image_file, _natural_key, read_image


DEFAULT_FOLDER_FPS = Fraction(25)

# Short videos are counted by decoding (exact); longer ones trust the container's frame count.
# The budget is in pixels so a long tiny clip and a short 4K clip cost about the same to count.
_COUNT_BY_DECODING_MAX_PIXELS = 400_000_000

class FrameSource(abc.ABC):
    """A sequence of RGB uint8 (H, W, 3) frames with a frame rate.

    Attributes: path, fps (Fraction), width, height, num_frames, is_video (a real video file,
    which may carry audio), has_audio; promised_frames: the frame count the container announced
    when it is more than the frames that decode (a truncated file), else None.
    """

    path: str
    fps: Fraction
    width: int
    height: int
    num_frames: int
    is_video: bool = False
    has_audio: bool = False
    promised_frames: Optional[int] = None

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

    def __init__(self, path: str, files: List[str], fps: Fraction, max_pixels: int = MAX_PIXELS):
        self.path, self.files, self.fps = path, files, fps
        first = read_image(files[0], max_pixels)  # refused by its header when past the budget
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

    def __init__(self, path: str, fps: Optional[Fraction] = None, max_pixels: int = MAX_PIXELS):
        self.path = path
        info = probe(path)
        if not info.has_video:
            raise DreamvidError(f"{path} has no video stream; "
                                f"give a video, an image or a frame folder")
        self.has_audio = info.has_audio
        # The budget on the header's numbers, before OpenCV decodes (and allocates) a frame.
        gif_frames = gif_frame_count(path)
        size = header_size(path) if gif_frames is not None else info.size
        if size is not None:
            check_pixels(path, *size, max_pixels)
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
        self.num_frames = self._count(count, gif_frames)

    def _count(self, announced: int, gif_frames: Optional[int]) -> int:
        """Frames that decode; sets promised_frames when the container announced more and the
        decoding stopped short of its end (a truncated file)."""
        if gif_frames:  # counted from the GIF's blocks, exactly, without decoding
            return gif_frames
        if announced > 0 and announced * self.width * self.height > _COUNT_BY_DECODING_MAX_PIXELS:
            if self._decodes(announced - 1):
                return announced
            # the last announced frame does not decode: a truncated file, counted the slow way
        count, last_ms = self._count_by_decoding()
        # A count above the decoded one alone is no proof: an AVI counts its empty "repeat the
        # frame" packets, which decode to nothing, and its last frame still sits at the end.
        # Truncated means the decoded frames stop well before the announced end.
        fps = float(self._stream_fps) if self._stream_fps else None
        if announced > count and (fps is None or last_ms < 1000.0 * (announced - 1.5) / fps):
            self.promised_frames = announced
        return count

    def _decodes(self, index: int) -> bool:
        """Whether seeking to frame `index` finds a frame (cheap, for long videos)."""
        cap = self._open()
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            return bool(cap.grab())
        finally:
            cap.release()

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
        return snap_fps(fps) if fps > 0 and np.isfinite(fps) else None

    def _count_by_decoding(self) -> Tuple[int, float]:
        """(frames that decode, the last one's timestamp in ms)."""
        cap = self._open()
        try:
            n, last_ms = 0, 0.0
            while cap.grab():  # grab() decodes without the colour conversion
                n += 1
                last_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            return n, last_ms
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

def open_source(spec: str, fps: Optional[Fraction] = None, max_pixels: int = MAX_PIXELS) -> FrameSource:
    """Open a video file, a folder of frames, a glob ('shots/*.png') or a single image.

    Folders and globs are read in natural order (frame2 before frame10) at `fps` (default 25).
    For videos the rate comes from the file; a given `fps` overrides it. A frame whose header says
    it has more than `max_pixels` pixels raises InputTooLarge before anything is decoded.
    """
    fps = parse_fps(fps) if fps is not None else None
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        files = sorted((os.path.join(spec, n) for n in os.listdir(spec)), key=_natural_key)
        files = [f for f in files if _is_image_file(f)]
        if not files:
            raise DreamvidError(f"no image files ({', '.join(IMAGE_EXTS)}) in folder {spec}")
        return ImageSequenceSource(spec, files, fps or DEFAULT_FOLDER_FPS, max_pixels)
    if os.path.isfile(spec):
        if os.path.splitext(spec)[1].lower() in IMAGE_EXTS:
            return ImageSequenceSource(spec, [spec], fps or DEFAULT_FOLDER_FPS, max_pixels)
        return VideoSource(spec, fps, max_pixels)
    if glob.has_magic(spec):
        matches = sorted(glob.glob(spec), key=_natural_key)
        files = [f for f in matches if _is_image_file(f)]
        if not files:
            what = "matches no files" if not matches else "matches no image files"
            raise DreamvidError(f"pattern {spec} {what}; check the pattern (quote it in the shell)")
        return ImageSequenceSource(spec, files, fps or DEFAULT_FOLDER_FPS, max_pixels)
    raise DreamvidError(f"input not found: {spec} (check the path)")
