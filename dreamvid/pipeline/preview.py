"""A preview sheet: a few frames dreamed at a small size, side by side, before the long render.

:func:`preview_sheet` dreams the chosen frames of an input with one or more settings (presets)
exactly as a render's first frame would be (the first-frame schedule, the frame's own seed), or,
with ``run_up`` N, as a render that began N frames earlier would dream it (the carried dream
built up over those frames). Each cell is what ``dream_video`` with ``start`` at that frame (and
the same max_side) writes as its first frame. The sheet lays the cells out in a grid, one row
per preset and one column per frame, each under a label: the frame index, the preset and the
settings in which the presets differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..config.presets import DEFAULT_PRESET, settings_from_preset
from ..config.settings import (MAX_RUN_UP, PREVIEW_COUNT, PREVIEW_SIDE, DreamSettings, MaskSettings,
                               RunOptions, VideoSettings)
from ..config.vary import Varying
from ..engine.dreamer import Dreamer
from ..errors import SettingError
from ..io.images import write_image
from .common import build_dreamer
from .events import CancelToken, EventHandler, Reporter
from .mask import MaskInput, open_mask
from .video import open_film, video_job

GAP = 4                      # px between cells
BACKGROUND = (24, 24, 24)    # the sheet's and the labels' ground, RGB
TEXT = (235, 235, 235)


@dataclass
class PreviewCell:
    """One dreamed frame of the sheet: frame index, preset name, the RGB uint8 (H, W, 3) dream,
    its label lines and where it sits in the sheet, box = (x, y, w, h) of the image."""

    frame: int
    preset: str
    image: np.ndarray
    label: List[str]
    box: Tuple[int, int, int, int] = (0, 0, 0, 0)


@dataclass
class PreviewSheet:
    """The sheet (RGB uint8 (H, W, 3)) and its cells, row by row (preset), column by column (frame)."""

    image: np.ndarray
    cells: List[PreviewCell]
    frames: List[int]
    presets: List[str]

    def save(self, path: str) -> str:
        """Write the sheet as .png or .jpg (atomically); returns `path`."""
        write_image(path, self.image)
        return path


def preview_frames(start: int, end: int, frames: Optional[Sequence[int]] = None,
                   count: Optional[int] = None) -> List[int]:
    """The frames to preview in [start, end): `frames` as given (checked), else `count` (default
    PREVIEW_COUNT) spread evenly from the first to the last frame."""
    if frames is not None:
        frames = [int(f) for f in frames]
        if not frames:
            raise SettingError("frames", frames, "must name at least one frame")
        bad = [f for f in frames if not start <= f < end]
        if bad:
            raise SettingError("frames", bad[0], f"{bad[0]} is not a frame of the input's range {start}..{end - 1}")
        return frames
    n = PREVIEW_COUNT if count is None else count
    if not isinstance(n, int) or n < 1:
        raise SettingError("count", n, "must be at least 1 (frames on the sheet)")
    n = min(n, end - start)
    if n == 1:
        return [start]
    return sorted({start + round(k * (end - 1 - start) / (n - 1)) for k in range(n)})


def _differences(settings: Mapping[str, DreamSettings]) -> List[str]:
    """DreamSettings fields whose values differ between the presets (none for one)."""
    dicts = [s.to_dict() for s in settings.values()]
    return [k for k in dicts[0] if any(d[k] != dicts[0][k] for d in dicts[1:])]


def _show(key: str, value) -> str:
    if key == "layers":
        return "layers=" + ",".join(f"{n}:{w:g}" for n, w in value)
    if isinstance(value, float):
        return f"{key}={value:g}"
    return f"{key}={value}"


def preview_sheet(input: str, settings: Union[None, DreamSettings, Mapping[str, DreamSettings]] = None,
                  video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None, *,
                  frames: Optional[Sequence[int]] = None, count: Optional[int] = None, run_up: int = 0,
                  vary: Optional[Mapping[str, Varying]] = None, mask: Optional[MaskInput] = None,
                  mask_settings: Optional[MaskSettings] = None,
                  dreamers: Optional[Mapping[str, Dreamer]] = None,
                  on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None) -> PreviewSheet:
    """Dream the chosen frames of `input` (a video, frame folder, glob or image) and lay them out.

    settings: one DreamSettings (the row is named after DEFAULT_PRESET when None), or a mapping
    name -> DreamSettings (one row each, e.g. presets). video: range, temporal settings and the
    size (max_side; default PREVIEW_SIDE); frames / count: which frames (see preview_frames);
    run_up: frames dreamed before each one with the carry, as a render that started there would
    (0 = the first-frame dream). vary, mask, mask_settings: as for dream_video. dreamers: built
    Dreamers by name (else one per row, model loaded once each). on_event: start (total cells),
    frame (each cell, in order), done; cancel stops between ascent steps (Cancelled).
    Returns a :class:`PreviewSheet`; nothing is written (``sheet.save(path)`` writes it).
    """
    if isinstance(settings, DreamSettings) or settings is None:
        settings = {DEFAULT_PRESET if settings is None else "settings": settings or settings_from_preset()}
    if not settings:
        raise SettingError("presets", settings, "must name at least one preset")
    if not isinstance(run_up, int) or not 0 <= run_up <= MAX_RUN_UP:
        raise SettingError("run_up", run_up, f"must be in [0, {MAX_RUN_UP}] (frames dreamed before each one)")
    video = (video or VideoSettings()).validate()
    if video.max_side is None:
        video = video.replace(max_side=PREVIEW_SIDE)
    run = run or RunOptions()
    reporter = Reporter(on_event, cancel)
    built: Dict[str, Dreamer] = dict(dreamers or {})
    shown = _differences(settings)
    # The input, its range, the frames and the mask checked once, before any model loads.
    source, start, end = open_film(input, video, run.max_pixels)
    open_mask(mask, mask_settings, source, (start, end), run.max_pixels)
    chosen = preview_frames(start, end, frames, count)
    total = len(chosen) * len(settings)
    reporter.emit("start", total=total, resumed_at=0, output=None)
    cells: List[PreviewCell] = []
    for name, s in settings.items():
        dreamer = built.get(name) or build_dreamer(s, run, None)
        built[name] = dreamer
        for f in chosen:
            first = max(start, f - run_up)
            job, _ = video_job(input, None, video, run, vary, dreamer, first, f, f + 1,
                               mask=mask, mask_settings=mask_settings)
            try:
                job.resume(None, 0)
                image = job.make(0, reporter.check)
            finally:
                job.close()
            label = [f"frame {f}" + (f" (run-up {f - first})" if f > first else ""), name]
            label += [_show(k, getattr(s, k)) for k in shown]
            cells.append(PreviewCell(f, name, image, label))
            reporter.emit("frame", index=len(cells) - 1, total=total, frame=image)
    sheet = layout(cells, len(chosen), len(settings))
    reporter.emit("done", output=None)
    return PreviewSheet(sheet, cells, list(chosen), list(settings))


# ------------------------------------------------------------------------------------ layout

def _fit(text: str, width: int, scale: float) -> str:
    """`text` cut (with '..') to fit `width` px in Hershey simplex at `scale`."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    if cv2.getTextSize(text, font, scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "..", font, scale, 1)[0][0] > width:
        text = text[:-1]
    return text + ".."


def layout(cells: List[PreviewCell], columns: int, rows: int) -> np.ndarray:
    """The sheet of `cells` (row-major, all the same size), each under its label; sets each cell's
    box. Returns RGB uint8 (H, W, 3)."""
    h, w = cells[0].image.shape[:2]
    scale = float(np.clip(w / 640.0, 0.3, 0.6))
    line = int(round(24 * scale)) + 4
    label_h = line * max(len(c.label) for c in cells) + 4
    cell_h = label_h + h
    sheet = np.empty((rows * cell_h + (rows + 1) * GAP, columns * w + (columns + 1) * GAP, 3), np.uint8)
    sheet[:] = BACKGROUND
    for n, c in enumerate(cells):
        r, k = divmod(n, columns)
        x, y = GAP + k * (w + GAP), GAP + r * (cell_h + GAP)
        for j, text in enumerate(c.label):
            cv2.putText(sheet, _fit(text, w - 4, scale), (x + 2, y + (j + 1) * line - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT, 1, cv2.LINE_AA)
        sheet[y + label_h:y + label_h + h, x:x + w] = c.image
        c.box = (x, y + label_h, w, h)
    return sheet
