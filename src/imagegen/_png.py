"""PNG encoding with one row filter, Up, instead of Pillow's choice per row.

Pillow's encoder tries all five PNG filters on every row and keeps the one whose bytes look
smallest, then hands zlib one row at a time. At the zlib levels we encode with (1 by default),
that search costs more than it saves: Up alone (each byte minus the one above it) gives files
within 1-5 % of the size in 40-55 % less time, on placeholder cards and on photographs alike
(bench/placeholder_speed.py; the figures are in docs/engines.md). The filtering is Pillow's
`ImageChops.subtract_modulo` of the image and itself shifted down a row, in strips, so the
work stays in C and memory stays within a few rows of the image. Like Pillow's, the file holds
the image's ICC profile if it has one, and nothing else beyond the pixels.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}  # 8 bits per channel
_UP = b"\x02"
# Rows filtered and compressed at a time: about 256 KB. Each strip makes a few buffers of its
# size; at a megabyte they come fresh from the system every time and their pages fault in, and
# the first 1024x1024 PNG of a process took 30-34 ms instead of 15-19 (bench/startup.py).
_STRIP_BYTES = 1 << 18


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: PILImage.Image, level: int = 1) -> bytes:
    """`image` (mode L, RGB or RGBA) as a PNG, its rows Up-filtered, deflated at `level`."""
    from PIL import Image, ImageChops

    colour_type = _COLOUR_TYPES.get(image.mode)
    if colour_type is None:
        raise ValueError(f"encode_png takes L, RGB or RGBA images, not {image.mode}")
    width, height = image.size
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    stride = width * len(image.getbands())
    compressor = zlib.compressobj(level)
    parts = [_SIGNATURE, _chunk(b"IHDR", header)]
    profile = image.info.get("icc_profile")
    if profile:  # the colours mean what they meant in the image (Pillow writes it too)
        parts.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(profile)))
    data = []
    rows = max(1, _STRIP_BYTES // max(1, stride))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = image.crop((0, top, width, bottom))
        above = Image.new(image.mode, strip.size)  # the row above the image is zeros
        above.paste(image.crop((0, max(0, top - 1), width, bottom - 1)), (0, 1 if top == 0 else 0))
        filtered = ImageChops.subtract_modulo(strip, above).tobytes()
        lines = b"".join(
            _UP + filtered[start : start + stride] for start in range(0, len(filtered), stride)
        )
        data.append(compressor.compress(lines))
    data.append(compressor.flush())
    parts += [_chunk(b"IDAT", b"".join(data)), _chunk(b"IEND", b"")]
    return b"".join(parts)
