"""``dreamvid live``: dream a camera, a stream or a file played in real time (pipeline/live.py).

    dreamvid live --camera 0 --window                 the webcam, dreamed in a window (q or Esc stops)
    dreamvid live rtsp://host/stream -o live.mp4      a stream, recorded
    dreamvid live --realtime clip.mp4 -o live.mp4     a file at its own rate: what it drops is dropped

Frames that arrive while one is being dreamed are dropped, never queued; the bar shows frames
dreamed, frames/s, latency and drops. Ctrl-C (or --seconds / --frames) stops and keeps the recording.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Optional, Sequence

import numpy as np

from ..config.presets import DEFAULT_PRESET, settings_from_preset
from ..config.settings import LIVE_SIZE_RANGE, LIVE_TIMEOUT_S, PRECISIONS, LiveSettings, RunOptions
from ..engine.objectives import parse_layer_weights
from ..errors import DreamvidError
from ..io.sinks import output_kind


def build_live_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = parser_class(prog="dreamvid live", description="Dream a camera, a stream URL or a video file played in "
                     "real time, as fast as the machine allows; frames it cannot keep up with are dropped.")
    p.add_argument("source", nargs="?", help="a video file (with --realtime: at its own rate) or a stream URL "
                   "(rtsp://, http://, ...)")
    p.add_argument("--camera", metavar="N", help="a camera index (0 = the first camera)")
    p.add_argument("--realtime", action="store_true", help="play a file at its own frame rate against the clock "
                   "(what a camera does); without it every frame of the file is dreamed in turn")
    p.add_argument("-o", "--output", help="record what is shown: .mp4, .webm, .gif (timing follows the clock) or "
                   "folder/ (each dreamed frame once)")
    p.add_argument("--window", action="store_true", help="show the dream in a window (q or Esc stops)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--frames", type=int, help="stop after this many dreamed frames")
    p.add_argument("--timeout", type=float, default=LIVE_TIMEOUT_S, metavar="S", help="a camera or stream that "
                   f"sends nothing for S seconds (or does not open within S) is gone (default {LIVE_TIMEOUT_S:g})")
    d = LiveSettings()
    k = p.add_argument_group("live knobs")
    k.add_argument("--size", type=int, help=f"long side of the dream in px, {LIVE_SIZE_RANGE[0]}..{LIVE_SIZE_RANGE[1]} "
                   f"(default {d.size})")
    k.add_argument("--iterations", type=int, help=f"ascent steps per octave of a carried frame (default {d.iterations})")
    k.add_argument("--fresh-iterations", type=int, help="ascent steps per octave of the first frame and of "
                   f"scene cuts (default {d.fresh_iterations})")
    k.add_argument("--octaves", type=int, help=f"octaves (default {d.octaves})")
    k.add_argument("--strength", type=float, help=f"x the preset's ascent step (default {d.strength:g})")
    k.add_argument("--blend", type=float, help=f"weight of the carried dream, below 1 (default {d.blend})")
    g = p.add_argument_group("dream and run")
    g.add_argument("--preset", help=f"named settings (default: {DEFAULT_PRESET}); see 'dreamvid --list-presets'")
    g.add_argument("--model", help="network; see 'dreamvid --list-models'")
    g.add_argument("--layers", help="weighted layer mix, e.g. block8=1.0")
    g.add_argument("--weights", help="local state dict for the model, or 'random' (tests)")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    g.add_argument("--precision", default=RunOptions.precision, choices=PRECISIONS,
                   help=f"network precision (default {RunOptions.precision})")
    g.add_argument("--quality", type=int, help="encoder CRF of the recording (lower = better)")
    g.add_argument("--max-pixels", type=int, default=RunOptions.max_pixels, metavar="N",
                   help="refuse a source whose frames have more than N pixels")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    return p


class _Window:
    """An OpenCV window showing each dreamed frame; q or Esc sets `stop`."""

    NAME = "dreamvid live"

    def __init__(self, stop: threading.Event):
        import cv2
        self.cv2, self.stop = cv2, stop
        try:
            cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise DreamvidError("cannot open a window here (no display, or an OpenCV without GUI support): "
                                "record with -o instead") from None

    def show(self, rgb: np.ndarray) -> None:
        self.cv2.imshow(self.NAME, self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2BGR))
        if self.cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop.set()

    def close(self) -> None:
        self.cv2.destroyWindow(self.NAME)


class _EitherStop:
    """Set when either token is (the terminal's Ctrl-C, the window's q)."""

    def __init__(self, *tokens):
        self.tokens = [t for t in tokens if t is not None]

    def is_set(self) -> bool:
        return any(t.is_set() for t in self.tokens)


def live_settings(a: argparse.Namespace) -> LiveSettings:
    given = dict(size=a.size, iterations=a.iterations, fresh_iterations=a.fresh_iterations, octaves=a.octaves,
                 strength=a.strength, blend=a.blend)
    return LiveSettings(**{k: v for k, v in given.items() if v is not None}).validate()


def main(argv: Sequence[str], parser_class=argparse.ArgumentParser, cancel=None) -> int:
    from tqdm import tqdm
    from ..pipeline.live import run_live
    a = build_live_parser(parser_class).parse_args(list(argv))
    if (a.camera is None) == (a.source is None):
        raise DreamvidError("give one source: --camera N, a stream URL, or a video file (with --realtime)")
    if a.camera is not None and not str(a.camera).isdigit():
        raise DreamvidError(f"--camera takes an index (0, 1, ...), not '{a.camera}'; give a stream URL as the source")
    if a.realtime and a.camera is not None:
        raise DreamvidError("--realtime plays a file at its own rate; a camera is real time already: leave it out")
    if not a.output and not a.window:
        raise DreamvidError("give -o OUTPUT (.mp4, .webm, .gif or folder/) to record, or --window to watch")
    if a.frames is not None and a.frames < 1 or a.seconds is not None and a.seconds <= 0 or a.timeout <= 0:
        raise DreamvidError("--frames, --seconds and --timeout must be > 0")
    live = live_settings(a)
    layers = tuple(parse_layer_weights(a.layers)) if a.layers else None
    settings = settings_from_preset(a.preset, model=a.model, layers=layers, seed=a.seed)
    run = RunOptions(device=a.device, weights=a.weights, precision=a.precision, quality=a.quality,
                     max_pixels=a.max_pixels).validate()
    if a.output:
        output_kind(a.output)  # a bad extension fails before the model loads
    stop = threading.Event()
    window: Optional[_Window] = None
    bar: Optional[tqdm] = None

    def on_event(e):
        nonlocal bar
        if e.kind == "start":
            bar = tqdm(total=e.total, desc="live", unit="frame", disable=a.quiet, file=sys.stderr, dynamic_ncols=True)
        elif e.kind == "frame":
            if window is not None:
                window.show(e.frame)
            bar.set_postfix_str(f"{e.rate:.1f} frames/s, latency {e.latency:.2f} s, dropped {e.dropped}", refresh=False)
            bar.update(1)

    from ..io.streams import open_live
    source = open_live(a.source if a.camera is None else a.camera, a.realtime, a.timeout, run.max_pixels)
    try:
        window = _Window(stop) if a.window else None
        result = run_live(source, a.output, settings, live, run, realtime=a.realtime, seconds=a.seconds,
                          max_frames=a.frames, on_event=on_event, cancel=_EitherStop(cancel, stop))
    finally:
        source.close()
        if bar is not None:
            bar.close()
        if window is not None:
            window.close()
    if not a.quiet:
        lat = np.median(result.latency) if result.latency else 0.0
        saved = f"; recorded {result.output}" if result.output else ""
        print(f"dreamvid: live: dreamed {len(result.dreamed)} of {result.received} frames ({result.dropped} dropped), "
              f"{result.fps:.1f} frames/s, latency median {lat:.2f} s{saved}", file=sys.stderr)
    return 0
