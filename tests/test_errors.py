"""Typed errors: Python callers get the field, the value and the reason; the terminal keeps its text.

Every case is checked twice: the library raises SettingError naming the dataclass field, and the
CLI given the same bad value prints the line it always printed (flag names, not field names).
"""

import os
import pickle
import subprocess
import sys

import pytest

from dreamvid.__main__ import main
from dreamvid.app.cli import build_main_parser, build_preview_parser, build_zoom_parser, flag_names
from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import DreamSettings, RunOptions, VideoSettings, ZoomSettings
from dreamvid.engine.objectives import parse_channel, parse_layer_weights
from dreamvid.errors import DreamvidError, SettingError

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
PHOTO = os.path.join(SAMPLES, "coffee.jpg")
VIDEO = os.path.join(SAMPLES, "bunny.mp4")
BLEND_REASON = "must be in [0, 1): it is a decay, 1 would let dreams pile up"

# (id, library call, field, value, str(e), CLI arguments, the CLI's line after "dreamvid: error: ")
CASES = [
    ("blend", lambda: VideoSettings(blend=1.5).validate(), "blend", 1.5, f"blend {BLEND_REASON}",
     [VIDEO, "-o", "{out}.mp4", "--blend", "1.5"], f"--blend {BLEND_REASON}"),
    ("end-before-start", lambda: VideoSettings(start=7, end=5).validate(), "end", 5,
     "end (5) must be greater than start (7)",
     [VIDEO, "-o", "{out}.mp4", "--start", "7", "--end", "5"], "--end (5) must be greater than --start (7)"),
    ("flow", lambda: VideoSettings(flow="magic").validate(), "flow", "magic",
     "unknown flow 'magic': choose one of dis, farneback, static, none",
     [VIDEO, "-o", "{out}.mp4", "--flow", "magic"], "unknown --flow 'magic': choose one of dis, farneback, static, none"),
    ("flow-max-side", lambda: VideoSettings(flow_max_side=10).validate(), "flow_max_side", 10,
     "flow_max_side must be at least 32 (None, or 0 on the command line: at the frame's own size)",
     [VIDEO, "-o", "{out}.mp4", "--flow-max-side", "10"],
     "--flow-max-side must be at least 32 (None, or 0 on the command line: at the frame's own size)"),
    ("next-octaves", lambda: VideoSettings(next_octaves=0).validate(), "next_octaves", 0,
     "next_octaves must be >= 1", [VIDEO, "-o", "{out}.mp4", "--next-octaves", "0"], "--next-octaves must be >= 1"),
    ("step", lambda: DreamSettings(step=-1.0).validate(), "step", -1.0, "step must be > 0",
     [PHOTO, "-o", "{out}.png", "--step", "-1"], "--step must be > 0"),
    ("octave-scale", lambda: settings_from_preset(None, octave_scale=1.0), "octave_scale", 1.0,
     "octave_scale must be > 1 (e.g. 1.4)", [PHOTO, "-o", "{out}.png", "--octave-scale", "1"],
     "--octave-scale must be > 1 (e.g. 1.4)"),
    ("l2-decay", lambda: DreamSettings(l2_decay=1.0).validate(), "l2_decay", 1.0, "l2_decay must be in [0, 1)",
     [PHOTO, "-o", "{out}.png", "--l2-decay", "1"], "--l2-decay must be in [0, 1)"),
    ("frame-iterations", lambda: ZoomSettings(frame_iterations=0).validate(), "frame_iterations", 0,
     "frame_iterations must be at least 1", ["zoom", "noise", "-o", "{out}.gif", "--frame-iterations", "0"],
     "--frame-iterations must be at least 1"),
    ("zoom", lambda: ZoomSettings(zoom=0.0).validate(), "zoom", 0.0,
     "zoom must be > 0 (1.05 zooms in 5% per frame, 1 holds still)", ["zoom", "noise", "-o", "{out}.gif", "--zoom", "0"],
     "--zoom must be > 0 (1.05 zooms in 5% per frame, 1 holds still)"),
    ("steady", lambda: ZoomSettings(steady=2.0).validate(), "steady", 2.0, "steady (colour hold) must be in [0, 1]",
     ["zoom", "noise", "-o", "{out}.gif", "--steady", "2"], "steady (colour hold) must be in [0, 1]"),
    ("fade", lambda: ZoomSettings(fade=0).validate(), "fade", 0, "the loop's cross-fade must be at least 1 frame",
     ["zoom", "noise", "-o", "{out}.gif", "--fade", "0"], "the loop's cross-fade must be at least 1 frame"),
    ("preset", lambda: settings_from_preset("nope"), "preset", "nope", None,
     [PHOTO, "-o", "{out}.png", "--preset", "nope"], None),
    ("model", lambda: settings_from_preset(None, model="alexnet"), "model", "alexnet",
     "unknown model 'alexnet': choose one of inception_v3, googlenet, vgg16, efficientnet_lite0, inception5h, "
     "bvlc_googlenet, googlenet_places365 "
     "(see 'dreamvid --list-models')", [PHOTO, "-o", "{out}.png", "--model", "alexnet"], None),
    ("layer-weight", lambda: parse_layer_weights("mixed4=lots"), "layers", "mixed4=lots",
     "bad layer weight 'mixed4=lots': write LAYER=WEIGHT, e.g. mixed4=2.0",
     [PHOTO, "-o", "{out}.png", "--layers", "mixed4=lots"], None),
    ("no-layers", lambda: parse_layer_weights(" , "), "layers", " , ",
     "no layers given: write e.g. layers mixed3=0.5,mixed4=2.0", [PHOTO, "-o", "{out}.png", "--layers", " , "],
     "no layers given: write e.g. --layers mixed3=0.5,mixed4=2.0"),
    ("channel", lambda: parse_channel("block9"), "channel", "block9",
     "bad channel 'block9': write LAYER:N, e.g. mixed4:70", None, None),
    ("device", lambda: RunOptions(device="tpu").validate(), "device", "tpu",
     "unknown device 'tpu': use auto, cpu, cuda or mps", [VIDEO, "-o", "{out}.mp4", "--device", "tpu"], None),
]


