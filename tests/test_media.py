"""Sources and sinks on real media made by ffmpeg in tmp_path (no mocks of the media path)."""

import os
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import decode_audio, ffmpeg, make_video
from dreamvid.errors import DreamvidError
from dreamvid.core.imageops import resize_to_max_side
from dreamvid.io.ffmpeg import probe
from dreamvid.io.fps import parse_fps
from dreamvid.io.images import read_image, write_image
from dreamvid.io.sinks import AudioSpec, open_sink, output_kind
from dreamvid.io.sources import VideoSource, open_source

NTSC = Fraction(30000, 1001)


def one_line_error(excinfo, path):
    msg = str(excinfo.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


def solid(color, w=32, h=24):
    return np.full((h, w, 3), color, np.uint8)


def ramp(i, w=40, h=30):
    """A frame that differs from frame i±1 and has structure (for lossy round trips)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 6 + i * 20) % 256, (y * 8) % 256, np.full_like(x, 40 + i * 10)],
                    axis=-1).astype(np.uint8)


# ---------------------------------------------------------------------------------- sources

def test_video_without_audio(tmp_path):
    src = open_source(make_video(tmp_path, size="64x48", rate="25", frames=12))
    assert (src.width, src.height, src.num_frames) == (64, 48, 12)
    assert src.fps == 25 and isinstance(src.fps, Fraction)
    assert src.is_video and not src.has_audio
    frames = list(src.frames())
    assert len(frames) == 12
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8


def test_video_with_audio_ntsc_odd_size(tmp_path):
    path = make_video(tmp_path, size="161x91", rate="30000/1001", frames=9,
                      audio="sin(2*PI*440*t):c=stereo")
    src = open_source(path)
    assert src.fps == NTSC and isinstance(src.fps, Fraction)
    assert (src.width, src.height, src.num_frames) == (161, 91, 9)
    assert src.has_audio and src.is_video
    # RGB order, not BGR: testsrc's top-left area is its colour bars, check against OpenCV BGR
    bgr = cv2.VideoCapture(path).read()[1]
    np.testing.assert_array_equal(src.read(0), bgr[..., ::-1])


def test_fps_override_and_parse():
    assert parse_fps("29.97") == NTSC and parse_fps(23.976) == Fraction(24000, 1001)
    assert parse_fps("30000/1001") == NTSC and parse_fps(12.5) == Fraction(25, 2)
    assert parse_fps(Fraction(25)) == 25
    for bad in ("0", "-3", "abc", "1/0"):
        with pytest.raises(DreamvidError):
            parse_fps(bad)


@pytest.mark.parametrize("name", ["seek.mp4", "seek.webm"])
def test_seek_matches_sequential_decode(tmp_path, name, monkeypatch):
    # short GOPs and B-frames so seeking really jumps between keyframes
    path = make_video(tmp_path, name=name, size="48x32", rate="30000/1001", frames=30,
                      extra=["-g", "7", "-bf", "2"] if name.endswith("mp4") else ["-g", "7"])
    src = open_source(path)
    assert src.num_frames == 30
    every = list(src.frames())
    for start, end in [(0, 3), (1, 2), (6, 9), (7, 8), (13, 20), (29, None)]:
        got = list(src.frames(start, end))
        assert len(got) == len(every[start:end])
        for a, b in zip(got, every[start:end]):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(src.read(17), every[17])
    retimed = open_source(path, fps=Fraction(10))
    assert retimed.fps == 10
    np.testing.assert_array_equal(retimed.read(19), every[19])
    with pytest.raises(IndexError):
        src.read(30)
    # the decode-and-skip fallback (used when a fast seek cannot be verified) agrees too
    monkeypatch.setattr(VideoSource, "_seek", lambda self, cap, index: False)
    np.testing.assert_array_equal(src.read(11), every[11])


def test_folder_natural_order_and_glob(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (10, 2, 1):  # 'frame10' sorts before 'frame2' as plain text
        write_image(str(folder / f"frame{i}.png"), solid((i * 20, 0, 0)))
    (folder / "notes.txt").write_text("not a frame")
    write_image(str(folder / ".hidden.png"), solid((255, 255, 255)))
    src = open_source(str(folder))
    assert [f[0, 0, 0] for f in src.frames()] == [20, 40, 200]
    assert src.fps == 25 and not src.is_video and not src.has_audio
    assert (src.width, src.height, src.num_frames) == (32, 24, 3)
    assert src.read(2)[0, 0, 0] == 200

    src = open_source(str(folder / "frame*.png"), fps=NTSC)
    assert [f[0, 0, 0] for f in src.frames(1)] == [40, 200]
    assert src.fps == NTSC


def test_single_image_source(tmp_path):
    path = str(tmp_path / "still.jpg")
    write_image(path, solid((10, 200, 30), w=50, h=20))
    src = open_source(path)
    assert (src.num_frames, src.width, src.height, src.fps) == (1, 50, 20, 25)
    (frame,) = list(src.frames())
    assert np.abs(frame.astype(int) - (10, 200, 30)).max() <= 3  # JPEG


def test_image_io_and_resize(tmp_path):
    img = ramp(3, w=41, h=17)
    write_image(str(tmp_path / "a.png"), img)
    np.testing.assert_array_equal(read_image(str(tmp_path / "a.png")), img)  # lossless, RGB
    assert os.listdir(tmp_path) == ["a.png"]  # no temp file left
    assert resize_to_max_side(img, 41) is img
    small = resize_to_max_side(img, 20)
    assert small.shape == (8, 20, 3) and small.dtype == np.uint8


# ---------------------------------------------------------------------------------- errors

def test_source_errors(tmp_path):
    cases = {}
    cases["missing"] = str(tmp_path / "nope.mp4")
    (tmp_path / "text.mp4").write_text("this is not a video\n")
    cases["text"] = str(tmp_path / "text.mp4")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    cases["corrupt image"] = str(tmp_path / "broken.png")
    ffmpeg("-f", "lavfi", "-i", "sine=d=0.3", "-c:a", "aac", str(tmp_path / "audio_only.mp4"))
    cases["no video stream"] = str(tmp_path / "audio_only.mp4")
    # a raw H.264 stream cut before its first picture: a video stream with zero frames
    raw = make_video(tmp_path, name="full.h264", frames=2, extra=["-c:v", "libx264"])
    data = open(raw, "rb").read()
    first_picture = next(i for i in range(len(data) - 3)
                         if data[i:i + 3] == b"\0\0\1" and data[i + 3] & 31 in (1, 5))
    (tmp_path / "zero.h264").write_bytes(data[:first_picture])
    cases["zero frames"] = str(tmp_path / "zero.h264")
    (tmp_path / "empty").mkdir()
    cases["empty folder"] = str(tmp_path / "empty")
    cases["glob matching nothing"] = str(tmp_path / "shots" / "*.png")
    for what, path in cases.items():
        with pytest.raises(DreamvidError) as e:
            open_source(path)
        one_line_error(e, path)
    with pytest.raises(DreamvidError) as e:
        read_image(cases["missing"])
    one_line_error(e, cases["missing"])


def test_folder_with_mixed_sizes_names_the_file(tmp_path):
    for i in range(1, 4):
        write_image(str(tmp_path / f"f{i}.jpg"), solid((0, 0, 0), w=32 if i != 2 else 30))
    with pytest.raises(DreamvidError) as e:
        open_source(str(tmp_path))
    one_line_error(e, tmp_path / "f2.jpg")


def test_output_kind(tmp_path):
    assert [output_kind(p) for p in ("a.mp4", "b.WEBM", "c.gif", "d/", str(tmp_path))] == \
        ["mp4", "webm", "gif", "folder", "folder"]
    with pytest.raises(DreamvidError) as e:
        output_kind("clip.avi")
    assert "mp4" in one_line_error(e, "clip.avi")
    (tmp_path / "taken").write_text("")
    with pytest.raises(DreamvidError) as e:
        output_kind(str(tmp_path / "taken") + "/")
    one_line_error(e, tmp_path / "taken")
    with pytest.raises(DreamvidError) as e:
        write_image(str(tmp_path / "x.bmpx"), solid(0))
    one_line_error(e, tmp_path / "x.bmpx")


# ---------------------------------------------------------------------------------- sinks

def write_all(path, frames, fps, **kw):
    h, w = frames[0].shape[:2]
    with open_sink(str(path), fps, w, h, **kw) as sink:
        for f in frames:
            sink.write(f)


def test_mp4_odd_size_is_padded(tmp_path):
    frames = [ramp(i, w=41, h=17) for i in range(7)]
    out = tmp_path / "out.mp4"
    write_all(out, frames, NTSC)
    back = open_source(str(out))
    assert (back.width, back.height) == (42, 18)  # padded to even, edge pixels repeated
    assert back.num_frames == 7 and back.fps == NTSC and not back.has_audio
    got = list(back.frames())
    err = np.abs(got[3][:17, :41].astype(int) - frames[3]).mean()
    assert err < 6, err
    assert np.abs(got[3][:, 41].astype(int) - got[3][:, 40]).mean() < 6  # replicated edge
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_webm_and_gif(tmp_path):
    frames = [ramp(i, w=41, h=17) for i in range(6)]
    write_all(tmp_path / "out.webm", frames, NTSC, quality=20)
    back = open_source(str(tmp_path / "out.webm"))
    assert (back.width, back.height, back.num_frames, back.fps) == (41, 17, 6, NTSC)
    assert np.abs(back.read(5).astype(int) - frames[5]).mean() < 6

    write_all(tmp_path / "out.gif", frames, Fraction(25))
    back = open_source(str(tmp_path / "out.gif"))
    assert (back.width, back.height, back.num_frames, back.fps) == (41, 17, 6, 25)
    assert b"NETSCAPE2.0" in (tmp_path / "out.gif").read_bytes()  # loops
    assert np.abs(back.read(2).astype(int) - frames[2]).mean() < 12  # 256-colour palette
    assert sorted(os.listdir(tmp_path)) == ["out.gif", "out.webm"]


def test_folder_sink_is_lossless_and_replaces_old_frames(tmp_path):
    out = tmp_path / "dream"
    write_all(str(out) + "/", [ramp(i) for i in range(5)], 25)
    write_all(str(out) + "/", [ramp(i) for i in range(3)], 25)  # replaces the 5 old frames
    assert sorted(os.listdir(out)) == [f"frame_00000{i}.png" for i in (1, 2, 3)]
    back = open_source(str(out))
    for i, f in enumerate(back.frames()):
        np.testing.assert_array_equal(f, ramp(i))
    assert sorted(os.listdir(tmp_path)) == ["dream"]
    # a folder holding anything else is never replaced
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(DreamvidError) as e:
        open_sink(str(out), 25, 40, 30)
    one_line_error(e, out)


@pytest.mark.parametrize("ext", ["mp4", "webm"])
def test_audio_cut_in_sync_5_1(tmp_path, ext):
    # 5.1 source: silence until t = 1.0 s, then a tone. Rendering from 0.5 s must put the
    # tone's onset at 0.5 s in the output, and the audio must last as long as the frames.
    src = make_video(tmp_path, name="in.mp4", size="48x32", rate="30000/1001", frames=60,
                     audio=r"0.5*sin(2*PI*440*t)*gte(t\,1):c=5.1")
    assert probe(src).audio_layout == "5.1"
    start_frame, n = 15, 30
    start_s = start_frame / float(NTSC)
    frames = list(open_source(src).frames(start_frame, start_frame + n))
    out = tmp_path / f"out.{ext}"
    write_all(out, frames, NTSC, audio=AudioSpec(src, start_s))
    info = probe(str(out))
    assert info.has_audio and info.audio_layout == "5.1"
    back = open_source(str(out))
    assert back.num_frames == n and back.fps == NTSC
    pcm = decode_audio(str(out))
    frame_s = 1 / float(NTSC)
    assert abs(len(pcm) / 48000 - n * frame_s) < 1.5 * frame_s
    onset = np.argmax(np.abs(pcm) > 0.05) / 48000
    assert abs(onset - (1.0 - start_s)) < 0.01, onset  # sample-exact in practice


def test_audio_spec_without_audio_and_for_gif(tmp_path):
    silent = make_video(tmp_path, name="silent.mp4", frames=4)
    write_all(tmp_path / "out.mp4", [ramp(i) for i in range(4)], 25, audio=AudioSpec(silent, 0.0))
    assert not probe(str(tmp_path / "out.mp4")).has_audio
    loud = make_video(tmp_path, name="loud.mp4", frames=4, audio="sin(2*PI*440*t):c=mono")
    write_all(tmp_path / "out.gif", [ramp(i) for i in range(4)], 25, audio=AudioSpec(loud, 0.0))
    assert open_source(str(tmp_path / "out.gif")).num_frames == 4


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "out/"])
def test_abort_keeps_existing_output(tmp_path, name):
    final = os.path.join(str(tmp_path), name)  # (pathlib would drop the folder's '/')
    write_all(final, [solid(i * 50) for i in range(3)], 25)
    before = {p: open(p, "rb").read() for p in _files(tmp_path)}
    with pytest.raises(RuntimeError):
        with open_sink(final, 25, 32, 24) as sink:
            sink.write(solid(7))
            sink.write(solid(8))
            raise RuntimeError("render crashed")
    assert {p: open(p, "rb").read() for p in _files(tmp_path)} == before  # no temp files either


def _files(root):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)


def test_sink_misuse_and_ffmpeg_failure(tmp_path):
    with open_sink(str(tmp_path / "a.mp4"), 25, 32, 24) as sink:
        with pytest.raises(ValueError):
            sink.write(solid(0, w=30))
        sink.write(solid(0))
    with pytest.raises(DreamvidError) as e:
        open_sink(str(tmp_path / "b.mp4"), 25, 32, 24, quality=99)
    one_line_error(e, "99")
    # ffmpeg cannot create its output when the folder vanished: a one-line error, nothing left
    gone = tmp_path / "gone"
    sink = open_sink(str(gone / "c.mp4"), 25, 32, 24)
    os.rmdir(gone)
    with pytest.raises(DreamvidError) as e:
        for _ in range(50):
            sink.write(solid(0))
        sink.close()
    one_line_error(e, gone / "c.mp4")
    assert not gone.exists()


def test_samples_are_as_documented():
    samples = os.path.join(os.path.dirname(__file__), os.pardir, "samples")
    bunny = open_source(os.path.join(samples, "bunny.mp4"))
    assert (bunny.width, bunny.height, bunny.num_frames, bunny.fps) == (426, 240, 50, 25)
    assert bunny.has_audio and probe(bunny.path).audio_layout == "5.1"
    assert read_image(os.path.join(samples, "coffee.jpg")).shape == (400, 600, 3)
