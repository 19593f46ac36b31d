"""Input images and masks: sniffing, reading from every kind of source, the per-model rules,
mask conversion, edit regions and encoding."""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagegen._capabilities import MODELS, get_capabilities
from imagegen._errors import InvalidRequestError
from imagegen._imaging import (
    MAX_PIXELS,
    PNG_COMPRESS_LEVEL,
    WEBP_LOSSLESS_EFFORT,
    InputImage,
    check_edit_inputs,
    check_variation_input,
    edit_region,
    encode_image,
    format_sizes,
    load_input,
    open_image,
    sniff_format,
)
from imagegen._png import encode_png

MB = 1024 * 1024
DALL_E_2 = MODELS["dall-e-2"]
GPT_IMAGE_1 = MODELS["gpt-image-1"]


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def picture(size: tuple[int, int] = (32, 32), mode: str = "RGB") -> Image.Image:
    colour = {"RGB": (200, 40, 40), "RGBA": (200, 40, 40, 255), "L": 128, "LA": (128, 255)}[mode]
    return Image.new(mode, size, colour)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height`: all a decompression bomb needs to be."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def noise_png(size: int, mode: str = "RGBA") -> bytes:
    """Random pixels: a PNG that does not compress, so its byte size is predictable."""
    channels = len(mode)
    data = np.random.default_rng(0).integers(0, 256, (size, size, channels), dtype=np.uint8)
    return encoded(Image.fromarray(data), compress_level=0)


def refused(call: object, *args: object, **kwargs: object) -> InvalidRequestError:
    assert callable(call)
    with pytest.raises(InvalidRequestError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- sniffing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"), [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp"), ("GIF", "gif")]
)
def test_formats_are_sniffed_from_the_bytes(fmt: str, expected: str) -> None:
    assert sniff_format(encoded(picture(), fmt)) == expected


@pytest.mark.parametrize(
    "data", [b"", b"\x89PN", b"hello world", b"RIFF\0\0\0\0WAVEfmt ", b"%PDF-1.7", b"BM\0\0"]
)
def test_unknown_bytes_are_not_an_image_format(data: bytes) -> None:
    assert sniff_format(data) is None


# --- reading inputs ----------------------------------------------------------------------------


def test_format_comes_from_the_bytes_not_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(encoded(picture((40, 30)), "JPEG"))
    image = load_input(path)
    assert (image.format, image.content_type, image.filename) == ("jpeg", "image/jpeg", "photo.jpg")
    assert image.size == (40, 30) and not image.has_alpha
    assert image.multipart() == ("photo.jpg", path.read_bytes(), "image/jpeg")


def test_every_kind_of_source(tmp_path: Path) -> None:
    data = encoded(picture((20, 10), "RGBA"))
    path = tmp_path / "in.png"
    path.write_bytes(data)
    with path.open("rb") as handle:
        from_file = load_input(handle)
    sources: list[object] = [str(path), path, data, bytearray(data), memoryview(data)]
    loaded = [load_input(source) for source in sources]  # type: ignore[arg-type]
    for image in [*loaded, from_file, load_input(io.BytesIO(data))]:
        assert image.data == data and image.format == "png"
        assert image.size == (20, 10) and image.has_alpha
    assert loaded[0].filename == "in.png" and from_file.filename == "in.png"
    assert loaded[0].name == "in.png" and from_file.name == "in.png"
    assert loaded[2].filename == "image.png"  # bytes have no name: the parameter's
    assert loaded[2].name is None
    assert load_input(loaded[0]) is loaded[0]


def test_messages_name_an_input_as_it_was_given(tmp_path: Path) -> None:
    # A PNG called .jpeg: the multipart name follows the bytes, messages the caller's name.
    path = tmp_path / "rect.jpeg"
    path.write_bytes(encoded(picture((64, 32))))
    image = load_input(path)
    assert (image.name, image.filename) == ("rect.jpeg", "rect.png")
    error = refused(check_variation_input, image, DALL_E_2)
    assert error.message == "The image 'rect.jpeg' is 64x32; dall-e-2 needs a square image."
    # Bytes have no name of their own: the server gives the upload's file name.
    uploaded = load_input(path.read_bytes(), name="C:\\Users\\me\\rect.png")
    assert (uploaded.name, uploaded.filename) == ("rect.png", "rect.png")
    error = refused(check_variation_input, uploaded, DALL_E_2)
    assert "The image 'rect.png' is 64x32" in error.message
    unnamed = load_input(path.read_bytes())
    assert refused(check_variation_input, unnamed, DALL_E_2).message.startswith(
        "The image is 64x32;"
    )
    long = load_input(path.read_bytes(), name="x" * 200 + ".png")
    assert "'" + "x" * 77 + "...'" in refused(check_variation_input, long, DALL_E_2).message


def test_an_input_has_one_name_in_every_message() -> None:
    # The CLI names stdin `stdin`; every message about that input must say the same.
    def stdin(data: bytes) -> io.BytesIO:
        named = io.BytesIO(data)
        named.name = "stdin"
        return named

    messages = [
        refused(load_input, stdin(b"not an image")).message,
        refused(
            check_variation_input, load_input(stdin(encoded(picture((8, 4))))), DALL_E_2
        ).message,
        refused(
            check_variation_input, load_input(stdin(encoded(picture(), "GIF"))), DALL_E_2
        ).message,
    ]
    assert all(message.startswith("The image 'stdin' ") for message in messages), messages


@pytest.mark.parametrize(
    ("image", "alpha"),
    [
        (picture(mode="RGB"), False),
        (picture(mode="RGBA"), True),
        (picture(mode="L"), False),
        (picture(mode="LA"), True),
        (Image.new("CMYK", (8, 8)), False),
        (Image.new("1", (8, 8)), False),
    ],
)
def test_pil_images_become_png(image: Image.Image, alpha: bool) -> None:
    loaded = load_input(image, param="mask")
    assert loaded.format == "png" and loaded.filename == "mask.png"
    assert loaded.has_alpha is alpha and loaded.size == image.size


def test_a_palette_image_keeps_its_transparency() -> None:
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 4, 8))
    palette.info["transparency"] = bytes([0, 255] + [255] * 254)  # per-entry alpha
    loaded = load_input(palette)
    assert loaded.has_alpha
    alpha = np.asarray(open_image(loaded.data).convert("RGBA"))[..., 3]
    assert alpha[:, :4].min() == 255 and alpha[:, 4:].max() == 0


@pytest.mark.parametrize(
    ("image", "options", "alpha"),
    [
        (Image.new("RGBA", (8, 8), (9, 9, 9, 100)), {"format": "WEBP", "lossless": True}, True),
        (picture(mode="RGB"), {"format": "WEBP"}, False),
        (picture(mode="L"), {"format": "PNG", "transparency": 0}, True),
        (picture(mode="RGB"), {"format": "PNG", "transparency": (0, 0, 0)}, True),
        (picture(mode="RGB"), {"format": "JPEG"}, False),
    ],
)
def test_alpha_is_detected(image: Image.Image, options: dict[str, object], alpha: bool) -> None:
    buffer = io.BytesIO()
    image.save(buffer, **options)  # type: ignore[arg-type]
    assert load_input(buffer.getvalue()).has_alpha is alpha


def test_unknown_bytes_are_refused_naming_the_parameter() -> None:
    error = refused(load_input, b"not an image at all", param="mask")
    assert error.param == "mask" and "not a PNG, JPEG or WebP" in error.message


def test_empty_input_is_refused(tmp_path: Path) -> None:
    assert "empty (0 bytes)" in refused(load_input, b"").message
    path = tmp_path / "empty.png"
    path.touch()
    error = refused(load_input, path)
    assert error.param == "image" and "empty" in error.message


def test_missing_file(tmp_path: Path) -> None:
    error = refused(load_input, tmp_path / "nope.png", param="mask")
    assert (
        error.param == "mask" and "does not exist" in error.message and "nope.png" in error.message
    )


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    error = refused(load_input, tmp_path)
    assert error.param == "image" and "is a folder" in error.message


def test_text_mode_file_objects_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(encoded(picture()))
    with path.open("r", encoding="latin-1") as handle:
        error = refused(load_input, handle)
    assert "binary mode" in error.message


def test_unsupported_source_types() -> None:
    error = refused(load_input, 12345)
    assert error.param == "image" and "int" in error.message


def test_a_truncated_image_is_refused_when_decoded() -> None:
    data = encoded(Image.effect_noise((64, 64), 50).convert("RGB"))
    truncated = data[: len(data) // 2]
    image = load_input(truncated)  # the header is intact
    assert image.size == (64, 64)
    error = refused(open_image, image.data, param="image")
    assert error.param == "image" and "could not be read" in error.message
    # With the header cut, reading fails at once.
    assert refused(load_input, data[:20]).param == "image"


def test_garbage_after_a_valid_signature() -> None:
    error = refused(load_input, b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    assert error.param == "image" and "could not be read" in error.message


@pytest.mark.parametrize("side", [10_000, 20_000])  # over PIL's warning and error limits
def test_decompression_bombs_are_refused(side: int) -> None:
    error = refused(load_input, png_header(side, side), param="mask")
    assert error.param == "mask" and "too many pixels" in error.message


def test_decompression_bombs_without_warnings_as_errors() -> None:
    # Where PIL's warning is only a warning, the pixel limit still refuses the image.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = load_input(png_header(10_000, 10_000))
        error = refused(check_variation_input, image, get_capabilities("my-model"))
        assert "100,000,000 pixels" in error.message
        assert refused(open_image, image.data).param == "image"


def test_more_pixels_than_accepted() -> None:
    image = load_input(png_header(9000, 8000))  # 72 MP: under PIL's limits, over ours
    assert image.width * image.height > MAX_PIXELS
    error = refused(check_edit_inputs, [image], None, GPT_IMAGE_1)
    assert error.param == "image" and "72,000,000 pixels" in error.message
    error = refused(open_image, image.data, param="image")
    assert "9000x8000" in error.message


# --- edit inputs -------------------------------------------------------------------------------


def png(size: tuple[int, int] = (32, 32), mode: str = "RGB") -> InputImage:
    return load_input(encoded(picture(size, mode)))


def test_an_edit_needs_an_image() -> None:
    assert refused(check_edit_inputs, [], None, GPT_IMAGE_1).param == "image"


def test_up_to_16_images_for_gpt_image_models() -> None:
    images = [png() for _ in range(16)]
    assert check_edit_inputs(images, None, GPT_IMAGE_1) is None
    error = refused(check_edit_inputs, [*images, png()], None, GPT_IMAGE_1)
    assert error.param == "image" and "17 images" in error.message and "at most 16" in error.message


def test_gpt_image_inputs_under_50_mb() -> None:
    image = png()
    big = dataclasses.replace(image, data=image.data + bytes(50 * MB))
    error = refused(check_edit_inputs, [image, big], None, GPT_IMAGE_1)
    assert error.param == "image"
    assert f"is {len(big.data):,} bytes; gpt-image-1 accepts files under 52,428,800 bytes" in (
        error.message
    )
    bigger = dataclasses.replace(image, data=bytes(51 * MB))
    error = refused(check_edit_inputs, [bigger], None, GPT_IMAGE_1)
    assert "is 51.0 MB; gpt-image-1 accepts files under 50.0 MB." in error.message


@pytest.mark.parametrize(
    ("size", "limit", "shown"),
    [
        (5 * MB, 4 * MB, ("5.0 MB", "4.0 MB")),
        (int(4.04 * MB), 4 * MB, ("4.04 MB", "4.00 MB")),
        (4_194_963, 4 * MB, ("4,194,963 bytes", "4,194,304 bytes (4.0 MB)")),
        (4 * MB, 4 * MB, ("4,194,304 bytes", "4,194,304 bytes (4.0 MB)")),
    ],
)
def test_sizes_against_a_limit_are_shown_apart(
    size: int, limit: int, shown: tuple[str, str]
) -> None:
    assert format_sizes(size, limit) == shown


def test_gpt_image_inputs_are_png_jpeg_or_webp() -> None:
    for fmt in ("PNG", "JPEG", "WEBP"):
        check_edit_inputs([load_input(encoded(picture(), fmt))], None, GPT_IMAGE_1)
    gif = load_input(encoded(picture(), "GIF"))
    error = refused(check_edit_inputs, [gif], None, GPT_IMAGE_1)
    assert error.param == "image" and "GIF" in error.message


def test_dall_e_2_takes_one_square_png_under_4_mb() -> None:
    square = png((64, 64), "RGBA")
    transparent = load_input(encoded(Image.new("RGBA", (64, 64), (0, 0, 0, 0))))
    assert check_edit_inputs([transparent], None, DALL_E_2) is None
    error = refused(check_edit_inputs, [square, square], None, DALL_E_2)
    assert "at most 1" in error.message and error.param == "image"
    error = refused(check_edit_inputs, [png((64, 32), "RGBA")], None, DALL_E_2)
    assert "64x32" in error.message and "square" in error.message
    jpeg = load_input(encoded(picture((64, 64)), "JPEG"))
    assert "accepts PNG" in refused(check_edit_inputs, [jpeg], None, DALL_E_2).message
    large = load_input(noise_png(1100))
    assert len(large.data) > 4 * MB
    error = refused(check_edit_inputs, [large], None, DALL_E_2)
    assert error.param == "image" and "under 4.0 MB" in error.message
    assert "under 4.0 MB" in refused(check_variation_input, large, DALL_E_2).message
    assert "square" in refused(check_variation_input, png((64, 32)), DALL_E_2).message


def test_dall_e_2_without_a_mask_needs_transparency() -> None:
    error = refused(check_edit_inputs, [png((64, 64))], None, DALL_E_2)
    assert error.param == "mask" and "transparency" in error.message
    # Shared by the client and the server: wire names only; the CLI adds its flags itself.
    assert "--" not in error.message and "pass a mask," in error.message


def test_the_mask_must_match_the_first_image() -> None:
    mask = load_input(encoded(picture((32, 16), "RGBA")))
    error = refused(check_edit_inputs, [png((32, 32)), png((32, 16))], mask, GPT_IMAGE_1)
    assert error.param == "mask" and "32x16" in error.message and "32x32" in error.message


def test_a_mask_with_alpha_is_kept_as_it_is() -> None:
    mask = load_input(encoded(Image.new("RGBA", (32, 32), (0, 0, 0, 0))))
    assert check_edit_inputs([png()], mask, GPT_IMAGE_1) is mask


def test_a_black_and_white_mask_becomes_an_alpha_mask_white_is_edited() -> None:
    drawing = Image.new("L", (32, 32), 0)
    drawing.paste(255, (0, 0, 16, 32))  # left half white: the area to edit
    drawing.paste(127, (16, 0, 24, 32))  # darker than mid-grey: kept
    drawing.paste(128, (24, 0, 32, 4))  # mid-grey: edited
    for fmt in ("PNG", "JPEG"):
        source = drawing.convert("RGB") if fmt == "JPEG" else drawing
        mask = load_input(encoded(source, fmt, **({"quality": 100} if fmt == "JPEG" else {})))
        converted = check_edit_inputs([png()], mask, GPT_IMAGE_1)
        assert converted is not None and converted.format == "png" and converted.has_alpha
        assert converted.filename == "image.png"
        alpha = np.asarray(Image.open(io.BytesIO(converted.data)).getchannel("A"))
        assert alpha[:, :16].max() == 0 and alpha[8:, 16:24].min() == 255
        if fmt == "PNG":
            assert alpha[:4, 24:].max() == 0 and alpha[4:, 24:].min() == 255
        region = edit_region(open_image(converted.data), picture(mode="RGBA"))
        assert np.asarray(region)[:, :16].min() == 255 and np.asarray(region)[:, 16:24].max() == 0


def bw_drawing(size: int = 16) -> Image.Image:
    """A black-and-white mask: the top-left quarter white (to edit)."""
    drawing = Image.new("L", (size, size), 0)
    drawing.paste(255, (0, 0, size // 2, size // 2))
    return drawing


def edited(mask: InputImage | None, size: int = 16) -> np.ndarray:
    assert mask is not None
    return np.asarray(edit_region(open_image(mask.data), picture((size, size), "RGBA")))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_fully_opaque_mask_is_read_as_black_and_white(mode: str) -> None:
    # Editors save black-and-white masks with an alpha channel that is 255 everywhere.
    source = bw_drawing().convert(mode)
    # A palette's tRNS chunk may name an entry that no pixel uses.
    options = {"transparency": 7} if mode == "P" else {}
    mask = load_input(encoded(source, **options), param="mask")
    assert mask.has_alpha
    converted = check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1)
    assert converted is not None and converted is not mask
    region = edited(converted)
    assert region[:8, :8].min() == 255 and region[8:].max() == 0 and region[:, 8:].max() == 0


def test_a_fully_opaque_white_mask_edits_everything() -> None:
    mask = load_input(encoded(Image.new("RGBA", (16, 16), (255, 255, 255, 255))))
    assert edited(check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1)).min() == 255


@pytest.mark.parametrize(
    ("source", "how"),
    [
        (Image.new("L", (16, 16), 0), "read as black and white"),
        (Image.new("RGB", (16, 16), (100, 100, 100)), "read as black and white"),
        (Image.new("RGBA", (16, 16), (0, 0, 0, 255)), "read as black and white"),
        (Image.new("RGBA", (16, 16), (200, 50, 50, 255)), "read as black and white"),
        (Image.new("RGBA", (16, 16), (0, 0, 0, 1)), "alpha = 0"),
    ],
)
def test_a_mask_that_marks_nothing_is_refused(source: Image.Image, how: str) -> None:
    mask = load_input(encoded(source), param="mask")
    error = refused(check_edit_inputs, [png((16, 16))], mask, GPT_IMAGE_1)
    assert error.param == "mask" and error.message.startswith("The mask marks nothing to edit: ")
    assert how in error.message and "--" not in error.message


def test_a_black_and_white_mask_with_a_soft_alpha_edge_is_read_as_black_and_white() -> None:
    # No pixel at alpha 0: the alpha would edit nothing, so the drawing is what counts.
    source = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    source.paste((255, 255, 255, 255), (0, 0, 8, 16))
    source.putpixel((15, 15), (0, 0, 0, 254))
    mask = load_input(encoded(source), param="mask")
    region = edited(check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1))
    assert region[:, :8].min() == 255 and region[:, 8:].max() == 0


def test_a_16_bit_grey_mask_is_scaled_not_clipped() -> None:
    # Pillow's convert("L") clips 16-bit values: 3000 of 65535 (a 5% grey) would read as white.
    values = np.zeros((16, 16), dtype=np.uint16)
    values[:, :8] = 65535
    values[:, 8:] = 3000
    mask = load_input(encoded(Image.fromarray(values)), param="mask")
    region = edited(check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1))
    assert region[:, :8].min() == 255 and region[:, 8:].max() == 0


def test_a_mask_with_some_transparency_is_read_by_its_alpha_alone() -> None:
    # White pixels mean nothing once alpha is used: only alpha = 0 is edited.
    source = Image.new("RGBA", (16, 16), (255, 255, 255, 255))
    source.paste((0, 0, 0, 0), (8, 8, 16, 16))
    source.paste((255, 255, 255, 254), (0, 0, 8, 8))
    mask = load_input(encoded(source))
    assert check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1) is mask
    region = edited(mask)
    assert region[8:, 8:].min() == 255 and region[:8].max() == 0


def test_a_webp_mask_with_alpha_becomes_a_png_with_the_same_alpha() -> None:
    source = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    source.paste((0, 0, 0, 0), (0, 0, 8, 16))
    mask = load_input(encoded(source, "WEBP", lossless=True))
    converted = check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1)
    assert converted is not None and converted.format == "png"
    assert np.array_equal(
        np.asarray(open_image(converted.data).getchannel("A")), np.asarray(source.getchannel("A"))
    )


def test_a_mask_with_a_trns_chunk_marks_its_transparent_pixels() -> None:
    drawing = Image.new("L", (16, 16), 255)
    drawing.paste(0, (0, 0, 8, 8))
    mask = load_input(encoded(drawing, transparency=0))  # grey 0 is transparent
    converted = check_edit_inputs([png((16, 16))], mask, GPT_IMAGE_1)
    assert converted is not None
    region = np.asarray(edit_region(open_image(converted.data), picture((16, 16), "RGBA")))
    assert region[:8, :8].min() == 255 and region[8:].max() == 0


def test_dall_e_2_masks_under_4_mb() -> None:
    mask = load_input(noise_png(1100))
    image = load_input(noise_png(1100))
    small = dataclasses.replace(image, data=image.data[: 4 * MB - 1])
    error = refused(check_edit_inputs, [small], mask, DALL_E_2)
    assert error.param == "mask" and "under 4.0 MB" in error.message
    assert error.message.startswith("The mask is ")
    # Converted masks are measured as they will be sent, and the message says so.
    jpeg = load_input(encoded(bw_drawing(64).convert("RGB"), "JPEG"), name="m.jpg")
    tiny = dataclasses.replace(DALL_E_2, max_mask_bytes=100)
    error = refused(check_edit_inputs, [png((64, 64), "RGBA")], jpeg, tiny)
    assert error.message.startswith("The mask 'm.jpg', as a PNG, is ")


# --- edit regions ------------------------------------------------------------------------------


def test_edit_region_from_an_alpha_mask() -> None:
    mask = Image.new("RGBA", (8, 8), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 4, 4))
    mask.paste((0, 0, 0, 1), (4, 4, 8, 8))  # only alpha = 0 is edited
    region = np.asarray(edit_region(mask, picture((8, 8), "RGBA")))
    assert region.dtype == np.uint8 and set(np.unique(region)) == {0, 255}
    assert region[:4, :4].min() == 255 and region[4:, 4:].max() == 0


def test_without_a_mask_the_images_transparency_is_the_region() -> None:
    image = Image.new("RGBA", (8, 8), (10, 20, 30, 255))
    image.paste((0, 0, 0, 0), (2, 2, 6, 6))
    region = np.asarray(edit_region(None, image))
    assert region[2:6, 2:6].min() == 255 and region.sum() == 16 * 255
    assert edit_region(None, picture((8, 8), "RGB")).getbbox() is None


def test_edit_region_refuses_a_mask_without_alpha_or_of_another_size() -> None:
    error = refused(edit_region, picture((8, 8), "L"), picture((8, 8), "RGBA"))
    assert error.param == "mask" and "alpha" in error.message
    error = refused(edit_region, picture((8, 4), "RGBA"), picture((8, 8), "RGBA"))
    assert error.param == "mask" and "same size" in error.message


# --- encoding ----------------------------------------------------------------------------------


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_png_keeps_alpha_only_when_transparent() -> None:
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert decoded(encode_image(image, "png", transparent=True)).mode == "RGBA"
    assert decoded(encode_image(image, "png")).mode == "RGB"
    assert decoded(encode_image(picture(), "png", transparent=True)).mode == "RGBA"
    assert decoded(encode_image(picture(mode="L"), "png")).mode == "L"


def test_png_is_encoded_at_a_fast_zlib_level() -> None:
    # Pillow's default level (6) costs several times the CPU for a few percent fewer bytes.
    photo = Image.effect_mandelbrot((256, 256), (-2, -1.5, 1, 1.5), 80).convert("RGB")
    assert 1 <= PNG_COMPRESS_LEVEL <= 3
    fast = encode_image(photo, "png")
    assert fast == encode_png(photo, PNG_COMPRESS_LEVEL)
    smallest = encode_image(photo, "png", png_level=9)
    assert len(smallest) < len(fast)
    assert np.array_equal(np.asarray(decoded(smallest)), np.asarray(decoded(fast)))


def test_jpeg_compression_is_quality() -> None:
    noise = Image.effect_noise((128, 128), 60).convert("RGB")
    best, worst = encode_image(noise, "jpeg"), encode_image(noise, "jpeg", compression=5)
    assert sniff_format(best) == sniff_format(worst) == "jpeg"
    assert len(worst) < len(best) / 2
    assert decoded(encode_image(Image.new("RGBA", (8, 8)), "jpeg", compression=0)).mode == "RGB"


def test_webp_is_lossless_by_default_and_lossy_with_compression() -> None:
    noise = Image.effect_noise((64, 64), 60).convert("RGB")
    lossless = decoded(encode_image(noise, "webp"))
    assert np.array_equal(np.asarray(lossless.convert("RGB")), np.asarray(noise))
    lossy = encode_image(noise, "webp", compression=30)
    assert sniff_format(lossy) == "webp" and len(lossy) < len(encode_image(noise, "webp"))
    clear = decoded(encode_image(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "webp", transparent=True))
    assert clear.mode == "RGBA" and clear.getchannel("A").getextrema() == (0, 0)


def test_lossless_webp_uses_a_low_effort() -> None:
    # Pillow's default effort (80) takes about 3x the time for a fraction of a percent.
    photo = Image.effect_mandelbrot((128, 128), (-2, -1.5, 1, 1.5), 80).convert("RGB")
    assert WEBP_LOSSLESS_EFFORT <= 50
    data = encode_image(photo, "webp")
    assert data == encoded(photo, "WEBP", lossless=True, quality=WEBP_LOSSLESS_EFFORT)
    assert data != encoded(photo, "WEBP", lossless=True)  # not Pillow's default effort
    assert np.array_equal(np.asarray(decoded(data).convert("RGB")), np.asarray(photo))


def test_unknown_output_format() -> None:
    error = refused(encode_image, picture(), "gif")
    assert error.param == "output_format"