@pytest.mark.parametrize("call,field,value,text", [c[1:5] for c in CASES], ids=[c[0] for c in CASES])
def test_library_errors_name_the_field(call, field, value, text):
    with pytest.raises(SettingError) as info:
        call()
    e = info.value
    assert (e.field, e.value, e.frame) == (field, value, None)
    assert isinstance(e, DreamvidError) and isinstance(e, ValueError)  # `except ValueError` still works
    if text is not None:
        assert str(e) == text
    assert "--" not in str(e).replace("'dreamvid --list", "")  # no flag names for Python callers


def test_reason_is_what_follows_the_field():
    with pytest.raises(SettingError) as info:
        VideoSettings(blend=1.5).validate()
    assert info.value.reason == BLEND_REASON
    with pytest.raises(SettingError) as info:
        VideoSettings(start=7, end=5).validate()
    assert info.value.reason == "(5) must be greater than start (7)"


@pytest.mark.parametrize("args,line", [(c[5], c[6] if c[6] is not None else c[4]) for c in CASES if c[5]],
                         ids=[c[0] for c in CASES if c[5]])
def test_cli_text_unchanged(tmp_path, capsys, args, line):
    """The terminal shows flag names: one line on stderr, exit 2, nothing on stdout, no file."""
    out = str(tmp_path / "out")
    code = main([a.replace("{out}", out) for a in args])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    if line is None:  # the library's own text (it names the setting in words): the same
        assert captured.err.startswith("dreamvid: error: unknown ") or "bad layer weight" in captured.err
    else:
        assert captured.err == f"dreamvid: error: {line}\n"
    assert os.listdir(tmp_path) == []


def test_cli_preset_and_model_lines_match_the_library(capsys, tmp_path):
    for args, call in (([PHOTO, "-o", str(tmp_path / "o.png"), "--preset", "nope"], lambda: settings_from_preset("nope")),
                       ([PHOTO, "-o", str(tmp_path / "o.png"), "--model", "alexnet"],
                        lambda: settings_from_preset(None, model="alexnet"))):
        with pytest.raises(SettingError) as info:
            call()
        assert main(args) == 2
        assert capsys.readouterr().err == f"dreamvid: error: {info.value}\n"


