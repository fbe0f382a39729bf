"""Keyframe schedules: parsing, values, the evaluator's refusals, the CLI's flags and `dreamvid schedule`."""

import argparse
import ast
import builtins
import os
import sys
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

from dreamvid.__main__ import main
from dreamvid.app.schedule_cmd import flag_names, take_schedules
from dreamvid.config.schedule import Schedule
from dreamvid.config.settings import DreamSettings, VideoSettings, ZoomSettings
from dreamvid.config.vary import FrameSettings, RenderContext
from dreamvid.errors import DreamvidError, SettingError


def ctx(frames=100, fps=24, seed=0, loudness=None, beat=None):
    return RenderContext(frames=frames, fps=Fraction(fps), seed=seed, loudness=loudness, beat=beat)


def vals(text, frames=10, **kw):
    f = Schedule(text, "zoom").bind(ctx(frames=frames, **kw))
    return [f(i) for i in range(frames)]


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ parsing and values


def test_numeric_keys_interpolate_and_hold():
    assert vals("0:(1.0), 4:(2.0), 8:(0.0)") == pytest.approx([1, 1.25, 1.5, 1.75, 2, 1.5, 1, 0.5, 0, 0])


def test_missing_frame_zero_holds_the_first_value():
    assert vals("3:(2), 5:(4)", frames=8) == pytest.approx([2, 2, 2, 2, 3, 4, 4, 4])
    assert Schedule("3:(2), 5:(4)").keys == (3, 5)


def test_spacing_newlines_order_and_trailing_comma():
    texts = ["0:(1),4:(3)", "  0 :( 1 ) ,\n 4:  (3) , ", "4:(3), 0:(1)", "0:(\n  1\n), 4:(1 +\n 2)"]
    for text in texts:
        assert vals(text, frames=5) == pytest.approx([1, 1.5, 2, 2.5, 3]), text


def test_plain_number_is_a_constant_and_a_bare_expression_every_frame():
    assert Schedule("1.04").constant == 1.04 and vals("1.04", 3) == [1.04] * 3
    assert Schedule("-2e-3").constant == -0.002
    assert Schedule("1 + t").constant is None and vals("1 + t", 3) == [1, 2, 3]
    assert Schedule("2*pi").constant == pytest.approx(2 * np.pi)


def test_expression_keys_are_evaluated_every_frame_until_the_next_key():
    v = vals("0:(1), 4:(10 + t), 6:(0)", frames=8)
    assert v == pytest.approx([1, 4.25, 7.5, 10.75, 14, 15, 0, 0])  # numeric 0 -> expression's value at 4
    # Deforum's example
    f = Schedule("0:(1.0), 30:(1.05), 90:(1.02+0.02*sin(2*pi*t/24))").bind(ctx(frames=120))
    at90 = 1.02 + 0.02 * np.sin(2 * np.pi * 90 / 24)
    assert f(15) == pytest.approx(1.025) and f(60) == pytest.approx((1.05 + at90) / 2)
    assert f(96) == pytest.approx(1.02 + 0.02 * np.sin(2 * np.pi * 96 / 24))
    assert f(200) == pytest.approx(1.02 + 0.02 * np.sin(2 * np.pi * 200 / 24))  # after the last key


def test_commas_inside_expressions():
    assert vals("0:(max(1, t)), 5:(min(t, 6, 7)), 7:(clamp(t, 0, 7.5))", frames=9) == \
        [1, 1, 2, 3, 4, 5, 6, 7, 7.5]


def test_variables_and_functions():
    f = Schedule("T + fps + s + t + floor(2.7) + ceil(0.2) + round(2.6) + abs(-1) + log(e) + "
                 "sqrt(4) + tau/pi + atan2(0, 1) + hypot(3, 4) + fmod(7, 4) + 7 // 2 + 7 % 4 + 2**3"
                 ).bind(ctx(frames=50, fps=25, seed=3))
    assert f(2) == pytest.approx(50 + 25 + 3 + 2 + 2 + 1 + 3 + 1 + 1 + 2 + 2 + 0 + 5 + 3 + 3 + 3 + 8)


