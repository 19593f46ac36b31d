"""GIF and SVG in `_imaging` and `_saving`: sniffing, encoding animations, markup inputs, and
saving with the right extension and a metadata sidecar."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw

from imagegen._capabilities import MODELS
from imagegen._errors import InvalidRequestError
from imagegen._imaging import check_edit_inputs, check_markup, encode_gif, load_input, sniff_format
from imagegen._saving import write_image

FLARE = MODELS["gpt-image-2.5-flare"]
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="2"/>'


def png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def drawing(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A markup: a red circle on a transparent sheet."""
    sheet = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(sheet).ellipse((10, 10, 30, 30), outline=(255, 0, 0, 255), width=3)
    return sheet


@pytest.mark.parametrize(
    "head",
    [
        SVG,
        b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n' + SVG,
        b"<!-- made by hand -->\n<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' 'x.dtd'>\n" + SVG,
        b"  \n<SVG viewBox='0 0 1 1'></SVG>",
    ],
)
def test_svg_is_sniffed_after_a_declaration_comments_and_doctype(head: bytes) -> None:
    assert sniff_format(head) == "svg"


@pytest.mark.parametrize("head", [b"<svgx>", b"<html><svg>", b"<?xml version='1.0'?><root/>"])
def test_other_xml_is_not_svg(head: bytes) -> None:
    assert sniff_format(head) is None


def test_an_svg_is_not_an_input_image() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        load_input(SVG)
    assert caught.value.param == "image" and "PNG, JPEG or WebP" in caught.value.message


def test_encode_gif_makes_a_looping_animation_with_each_frame() -> None:
    frames = [Image.new("RGB", (40, 30), (20 * i, 100, 200 - 20 * i)) for i in range(5)]
    data = encode_gif(frames, duration_ms=120)
    assert sniff_format(data) == "gif"
    with Image.open(io.BytesIO(data)) as gif:
        assert (gif.n_frames, gif.size, gif.info["loop"]) == (5, (40, 30), 0)
        for index in range(5):
            gif.seek(index)
            assert gif.info["duration"] == 120
            red, green, blue = gif.convert("RGB").getpixel((3, 3))
            assert abs(red - 20 * index) <= 8 and abs(blue - (200 - 20 * index)) <= 8


def test_encode_gif_keeps_transparency() -> None:
    frames = []
    for index in range(3):
        frame = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        ImageDraw.Draw(frame).rectangle((8 + index, 8, 20 + index, 20), fill=(250, 60, 0, 255))
        frames.append(frame)
    with Image.open(io.BytesIO(encode_gif(frames, duration_ms=50, transparent=True))) as gif:
        for index in range(3):
            gif.seek(index)
            rgba = gif.convert("RGBA")
            assert rgba.getpixel((1, 1))[3] == 0
            assert rgba.getpixel((14, 14)) == (250, 60, 0, 255)


def test_a_markup_is_a_transparent_png_the_size_of_the_first_image() -> None:
    photo = load_input(png(Image.new("RGB", (64, 48), "white")))
    markup = load_input(png(drawing()), param="markup")
    assert check_edit_inputs([photo], None, FLARE, markup) is None

    cases = [
        (png(drawing((48, 64))), "must be the same size"),
        (png(Image.new("RGBA", (64, 48), (255, 0, 0, 255))), "no transparent pixels"),
        (png(Image.new("RGB", (64, 48), "red")), "no transparent pixels"),
    ]
    buffer = io.BytesIO()
    drawing().convert("RGB").save(buffer, "JPEG")
    cases.append((buffer.getvalue(), "must be a PNG"))
    for data, words in cases:
        with pytest.raises(InvalidRequestError) as caught:
            check_markup(load_input(data, param="markup"), photo)
        assert caught.value.param == "markup" and words in caught.value.message


def test_a_markup_matches_a_photo_as_it_is_shown() -> None:
    """A portrait photo stored sideways (EXIF orientation 6) is 48x64 once turned."""
    sideways = Image.new("RGB", (64, 48), "white")
    exif = sideways.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", exif=exif.tobytes())
    photo = load_input(buffer.getvalue())
    check_markup(load_input(png(drawing((48, 64))), param="markup"), photo)
    with pytest.raises(InvalidRequestError):
        check_markup(load_input(png(drawing((64, 48))), param="markup"), photo)


def test_edit_inputs_report_every_problem() -> None:
    small = load_input(png(Image.new("RGB", (64, 48), "white")))
    gif = io.BytesIO()
    Image.new("P", (64, 48)).save(gif, "GIF")
    with pytest.raises(InvalidRequestError) as caught:
        check_edit_inputs(
            [load_input(gif.getvalue()), small],
            None,
            FLARE,
            load_input(png(Image.new("RGBA", (64, 48), "red")), param="markup"),
        )
    assert [problem.param for problem in caught.value.problems] == ["image", "markup"]


@pytest.mark.parametrize(
    ("data", "name", "saved"),
    [
        (encode_gif([Image.new("RGB", (8, 6), c) for c in ("red", "blue")], duration_ms=100),
         "out", "out.gif"),
        (encode_gif([Image.new("RGB", (8, 6), c) for c in ("red", "blue")], duration_ms=100),
         "out.gif", "out.gif"),
        (b'<?xml version="1.0"?>\n<!-- a comment long enough to push the element on -->\n'
         + b" " * 100 + SVG, "out", "out.svg"),
        (SVG, "pic.SVG", "pic.SVG"),
    ],
)  # fmt: skip
def test_gif_and_svg_are_saved_with_their_extension_and_a_sidecar(
    tmp_path: Path, data: bytes, name: str, saved: str
) -> None:
    path = write_image(tmp_path / name, [data[:7], data[7:]], metadata={"prompt": "a lion"})
    assert path == tmp_path / saved
    assert path.read_bytes() == data
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["prompt"] == "a lion"
    if saved.endswith(".gif"):
        assert sidecar["size"] == "8x6"  # read from the GIF itself


def test_a_saved_gif_keeps_its_frames(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green", "blue")]
    path = write_image(tmp_path / "anim.gif", [encode_gif(frames, duration_ms=80)])
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        assert ImageChops.difference(gif.convert("RGB"), frames[2]).getbbox() is None
