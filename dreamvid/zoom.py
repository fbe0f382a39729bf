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

import math
import os
import re
import sys
from typing import Iterable, List, NamedTuple, Optional, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .checkpoint import Checkpoint, checkpoint_folder, input_fingerprint
from .dream import DreamSettings
from .dreamer import Dreamer
from .errors import DreamvidError, Interrupted
from .media import open_sink, output_kind, read_image, resize_to_max_side
from .presets import settings_from_preset
from .settings import RunOptions, ZoomSettings

__all__ = ["zoom_loop", "affine_matrix", "zoom_step", "parse_colour", "start_image", "match_colour",
           "LoopPlan", "loop_plan", "fade_weight", "LoopStats", "loop_stats", "read_loop"]

_COLOUR_RE = re.compile(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


# --------------------------------------------------------------------------------------------
# The motion
# --------------------------------------------------------------------------------------------

def affine_matrix(width: int, height: int, zoom: float, rotate: float = 0.0,
                  translate: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The 2x3 matrix of one frame's motion (source -> destination pixel coordinates).

    Scale by `zoom` (>1 zooms in: content grows) and rotate by `rotate` degrees counter-clockwise
    about the image centre ((width-1)/2, (height-1)/2), then shift content by `translate` (dx, dy) px.
    """
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    m = cv2.getRotationMatrix2D(centre, float(rotate), float(zoom))
    m[0, 2] += float(translate[0])
    m[1, 2] += float(translate[1])
    return m


def zoom_step(rgb: np.ndarray, zoom: float, rotate: float = 0.0,
              translate: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """One frame's motion: (H, W, 3) uint8 or float32 in [0, 1] -> float32 (H, W, 3) in [0, 1].

    Bicubic resampling; borders reflected, so zooming out or shifting never shows black edges.
    """
    h, w = rgb.shape[:2]
    x = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32, copy=False)
    m = affine_matrix(w, h, zoom, rotate, translate)
    out = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, 0.0, 1.0, out=out)


# --------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------

def _stats(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of (H, W, 3) float."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return flat.mean(0), flat.std(0)


def match_colour(x: np.ndarray, mean: np.ndarray, std: np.ndarray, strength: float) -> np.ndarray:
    """Move (H, W, 3) float32 [0, 1] a fraction `strength` of the way to the per-channel `mean`/`std`.

    strength 0 leaves x alone, 1 matches exactly. The std gain is bounded (0.5 … 2) so a nearly flat
    frame is not blown up into noise.
    """
    if strength <= 0:
        return x
    m, s = _stats(x)
    gain = np.clip(std / np.maximum(s, 1e-6), 0.5, 2.0)
    matched = (x - m) * gain + mean
    out = x + strength * (matched.astype(np.float32) - x)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """(1 − w)·a + w·b with each channel's contrast kept at the blend of the two contrasts.

    Averaging two unrelated textures halves their contrast mid-fade (a visible grey dip); the
    std is rescaled to (1 − w)·std(a) + w·std(b) so the fade keeps its punch.
    """
    if w <= 0:
        return a
    if w >= 1:
        return b
    x = (1.0 - w) * a + w * b
    (ma, sa), (mb, sb) = _stats(a), _stats(b)
    return match_colour(x, (1 - w) * ma + w * mb, (1 - w) * sa + w * sb, 1.0)


# --------------------------------------------------------------------------------------------
# The start image
# --------------------------------------------------------------------------------------------

def parse_colour(spec: str) -> Optional[Tuple[int, int, int]]:
    """'#203040' or '#234' -> (r, g, b) ints; None if `spec` does not start with '#'.

    Raises DreamvidError for a '#...' that is not a 3- or 6-digit hex colour.
    """
    if not spec.startswith("#"):
        return None
    m = _COLOUR_RE.fullmatch(spec.strip())
    if not m:
        raise DreamvidError(f"bad colour '{spec}': write it as #RRGGBB or #RGB, e.g. #203040 (quote it in the shell)")
    hexa = m.group(1)
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    return tuple(int(hexa[i:i + 2], 16) for i in (0, 2, 4))


def smooth_noise(width: int, height: int, seed: int, std: float = 0.15) -> np.ndarray:
    """Seeded multi-scale value noise (H, W, 3) float32 around mid-grey, `std` per channel.

    Coarse cells (64 px) weigh most, fine cells (4 px) least: blotches with some grain, which the
    network turns into patterns far better than white noise.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x20A4])
    out = np.zeros((height, width, 3), np.float32)
    for cell in (64, 32, 16, 8, 4):
        gh, gw = max(2, math.ceil(height / cell) + 1), max(2, math.ceil(width / cell) + 1)
        grid = rng.random((gh, gw, 3), dtype=np.float32) - 0.5
        out += math.sqrt(cell) * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    out -= out.reshape(-1, 3).mean(0)
    out *= std / max(float(out.std()), 1e-6)
    return np.clip(out + 0.5, 0.0, 1.0)


