"""Schedules on the command line: flags that take a number or a schedule, and ``dreamvid schedule``.

Every flag of a setting that may vary per frame (config.vary.VARYING_FIELDS) takes a number, as
before, or a schedule string (config.schedule): ``--zoom "0:(1.02), 48:(1.06)"``. Two more:

- ``--translate-x S`` / ``--translate-y S`` (zoom loops): each axis of ``--translate DX,DY`` on
  its own, a number or a schedule; they win over ``--translate``'s value for their axis.
- ``--layer-weight NAME=S`` (repeatable): the weight of one layer of the mix (``--layers`` or the
  preset's) as a number or a schedule: ``--layers block8,block10 --layer-weight block8="0:(1),
  50:(0)" --layer-weight block10="0:(0), 50:(1)"`` morphs from one layer to the other.

``dreamvid schedule --frames N [--fps F] [--audio FILE] --zoom "…" --step "…" [--plot out.png]``
prints the values a render would use as CSV (``frame,zoom,step``; with ``--audio`` also ``a`` and
``beat``), after the same range checks, and draws them with ``--plot`` (matplotlib, the ``plot``
extra).
"""

from __future__ import annotations

import argparse
import os
import sys
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

from ..config.schedule import FUNCTIONS, NAMES, Schedule, is_number
from ..config.settings import DreamSettings, VideoSettings, ZoomSettings
from ..config.vary import _INTEGER, LAYER_PREFIX, VARYING_FIELDS, FrameSettings, RenderContext
from ..errors import DreamvidError, SettingError

#: argparse dest -> vary key, for the flags that take a schedule (when a parser has them).
SCHEDULABLE = {f: f for fields in VARYING_FIELDS.values() for f in fields}
#: Extra flags (added by add_schedule_flags): dest -> flag.
_EXTRA_FLAGS = {"translate_x": "--translate-x", "translate_y": "--translate-y"}
SCHEDULE_HINT = 'a number, or a schedule like "0:(1), 30:(2)"'


def flag_name(key: str) -> str:
    """The flag of a vary key, for messages: 'zoom' -> '--zoom', 'layers.b8' -> '--layer-weight b8'."""
    if key.startswith(LAYER_PREFIX):
        return f"--layer-weight {key[len(LAYER_PREFIX):]}"
    return "--" + key.replace("_", "-")


def flag_names(keys) -> Dict[str, str]:
    """vary key -> flag, for SettingError.render (every key in `keys`)."""
    return {k: flag_name(k) for k in keys}


def add_schedule_flags(p: argparse.ArgumentParser, zoom: bool = False) -> argparse.ArgumentParser:
    """Let `p`'s schedulable flags take schedule strings; add --layer-weight (and, for zoom loops,
    --translate-x/-y). Values are read back with :func:`take_schedules`."""
    for action in p._actions:
        if action.dest in SCHEDULABLE and action.option_strings:
            action.type = None
            action.metavar = action.metavar or "S"
            action.help = f"{action.help or ''} (or a schedule)".strip()
    g = p.add_argument_group("schedules (see README 'Schedules')")
    if zoom:
        g.add_argument("--translate-x", metavar="S", help=f"shift in px per frame along x ({SCHEDULE_HINT})")
        g.add_argument("--translate-y", metavar="S", help=f"shift in px per frame along y ({SCHEDULE_HINT})")
    g.add_argument("--layer-weight", metavar="NAME=S", action="append", default=[],
                   help="weight of one layer of the mix, a number or a schedule (repeatable): "
                        "--layer-weight block10=\"0:(0), 50:(1)\"")
    return p


def _number(key: str, text: str):
    v = float(text)
    if key in _INTEGER:
        if not v.is_integer():
            raise SettingError(key, text, "must be a whole number (a schedule's values are rounded)")
        return int(v)
    return v


def take_schedules(a: argparse.Namespace) -> Dict[str, Schedule]:
    """Read the schedulable flags of a parsed namespace: numbers are put back as numbers (the
    settings take them as before), schedules are removed from the namespace and returned as
    ``{vary key: Schedule}``. ``--translate-x/-y`` numbers are folded into ``a.translate``."""
    vary: Dict[str, Schedule] = {}
    for dest, key in SCHEDULABLE.items():
        text = getattr(a, dest, None)
        if text is None or not isinstance(text, str):
            continue
        if is_number(text):
            setattr(a, dest, _number(key, text))
            continue
        sched = Schedule(text, key)
        if sched.constant is not None:
            setattr(a, dest, _number(key, repr(sched.constant)) if key not in _INTEGER
                    else int(round(sched.constant)))
        else:
            vary[key] = sched
            setattr(a, dest, None)
    if getattr(a, "translate_x", None) is not None or getattr(a, "translate_y", None) is not None:
        dx, dy = _translate_pair(getattr(a, "translate", None))
        x, y = getattr(a, "translate_x", None), getattr(a, "translate_y", None)
        a.translate = f"{dx if x is None else x},{dy if y is None else y}"
    for item in getattr(a, "layer_weight", None) or []:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name or not text.strip():
            raise DreamvidError(f"bad --layer-weight '{item}': write NAME=VALUE or NAME=\"0:(0), 50:(1)\"")
        key = LAYER_PREFIX + name
        if key in vary:
            raise DreamvidError(f"--layer-weight {name} given twice")
        vary[key] = Schedule(text, key)
    return vary


