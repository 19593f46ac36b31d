"""The PNG writer: any L, RGB or RGBA image back bit for bit, rows Up-filtered, a profile kept."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms

from imagegen import _png
from imagegen._png import encode_png


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        found.append((kind, body))
        at += 12 + length
    return found


def noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    channels = len(mode)
    values = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), np.uint8)
    return Image.fromarray(values[..., 0] if channels == 1 else values, mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (1, 9), (9, 1), (3, 5), (257, 31)])
def test_every_pixel_comes_back(mode: str, size: tuple[int, int]) -> None:
    image = noise(mode, size)
    decoded = Image.open(io.BytesIO(encode_png(image)))
    decoded.load()
    assert (decoded.mode, decoded.size) == (mode, size)
    assert decoded.tobytes() == image.tobytes()


def test_rows_are_filtered_in_strips_that_join_up(monkeypatch: pytest.MonkeyPatch) -> None:
    image = noise("RGB", (50, 40), seed=1)
    monkeypatch.setattr(_png, "_STRIP_BYTES", 50 * 3 * 7)  # 7 rows a strip: 6 strips
    data = encode_png(image)
    kinds = [kind for kind, _ in chunks(data)]
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]
    idat = zlib.decompress(dict(chunks(data))[b"IDAT"])
    rows = [idat[y * 151 : (y + 1) * 151] for y in range(40)]
    assert {row[0] for row in rows} == {2}  # Up, every row
    pixels = np.asarray(image).reshape(40, 150).astype(np.int16)
    expected = (pixels - np.vstack([np.zeros((1, 150), np.int16), pixels[:-1]])) % 256
    assert [row[1:] for row in rows] == [bytes(line.astype(np.uint8)) for line in expected]
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert decoded.tobytes() == image.tobytes()


def test_the_level_is_zlibs() -> None:
    gradient = Image.linear_gradient("L").resize((300, 200)).convert("RGB")
    sizes = [len(encode_png(gradient, level)) for level in (0, 1, 9)]
    assert sizes[0] > sizes[1] > sizes[2]
    assert len(zlib.decompress(dict(chunks(encode_png(gradient, 0)))[b"IDAT"])) == 200 * 901


def test_about_the_size_of_pillows_encoding() -> None:
    photo = Image.effect_mandelbrot((256, 256), (-2, -1.5, 1, 1.5), 80).convert("RGB")
    photo = Image.merge(
        "RGB", [photo.getchannel(0), photo.getchannel(1).rotate(90), photo.getchannel(2)]
    )
    buffer = io.BytesIO()
    photo.save(buffer, "PNG", compress_level=1)
    assert len(encode_png(photo, 1)) < len(buffer.getvalue()) * 1.1


def test_an_icc_profile_is_kept() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", (4, 4), (10, 200, 30))
    image.info["icc_profile"] = profile
    data = encode_png(image)
    assert [kind for kind, _ in chunks(data)] == [b"IHDR", b"iCCP", b"IDAT", b"IEND"]
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == profile
    assert b"iCCP" not in encode_png(Image.new("RGB", (4, 4)))


def test_other_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="L, RGB or RGBA"):
        encode_png(Image.new("P", (2, 2)))