def start_image(spec: str, settings: DreamSettings, zoom: ZoomSettings) -> Tuple[np.ndarray, dict]:
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
    rgb = read_image(spec)
    if zoom.max_side:
        rgb = resize_to_max_side(rgb, zoom.max_side)
    return rgb.astype(np.float32) / 255.0, {"image": input_fingerprint(spec)}


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


def _quantise(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def zoom_loop(input: str, output: str, settings: Optional[DreamSettings] = None,
              zoom: Optional[ZoomSettings] = None, run: Optional[RunOptions] = None,
              dreamer: Optional[Dreamer] = None) -> str:
    """Render an infinite-zoom dream into `output` (.gif, .mp4, .webm or folder/); returns `output`.

    input: an image file, 'noise', or a colour like '#203040' / '#234'.
    settings: the dream (default: the default preset); the first frame gets its full schedule,
    later frames zoom.frame_octaves / zoom.frame_iterations. zoom: motion, frame count, loop.
    run: device, weights, checkpointing. A stopped render resumes from the checkpoint beside the
    output (bit-identical). Bad input raises DreamvidError; Ctrl-C raises errors.Interrupted.
    """
    settings = settings or (dreamer.settings if dreamer is not None else settings_from_preset())
    zoom = (zoom or ZoomSettings()).validate()
    run = run or RunOptions()
    output_kind(output)  # an unknown output kind fails before any work
    start, source_id = start_image(input, settings, zoom)
    dreamer = dreamer or Dreamer(settings, run.device, run.weights, quiet=run.quiet)
    plan = loop_plan(zoom.frames, zoom.loop, zoom.fade)
    pixels = {k: v for k, v in zoom.to_dict().items() if k != "fps"}  # fps never changes a pixel
    identity = {"zoom_input": source_id, "dream": dreamer.identity, "zoom": pixels,
                "size": [start.shape[1], start.shape[0]]}

    ckpt = Checkpoint(checkpoint_folder(output, run.checkpoint_dir), identity, plan.rendered)
    with ckpt:
        done = ckpt.open(fresh=run.fresh)
        if 0 < done < plan.rendered and not run.quiet:
            print(f"dreamvid: resuming at frame {done} of {plan.rendered}", file=sys.stderr)
        if done < plan.rendered:
            _render(start, ckpt, dreamer, zoom, plan, done, run.quiet)
        try:
            _encode(output, ckpt, plan, zoom, run, start.shape[1], start.shape[0])
        except KeyboardInterrupt:
            raise Interrupted(f"stopped while encoding {output} (all {plan.rendered} frames are kept in "
                              f"{ckpt.folder}): run the same command again to finish") from None
    if not run.keep_frames:
        ckpt.remove()
    return output


def _encode(output: str, ckpt: Checkpoint, plan: LoopPlan, zoom: ZoomSettings, run: RunOptions,
            width: int, height: int) -> None:
    """Write the checkpoint frames in playing order to `output` (atomically, through media's sink)."""
    with open_sink(output, zoom.fps, width, height, quality=run.quality) as sink:
        for i in tqdm(plan.order, desc="encoding", unit="frame", disable=run.quiet, leave=False):
            frame = ckpt.load(i)
            if frame is None:
                raise DreamvidError(f"checkpoint frame {ckpt.frame_path(i)} is damaged: run the same "
                                    "command again to redo it")
            sink.write(frame)


def _render(start: np.ndarray, ckpt: Checkpoint, dreamer: Dreamer, zoom: ZoomSettings,
            plan: LoopPlan, done: int, quiet: bool) -> None:
    """Dream rendered frames done … plan.rendered − 1 into the checkpoint (order: see module doc)."""
    n, k = plan.frames, plan.fade
    octaves = zoom.frame_octaves
    iterations = zoom.frame_iterations

    def load(i: int) -> np.ndarray:
        frame = ckpt.load(i)
        if frame is None:  # done() checked them; only a file changed behind our back gets here
            raise DreamvidError(f"checkpoint frame {ckpt.frame_path(i)} is unreadable: run again to redo it")
        return frame

    def move(frame: np.ndarray) -> np.ndarray:
        return zoom_step(frame, zoom.zoom, zoom.rotate, zoom.translate)

    ref = None if done == 0 else _stats(load(0).astype(np.float32) / 255.0)
    prev = None if done == 0 else load(done - 1)
    # mean|T(c_0) − T(r_0)|: the distance the cross-fade closes linearly (see the module doc).
    fade_from = None if done <= n + 1 else _distance(move(load(n)), move(load(0)))
    bar = tqdm(total=plan.rendered, initial=done, unit="frame", desc="zooming", disable=quiet,
               dynamic_ncols=True)
    i = done
    try:
        for i in range(done, plan.rendered):
            if i == 0:
                out = dreamer(start, index=0)
            else:
                x = move(prev)
                j = i - n  # position in the cross-fade (c_j); negative on the chain r_i
                if j >= 1:
                    target = move(load(j - 1))
                    if fade_from is None:  # j == 1: prev is c_0, frame 0 is r_0
                        fade_from = _distance(x, target)
                    x = _blend(x, target, fade_weight(_distance(x, target), fade_from, j, k))
                out = dreamer(x, index=i if j < 0 else j, octaves=octaves, iterations=iterations)
                out = match_colour(out, ref[0], ref[1], zoom.steady)
            frame = _quantise(out)
            ckpt.save(i, frame)
            if i == 0:
                ref = _stats(frame.astype(np.float32) / 255.0)
            prev = frame
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        raise Interrupted(f"stopped at frame {i} of {plan.rendered}; the {i} finished frames are kept in "
                          f"{ckpt.folder}: run the same command again to resume") from None
    bar.close()


# --------------------------------------------------------------------------------------------
# Measuring a loop
# --------------------------------------------------------------------------------------------

class LoopStats(NamedTuple):
    """seam_ratio: mean |last − first| / median mean |f_{t+1} − f_t| (1 = the seam is a normal step).
    worst_step_ratio: the largest step (seam included) / that median. drift_percent: mean brightness
    of the middle frame vs the first, in percent. median_step: on a 0..1 scale."""

    frames: int
    seam_ratio: float
    worst_step_ratio: float
    drift_percent: float
    median_step: float


def loop_stats(frames: Iterable[np.ndarray]) -> LoopStats:
    """Seam and drift of a loop from its frames (RGB uint8 or float [0, 1], streamed).

    Steps are mean absolute differences over all pixels and channels on a 0..1 scale; only the
    first, previous and current frame are held, plus one number per frame.
    """
    first = prev = last = None
    steps: List[float] = []
    brightness: List[float] = []
    for f in frames:
        x = np.asarray(f)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        if first is None:
            first = x
        else:
            if x.shape != prev.shape:
                raise DreamvidError(f"frame {len(brightness)} is {x.shape[1]}x{x.shape[0]}, the first "
                                    f"is {first.shape[1]}x{first.shape[0]}: not one loop")
            steps.append(float(np.abs(x - prev).mean()))
        brightness.append(float(x.mean()))
        prev = last = x
    if first is None or not steps:
        raise DreamvidError("a loop needs at least 2 frames to measure")
    median = float(np.median(steps))
    seam = float(np.abs(last - first).mean())
    ratio = seam / max(median, 1e-9)
    worst = max(steps + [seam]) / max(median, 1e-9)
    mid = brightness[len(brightness) // 2]
    drift = 100.0 * (mid - brightness[0]) / max(brightness[0], 1e-9)
    return LoopStats(len(brightness), ratio, worst, drift, median)


def read_loop(path: str) -> Iterable[np.ndarray]:
    """The frames of a loop file (.gif, .mp4, .webm) or a folder of frames, as RGB uint8."""
    from .media import open_source
    return open_source(os.fspath(path)).frames()
