"""Sizes read from file headers, before anything is decoded, and the pixel budget they must fit.

A 30000x30000 PNG can be a megabyte on disk and 2.5 GiB once decoded: the budget is checked on
the header's numbers, so a file past it is refused without allocating its pixels. Headers read
here: PNG (IHDR), JPEG (SOF), BMP, WebP (VP8, VP8L, VP8X), TIFF (first IFD) and GIF (logical
screen, and the frame count by walking the blocks: LZW data is skipped, not decoded).
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Optional, Tuple

from ..config.settings import MAX_PIXELS
from ..errors import InputTooLarge

Size = Tuple[int, int]  # (width, height)


def check_pixels(path: str, width: int, height: int, max_pixels: int = MAX_PIXELS,
                 what: str = "a frame") -> None:
    """InputTooLarge unless a `width` x `height` frame fits `max_pixels`."""
    if width * height > max_pixels:
        raise InputTooLarge(
            f"{path}: {what} of {width}x{height} is {width * height / 1e6:.0f} MP, over the budget of "
            f"{max_pixels / 1e6:.0f} MP; give a smaller input, or raise the budget with --max-pixels "
            f"(max_pixels in Python) if the memory is there")


def header_size(path: str) -> Optional[Size]:
    """(width, height) from the file's header without decoding; None for a format not read here
    or a header that does not parse (the decoder then says what is wrong)."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            f.seek(0)
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                return _png(head)
            if head[:2] == b"\xff\xd8":
                return _jpeg(f)
            if head[:2] == b"BM":
                return _bmp(head)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return _webp(head)
            if head[:4] in (b"II*\x00", b"MM\x00*"):
                return _tiff(f)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return struct.unpack("<HH", head[6:10])
    except (OSError, struct.error):
        return None
    return None


def _png(head: bytes) -> Optional[Size]:
    return struct.unpack(">II", head[16:24]) if head[12:16] == b"IHDR" else None


def _jpeg(f: BinaryIO) -> Optional[Size]:
    f.seek(2)
    while True:  # walk the JPEG segments up to the start-of-frame one
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        code = marker[1]
        if code == 0x01 or 0xD0 <= code <= 0xD8 or code == 0xFF:  # no length field
            if code == 0xFF:
                f.seek(-1, 1)  # fill byte: the real marker code follows
            continue
        length_bytes = f.read(2)
        if len(length_bytes) < 2:
            return None
        if 0xC0 <= code <= 0xCF and code not in (0xC4, 0xC8, 0xCC):
            sof = f.read(5)
            if len(sof) < 5:
                return None
            _, h, w = struct.unpack(">BHH", sof)
            return w, h
        f.seek(struct.unpack(">H", length_bytes)[0] - 2, 1)


def _bmp(head: bytes) -> Optional[Size]:
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", head[18:22])
    else:
        w, h = struct.unpack("<ii", head[18:26])
    return abs(w), abs(h)  # a negative height is a top-down bitmap


def _webp(head: bytes) -> Optional[Size]:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        b = head[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(head[24:27], "little")
        h = 1 + int.from_bytes(head[27:30], "little")
        return w, h
    return None


def _tiff(f: BinaryIO) -> Optional[Size]:
    order = "<" if f.read(2) == b"II" else ">"
    f.seek(4)
    f.seek(struct.unpack(order + "I", f.read(4))[0])
    entries = struct.unpack(order + "H", f.read(2))[0]
    found = {}
    for _ in range(min(entries, 4096)):
        tag, kind, _count = struct.unpack(order + "HHI", f.read(8))
        raw = f.read(4)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), raw[:2] if kind == 3 else raw)[0]
    return (found[256], found[257]) if len(found) == 2 else None


def gif_frame_count(path: str) -> Optional[int]:
    """Frames in a GIF, by walking its blocks (image data skipped, not decoded); None if the
    file is not a GIF or its blocks do not parse."""
    try:
        with open(path, "rb") as f:
            head = f.read(13)
            if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 13:
                return None
            flags = head[10]
            if flags & 0x80:  # global colour table
                f.seek(3 * (2 << (flags & 7)), 1)
            frames = 0
            while True:
                intro = f.read(1)
                if intro == b"\x2c":  # image descriptor
                    desc = f.read(9)
                    if len(desc) < 9:
                        return frames or None
                    if desc[8] & 0x80:  # local colour table
                        f.seek(3 * (2 << (desc[8] & 7)), 1)
                    f.read(1)  # LZW minimum code size
                    if not _skip_sub_blocks(f):
                        return frames + 1  # truncated data: the decoder shows what it can
                    frames += 1
                elif intro == b"\x21":  # extension: label, then sub-blocks
                    f.read(1)
                    if not _skip_sub_blocks(f):
                        return frames or None
                else:  # trailer (0x3b) or end of file
                    return frames
    except OSError:
        return None


def _skip_sub_blocks(f: BinaryIO) -> bool:
    while True:
        n = f.read(1)
        if not n:
            return False
        if n[0] == 0:
            return True
        f.seek(n[0], 1)