def test_flag_names_come_from_the_parsers():
    names = flag_names()
    assert names["class_index"] == "--class"
    assert names["frame_iterations"] == "--frame-iterations"
    assert names["octave_scale"] == "--octave-scale"
    assert names["quiet"] == "--quiet"  # the long form, not -q
    from dreamvid.app.live_cmd import build_live_parser
    assert names["strength"] == "--strength"  # dreamvid live's knobs too
    options = {o for p in (build_main_parser(), build_zoom_parser(), build_preview_parser(), build_live_parser())
               for a in p._actions for o in a.option_strings}
    assert set(names.values()) <= options


def test_render_uses_a_front_ends_names():
    e = SettingError("end", 5, "(5) must be greater than {start} (7)", refs=("start",))
    assert str(e) == "end (5) must be greater than start (7)"
    assert e.render({"end": "--end", "start": "--start"}) == "--end (5) must be greater than --start (7)"
    assert e.render({"end": "End"}) == "End (5) must be greater than start (7)"
    # braces that are not a named field (e.g. in a value) are left alone
    odd = SettingError("flow", "{x}", "unknown {flow} '{x}': choose dis")
    assert str(odd) == "unknown flow '{x}': choose dis"
    assert odd.render({"flow": "--flow", "x": "X"}) == "unknown --flow '{x}': choose dis"


def test_reraised_at_a_frame_keeps_its_form():
    """config.vary re-raises a range error with the frame: SettingError(e.field, e.value, e.reason, i)."""
    with pytest.raises(SettingError) as info:
        VideoSettings(start=7, end=5).validate()
    e = info.value
    at = SettingError(e.field, e.value, e.reason, 12)
    assert str(at) == "end (5) must be greater than start (7) (at frame 12)"
    assert at.render(flag_names()) == "--end (5) must be greater than --start (7) (at frame 12)"
    with pytest.raises(SettingError) as info:
        ZoomSettings(steady=2.0).validate()
    at = SettingError(info.value.field, info.value.value, info.value.reason, 3)
    assert at.render(flag_names()) == "steady (colour hold) must be in [0, 1] (at frame 3)"


def test_vary_names_the_frame_and_the_flag():
    from dreamvid.config.vary import FrameSettings
    frames = FrameSettings(DreamSettings(), VideoSettings(), {"blend": lambda t: 0.5 + 0.1 * t})
    frames.at(4)
    with pytest.raises(SettingError) as info:
        frames.at(5)
    e = info.value
    assert (e.field, e.frame) == ("blend", 5)
    assert e.render(flag_names()) == f"--blend {BLEND_REASON} (at frame 5)"


def test_pickles_whole():
    """A Ray worker's error must reach the driver with its field, value, reason and frame."""
    e = SettingError("end", 5, "(5) must be greater than {start} (7)", 9, refs=("start",))
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is SettingError
    assert (back.field, back.value, back.reason, back.frame) == ("end", 5, e.reason, 9)
    assert back.render({"start": "--start"}) == e.render({"start": "--start"})
    assert str(back) == str(e)


def test_no_traceback_from_python_m(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dreamvid", VIDEO, "-o", str(tmp_path / "o.mp4"), "--blend", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"dreamvid: error: --blend {BLEND_REASON}\n"


# ------------------------------------------------------------------ the reader of stdout goes away

def test_reader_gone_stops_quietly():
    """The reader closes the pipe before dreamvid writes: no traceback, exit 141 (128 + SIGPIPE)."""
    proc = subprocess.Popen([sys.executable, "-m", "dreamvid", "--list-layers", "googlenet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 141
    assert err == b""


def test_piped_into_head():
    proc = subprocess.run(["bash", "-c", f"'{sys.executable}' -m dreamvid --list-layers googlenet | head -1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == 1 and "channels" in proc.stdout


def test_other_broken_pipes_are_not_hidden(monkeypatch, capsys):
    """Only a gone reader of stdout is quiet; a BrokenPipeError from elsewhere is a bug to see."""
    import dreamvid.app.cli as cli

    def broken(argv=None, cancel=None):
        raise BrokenPipeError("a pipe to a helper process")
    monkeypatch.setattr(cli, "main", broken)
    with pytest.raises(BrokenPipeError):
        main(["--list-presets"])
