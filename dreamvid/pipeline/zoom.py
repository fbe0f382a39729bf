"""Endless zoom loops: the dream feeds on itself while the camera falls into it.

Each frame is the previous dreamed frame moved by an exact affine step about the centre (zoom,
rotation, shift per frame: never per second, so the fps only sets the playback rate), then dreamed
a little (ZoomSettings.frame_octaves / frame_iterations; the first frame gets the preset's full
schedule). Colour is held steady by pulling each frame's per-channel mean and std part of the way
back to the first frame's.

Closing the loop (ZoomSettings.loop). Render a chain r_0 … r_{N-1} (r_i = dream_i(T(r_{i-1})),
T the motion, dream_i seeded by frame index i) and then K more frames c_0 … c_{K-1} that continue
the chain from r_{N-1} while being pulled onto r_0 … r_{K-1}::

    c_0 = dream_0(T(r_{N-1}))                                  the natural successor of r_{N-1}
    c_j = dream_j(blend(T(c_{j-1}), T(r_{j-1}), w_j)),   j = 1 … K−1

The loop plays c_0 … c_{K-1}, r_K … r_{N-1}, then c_0 again. Both sides of the fade zoom at the
same rate, and the blend happens *before* the dream, so the dream re-grows its patterns in the
mixed image instead of leaving a double exposure. The dream also resists a weak blend (it amplifies
whatever dominates), so a fixed schedule of w_j lags and then flips in the last few frames; w_j is
instead chosen so that the blended input's distance to T(r_{j-1}) falls linearly,
mean|x_j − T(r_{j-1})| = (1 − j/K) · mean|T(c_0) − T(r_0)|, correcting each frame for how far the
dream pushed the previous one away. At j = K the weight is 1, and dream_K(T(r_{K-1})) is r_K
itself: every step of the loop, last → first included, is one ordinary dream step, and the
content crosses over at an even pace. `loop_stats` measures the seam and the worst step.

Defaults (ZoomSettings), measured on samples/coffee.jpg at 400x267 with the default preset:
2 octaves x 2 iterations per frame keep the dream as sharp as 1 x 3 within 10 % (Laplacian std
~30 vs the first frame's 44) at ~0.35 s a frame on 2 idle CPU cores (a 48-frame loop, 60 dreamed
frames, in about a minute). Without the colour hold the feedback washes out: mean brightness
+40..70 % and saturation 0.72 -> 0.5 after 50-140 frames; over 144 frames steady 0.3 held it
within 4 %, 0.6 within 1.1 %; the default 0.5 drifted -1.3 % by the middle of the 48-frame loop. A 48-frame loop closes with a 12-frame fade: seam ratio ~1.0, worst step ~1.1x
the median step (bench/loop.py).

Frames are quantised to uint8, saved in the checkpoint (rendered order: r_0 … r_{N-1}, then
c_0 … c_{K-1}) and carried as saved, so a resumed render is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import os
from typing import Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ..config.presets import settings_from_preset
from ..config.settings import MAX_PIXELS, DreamSettings, MaskSettings, RunOptions, ZoomSettings
from ..config.vary import FrameSettings, Varying
from ..core.colour import blend_keep_contrast, channel_stats, match_colour, parse_colour
from ..core.convert import quantize, to_unit
from ..core.imageops import resize_to_max_side
from ..core.motion import zoom_step
from ..core.noise import smooth_noise
from ..engine.dreamer import Dreamer
from ..errors import DreamvidError, SettingError
from ..io.images import read_image
from ..io.sinks import AudioSpec, output_kind
from ..store.checkpoint import Checkpoint
from ..store.identity import input_fingerprint
from .common import build_dreamer, frame_settings, per_frame_kwargs
from .events import CancelToken, EventHandler, Reporter
from .job import FrameJob, run_job
from .mask import FrameMask, MaskInput, still_mask

__all__ = ["zoom_loop", "start_image", "LoopPlan", "loop_plan", "fade_weight", "read_loop"]


# --------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------


def start_image(spec: str, settings: DreamSettings, zoom: ZoomSettings,
                max_pixels: int = MAX_PIXELS) -> Tuple[np.ndarray, dict]:
    """The loop's start: (float32 (H, W, 3) in [0, 1], identity for the checkpoint).

    spec: an image file (bounded by zoom.max_side), 'noise' (seeded by settings.seed), or a colour
    '#RRGGBB' / '#RGB' (with a faint seeded texture, so the dream has something to grow from).
    Noise and colours are zoom.size (width, height).
    """
    w, h = (int(v) for v in zoom.size)
    if spec.strip().lower() == "noise":
        return smooth_noise(w, h, settings.seed), {"noise": True}
    colour = parse_colour(spec)
    if colour is not None:
        base = np.array(colour, np.float32) / 255.0
        texture = smooth_noise(w, h, settings.seed, std=0.03) - 0.5
        return np.clip(base + texture, 0.0, 1.0), {"colour": "#%02x%02x%02x" % colour}
    rgb = read_image(spec, max_pixels)
    if zoom.max_side:
        rgb = resize_to_max_side(rgb, zoom.max_side)
    return to_unit(rgb), {"image": input_fingerprint(spec)}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------

class LoopPlan(NamedTuple):
    """Which rendered frames make the output. rendered: how many frames are dreamed; fade: K;
    order: checkpoint index of each output frame, in playing order."""

    frames: int
    fade: int
    rendered: int
    order: List[int]


def loop_plan(frames: int, loop: bool = True, fade: Optional[int] = None) -> LoopPlan:
    """Plan N output frames: open (r_0 … r_{N-1}) or a closed loop with a K-frame cross-fade.

    K defaults to N // 4, and is at most N − 1 (r_{N-1} must be a plain chain frame); N = 1 gives
    a one-frame "loop".
    """
    n = frames
    if not loop or n < 2:
        return LoopPlan(n, 0, n, list(range(n)))
    k = max(1, n // 4) if fade is None else fade
    k = max(1, min(k, n - 1))
    return LoopPlan(n, k, n + k, [n + j for j in range(k)] + list(range(k, n)))


def fade_weight(distance: float, start: float, j: int, k: int) -> float:
    """Blend weight of the loop's start in cross-fade frame j of k (see the module doc).

    distance: mean|T(c_{j-1}) − T(r_{j-1})| now; start: the same at j = 1. The weight brings the
    blended input to (1 − j/k) · start from r's side: 1/k at the first step of a linear fade,
    more when the dream has pushed the frames apart, 1 at j = k.
    """
    if j >= k or distance <= 1e-9:
        return 1.0
    return float(np.clip(1.0 - start * (k - j) / k / distance, 0.0, 1.0))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """mean |a − b| of two float32 [0, 1] images."""
    return float(np.abs(a - b).mean())


class ZoomJob(FrameJob):
    """The rendered frames of a loop: the chain r_0 … r_{N-1}, then the cross-fade c_0 … c_{K-1}
    (see the module doc). Frame k of the checkpoint plays at loop position k (chain) or k − N
    (fade); the settings in force there are those of that position."""

    def __init__(self, start: np.ndarray, source_id: dict, dreamer: Dreamer, zoom: ZoomSettings,
                 frames: FrameSettings, plan: LoopPlan, audio: Optional[str], mask: Optional[FrameMask] = None):
        self.start, self.source_id, self.dreamer, self.zoom = start, source_id, dreamer, zoom
        self.mask = mask  # a still mask in screen space (pipeline/mask.py), or None
        self.frames, self.plan, self._audio = frames, plan, audio
        self.total, self.fps = plan.rendered, zoom.fps
        self._ckpt: Optional[Checkpoint] = None
        self._ref = self._prev = self._fade_from = None

    def identity(self) -> dict:
        pixels = {k: v for k, v in self.zoom.to_dict().items() if k != "fps"}  # fps never changes a pixel
        ident = {"zoom_input": self.source_id, "dream": self.dreamer.identity, "zoom": pixels,
                 "size": [self.start.shape[1], self.start.shape[0]]}
        if not self.frames.constant:
            ident["vary"] = self.frames.identity(range(self.plan.frames))
        if self.mask is not None:
            ident["mask"] = self.mask.identity()
        return ident

    def position(self, k: int) -> str:
        return f"frame {k} of {self.plan.rendered}"

    def order(self) -> Sequence[int]:
        return self.plan.order

    def audio(self) -> Optional[AudioSpec]:
        return None if self._audio is None else AudioSpec(self._audio, 0.0, float(self.plan.frames / self.fps))

    def _load(self, i: int) -> np.ndarray:
        frame = self._ckpt.load(i)
        if frame is None:  # done() checked them; only a file changed behind our back gets here
            raise DreamvidError(f"checkpoint frame {self._ckpt.frame_path(i)} is unreadable: run again to redo it")
        return frame

    def _move(self, frame: np.ndarray, p: int) -> np.ndarray:
        z = self.frames.at(p)[1]
        return zoom_step(frame, z.zoom, z.rotate, z.translate)

    def resume(self, ckpt: Checkpoint, done: int) -> None:
        self._ckpt = ckpt
        n = self.plan.frames
        self._ref = None if done == 0 else channel_stats(to_unit(self._load(0)))
        self._prev = None if done == 0 else self._load(done - 1)
        # mean|T(c_0) − T(r_0)|: the distance the cross-fade closes linearly (see the module doc).
        self._fade_from = None
        if done > n + 1:
            self._fade_from = _distance(self._move(self._load(n), 1), self._move(self._load(0), 1))

    def make(self, i: int, on_step) -> np.ndarray:
        n, k = self.plan.frames, self.plan.fade
        j = i - n  # position in the cross-fade (c_j); negative on the chain r_i
        p = i if j < 0 else j  # loop position
        dream_s, zoom_s = self.frames.at(p)
        kw = per_frame_kwargs(self.frames, dream_s)
        if self.mask is not None:  # where new dream grows: the rest keeps the moved frame
            kw["mask"] = self.mask.at(p, self.start.shape[:2], self.mask.strength(self.frames, p))
        if i == 0:
            out = self.dreamer(self.start, index=0, on_step=on_step, **kw)
        else:
            x = self._move(self._prev, p)
            if j >= 1:
                target = self._move(self._load(j - 1), p)
                if self._fade_from is None:  # j == 1: prev is c_0, frame 0 is r_0
                    self._fade_from = _distance(x, target)
                x = blend_keep_contrast(x, target, fade_weight(_distance(x, target), self._fade_from, j, k))
            out = self.dreamer(x, index=p, octaves=zoom_s.frame_octaves, iterations=zoom_s.frame_iterations,
                               on_step=on_step, **kw)
            out = match_colour(out, self._ref[0], self._ref[1], zoom_s.steady)
        frame = quantize(out)
        if i == 0:
            self._ref = channel_stats(to_unit(frame))
        self._prev = frame
        return frame


def zoom_loop(input: str, output: str, settings: Optional[DreamSettings] = None,
              zoom: Optional[ZoomSettings] = None, run: Optional[RunOptions] = None,
              dreamer: Optional[Dreamer] = None, *, vary: Optional[Mapping[str, Varying]] = None,
              audio: Optional[str] = None, on_event: Optional[EventHandler] = None,
              cancel: Optional[CancelToken] = None, mask: Optional[MaskInput] = None,
              mask_settings: Optional[MaskSettings] = None) -> str:
    """Render an infinite-zoom dream into `output` (.gif, .mp4, .webm or folder/); returns `output`.

    input: an image file, 'noise', or a colour like '#203040' / '#234'.
    settings: the dream (default: the default preset); the first frame gets its full schedule,
    later frames zoom.frame_octaves / zoom.frame_iterations. zoom: motion, frame count, loop.
    run: device, weights, checkpointing. vary: settings that change per frame (config.vary; the
    frame index is the loop position). audio: a sound file muxed into .mp4/.webm outputs (and the
    loudness and beats that varying values may use). on_event / cancel: see dream_video.
    A stopped render resumes from the checkpoint beside the output (bit-identical). Bad input
    raises DreamvidError; a stop raises Cancelled after the checkpoint is consistent.
    mask: a still mask (an image path or an array, pipeline/mask.py) fixed on the screen: new dream
    grows where it is white; mask_settings: its feather, inversion, strength (may vary).
    """
    zoom = (zoom or ZoomSettings()).validate()
    run = run or RunOptions()
    output_kind(output)  # an unknown output kind fails before any work
    if audio is not None and not os.path.isfile(audio):
        raise SettingError("audio", audio, "is not a file: give a sound or video file with audio")
    base = settings or (dreamer.settings if dreamer is not None else settings_from_preset())
    start, source_id = start_image(input, base, zoom, run.max_pixels)  # a bad input fails before the model loads
    fmask = still_mask(mask, mask_settings, (start.shape[1], start.shape[0]), run.max_pixels, "start image")
    if fmask is None and vary and "mask_strength" in vary:
        raise SettingError("mask_strength", None, "varies the mask's strength: give a mask")
    dreamer = build_dreamer(base, run, dreamer)
    plan = loop_plan(zoom.frames, zoom.loop, zoom.fade)
    fs = frame_settings(dreamer, zoom, vary, plan.frames, zoom.fps, audio, plan.frames)
    fs.check(range(plan.frames))
    job = ZoomJob(start, source_id, dreamer, zoom, fs, plan, audio, fmask)
    return run_job(job, output, run, Reporter(on_event, cancel))


def read_loop(path: str) -> Iterable[np.ndarray]:
    """The frames of a loop file (.gif, .mp4, .webm) or a folder of frames, as RGB uint8."""
    from ..io.sources import open_source
    return open_source(os.fspath(path)).frames()
