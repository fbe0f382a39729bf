"""Per-frame settings: the settings in force at frame i, from a constant base and varying values.

A render is configured by plain settings objects (DreamSettings, VideoSettings, ZoomSettings);
``vary`` maps some of their numeric fields to functions of the frame index::

    vary = {"step": lambda t: 0.01 + 0.0001 * t,       # DreamSettings.step
            "layers.block10": lambda t: t / 50,         # the weight of one layer of the mix
            "blend": lambda t: 0.85,                    # VideoSettings.blend
            "zoom": lambda t: 1.02 + 0.01 * (t > 24)}   # ZoomSettings.zoom

``FrameSettings.at(i)`` gives the settings objects of frame i (integers rounded, every value
range-checked as a constant would be; an out-of-range value names the frame). The frame index is
the absolute index in the input (video) or in the loop (zoom), so a segment of a render sees the
same values as the whole render. The model is never rebuilt: only the numbers change.

A varying value may also need to know the render first (a schedule's ``T``, ``fps``, the seed,
the sound's loudness): then it has ``bind(context: RenderContext) -> Varying``, and the render
binds it once it has opened its input (``needs_audio = True`` asks for the loudness and beats).

Checkpoints record what varies by the values it takes over the render's frames (``identity``),
so a changed function is refused on resume, named by its key. A function may carry a ``text``
attribute (a schedule string); it is shown in place of the hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

from ..errors import DreamvidError, SettingError
from .settings import DreamSettings, VideoSettings, ZoomSettings

Varying = Callable[[int], float]


@dataclass(frozen=True)
class RenderContext:
    """What a render knows once its input is open, for values that depend on it.

    frames: frames in the render (T); fps: its rate; seed: DreamSettings.seed. loudness and beat:
    one value per frame index of the input (or loop), both in [0, 1] (smoothed loudness; 1 at an
    onset, decaying), or None when the render has no sound or nothing asked for it.
    """

    frames: int
    fps: Fraction
    seed: int
    loudness: Optional[Sequence[float]] = None
    beat: Optional[Sequence[float]] = None

#: Fields that may vary per frame, per settings group. Layer weights are "layers.NAME".
VARYING_FIELDS = {
    "dream": ("step", "iterations", "octaves", "octave_scale", "max_loss", "jitter", "lap_norm",
              "l2_decay", "blur_every", "blur_sigma"),
    "video": ("blend", "next_iterations", "next_octaves", "next_iteration_ratio", "cut_below"),
    "zoom": ("zoom", "rotate", "translate_x", "translate_y", "frame_iterations", "frame_octaves", "steady"),
    # MaskSettings.strength: read by the render with FrameSettings.value (the mask is not a
    # settings object of at()); any render with a mask.
    "mask": ("mask_strength",),
}
_INTEGER = {"iterations", "octaves", "jitter", "lap_norm", "blur_every", "next_iterations",
            "next_octaves", "frame_iterations", "frame_octaves"}
LAYER_PREFIX = "layers."


def varying_keys(dream: DreamSettings) -> Tuple[str, ...]:
    """Every key `vary` accepts for renders with these dream settings."""
    layers = tuple(LAYER_PREFIX + name for name, _ in dream.layers)
    return (VARYING_FIELDS["dream"] + layers + VARYING_FIELDS["video"] + VARYING_FIELDS["zoom"]
            + VARYING_FIELDS["mask"])


class FrameSettings:
    """The settings of each frame: ``at(i) -> (DreamSettings, other)``, other being the
    VideoSettings or ZoomSettings given (or None).

    dream, other: the constant base. vary: key -> function of the frame index (see module doc).
    """

    def __init__(self, dream: DreamSettings, other=None, vary: Optional[Mapping[str, Varying]] = None):
        self.dream, self.other = dream, other
        self.vary: Dict[str, Varying] = dict(vary or {})
        allowed = set(varying_keys(dream))
        for key, fn in self.vary.items():
            if key not in allowed:
                raise SettingError(key, fn, "cannot vary per frame: choose from "
                                   + ", ".join(sorted(allowed)))
            if not callable(fn):
                raise SettingError(key, fn, "must be a function of the frame index (or a schedule)")
            group = _group(key)
            if group in ("video", "zoom") and not _fits(group, other):
                raise SettingError(key, fn, f"is a {group} setting: it only varies in a {group} render")
        self._cache: Dict[int, tuple] = {}

    @property
    def needs_audio(self) -> bool:
        return any(getattr(fn, "needs_audio", False) for fn in self.vary.values())

    def bind(self, context: RenderContext) -> "FrameSettings":
        """A copy whose values that have ``bind`` are bound to `context` (see module doc)."""
        bound = {k: (fn.bind(context) if hasattr(fn, "bind") else fn) for k, fn in self.vary.items()}
        return FrameSettings(self.dream, self.other, bound)

    @property
    def constant(self) -> bool:
        return not self.vary

    def value(self, key: str, frame: int) -> float:
        """The value of one varying key at `frame` (rounded for integer fields)."""
        try:
            v = float(self.vary[key](frame))
        except SettingError:
            raise
        except DreamvidError as e:  # a schedule's own error already says what went wrong
            raise SettingError(key, None, str(e), frame) from None
        except (ArithmeticError, ValueError, TypeError) as e:
            raise SettingError(key, None, f"could not be computed ({e})", frame) from None
        if v != v or v in (float("inf"), float("-inf")):
            raise SettingError(key, v, "is not a finite number", frame)
        return float(round(v)) if _field(key) in _INTEGER else v

    def at(self, frame: int):
        """(DreamSettings, VideoSettings | ZoomSettings | None) in force at `frame`."""
        if not self.vary:
            return self.dream, self.other
        hit = self._cache.get(frame)
        if hit is not None:
            return hit
        values = {k: self.value(k, frame) for k in self.vary}
        dream_changes = {k: _cast(k, v) for k, v in values.items() if _group(k) == "dream" and "." not in k}
        weights = {k[len(LAYER_PREFIX):]: v for k, v in values.items() if k.startswith(LAYER_PREFIX)}
        if weights:
            dream_changes["layers"] = tuple((n, weights.get(n, w)) for n, w in self.dream.layers)
        other_changes = {k: _cast(k, v) for k, v in values.items() if _group(k) in ("video", "zoom")}
        if "translate_x" in other_changes or "translate_y" in other_changes:
            dx, dy = self.other.translate
            other_changes["translate"] = (other_changes.pop("translate_x", dx), other_changes.pop("translate_y", dy))
        try:
            dream = self.dream.replace(**dream_changes).validate() if dream_changes else self.dream
            other = self.other.replace(**other_changes).validate() if other_changes else self.other
        except SettingError as e:
            raise SettingError(e.field, e.value, e.reason, frame) from None
        except DreamvidError as e:
            raise DreamvidError(f"{e} (at frame {frame})") from None
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[frame] = (dream, other)
        return dream, other

    def check(self, frames: Iterable[int]) -> None:
        """Range-check every frame's settings now, before any work (SettingError names the frame)."""
        if self.vary:
            for i in frames:
                self.at(i)

    def identity(self, frames: Iterable[int]) -> Dict[str, str]:
        """What varies, for checkpoint manifests: key -> its text, or a hash of its values over `frames`."""
        frames = list(frames)
        out = {}
        for key in sorted(self.vary):
            values = [self.value(key, i) for i in frames]
            digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]
            text = getattr(self.vary[key], "text", None)
            out[key] = f"{text} [{digest}]" if text else f"values {digest}"
        return out


def _field(key: str) -> str:
    return key[len(LAYER_PREFIX):] if key.startswith(LAYER_PREFIX) else key


def _group(key: str) -> str:
    if key.startswith(LAYER_PREFIX):
        return "dream"
    for group, names in VARYING_FIELDS.items():
        if key in names:
            return group
    raise KeyError(key)


def _fits(group: str, other) -> bool:
    return isinstance(other, VideoSettings if group == "video" else ZoomSettings)


def _cast(key: str, v: float):
    return int(v) if _field(key) in _INTEGER else v