def test_audio_names_need_sound():
    s = Schedule("1 + a + beat", "step")
    assert s.needs_audio and not Schedule("1 + t").needs_audio
    with pytest.raises(SettingError, match="has no sound"):
        s.bind(ctx())
    f = s.bind(ctx(frames=3, loudness=[0.0, 0.5, 1.0], beat=[1.0, 0.5, 0.25]))
    assert [f(i) for i in range(4)] == [2.0, 2.0, 2.25, 1.0]  # past the sound: 0


def test_unbound_schedule_uses_only_t():
    assert Schedule("0:(0), 10:(t)")(12) == 12
    with pytest.raises(DreamvidError, match="bind"):
        Schedule("T / 2")(1)


def test_integers_round_and_values_are_range_checked_per_frame():
    fs = FrameSettings(DreamSettings(), ZoomSettings(frames=10),
                       {"iterations": Schedule("0:(1), 10:(5)", "iterations"),
                        "zoom": Schedule("0:(1.2), 5:(1.0-t/100)", "zoom")}).bind(ctx(frames=10))
    assert [fs.at(i)[0].iterations for i in range(5)] == [1, 1, 2, 2, 3]  # 1.4 -> 1, 1.8 -> 2, 2.6 -> 3
    assert all(isinstance(fs.at(i)[0].iterations, int) for i in range(5))
    assert fs.at(3)[1].zoom == pytest.approx(1.2 - 0.25 * 3 / 5)  # toward the expression's 0.95 at 5
    assert fs.at(5)[1].zoom == pytest.approx(0.95)


def test_expression_reaching_an_invalid_value_names_the_frame():
    fs = FrameSettings(DreamSettings(), ZoomSettings(frames=10),
                       {"zoom": Schedule("1.2 - t/4", "zoom")}).bind(ctx(frames=10))
    fs.at(4)
    with pytest.raises(DreamvidError, match=r"at frame 5"):
        fs.at(5)  # zoom = -0.05


def test_math_errors_name_the_field_and_the_frame():
    f = Schedule("0:(1), 10:(1/(t-12))", "step").bind(ctx())
    assert f(11) == -1.0
    with pytest.raises(SettingError) as e:
        f(12)
    assert e.value.frame == 12 and e.value.field == "step"
    assert e.value.render({"step": "--step"}) == "--step: division by zero (at frame 12)"
    for text, words in [("sqrt(t - 30)", "domain"), ("exp(t * 100)", "too large"), ("t ** 9 ** 9", "too large")]:
        start = time.perf_counter()
        with pytest.raises(SettingError, match=words):
            Schedule(text, "step").bind(ctx())(25)
        assert time.perf_counter() - start < 0.5
    # inside FrameSettings the same error arrives unchanged
    fs = FrameSettings(DreamSettings(), None, {"step": Schedule("1/(t-3)", "step")}).bind(ctx())
    with pytest.raises(SettingError, match=r"^step: division by zero \(at frame 3\)$"):
        fs.value("step", 3)


@pytest.mark.parametrize("text, at, expected", [
    ("0:(1.0), 30:1.05", 13, "expected '(' after '30:'"),
    ("0:(1.0), 30 (1.05)", 13, "expected ':' after '30'"),
    ("0:(1.0), :(1.05)", 10, "expected a frame number"),
    ("0:(1.0) 30:(1.05)", 9, "expected ',' after key 0's value"),
    ("0:(1.0), 30:(1.05", 13, "'(' after '30:' is never closed"),
    ("0:(1.0), 30:()", 14, "expected a value"),
    ("0:(1.0), 30:(1.05 +)", 20, "invalid syntax"),
    ("0:(1), 10:(2), 0:(3)", 16, "frame 0 has two keys (the first at character 1)"),
    ("0:(1), 5:(sin(t) + foo)", 20, "unknown name 'foo'"),
    ("0:(1), 5:(1 + cosh(t, 2))", 15, "cosh() takes 1 argument, got 2"),
    ("", None, "is empty"),
])
def test_parse_errors_name_the_position_and_what_was_expected(text, at, expected):
    with pytest.raises(SettingError) as e:
        Schedule(text, "zoom")
    msg = e.value.render({"zoom": "--zoom"})
    assert expected in msg
    if at is not None:
        assert msg.startswith(f"--zoom: at character {at}: "), msg
    assert e.value.field == "zoom" and e.value.value == text


