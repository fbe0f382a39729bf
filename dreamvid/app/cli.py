"""Command line: parse arguments into settings and call the library. Nothing else lives here.

    dreamvid INPUT -o OUTPUT [--preset NAME] [flags]       image, video, frame folder or glob
    dreamvid a.mp4 b.mp4 … -o FOLDER/ [flags]              a batch (also a folder or glob of videos)
    dreamvid preview INPUT -o sheet.png [--frames 0,120]   a few frames dreamed, in a labelled grid
    dreamvid zoom INPUT -o OUTPUT [--frames N] [--zoom F]   an endless zoom loop
    dreamvid live --camera 0 --window | --realtime F -o O   a camera, stream or file dreamed live
    dreamvid schedule --frames N --zoom "0:(1), 30:(1.05)"  values per frame (CSV, --plot)
    dreamvid --list-models | --list-presets | --list-layers MODEL
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, List, Optional, Sequence, Tuple

from .. import __version__
from ..config.presets import DEFAULT_PRESET, PRESETS, get_preset, settings_from_preset
from ..config.settings import (CARRY_KERNELS, PRECISIONS, PREVIEW_COUNT, PREVIEW_SIDE, DreamSettings, MaskSettings,
                               RunOptions, VideoSettings, ZoomSettings)
from ..engine.models import MODELS, layer_table
from ..engine.objectives import parse_layer_weights
from ..errors import DreamvidError, SettingError
from ..io.fps import parse_fps
from .schedule_cmd import add_schedule_flags, take_schedules
from .schedule_cmd import flag_names as schedule_flag_names


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, like every other bad input
        raise DreamvidError(f"{message} (see 'dreamvid --help')")


def _add_dream_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dream (override the preset)")
    g.add_argument("--preset", help=f"named settings (default: {DEFAULT_PRESET}); see --list-presets")
    g.add_argument("--model", help="network; see --list-models")
    g.add_argument("--weights", help="local state dict for the model, or 'random' (tests/benchmarks)")
    g.add_argument("--layers", help="weighted layer mix, e.g. mixed3=0.5,mixed4=2.0")
    g.add_argument("--channel", help="maximise one channel, e.g. mixed4:70")
    g.add_argument("--class", dest="class_index", type=int, help="visualise class N of the model (ImageNet: 0..999)")
    g.add_argument("--guide", help="dream toward the features of this image")
    g.add_argument("--step", type=float, help="ascent step in [0,1] pixel space")
    g.add_argument("--iterations", type=int, help="ascent steps per octave")
    g.add_argument("--octaves", type=int, help="number of octaves")
    g.add_argument("--octave-scale", type=float, help="size ratio between octaves (e.g. 1.4)")
    g.add_argument("--max-loss", type=float, help="stop an octave once the loss passes this")
    g.add_argument("--jitter", type=int, help="random shift in px before each step")
    g.add_argument("--lap-norm", type=int, help="Laplacian-pyramid gradient normalisation levels (0=off)")
    g.add_argument("--l2-decay", type=float, help="per-step pull toward grey (class visualisation)")
    g.add_argument("--blur-every", type=int, help="blur every N steps (class visualisation)")
    g.add_argument("--tile-size", type=int, help="process larger images in tiles of this size")
    g.add_argument("--seed", type=int, help="random seed (default 0): same seed, same pixels")
    r = p.add_argument_group("run")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    r.add_argument("--precision", default=RunOptions.precision, choices=PRECISIONS,
                   help=f"network precision (default {RunOptions.precision}): auto picks bf16 on CPUs and GPUs "
                        "with native bf16, fp16 on older CUDA GPUs, else fp32; the image stays fp32")
    r.add_argument("--max-side", type=int, help="dream at a reduced size: longest side in px")
    r.add_argument("--max-pixels", type=int, default=RunOptions.max_pixels, metavar="N",
                   help=f"refuse input frames of more than N pixels, read from the header before decoding "
                        f"(default {RunOptions.max_pixels:_}: {RunOptions.max_pixels // 10**6} MP)")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _add_mask_flags(p: argparse.ArgumentParser, still: bool = False) -> None:
    m = p.add_argument_group("mask: dream only part of the picture")
    m.add_argument("--mask", metavar="FILE", help="white = dream, black = keep the input, grey between: an image "
                   "(the same mask for every frame)" + ("" if still else ", or a video or frame folder with one "
                                                        "mask per frame"))
    m.add_argument("--mask-feather", type=float, metavar="PX", help="soften the mask's edges: a Gaussian of this "
                   f"sigma in px at the dream's size (default {MaskSettings.feather:g})")
    m.add_argument("--invert-mask", action="store_true", help="dream where the mask is black instead")
    m.add_argument("--mask-strength", type=float, help="how much the mask holds the dream back, 0..1 "
                   f"(default {MaskSettings.strength:g}: as drawn; 0: dream everywhere)")


def mask_options(a: argparse.Namespace) -> Tuple[Optional[str], Optional[MaskSettings]]:
    """(mask path, MaskSettings) from the flags; (None, None) when no mask flag is given."""
    given = dict(feather=a.mask_feather, invert=a.invert_mask or None, strength=a.mask_strength)
    given = {k: v for k, v in given.items() if v is not None}
    if a.mask is None and not given:
        return None, None
    if a.mask is None:
        raise DreamvidError("--mask-feather, --invert-mask and --mask-strength shape a mask: add --mask FILE")
    return a.mask, MaskSettings(**given).validate()


def _add_render_flags(p: argparse.ArgumentParser) -> None:
    r = p.add_argument_group("output and resuming")
    r.add_argument("--quality", type=int, help="encoder CRF (lower = better; default per format)")
    r.add_argument("--keep-frames", action="store_true", help="keep the checkpoint frames after encoding")
    r.add_argument("--fresh", action="store_true", help="discard an existing checkpoint and start over")
    r.add_argument("--checkpoint-dir", help="where to keep the checkpoint folder (default: beside the output)")
    r.add_argument("--chunk-frames", type=int, metavar="N",
                   help=f"encode .mp4/.webm outputs in chunks of N frames as they are dreamed, joined at the "
                        f"end (default {RunOptions.chunk_frames}; 0 = keep every frame until one encode)")


def _add_dist_flags(p: argparse.ArgumentParser, zoom: bool = False) -> None:
    """--workers, --ray-address (and for videos --segment-frames, --warmup): a render over Ray."""
    if zoom:  # accepted only to say why a loop cannot be split
        p.add_argument("--workers", type=int, help=argparse.SUPPRESS)
        p.add_argument("--ray-address", help=argparse.SUPPRESS)
        return
    from ..pipeline.segments import DEFAULT_FADE, DEFAULT_SEGMENT_FRAMES, DEFAULT_WARMUP
    d = p.add_argument_group("many GPUs or machines (Ray: pip install 'dreamvid[ray]')")
    d.add_argument("--workers", type=int, metavar="N",
                   help="render with N Ray workers, each a segment at a time (default with --ray-address: "
                        "one per GPU of the cluster, else one per CPU)")
    d.add_argument("--ray-address", metavar="ADDR",
                   help="join a running Ray cluster: HOST:PORT, or 'auto' (RAY_ADDRESS); default: a local Ray")
    d.add_argument("--segment-frames", type=int, metavar="F",
                   help=f"frames per segment at most (default: the film shared out over the workers, at most "
                        f"{DEFAULT_SEGMENT_FRAMES}); scene cuts start segments too")
    d.add_argument("--warmup", type=int, metavar="W",
                   help=f"frames dreamed before each segment and dropped (default {DEFAULT_WARMUP})")
    d.add_argument("--seam-fade", type=int, metavar="K",
                   help=f"frames cross-faded where two segments meet inside a scene (default {DEFAULT_FADE}; "
                        "0 = a hard switch; seams at scene cuts are exact)")


def build_main_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dreamvid", description="DeepDream for images, videos, frame folders and zoom loops. "
                "'dreamvid zoom --help' for infinite-zoom loops, 'dreamvid live --help' for cameras and streams.")
    p.add_argument("input", nargs="*", help="image, video, folder of frames, or a quoted glob; several inputs, "
                   "a folder of videos or a glob of videos make a batch (-o names a folder)")
    p.add_argument("-o", "--output", help="output .png/.jpg, .mp4, .webm, .gif or folder/ (a batch: a folder)")
    p.add_argument("--version", action="version", version=f"dreamvid {__version__}")
    p.add_argument("--list-models", action="store_true", help="list the models and exit")
    p.add_argument("--list-layers", metavar="MODEL", help="list a model's dreamable layers and exit")
    p.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    _add_dream_flags(p)
    _add_video_flags(p)
    _add_mask_flags(p)
    _add_render_flags(p)
    _add_dist_flags(p)
    return add_schedule_flags(p)


def _add_video_flags(p: argparse.ArgumentParser) -> None:
    v = p.add_argument_group("video")
    v.add_argument("--flow", help="dis (default) | farneback | static (no warping) | none (independent frames)")
    v.add_argument("--blend", type=float, help=f"weight of the carried dream, below 1 (default {VideoSettings.blend})")
    v.add_argument("--next-iterations", type=int, help="iterations per octave after the first frame")
    v.add_argument("--next-octaves", type=int, help="octaves after the first frame")
    v.add_argument("--temporal-weight", type=float, help="pull toward the carried dream after each step of a "
                   f"later frame, share of the gap per step, 0 = off (default {VideoSettings.temporal_weight})")
    v.add_argument("--temporal-damping", type=float, help="damping of the ascent step where the dream "
                   f"carries over, 0..1 (default {VideoSettings.temporal_damping})")
    v.add_argument("--temporal-fresh", type=float, help="extra ascent step where the frame shows something "
                   f"new (disocclusions, a pan's entering edge), 0..4 (default {VideoSettings.temporal_fresh})")
    v.add_argument("--temporal-band", type=float, help="the pull holds the frequencies a Gaussian of this sigma "
                   f"(px) keeps, finer detail is dreamed anew in place; 0 = all (default {VideoSettings.temporal_band})")
    v.add_argument("--carry-anchor", type=int, help="frames between anchors: the carried dream is sampled once "
                   "from the last anchor along the composed flows instead of resampled every frame, so it does "
                   f"not blur; 0 = off (default {VideoSettings.carry_anchor})")
    v.add_argument("--flow-max-side", type=int, metavar="PX", help="estimate the optical flow on frames shrunk "
                   "to this long side (cheaper; smaller frames keep their size); 0 = at the frame's own size "
                   f"(default {VideoSettings.flow_max_side or 0})")
    v.add_argument("--carry-kernel", choices=CARRY_KERNELS, help="how the anchor's dream is sampled "
                   f"(default {VideoSettings.carry_kernel})")
    v.add_argument("--next-fine-iterations", type=int, help="ascent steps at the full-size octave of a later "
                   "frame (default: as --next-iterations)")
    v.add_argument("--start", type=int, help="first frame index (default 0)")
    v.add_argument("--end", type=int, help="frame index to stop before (default: the end)")
    v.add_argument("--fps", help="frame rate for frame folders (e.g. 25 or 30000/1001)")
    v.add_argument("--no-audio", action="store_true", help="do not carry the input's audio")


def build_preview_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dreamvid preview", description="Dream a few frames at a small size and lay them out in a "
                "labelled grid (one row per preset, one column per frame), to see a render before it runs.")
    p.add_argument("input", help="video, folder of frames, quoted glob or image")
    p.add_argument("-o", "--output", required=True, help="the sheet: .png or .jpg")
    g = p.add_argument_group("preview")
    g.add_argument("--frames", help="frame indices, e.g. 0,120,240")
    g.add_argument("--count", type=int, help=f"frames spread evenly over the range (default {PREVIEW_COUNT})")
    g.add_argument("--presets", help="compare presets, one row each, e.g. dreamy,lite-deep (the dream flags "
                   "override each)")
    g.add_argument("--run-up", type=int, default=0, metavar="N", help="dream N frames before each one with the "
                   "carried dream, as a render started there would (default 0: the first-frame dream)")
    _add_dream_flags(p)
    _add_video_flags(p)
    _add_mask_flags(p)
    for action in p._actions:
        if action.dest == "max_side":
            action.help = f"{action.help} (default {PREVIEW_SIDE})"
    return add_schedule_flags(p)


def build_zoom_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dreamvid zoom", description="An endless, seamless infinite-zoom dream loop.")
    p.add_argument("input", help="image, 'noise', or a colour like '#203040'")
    p.add_argument("-o", "--output", required=True, help="output .gif, .mp4, .webm or folder/")
    z = p.add_argument_group("zoom")
    z.add_argument("--frames", type=int, help=f"number of frames (default {ZoomSettings.frames})")
    z.add_argument("--zoom", type=float, help=f"zoom factor per frame (default {ZoomSettings.zoom})")
    z.add_argument("--rotate", type=float, help="rotation in degrees per frame (default 0)")
    z.add_argument("--translate", help="shift in px per frame, DX,DY (default 0,0)")
    z.add_argument("--fps", help=f"output frame rate (default {ZoomSettings.fps}); motion is per frame")
    z.add_argument("--size", help="WxH when starting from noise or a colour (default %dx%d)" % ZoomSettings.size)
    z.add_argument("--frame-iterations", type=int, help="iterations per octave for each new frame")
    z.add_argument("--frame-octaves", type=int,
                   help=f"octaves for each new frame (default {ZoomSettings.frame_octaves})")
    z.add_argument("--fade", type=int, help="frames of cross-fade closing the loop (default frames/4)")
    z.add_argument("--steady", type=float,
                   help=f"colour hold toward the first frame, 0..1 (default {ZoomSettings.steady})")
    z.add_argument("--no-loop", action="store_true", help="an open-ended sequence, not a seamless loop")
    z.add_argument("--audio", help="a soundtrack (muxed into .mp4/.webm; its loudness and beats drive a and beat)")
    _add_dream_flags(p)
    _add_mask_flags(p, still=True)
    _add_render_flags(p)
    _add_dist_flags(p, zoom=True)
    return add_schedule_flags(p, zoom=True)


_FLAG_NAMES: Dict[str, str] = {}


def flag_names() -> Dict[str, str]:
    """Settings field -> the flag that sets it (``class_index`` -> ``--class``), read from the
    parsers' own options (an option's dest is the field it fills), so a flag is named in one place."""
    if not _FLAG_NAMES:
        from .live_cmd import build_live_parser
        for build in (build_main_parser, build_zoom_parser, build_preview_parser, build_live_parser):
            for action in build()._actions:
                flags = [o for o in action.option_strings if o.startswith("--")]
                if flags:
                    _FLAG_NAMES.setdefault(action.dest, flags[0])
    return _FLAG_NAMES


def error_message(e: DreamvidError) -> str:
    """The one line the terminal shows for `e`: setting errors name the flag, not the field."""
    if not isinstance(e, SettingError):
        return str(e)
    layer = schedule_flag_names([e.field]) if e.field.startswith("layers.") else {}  # --layer-weight NAME
    return e.render({**flag_names(), **layer})


def dream_settings(a: argparse.Namespace, preset: Optional[str] = None) -> DreamSettings:
    """The dream of the flags: `preset` (default --preset's) with the flags given over it."""
    layers = tuple(parse_layer_weights(a.layers)) if a.layers else None
    return settings_from_preset(
        preset or a.preset, model=a.model, layers=layers, channel=a.channel, class_index=a.class_index,
        guide=a.guide, step=a.step, iterations=a.iterations, octaves=a.octaves,
        octave_scale=a.octave_scale, max_loss=a.max_loss, jitter=a.jitter, lap_norm=a.lap_norm,
        l2_decay=a.l2_decay, blur_every=a.blur_every, tile_size=a.tile_size, seed=a.seed)


def run_options(a: argparse.Namespace) -> RunOptions:
    return RunOptions(device=a.device, weights=a.weights, precision=a.precision,
                      audio=not getattr(a, "no_audio", False), quality=a.quality,
                      keep_frames=a.keep_frames, fresh=a.fresh, checkpoint_dir=a.checkpoint_dir,
                      max_pixels=a.max_pixels, chunk_frames=RunOptions.chunk_frames if a.chunk_frames is None else (a.chunk_frames or None)).validate()


def _video_settings(a: argparse.Namespace) -> VideoSettings:
    base = VideoSettings(**get_preset(a.preset or DEFAULT_PRESET).video)
    given = dict(flow=a.flow, blend=a.blend, next_iterations=a.next_iterations, next_octaves=a.next_octaves,
                 temporal_weight=a.temporal_weight, temporal_damping=a.temporal_damping,
                 temporal_fresh=a.temporal_fresh, temporal_band=a.temporal_band, carry_anchor=a.carry_anchor,
                 carry_kernel=a.carry_kernel, next_fine_iterations=a.next_fine_iterations,
                 start=a.start, end=a.end, max_side=a.max_side, fps=parse_fps(a.fps) if a.fps else None)
    given = {k: v for k, v in given.items() if v is not None}
    if a.flow_max_side is not None:
        given["flow_max_side"] = a.flow_max_side or None  # 0: the frame's own size
    return base.replace(**given).validate()


def _zoom_settings(a: argparse.Namespace) -> ZoomSettings:
    def pair(text: str, sep: str, what: str, cast=float):
        try:
            x, y = (cast(t) for t in text.lower().split(sep))
            return x, y
        except ValueError:
            raise DreamvidError(f"bad {what} '{text}'") from None
    given = dict(frames=a.frames, zoom=a.zoom, rotate=a.rotate, max_side=a.max_side,
                 translate=pair(a.translate, ",", "--translate (write DX,DY)") if a.translate else None,
                 fps=parse_fps(a.fps) if a.fps else None,
                 size=pair(a.size, "x", "--size (write WxH)", int) if a.size else None,
                 frame_iterations=a.frame_iterations, frame_octaves=a.frame_octaves,
                 fade=a.fade, steady=a.steady)
    z = ZoomSettings().replace(**{k: v for k, v in given.items() if v is not None})
    return z.replace(loop=not a.no_loop).validate()


def _print_lists(a: argparse.Namespace) -> bool:
    if a.list_models:
        for name, spec in MODELS.items():
            print(f"{name:20s} {spec.description}")
            if spec.weights.credit:
                print(f"{'':20s}   {spec.weights.credit}")
        return True
    if a.list_presets:
        for name, p in PRESETS.items():
            spec = MODELS[p.settings["model"]]
            download = "" if spec.weights.shipped else " (downloads its weights on first use)"
            print(f"{name:14s} {p.settings['model']:20s} {p.description}{download}")
        return True
    if a.list_layers:
        rows = layer_table(a.list_layers)
        width = max(16, *(len(name) for name, _, _ in rows))
        graph_spelling = False  # inception5h also answers to the TF graph's import/NAME[/conv]
        for name, channels, aliases in rows:
            shown = [x for x in aliases if not x.startswith("import/") and not x.endswith("/conv")]
            graph_spelling |= len(shown) < len(aliases)
            also = f"  (also {', '.join(shown)})" if shown else ""
            print(f"{name:{width}s} {channels:5d} channels{also}")
        if graph_spelling:
            print("(each layer also as import/NAME, each *_pre_relu also as import/NAME/conv)")
        return True
    return False


def _dist_options(a: argparse.Namespace) -> Optional[dict]:
    """render_distributed's keywords when --workers or --ray-address is given, else None."""
    if a.workers is None and a.ray_address is None:
        for flag, value in (("--segment-frames", a.segment_frames), ("--warmup", a.warmup), ("--seam-fade", a.seam_fade)):
            if value is not None:
                raise DreamvidError(f"{flag} shapes a render over Ray workers: add --workers N or --ray-address")
        return None
    return dict(workers=a.workers, ray_address=a.ray_address, segment_frames=a.segment_frames, warmup=a.warmup,
                seam_fade=a.seam_fade)


def main(argv: Optional[Sequence[str]] = None, cancel=None) -> int:
    """Run the CLI; raises DreamvidError for bad input (the caller maps it to exit code 2).

    cancel: a threading.Event (or anything with is_set()) that stops a render cleanly; the
    entry point sets it on Ctrl-C / SIGTERM.
    """
    import sys
    from .progress import TerminalProgress
    args: List[str] = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "schedule":  # values per frame as CSV (and a plot), before rendering
        from .schedule_cmd import main as schedule_main
        return schedule_main(args[1:], parser_class=_Parser)
    if args and args[0] == "ui":  # the web page (Gradio, the 'ui' extra); Ctrl-C sets `cancel`: it stops
        from .ui import main as ui_main
        return ui_main(args[1:], parser_class=_Parser, stop=cancel)
    if args and args[0] == "live":  # a camera, stream or real-time file; Ctrl-C stops and keeps the recording
        from .live_cmd import main as live_main
        return live_main(args[1:], parser_class=_Parser, cancel=cancel)
    if args and args[0] == "zoom":
        a = build_zoom_parser().parse_args(args[1:])
        if a.workers is not None or a.ray_address is not None:
            raise DreamvidError("a zoom loop is inherently sequential (each frame is dreamed from the one "
                                "before): it cannot be split over Ray workers; leave out --workers/--ray-address")
        vary = take_schedules(a)  # schedule strings -> vary; numbers stay in `a`
        from ..pipeline.zoom import zoom_loop
        mask, mask_s = mask_options(a)
        progress = TerminalProgress("zooming", quiet=a.quiet)
        try:
            zoom_loop(a.input, a.output, dream_settings(a), _zoom_settings(a), run_options(a),
                      vary=vary or None, audio=a.audio, on_event=progress, cancel=cancel, mask=mask,
                      mask_settings=mask_s)
        finally:
            progress.close()
        return 0
    if args and args[0] == "preview":
        return _preview(build_preview_parser().parse_args(args[1:]), cancel)
    a = build_main_parser().parse_args(args)
    if _print_lists(a):
        return 0
    if not a.input or not a.output:
        raise DreamvidError("give an INPUT and -o OUTPUT, e.g. dreamvid samples/bunny.mp4 -o out.mp4")
    vary = take_schedules(a)  # schedule strings -> vary; numbers stay in `a`
    settings = dream_settings(a)
    mask, mask_s = mask_options(a)
    from ..pipeline.batch import batch_inputs
    files = batch_inputs(a.input)
    if files is not None:
        return _batch(a, files, settings, vary, mask, mask_s, cancel)
    a.input = a.input[0]
    from ..pipeline.image import IMAGE_EXTENSIONS
    image = a.output.lower().endswith(IMAGE_EXTENSIONS)
    dist = _dist_options(a)
    if dist and image:
        raise DreamvidError("an image is one frame: --workers/--ray-address split videos; leave them out")
    progress = TerminalProgress(None if image else "dreaming", quiet=a.quiet)
    try:
        if image:
            for key, schedule in vary.items():  # one frame: nothing to vary over
                raise SettingError(key, schedule.text, "is a schedule, but an image has one frame: give a number")
            from ..pipeline.image import dream_image
            RunOptions(max_pixels=a.max_pixels).validate()
            dream_image(a.input, a.output, settings, max_side=a.max_side, device=a.device,
                        weights=a.weights, on_event=progress, cancel=cancel, max_pixels=a.max_pixels,
                        mask=mask, mask_settings=mask_s)
            return 0
        if dist:
            from ..dist import render_distributed
            render_distributed(a.input, a.output, settings, _video_settings(a), run_options(a),
                               vary=vary or None, on_event=progress, cancel=cancel, mask=mask,
                               mask_settings=mask_s, **dist)
            return 0
        from ..pipeline.video import dream_video
        dream_video(a.input, a.output, settings, _video_settings(a), run_options(a),
                    vary=vary or None, on_event=progress, cancel=cancel, mask=mask, mask_settings=mask_s)
    finally:
        progress.close()
    return 0


#: Output extensions: a batch's -o with one of these looks like a file name, not a folder.
_FILE_EXTS = (".png", ".jpg", ".jpeg", ".mp4", ".webm", ".gif", ".mkv", ".mov")


def _batch(a: argparse.Namespace, files: List[str], settings: DreamSettings, vary, mask, mask_s, cancel) -> int:
    """Several inputs into the folder -o: one line per failed file, a summary; 0 only if all succeeded."""
    import sys
    from ..pipeline.batch import check_batch_folder, dream_batch
    from .progress import TerminalProgress
    check_batch_folder(a.output)
    if not os.path.isdir(a.output) and a.output.lower().endswith(_FILE_EXTS):
        raise DreamvidError(f"-o {a.output} looks like a file name: a batch writes one output per input into "
                            "a folder; give a folder, e.g. -o dreamed/")
    if _dist_options(a):
        raise DreamvidError("--workers/--ray-address render one video over Ray: give one input, or leave them "
                            "out for a batch")
    progress = TerminalProgress("dreaming", quiet=a.quiet)
    try:
        report = dream_batch(files, a.output, settings, _video_settings(a), run_options(a), vary=vary or None,
                             mask=mask, mask_settings=mask_s, on_event=progress, cancel=cancel)
    finally:
        progress.close()
    head, *_ = report.summary()
    print(f"dreamvid: {head}", file=sys.stderr)
    for f in report.files:
        if f.status == "failed":
            why = error_message(f.exception) if f.exception is not None else f.error
            print(f"dreamvid: failed: {f.input}: {why}", file=sys.stderr)
    return 0 if report.ok else 2


def _preview(a: argparse.Namespace, cancel) -> int:
    """dreamvid preview: the sheet of a few dreamed frames, saved to -o."""
    from ..config.presets import get_preset
    from ..pipeline.image import IMAGE_EXTENSIONS
    from ..pipeline.preview import preview_sheet
    from .progress import TerminalProgress
    if not a.output.lower().endswith(IMAGE_EXTENSIONS) or os.path.isdir(a.output):
        raise DreamvidError(f"cannot write a preview sheet to {a.output}: give a .png or .jpg file name")
    if a.frames is not None and a.count is not None:
        raise DreamvidError("give --frames or --count, not both")
    if a.presets is not None and a.preset is not None:
        raise DreamvidError("give --presets (several rows) or --preset (one), not both")
    frames = None
    if a.frames is not None:
        try:
            frames = [int(t) for t in a.frames.split(",") if t.strip()]
        except ValueError:
            raise DreamvidError(f"bad --frames '{a.frames}': write frame indices like 0,120,240") from None
    vary = take_schedules(a)
    mask, mask_s = mask_options(a)
    names = [n.strip() for n in a.presets.split(",") if n.strip()] if a.presets else [a.preset]
    for n in names:
        if n is not None:
            get_preset(n)  # an unknown name is one line, before any model loads
    settings = {n or DEFAULT_PRESET: dream_settings(a, n) for n in names}
    video = _video_settings(a)
    run = RunOptions(device=a.device, weights=a.weights, precision=a.precision, max_pixels=a.max_pixels).validate()
    progress = TerminalProgress("previewing", quiet=a.quiet)
    try:
        sheet = preview_sheet(a.input, settings, video, run, frames=frames, count=a.count, run_up=a.run_up,
                              vary=vary or None, mask=mask, mask_settings=mask_s, on_event=progress, cancel=cancel)
    finally:
        progress.close()
    sheet.save(a.output)
    return 0
