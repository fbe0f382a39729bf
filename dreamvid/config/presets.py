"""Named settings: data, in one place.

Each preset is a model, a description and the DreamSettings fields it sets (plus, for videos,
the schedule of frames after the first: see render.VideoSettings). Steps are in [0, 1] pixel
space: the Keras reference steps (on [-1, 1] inputs) are halved.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Dict, Optional

from ..errors import SettingError
from .settings import DEFAULT_LAYERS, DreamSettings, check_model


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    settings: Dict[str, object]
    video: Dict[str, object] = field(default_factory=dict)  # overrides of render.VideoSettings


def _keras(m2: float, m3: float, m4: float, m5: float, step: float, octaves: int, scale: float,
           max_loss: float, iterations: int = 20) -> Dict[str, object]:
    """A Keras-DeepDream reference setting on InceptionV3 (step given in Keras's [-1, 1] space)."""
    return dict(model="inception_v3",
                layers=(("mixed2", m2), ("mixed3", m3), ("mixed4", m4), ("mixed5", m5)),
                step=step / 2, iterations=iterations, octaves=octaves, octave_scale=scale,
                max_loss=max_loss)


_PRESETS = [
    Preset("dreamy", "EfficientNet-Lite0, mid-level eyes and swirls; quick, runs offline (default)",
           dict(model="efficientnet_lite0", layers=(("block8", 1.0), ("block10", 0.5)),
                step=0.015, iterations=8, octaves=4, octave_scale=1.4, jitter=16, lap_norm=4)),
    Preset("lite-deep", "EfficientNet-Lite0, deeper layers: animal faces and objects; offline",
           dict(model="efficientnet_lite0", layers=(("block11", 1.0), ("block13", 1.0)),
                step=0.025, iterations=14, octaves=5, octave_scale=1.4, jitter=24, lap_norm=4)),
    Preset("lite-texture", "EfficientNet-Lite0, shallow layers: fine patterns and textures; offline",
           dict(model="efficientnet_lite0", layers=(("block3", 1.0), ("block5", 0.5)),
                step=0.01, iterations=10, octaves=4, octave_scale=1.4, jitter=8)),
    Preset("seals", "InceptionV3 reference 'seals'", _keras(0.2, 0.5, 2.0, 1.5, 0.01, 6, 1.4, 10)),
    Preset("spaniel", "InceptionV3 reference 'spaniel': many fine octaves",
           _keras(0.5, 0.2, 1.1, 1.5, 0.01, 9, 1.1, 5)),
    Preset("whisper", "InceptionV3 reference 'whisper': faint, many fine octaves",
           _keras(0.02, 0.05, 0.01, 0.05, 0.01, 11, 1.1, 20)),
    Preset("polar-bears", "InceptionV3 reference 'polar-bears'", _keras(0.2, 0.5, 2.0, 1.5, 0.01, 8, 1.4, 10)),
    Preset("gentle", "InceptionV3 reference 'gentle': light touch", _keras(0.2, 0.1, 0.4, 0.3, 0.01, 8, 1.4, 10)),
    Preset("intense", "InceptionV3 reference 'intense': strong, high max_loss",
           _keras(1.2, 1.5, 3.0, 2.5, 0.01, 8, 1.4, 25)),
    Preset("wild", "InceptionV3 reference 'wild': big steps", _keras(0.2, 2.5, 2.0, 3.5, 0.05, 6, 1.4, 13)),
    Preset("wild-deep", "InceptionV3 reference 'wild-deep': big steps, more octaves",
           _keras(0.2, 2.5, 2.0, 3.5, 0.05, 8, 1.4, 13)),
    Preset("ocean", "InceptionV3 reference 'ocean': 50 iterations per octave",
           _keras(0.2, 3.0, 2.0, 1.5, 0.02, 7, 1.4, 10, iterations=50)),
    # Google's DeepDream notebook: step 1.5 in Caffe's 0-255 space, 10 steps, 4 octaves x 1.4, jitter 32.
    Preset("classic", "Caffe BVLC GoogLeNet inception_4c/output: Google's original DeepDream notebook",
           dict(model="bvlc_googlenet", layers=(("inception_4c/output", 1.0),), step=1.5 / 255, iterations=10,
                octaves=4, octave_scale=1.4, jitter=32, max_loss=None)),
    # The TensorFlow DeepDream tutorial on inception5h (render_deepdream: mixed4c, the same schedule).
    Preset("tf-mixed4c", "Google's inception5h mixed4c: the TensorFlow DeepDream tutorial",
           dict(model="inception5h", layers=(("mixed4c", 1.0),), step=1.5 / 255, iterations=10,
                octaves=4, octave_scale=1.4, jitter=32, max_loss=None)),
    Preset("places", "GoogLeNet Places365 inception_4c/output: buildings, arches, landscapes",
           dict(model="googlenet_places365", layers=(("inception_4c/output", 1.0),), step=1.5 / 255,
                iterations=10, octaves=4, octave_scale=1.4, jitter=32, max_loss=None)),
]

PRESETS: Dict[str, Preset] = {p.name: p for p in _PRESETS}
DEFAULT_PRESET = "dreamy"

_SETTING_NAMES = {f.name for f in fields(DreamSettings)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SettingError("preset", name, f"unknown preset '{name}': choose one of {', '.join(PRESETS)} "
                           "(see 'dreamvid --list-presets')", whole=True)
    return PRESETS[name]


def settings_from_preset(name: Optional[str] = None, **overrides) -> DreamSettings:
    """DreamSettings of preset `name` (default preset when None) with `overrides` (None = keep) applied."""
    preset = get_preset(name or DEFAULT_PRESET)
    values = dict(preset.settings)
    unknown = set(overrides) - _SETTING_NAMES
    if unknown:
        raise TypeError(f"unknown dream settings: {', '.join(sorted(unknown))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("model", values["model"]) != values["model"] and "layers" not in given:
        # The preset's layers belong to its own model: another model starts from its default layer.
        values["layers"] = ((DEFAULT_LAYERS[check_model(given["model"])], 1.0),)
    values.update(given)
    return DreamSettings(**values).validate()