HOSTILE = [
    "__import__('os').system('touch {m}')",
    "0:(__import__('os').system('touch {m}'))",
    "().__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "open('{m}', 'w')",
    "lambda: 1",
    "(lambda: __import__('os').system('touch {m}'))()",
    "[x for x in ()]",
    "{{x for x in ()}}",
    "(x for x in ())",
    "'a'*9",
    "b'a'",
    "f'{{1}}'",
    "9**9**9",
    "10**400",
    "os",
    "os.system",
    "__builtins__",
    "t.real",
    "t[0]",
    "exec('import os')",
    "eval('1')",
    "globals()",
    "getattr(t, 'real')",
    "[1, 2]",
    "{{'a': 1}}",
    "(1, 2)",
    "1 if t else 2",
    "t and 1",
    "t < 1",
    "(y := 1)",
    "print(1)",
    "sin(t, x=1)",
    "math.sin(t)",
    "True",
    "None",
    "1j",
    "...",
    "-" * 20000 + "1",
    "(" * 500 + "1" + ")" * 500,
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_strings_are_refused_and_nothing_runs(template, tmp_path, monkeypatch):
    marker = tmp_path / "X"
    monkeypatch.chdir(tmp_path)
    text = template.format(m=marker)
    start = time.perf_counter()
    with monkeypatch.context() as m:
        _no_code(m)
        with pytest.raises(SettingError) as e:
            Schedule(text, "zoom").bind(ctx())(1)
    assert time.perf_counter() - start < 1.0
    assert not marker.exists()
    msg = str(e.value)
    assert msg.startswith("zoom") and "\n" not in msg and len(msg) < 400


def _no_code(monkeypatch):
    """eval and exec raise; compile only makes syntax trees (what ast.parse asks of it)."""
    real_compile = builtins.compile

    def forbidden(*a, **k):
        raise AssertionError("eval/exec must never be used on schedule text")

    def ast_only(source, filename, mode, flags=0, *a, **k):
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("compile() to code must never be used on schedule text")
        return real_compile(source, filename, mode, flags, *a, **k)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)


def test_valid_schedules_need_no_eval(monkeypatch):
    _no_code(monkeypatch)
    assert vals("0:(1), 5:(1 + sin(t)**2)", 8)[6] == pytest.approx(1 + np.sin(6) ** 2)


def test_identity_shows_the_text_and_changes_with_it():
    def identity(text):
        return FrameSettings(DreamSettings(), ZoomSettings(frames=10),
                             {"zoom": Schedule(text, "zoom")}).bind(ctx(frames=10)).identity(range(10))

    a = identity("0:(1.02), 9:(1.05)")
    assert a["zoom"].startswith("0:(1.02), 9:(1.05) [")
    assert identity("0:(1.02), 9:(1.05)") == a
    assert identity("0:(1.02), 9:(1.06)") != a


# ------------------------------------------------------------------ CLI flags


def test_take_schedules_splits_numbers_and_schedules():
    a = argparse.Namespace(step="0.02", iterations="3", zoom="0:(1.0), 10:(1.1)", blend="0.5 + 0*t",
                           octaves="2.0", translate="1,2", translate_x="0:(0), 10:(4)", translate_y="3",
                           rotate="0:(0.5)", layer_weight=["block8=0:(1), 50:(0)", "block10=0.5"])
    vary = take_schedules(a)
    assert a.step == 0.02 and a.iterations == 3 and isinstance(a.iterations, int) and a.octaves == 2
    assert a.zoom is None and a.blend is None and a.translate_x is None
    assert a.rotate == 0.5  # one numeric key: a constant
    assert [float(v) for v in a.translate.split(",")] == [1, 3]
    assert set(vary) == {"zoom", "blend", "translate_x", "layers.block8", "layers.block10"}
    assert vary["zoom"].text == "0:(1.0), 10:(1.1)" and vary["layers.block8"].field == "layers.block8"
    assert flag_names(vary)["layers.block8"] == "--layer-weight block8"
    assert flag_names(vary)["translate_x"] == "--translate-x"
    with pytest.raises(SettingError, match="whole number"):
        take_schedules(argparse.Namespace(iterations="2.5"))
    with pytest.raises(DreamvidError, match="NAME="):
        take_schedules(argparse.Namespace(layer_weight=["block8"]))