def _translate_pair(text: Optional[str]) -> Tuple[str, str]:
    if not text:
        return "0", "0"
    parts = text.split(",")
    if len(parts) != 2:
        raise DreamvidError(f"bad --translate (write DX,DY) '{text}'")
    return parts[0].strip(), parts[1].strip()


# ---------------------------------------------------------------- dreamvid schedule


class _Ordered(argparse.Action):
    """Store a value and remember the order the flags came in (the CSV's columns follow it)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        order = list(getattr(namespace, "_order", []))
        if self.dest not in order:
            order.append(self.dest)
        namespace._order = order


def build_schedule_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = parser_class(
        prog="dreamvid schedule",
        description="Print (and plot) the values of schedules per frame, before rendering: the same "
                    "values and range checks a render uses.",
        epilog=f"Names: {', '.join(NAMES)} (t: frame index, T: frames, s: seed, a: loudness 0..1, "
               f"beat: 1 at onsets, decaying). Functions: {', '.join(FUNCTIONS)}.")
    p.add_argument("--frames", type=int, required=True, help="frames in the render (T)")
    p.add_argument("--fps", default=None, help=f"frame rate (default {ZoomSettings.fps}, the zoom loop's)")
    p.add_argument("--audio", help="a file with sound: drives a and beat (and is drawn)")
    p.add_argument("--seed", type=int, default=0, help="the seed (s in expressions)")
    p.add_argument("--plot", metavar="PNG", help="draw the values into this image (needs the 'plot' extra)")
    from .cli import flag_names as render_flags  # the render commands' flags: the same names here

    flags = render_flags()
    g = p.add_argument_group("schedules (a number or a schedule string each)")
    for group, what in (("zoom", "zoom loops"), ("dream", "the dream"), ("video", "videos")):
        for dest in VARYING_FIELDS[group]:
            if dest in flags:
                g.add_argument(flags[dest], dest=dest, metavar="S", action=_Ordered, help=what)
    g.add_argument("--layer-weight", metavar="NAME=S", action="append", default=[],
                   help="a layer's weight (repeatable): --layer-weight block10=\"0:(0), 50:(1)\"")
    return p


def _check_plot_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DreamvidError("--plot needs matplotlib: pip install 'dreamvid[plot]'") from None


def schedule_values(vary: Dict[str, Schedule], frames: int, fps: Fraction, seed: int = 0,
                    loudness=None, beat=None) -> Dict[str, List[float]]:
    """key -> its values at frames 0..frames-1, exactly as a render computes them (integers rounded,
    every frame range-checked with the settings' own checks: errors name the key and the frame)."""
    context = RenderContext(frames=frames, fps=fps, seed=seed, loudness=loudness, beat=beat)
    layers = tuple((k[len(LAYER_PREFIX):], 1.0) for k in vary if k.startswith(LAYER_PREFIX))
    dream = DreamSettings(layers=layers) if layers else DreamSettings()
    groups = {"video": VideoSettings(), "zoom": ZoomSettings(frames=frames, fps=fps)}
    out: Dict[str, List[float]] = {}
    for group, other in groups.items():
        keys = [k for k in vary if k in VARYING_FIELDS[group]]
        if group == "zoom":  # dream keys are checked with the zoom group (either would do)
            keys += [k for k in vary if k in VARYING_FIELDS["dream"] or k.startswith(LAYER_PREFIX)]
        if not keys:
            continue
        fs = FrameSettings(dream, other, {k: vary[k] for k in keys}).bind(context)
        for i in range(frames):
            fs.at(i)  # range checks, naming the frame
        for k in keys:
            out[k] = [fs.value(k, i) for i in range(frames)]
    return {k: out[k] for k in vary}


def _fmt(key: str, v: float) -> str:
    field = key[len(LAYER_PREFIX):] if key.startswith(LAYER_PREFIX) else key
    return str(int(v)) if field in _INTEGER else f"{v:.6g}"


def main(argv: Sequence[str], parser_class=argparse.ArgumentParser) -> int:
    """``dreamvid schedule ...``: CSV on stdout, optionally a plot. DreamvidError for bad input."""
    from ..io.fps import parse_fps

    a = build_schedule_parser(parser_class).parse_args(list(argv))
    if a.frames < 1:
        raise DreamvidError("--frames must be at least 1")
    if a.plot:
        _check_plot_available()
    fps = parse_fps(a.fps) if a.fps else ZoomSettings.fps
    if fps <= 0:
        raise DreamvidError("--fps must be > 0")
    try:
        vary: Dict[str, Schedule] = {d: Schedule(getattr(a, d), d) for d in getattr(a, "_order", [])}
        vary.update(take_schedules(argparse.Namespace(layer_weight=a.layer_weight)))
        if not vary:
            raise DreamvidError("give at least one schedule, e.g. --zoom \"0:(1.02), 48:(1.06)\"")
        loud = beat = None
        if a.audio:
            from ..io.audio import frame_envelope
            loud, beat = frame_envelope(a.audio, fps, a.frames)
        elif any(s.needs_audio for s in vary.values()):
            key = next(k for k, s in vary.items() if s.needs_audio)
            raise SettingError(key, vary[key].text, "uses a or beat: give --audio FILE")
        values = schedule_values(vary, a.frames, fps, a.seed, loud, beat)
    except SettingError as e:  # the flags' names, not the fields'
        raise DreamvidError(e.render(flag_names([e.field]))) from None
    cols = list(vary)
    lines = ["frame," + ",".join(cols) + (",a,beat" if loud is not None else "")]
    for i in range(a.frames):
        row = [str(i)] + [_fmt(k, values[k][i]) for k in cols]
        if loud is not None:
            row += [f"{loud[i]:.4g}", f"{beat[i]:.4g}"]
        lines.append(",".join(row))
    sys.stdout.write("\n".join(lines) + "\n")
    if a.plot:
        plot_schedules(a.plot, vary, values, fps, loudness=loud, beat=beat, audio_name=a.audio)
    return 0


def plot_schedules(path: str, vary: Dict[str, Schedule], values: Dict[str, List[float]], fps: Fraction,
                   loudness=None, beat=None, audio_name: Optional[str] = None) -> None:
    """Draw each schedule's values in its own panel (frames below, seconds above, key frames as
    dotted lines and dots) and, when given, the sound's loudness and beats in a last panel."""
    from matplotlib.figure import Figure

    frames = len(next(iter(values.values())))
    xs = list(range(frames))
    panels = list(vary) + (["audio"] if loudness is not None else [])
    fig = Figure(figsize=(9, 0.9 + 1.8 * len(panels)), dpi=100, layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, panels):
        ax.grid(True, color="0.9", lw=0.8)
        ax.set_xlim(0, max(frames - 1, 1))
        if key == "audio":
            ax.fill_between(xs, loudness, color="C2", alpha=0.35, lw=0, label="a (loudness)")
            ax.plot(xs, beat, color="C1", lw=1.2, label="beat")
            ax.set_ylim(0, 1.08)
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False, ncol=2,
                      borderaxespad=0.1)
            name = os.path.basename(audio_name) if audio_name else ""
            ax.set_title(f"sound {name}".strip(), loc="left", fontsize=9, family="monospace")
            continue
        field = key[len(LAYER_PREFIX):] if key.startswith(LAYER_PREFIX) else key
        ys = values[key]
        ax.plot(xs, ys, color="C0", lw=1.6, drawstyle="steps-post" if field in _INTEGER else "default")
        keys = [k for k in vary[key].keys if k < frames]
        for k in keys:
            ax.axvline(k, color="0.55", ls=":", lw=1)
        if keys:
            ax.plot(keys, [ys[k] for k in keys], "o", color="C3", ms=4, label="keys")
        text = " ".join(vary[key].text.split())
        text = text if len(text) <= 90 else text[:87] + "..."
        ax.set_title(f"{flag_name(key)}  {text}", loc="left", fontsize=9, family="monospace")
        lo, hi = min(ys), max(ys)
        if hi - lo < 1e-9:  # a flat line in the middle, not on the edge
            pad = abs(hi) * 0.05 or 0.5
            ax.set_ylim(lo - pad, hi + pad)
    axes[-1].set_xlabel("frame")
    top = axes[0].secondary_xaxis("top", functions=(lambda f: f / float(fps), lambda s: s * float(fps)))
    top.set_xlabel(f"seconds (at {fps} fps)")
    fig.savefig(path)
