"""Page fields -> settings objects: blank fields take the preset's value, numbers and schedules are
parsed here, and the defaults, presets and valid ranges come from dreamvid.config (never restated).
Setting errors name fields by the page's labels (LABELS)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from ...config.presets import DEFAULT_PRESET, get_preset, settings_from_preset
from ...config.schedule import Schedule, is_number
from ...config.settings import MaskSettings, VideoSettings, ZoomSettings
from ...config.vary import _INTEGER as INTEGER_FIELDS
from ...errors import DreamvidError, SettingError

#: Page labels of the settings fields; SettingError messages name fields by these.
LABELS = {
    "preset": "Preset", "model": "Model", "layers": "Layer weights", "step": "Step",
    "iterations": "Iterations", "octaves": "Octaves", "seed": "Seed", "max_side": "Max side",
    "blend": "Blend", "next_iterations": "Iterations, later frames", "flow": "Flow",
    "start": "First frame", "end": "Stop before frame", "frames": "Frames", "zoom": "Zoom per frame",
    "rotate": "Rotation per frame", "frame_iterations": "Iterations per new frame",
    "frame_octaves": "Octaves per new frame", "steady": "Colour hold", "loop": "Seamless loop",
    "begin": "Start from", "mask": "Mask", "mask_feather": "Mask feather", "invert_mask": "Invert mask",
    "mask_strength": "Mask strength", "preview_frames": "Preview frames",
}
SCHEDULE_INFO = ("Blank fields take the preset's value. *Schedulable* fields also take a value per frame: "
                 "`0:(1), 30:(2)` goes from 1 at frame 0 to 2 at frame 30; `1 + 0.1*sin(t/4)` is an "
                 "expression of the frame index t.")


def error_text(e: DreamvidError) -> str:
    """The one line the page shows for `e` (setting errors name the page's labels)."""
    return e.render(LABELS) if isinstance(e, SettingError) else str(e)



def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def field_value(key: str, value: Any, vary: Optional[Dict[str, Schedule]] = None):
    """A field as the settings take it: blank -> None (the preset's or library's value), a number
    (whole for integer fields), or, when `vary` is given, a schedule string -> ``vary[key]``."""
    if _blank(value):
        return None
    text = str(value).strip()
    if is_number(text):
        v = float(text)
        if key in INTEGER_FIELDS or key in ("seed", "max_side", "start", "end", "frames"):
            if not v.is_integer():
                raise SettingError(key, text, "must be a whole number")
            return int(v)
        return v
    if vary is None:
        raise SettingError(key, text, "must be a number here (schedules vary per frame: use them "
                                      "for videos and zoom loops)")
    sched = Schedule(text, key)
    if sched.constant is not None:
        return int(round(sched.constant)) if key in INTEGER_FIELDS else sched.constant
    vary[key] = sched
    return None


def dream_settings(v: Dict[str, Any], vary: Optional[Dict[str, Schedule]] = None):
    """DreamSettings from the page's dream fields (preset, model, layers, step, ...)."""
    preset = get_preset(v.get("preset") or DEFAULT_PRESET)
    layers = None
    if not _blank(v.get("layers")):
        from ...engine.objectives import parse_layer_weights  # torch: loaded with the job
        layers = tuple(parse_layer_weights(str(v["layers"])))
    return settings_from_preset(
        preset.name, model=v.get("model") or None, layers=layers,
        step=field_value("step", v.get("step"), vary),
        iterations=field_value("iterations", v.get("iterations"), vary),
        octaves=field_value("octaves", v.get("octaves"), vary),
        seed=field_value("seed", v.get("seed")))


def video_settings(v: Dict[str, Any], vary: Dict[str, Schedule]) -> VideoSettings:
    base = VideoSettings(**get_preset(v.get("preset") or DEFAULT_PRESET).video)
    given = dict(blend=field_value("blend", v.get("blend"), vary),
                 next_iterations=field_value("next_iterations", v.get("next_iterations"), vary),
                 flow=v.get("flow") or None, start=field_value("start", v.get("start")),
                 end=field_value("end", v.get("end")), max_side=field_value("max_side", v.get("max_side")))
    return base.replace(**{k: x for k, x in given.items() if x is not None}).validate()


def zoom_settings(v: Dict[str, Any], vary: Dict[str, Schedule]) -> ZoomSettings:
    given = dict(frames=field_value("frames", v.get("frames")),
                 zoom=field_value("zoom", v.get("zoom"), vary),
                 rotate=field_value("rotate", v.get("rotate"), vary),
                 frame_iterations=field_value("frame_iterations", v.get("frame_iterations"), vary),
                 frame_octaves=field_value("frame_octaves", v.get("frame_octaves"), vary),
                 steady=field_value("steady", v.get("steady"), vary),
                 max_side=field_value("max_side", v.get("max_side")))
    z = ZoomSettings().replace(**{k: x for k, x in given.items() if x is not None})
    if v.get("loop") is not None:
        z = z.replace(loop=bool(v["loop"]))
    return z.validate()


def mask_settings(v: Dict[str, Any], vary: Optional[Dict[str, Schedule]] = None) -> MaskSettings:
    """MaskSettings from the mask fields (blank = the library's value); the strength may vary
    when `vary` is given (videos, zoom loops)."""
    given = dict(feather=field_value("mask_feather", v.get("mask_feather")),
                 strength=field_value("mask_strength", v.get("mask_strength"), vary),
                 invert=bool(v.get("invert_mask")) or None)
    return MaskSettings(**{k: x for k, x in given.items() if x is not None}).validate()


def preview_choice(text: Any):
    """The Preview frames field -> (frames, count): blank = the library's count, one whole number
    = that many frames spread over the range, a list like ``0, 24, 48`` = those frames."""
    if _blank(text):
        return None, None
    parts = [t.strip() for t in str(text).replace(";", ",").split(",") if t.strip()]
    if not all(t.isdigit() for t in parts):
        raise SettingError("preview_frames", str(text).strip(),
                           "must be a number of frames (like 4) or frame indices (like 0, 24, 48)")
    if len(parts) == 1:
        return None, int(parts[0])
    return [int(t) for t in parts], None


def preset_hints(name: Optional[str]) -> Dict[str, str]:
    """What a blank dream field means under preset `name`: field -> its value, as text."""
    s = settings_from_preset(name or DEFAULT_PRESET)
    return {"model": s.model, "layers": ", ".join(f"{n}={w:g}" for n, w in s.layers),
            "step": f"{s.step:g}", "iterations": str(s.iterations), "octaves": str(s.octaves),
            "seed": str(s.seed)}


# Where each tab's values go: page field -> settings key (the function's parameter names).
DREAM_FIELDS = ("preset", "model", "step", "iterations", "octaves", "layers", "seed")
MASK_FIELDS = ("mask", "mask_feather", "invert_mask", "mask_strength")
TAB_FIELDS = {
    "image": ("upload",) + DREAM_FIELDS + ("max_side",) + MASK_FIELDS,
    "video": ("upload",) + DREAM_FIELDS + ("max_side", "blend", "next_iterations", "flow", "start", "end")
    + MASK_FIELDS,
    "zoom": ("upload", "begin") + DREAM_FIELDS + ("max_side", "frames", "zoom", "rotate", "frame_iterations",
                                                  "frame_octaves", "steady", "loop") + MASK_FIELDS,
}