# ------------------------------------------------------------------ dreamvid schedule


def test_schedule_command_prints_csv(capsys):
    code, out, err = run(capsys, "schedule", "--frames", 6, "--fps", 24, "--zoom", "0:(1.0), 5:(1.05)",
                         "--step", "0:(0.01), 2:(0.02+0.01*t)", "--iterations", "0:(1), 5:(3)")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "frame,zoom,step,iterations"
    rows = [ln.split(",") for ln in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(6))
    assert [float(r[1]) for r in rows] == pytest.approx([1.0, 1.01, 1.02, 1.03, 1.04, 1.05])
    assert [float(r[2]) for r in rows] == pytest.approx([0.01, 0.025, 0.04, 0.05, 0.06, 0.07])
    assert [r[3] for r in rows] == ["1", "1", "2", "2", "3", "3"]  # rounded: 1.4, 1.8, 2.2, 2.6


def test_schedule_command_errors_are_one_line(capsys):
    code, out, err = run(capsys, "schedule", "--frames", 40, "--zoom", "0:(1.0), 30:1.05")
    assert code == 2 and out == ""
    assert err.strip() == "dreamvid: error: --zoom: at character 13: expected '(' after '30:'"
    code, _, err = run(capsys, "schedule", "--frames", 20, "--step", "0:(0.01), 10:(0.01 + 1/(t-12)**2)")
    assert code == 2 and err.strip() == "dreamvid: error: --step: division by zero (at frame 12)"
    code, _, err = run(capsys, "schedule", "--frames", 20, "--zoom", "1.1 - t/10")
    assert code == 2 and "--zoom must be > 0" in err and "(at frame 11)" in err
    code, _, err = run(capsys, "schedule", "--frames", 20, "--step", "0.01*(1+beat)")
    assert code == 2 and "--audio" in err
    code, _, err = run(capsys, "schedule", "--frames", 20)
    assert code == 2 and "at least one schedule" in err


def test_schedule_command_with_audio_and_plot(tmp_path, capsys):
    from test_audio import CLICKS, click_track

    pytest.importorskip("matplotlib")
    wav = click_track(tmp_path / "c.wav")
    png = tmp_path / "plot.png"
    code, out, err = run(capsys, "schedule", "--frames", 96, "--fps", 24, "--audio", wav,
                         "--zoom", "0:(1.0), 30:(1.05), 60:(1.02+0.02*sin(2*pi*t/24))",
                         "--step", "0.01 + 0.01*beat", "--layer-weight", "block10=0:(0), 50:(1)",
                         "--plot", png)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "frame,zoom,step,layers.block10,a,beat"
    beat = np.array([float(ln.split(",")[-1]) for ln in lines[1:]])
    assert np.max(np.abs(np.flatnonzero(beat == 1) - [int(c * 24) for c in CLICKS])) <= 1
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] >= 800 and img.shape[0] >= 4 * 150  # 3 panels + sound
    assert (img.std(axis=(0, 1)) > 10).all()  # something drawn, in colour


def test_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, out, err = run(capsys, "schedule", "--frames", 5, "--zoom", "1.02", "--plot", tmp_path / "p.png")
    assert code == 2 and out == ""
    assert err.strip() == "dreamvid: error: --plot needs matplotlib: pip install 'dreamvid[plot]'"
    assert not (tmp_path / "p.png").exists()


# ------------------------------------------------------------------ renders driven by schedules

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "samples")
PHOTO = os.path.join(SAMPLES, "coffee.jpg")
# A barely-dreaming loop (one tiny step per frame): each frame is the previous one moved, so the
# motion can be measured.
STILL = ["--max-side", "96", "--iterations", "1", "--octaves", "1", "--frame-iterations", "1",
         "--frame-octaves", "1", "--step", "0.0001", "--quiet", "--device", "cpu"]
