"""Inputs with a budget: sizes read from headers before decoding, frames past the pixel budget
refused in one line (before any pixel is decoded), and a truncated video saying where it ended."""

import resource
import struct
import subprocess
import sys
import time
import zlib

import cv2
import numpy as np
import pytest

from dreamvid.__main__ import main
from dreamvid.config.settings import MAX_PIXELS, RunOptions
from dreamvid.errors import InputTooLarge, SettingError
from dreamvid.io.headers import gif_frame_count, header_size
from dreamvid.io.images import read_image
from dreamvid.io.sources import open_source
from dreamvid.pipeline.video import dream_video

from conftest import make_video
from test_cli import assert_one_line_error


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(width: int, height: int, rows_per_block: int = 100) -> bytes:
    """A valid all-black 8-bit grey PNG, built in milliseconds at any size: the zlib stream of a
    block of zero rows is compressed once and repeated (a full flush resets the compressor, so
    every block compresses to the same bytes); the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1."""
    assert height % rows_per_block == 0
    block = bytes((1 + width) * rows_per_block)  # filter byte 0 + width grey samples, per row
    c = zlib.compressobj(9)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)  # with the 2-byte zlib header
    same = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    blocks = height // rows_per_block
    end = c.compress(b"") + c.flush(zlib.Z_FINISH)  # an empty final block, then Adler-32 of 2 blocks
    n = len(block) * blocks
    idat = first + same * (blocks - 1) + end[:-4] + struct.pack(">I", ((n % 65521) << 16) | 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def test_zero_png_is_a_real_png(tmp_path):
    """The bomb builder makes files a real decoder reads (checked at a size that fits)."""
    path = tmp_path / "small.png"
    path.write_bytes(zero_png(700, 300))
    rgb = read_image(str(path))
    assert rgb.shape == (300, 700, 3) and not rgb.any()


@pytest.fixture(scope="module")
def png_bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(zero_png(30000, 30000))
    return path


def test_png_bomb_refused_before_decoding_with_small_memory(png_bomb):
    """30000x30000 (900 MP, 2.5 GiB decoded) in ~1 MB: refused from its header, in a fresh
    process whose peak memory stays that of its imports."""
    assert png_bomb.stat().st_size < 2_000_000
    code = ("import resource, sys\n"
            "from dreamvid.io.images import read_image\n"
            "from dreamvid.errors import InputTooLarge\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    read_image(sys.argv[1])\nexcept InputTooLarge as e:\n    print(e)\n"
            "print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(png_bomb)], capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - t
    message, peaks = proc.stdout.strip().splitlines()
    before, after = (int(v) for v in peaks.split())
    assert "30000x30000" in message and "900 MP" in message and "--max-pixels" in message
    assert after - before < 20_000, f"peak RSS grew by {after - before} KiB"  # < 20 MB: nothing decoded
    assert seconds < 30


def test_png_bomb_cli_one_line_exit_2(png_bomb, tmp_path, capsys):
    out = tmp_path / "out.png"
    code = main([str(png_bomb), "-o", str(out), "--device", "cpu", "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "30000x30000", "--max-pixels")
    assert not out.exists()


def test_header_sizes_of_real_files(tmp_path):
    """PNG, JPEG, BMP, WebP (lossy and lossless), TIFF: the header's size is the decoded size."""
    rgb = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    for name, params in [("a.png", []), ("a.jpg", []), ("a.bmp", []), ("a.webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
                         ("b.webp", [cv2.IMWRITE_WEBP_QUALITY, 101]), ("a.tif", []), ("a.tiff", [])]:
        path = str(tmp_path / name)
        assert cv2.imwrite(path, rgb, params), name
        assert header_size(path) == (53, 37), name
        assert read_image(path).shape == (37, 53, 3)


def test_small_budget_refuses_and_a_raised_one_accepts(tmp_path):
    path = str(tmp_path / "a.jpg")
    cv2.imwrite(path, np.zeros((100, 200, 3), np.uint8))
    with pytest.raises(InputTooLarge):
        read_image(path, max_pixels=19_999)
    assert read_image(path, max_pixels=20_000).shape == (100, 200, 3)
    with pytest.raises(SettingError, match="max_pixels"):
        RunOptions(max_pixels=0).validate()
    assert RunOptions().max_pixels == MAX_PIXELS == 100_000_000


def test_video_and_gif_over_budget_refused_from_headers(tmp_path, capsys):
    """A video's frame size from ffmpeg's stream header, a GIF's from its logical screen: refused
    before OpenCV decodes a frame; in the CLI, one line and exit 2."""
    mp4 = make_video(tmp_path, "in.mp4", size="64x48", frames=3)
    gif = make_video(tmp_path, "in.gif", size="64x48", frames=7)
    assert gif_frame_count(gif) == 7 and header_size(gif) == (64, 48)
    assert open_source(gif).num_frames == 7
    for path in (mp4, gif):
        with pytest.raises(InputTooLarge, match="64x48"):
            open_source(path, max_pixels=64 * 48 - 1)
        assert open_source(path, max_pixels=64 * 48).width == 64
    code = main([mp4, "-o", str(tmp_path / "out.mp4"), "--max-pixels", "3000", "--device", "cpu", "--quiet"])
    assert_one_line_error(code, capsys.readouterr().err, "64x48", "--max-pixels")


def truncated_mp4(tmp_path, frames=30, keep=0.6):
    """A real H.264 mp4 (index first: +faststart) with its bytes cut: the container still promises
    `frames`, decoding stops early."""
    full = make_video(tmp_path, "full.mp4", size="96x64", frames=frames, extra=["-g", "5", "-movflags", "+faststart"])
    data = open(full, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * keep)])
    return str(cut)


def test_truncated_video_says_where_it_ended(tmp_path, capsys):
    """The render finishes with the frames that decode and one message, as a Python event and a
    line in the CLI."""
    cut = truncated_mp4(tmp_path)
    source = open_source(cut)
    n = source.num_frames
    assert source.promised_frames == 30 and 0 < n < 30
    line = f"input ended at frame {n} of 30: rendered {n}"
    events = []
    out = tmp_path / "out.mp4"
    from dreamvid.config.presets import settings_from_preset
    dream_video(cut, str(out), settings_from_preset(None, iterations=1, octaves=1),
                run=RunOptions(device="cpu"), on_event=events.append)
    assert [e.text for e in events if e.kind == "message" and "input ended" in e.text] == [line]
    assert open_source(str(out)).num_frames == n
    out2 = tmp_path / "out2.mp4"
    code = main([cut, "-o", str(out2), "--iterations", "1", "--octaves", "1", "--device", "cpu", "--quiet"])
    assert code == 0 and line in capsys.readouterr().err


def test_whole_video_says_nothing(tmp_path):
    full = make_video(tmp_path, "full.mp4", size="96x64", frames=12, extra=["-movflags", "+faststart"])
    assert open_source(full).promised_frames is None