QUICK = ["--max-side", "64", "--iterations", "1", "--octaves", "1", "--quiet", "--device", "cpu"]


def measured_zooms(frames):
    """Zoom factor between consecutive frames: the best of a fine search of centred scalings
    (cv2's, not the renderer's motion code), compared on the middle 60 % of the picture."""
    out = []
    for a, b in zip(frames, frames[1:]):
        a, b = a.astype(np.float32) / 255, b.astype(np.float32) / 255
        h, w = a.shape[:2]
        crop = (slice(h // 5, h - h // 5), slice(w // 5, w - w // 5))
        zs = np.arange(0.95, 1.15, 0.0005)
        errs = [((cv2.warpAffine(a, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0, z), (w, h),
                                 borderMode=cv2.BORDER_REFLECT)[crop] - b[crop]) ** 2).mean() for z in zs]
        out.append(float(zs[int(np.argmin(errs))]))
    return np.array(out)


def read_frames(path):
    from dreamvid.io.sources import open_source
    return list(open_source(str(path)).frames())


@pytest.mark.slow
def test_zoom_loop_follows_a_ramp_schedule(tmp_path, capsys):
    out = str(tmp_path / "ramp") + "/"
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--frames", 8, "--no-loop",
                       "--zoom", "0:(1.0), 7:(1.07)", *STILL)
    assert code == 0, err
    zooms = measured_zooms(read_frames(out))
    want = [1.0 + 0.01 * i for i in range(1, 8)]  # frame i is frame i-1 moved by the zoom at i
    assert np.max(np.abs(zooms - want)) < 0.003, zooms


@pytest.mark.slow
def test_zoom_loop_soundtrack_drives_beat_and_is_muxed(tmp_path, capsys):
    from conftest import decode_audio
    from dreamvid.io.ffmpeg import probe
    from test_audio import click_track

    wav = click_track(tmp_path / "c.wav", clicks=[0.30, 0.72], seconds=1.0)  # frames 3 and 8 at 12 fps
    out = str(tmp_path / "beat.mp4")
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--frames", 12, "--fps", 12, "--no-loop",
                       "--audio", wav, "--zoom", "1.0 + 0.08*beat", "--quality", "4", *STILL)
    assert code == 0, err
    info = probe(out)
    assert info.has_audio and info.duration_s == pytest.approx(1.0, abs=0.1)
    assert np.abs(decode_audio(out)).max() > 0.3  # the clicks are in the file
    zooms = measured_zooms(read_frames(out))
    decay = 0.5 ** (1 / (0.1 * 12))
    beat = np.zeros(12)
    for i in range(12):
        beat[i] = 1.0 if i in (3, 8) else beat[i - 1] * decay if i else 0.0
    assert np.max(np.abs(zooms - (1 + 0.08 * beat[1:]))) < 0.006, zooms


@pytest.fixture(scope="module")
def dreamer():
    from dreamvid.config.presets import settings_from_preset
    from dreamvid.engine.dreamer import Dreamer
    return Dreamer(settings_from_preset(None, iterations=2, octaves=1), "cpu")


@pytest.mark.slow
def test_video_blend_follows_a_schedule(tmp_path, dreamer):
    from conftest import make_video
    from dreamvid.config.settings import RunOptions
    from dreamvid.pipeline.video import dream_video

    clip = make_video(tmp_path, size="96x64", frames=4)
    video, run_opts = VideoSettings(next_octaves=1), RunOptions(device="cpu")
    renders = {}
    for name, blend in [("sched", "0:(0.85), 1:(0.85), 2:(0)"), ("carry", "0.85"), ("none", "0")]:
        out = str(tmp_path / name) + "/"
        s = Schedule(blend, "blend")
        vary = None if s.constant is not None else {"blend": s}
        dream_video(clip, out, video=video.replace(blend=s.constant) if vary is None else video,
                    run=run_opts, dreamer=dreamer, vary=vary)
        renders[name] = read_frames(out)
    same = lambda a, b: [np.array_equal(x, y) for x, y in zip(renders[a], renders[b])]  # noqa: E731
    # 0.85 up to frame 1: the constant 0.85 render's frames; 0 from frame 2: the carry-free render's
    assert same("sched", "carry") == [True, True, False, False]
    assert same("sched", "none") == [True, False, True, True]


@pytest.mark.slow
def test_a_changed_schedule_is_refused_on_resume_by_name(tmp_path, capsys):
    from dreamvid import Cancelled
    from dreamvid.app.cli import error_message, main as cli_main

    class StopAfter:
        def __init__(self, n):
            self.n = n

        def is_set(self):
            self.n -= 1
            return self.n < 0

    out = str(tmp_path / "loop") + "/"
    args = ["zoom", PHOTO, "-o", out, "--frames", 6, "--no-loop", *STILL]
    first = "0:(1.0), 5:(1.05)"
    with pytest.raises(Cancelled):
        cli_main([str(a) for a in args + ["--zoom", first]], cancel=StopAfter(3))
    with pytest.raises(DreamvidError) as e:
        cli_main([str(a) for a in args + ["--zoom", "0:(1.0), 5:(1.06)"]])
    msg = error_message(e.value)
    assert "zoom" in msg and first in msg and "0:(1.0), 5:(1.06)" in msg, msg
    assert cli_main([str(a) for a in args + ["--zoom", first]]) == 0  # the same schedule resumes
    assert len(read_frames(out)) == 6


def test_render_flags_refuse_bad_schedules_before_work(tmp_path, capsys):
    out = tmp_path / "x.mp4"
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--zoom", "0:(1.0), 30:1.05", *STILL)
    assert code == 2 and err.strip() == "dreamvid: error: --zoom: at character 13: expected '(' after '30:'"
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--translate-y", "0:(0), 4:(open('x'))", *STILL)
    assert code == 2 and err.startswith("dreamvid: error: --translate-y: at character 11: unknown function 'open'")
    code, _, err = run(capsys, PHOTO, "-o", tmp_path / "x.png", "--step", "0:(0.01), 5:(0.02)", *QUICK)
    assert code == 2 and "--step is a schedule, but an image has one frame" in err
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, *STILL, "--iterations", "2.5")
    assert code == 2 and "--iterations must be a whole number" in err
    assert not out.exists()


@pytest.mark.slow
def test_render_flag_errors_at_frames(tmp_path, capsys):
    from conftest import make_video
    clip = make_video(tmp_path, size="64x48", frames=4)
    out = tmp_path / "x.mp4"
    code, _, err = run(capsys, clip, "-o", out, "--step", "0.01*(1 + beat)", *QUICK)
    assert code == 2 and "--step uses beat but the render has no sound" in err
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--frames", 6, "--zoom", "1.1 - t/4", *STILL)
    assert code == 2 and "--zoom must be > 0" in err and "(at frame" in err
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--frames", 6, *STILL, "--step", "0:(0.01), 2:(0.01 + 1/(t-4)**2)")
    assert code == 2 and err.strip() == "dreamvid: error: --step: division by zero (at frame 4)"
    code, _, err = run(capsys, "zoom", PHOTO, "-o", out, "--layer-weight", "block99=0:(1), 5:(0)", *STILL)
    assert code == 2 and "--layer-weight block99 cannot vary per frame" in err, err
    assert not out.exists()


def test_a_video_drives_a_and_beat_with_its_own_sound(tmp_path, dreamer):
    from conftest import make_video
    from dreamvid.pipeline.common import frame_settings

    # clicks at 0.3 s and 0.7 s of a 25 fps clip: during frames 7 and 17
    clip = make_video(tmp_path, frames=25, audio="if(lt(mod(t+0.1\\,0.4)\\,0.02)\\,0.8*sin(2*PI*1000*t)\\,0)")
    fs = frame_settings(dreamer, VideoSettings(), {"step": Schedule("0.01 * (1 + beat)", "step")},
                        25, Fraction(25), clip, 25)
    steps = np.array([fs.value("step", i) for i in range(25)])
    assert set(np.flatnonzero(np.isclose(steps, 0.02))) == {7, 17}
    assert steps[:7].max() == pytest.approx(0.01) and 0.01 < steps[8] < 0.02
