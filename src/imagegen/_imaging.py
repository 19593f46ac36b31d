"""Image inputs and outputs: sniffing, the rules for input images and masks, encoding.

Formats are read from the bytes, never from a file name, so the multipart part gets the right
content type whatever the file is called (OpenAI refuses `application/octet-stream`).

Masks follow OpenAI: fully transparent pixels (alpha = 0) mark the area to edit. A mask without
an alpha channel is read as black and white, white marking the area to edit (the convention of
diffusers, A1111 and most editors), and converted to OpenAI's alpha mask before it is sent.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from ._capabilities import ModelCapabilities
from ._errors import InvalidRequestError

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "MAX_PIXELS",
    "PNG_COMPRESS_LEVEL",
    "WEBP_LOSSLESS_EFFORT",
    "CONTENT_TYPES",
    "ImageInput",
    "InputImage",
    "check_edit_inputs",
    "check_variation_input",
    "edit_region",
    "encode_image",
    "load_input",
    "open_image",
    "sniff_format",
    "to_alpha_mask",
]

# Accepted input types: a path, raw bytes, a binary file object, or a PIL image.
ImageInput = Union[str, os.PathLike[str], bytes, bytearray, memoryview, IO[bytes], "PILImage.Image"]

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "gif": ".gif"}

# Decompression-bomb guard: gpt-image-2's largest output is 3840x2160 (8.3 MP); inputs may be
# larger photos, but nothing legitimate needs more than this many pixels.
MAX_PIXELS = 64_000_000

# zlib level of the PNGs we encode. Pillow's default (6) took 3.6x the time of level 1 on a
# 1024x1024 photograph (465 ms vs 129 ms) for 11 % fewer bytes, and 2.2x on a flat placeholder
# card: images are made to be sent and saved once, and a local link or disk is not the
# bottleneck a third of a second of CPU per image is (bench/server_load.py has the figures).
PNG_COMPRESS_LEVEL = 1
# Effort (0-100) of lossless WebP, OpenAI's default for webp (output_compression 100).
# Pillow's 80 took 1158 ms on that photograph, 25 took 361 ms for 0.1 % more bytes.
WEBP_LOSSLESS_EFFORT = 25


def sniff_format(data: bytes) -> str | None:
    """`png`, `jpeg`, `webp` or `gif` from the magic bytes; `None` if none of these."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


@dataclass(frozen=True)
class InputImage:
    """One input image, read once: its bytes and what was learned from them."""

    data: bytes
    format: str
    width: int
    height: int
    has_alpha: bool
    filename: str

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def to_pil(self) -> PILImage.Image:
        return open_image(self.data, param="image")

    def multipart(self) -> tuple[str, bytes, str]:
        """`(filename, bytes, content_type)` as a multipart file part."""
        return self.filename, self.data, self.content_type


def open_image(data: bytes, *, param: str = "image") -> PILImage.Image:
    """Decode image bytes fully, refusing truncated files and decompression bombs."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise InvalidRequestError(
                f"The {param} is {image.width}x{image.height} pixels; at most "
                f"{MAX_PIXELS:,} pixels are accepted.",
                param=param,
            )
        image.load()
    except InvalidRequestError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequestError(
            f"The {param} could not be read as an image: {exc}.", param=param
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # The warning is raised only where warnings are errors (`-W error`, pytest).
        raise InvalidRequestError(f"The {param} has too many pixels.", param=param) from None
    return image


def _read_source(source: ImageInput, param: str) -> tuple[bytes, str]:
    from PIL import Image

    if isinstance(source, Image.Image):
        buffer = io.BytesIO()
        image = source
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            # A palette's transparency (one index or per-entry alpha) must become real alpha.
            alpha = "A" in image.getbands() or "transparency" in image.info
            image = image.convert("RGBA" if alpha else "RGB")
        image.save(buffer, format="PNG")
        return buffer.getvalue(), f"{param}.png"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), param
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        try:
            return path.read_bytes(), path.name
        except FileNotFoundError:
            raise InvalidRequestError(
                f"The {param} file {str(path)!r} does not exist.", param=param
            ) from None
        except IsADirectoryError:
            raise InvalidRequestError(
                f"The {param} path {str(path)!r} is a folder, not a file.", param=param
            ) from None
        except OSError as exc:
            raise InvalidRequestError(
                f"The {param} file {str(path)!r} cannot be read: {exc.strerror}.", param=param
            ) from None
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, bytes):
            raise InvalidRequestError(
                f"The {param} file object must be opened in binary mode ('rb').", param=param
            )
        name = getattr(source, "name", None)
        return data, Path(name).name if isinstance(name, str) else param
    raise InvalidRequestError(
        f"Unsupported {param} input of type {type(source).__name__}: pass a path, bytes, a "
        "binary file object or a PIL image.",
        param=param,
    )


def load_input(source: ImageInput | InputImage, *, param: str = "image") -> InputImage:
    """Read an input image once, sniff its format and learn its size and alpha."""
    if isinstance(source, InputImage):
        return source
    from PIL import Image, UnidentifiedImageError

    data, name = _read_source(source, param)
    if not data:
        raise InvalidRequestError(f"The {param} is empty (0 bytes).", param=param)
    fmt = sniff_format(data)
    if fmt is None:
        raise InvalidRequestError(
            f"The {param} {name!r} is not a PNG, JPEG or WebP image.", param=param
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            has_alpha = (
                probe.mode in ("RGBA", "LA", "PA")
                or (probe.mode == "P" and "transparency" in probe.info)
                or (probe.mode in ("RGB", "L") and "transparency" in probe.info)
            )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequestError(
            f"The {param} {name!r} could not be read: {exc}.", param=param
        ) from None
    # PIL refuses headers claiming > 179 MP outright, and warns above 89 MP (an exception
    # where warnings are errors).
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequestError(
            f"The {param} {name!r} has too many pixels; at most {MAX_PIXELS:,} are accepted.",
            param=param,
        ) from None
    stem = Path(name).stem or param
    return InputImage(
        data=data,
        format=fmt,
        width=width,
        height=height,
        has_alpha=has_alpha,
        filename=stem + EXTENSIONS[fmt],
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _check_image(image: InputImage, caps: ModelCapabilities, param: str) -> None:
    who = caps.name or "this model"
    if image.format not in caps.input_formats:
        allowed = ", ".join(f.upper() for f in caps.input_formats)
        raise InvalidRequestError(
            f"The {param} {image.filename!r} is {image.format.upper()}; {who} accepts {allowed}.",
            param=param,
        )
    if len(image.data) >= caps.max_image_bytes:
        raise InvalidRequestError(
            f"The {param} {image.filename!r} is {_mb(len(image.data))}; {who} accepts files "
            f"under {_mb(caps.max_image_bytes)}.",
            param=param,
        )
    if caps.square_inputs and image.width != image.height:
        raise InvalidRequestError(
            f"The {param} {image.filename!r} is {image.width}x{image.height}; {who} needs a "
            "square image.",
            param=param,
        )
    if image.width * image.height > MAX_PIXELS:
        raise InvalidRequestError(
            f"The {param} {image.filename!r} has {image.width * image.height:,} pixels; at most "
            f"{MAX_PIXELS:,} are accepted.",
            param=param,
        )


def to_alpha_mask(mask: InputImage) -> InputImage:
    """Return `mask` as OpenAI wants it: a PNG whose alpha = 0 marks the area to edit.

    A mask with an alpha channel is taken as it is. One without is read as black and white,
    white = edit, and converted.
    """
    if mask.has_alpha and mask.format == "png":
        return mask
    from PIL import Image

    image = open_image(mask.data, param="mask")
    if mask.has_alpha:
        alpha = image.convert("RGBA").getchannel("A")
    else:
        # white (>= 128) = edit → alpha 0; black = keep → alpha 255
        alpha = image.convert("L").point(lambda v: 0 if v >= 128 else 255)
    out = Image.new("RGBA", image.size, (0, 0, 0, 255))
    out.putalpha(alpha)
    buffer = io.BytesIO()
    out.save(buffer, format="PNG")
    return InputImage(
        data=buffer.getvalue(),
        format="png",
        width=image.width,
        height=image.height,
        has_alpha=True,
        filename=Path(mask.filename).stem + ".png",
    )


def check_edit_inputs(
    images: Sequence[InputImage], mask: InputImage | None, caps: ModelCapabilities
) -> InputImage | None:
    """Check an edit's images and mask against `caps`; return the mask in OpenAI's alpha form."""
    who = caps.name or "this model"
    if not images:
        raise InvalidRequestError("An edit needs at least one image.", param="image")
    if len(images) > caps.max_images:
        raise InvalidRequestError(
            f"{len(images)} images were given; {who} accepts at most {caps.max_images}.",
            param="image",
        )
    for image in images:
        _check_image(image, caps, "image")
    first = images[0]
    if mask is None:
        if caps.name == "dall-e-2" and not first.has_alpha:
            raise InvalidRequestError(
                "Without a mask, dall-e-2 edits the transparent pixels of the image, and this "
                "image has no transparency: pass a mask (--mask) or an image with an alpha "
                "channel.",
                param="mask",
            )
        return None
    if mask.size != first.size:
        raise InvalidRequestError(
            f"The mask is {mask.width}x{mask.height} but the image is "
            f"{first.width}x{first.height}; they must be the same size.",
            param="mask",
        )
    converted = to_alpha_mask(mask)
    if len(converted.data) >= caps.max_mask_bytes:
        raise InvalidRequestError(
            f"The mask is {_mb(len(converted.data))}; {who} accepts masks under "
            f"{_mb(caps.max_mask_bytes)}.",
            param="mask",
        )
    return converted


def check_variation_input(image: InputImage, caps: ModelCapabilities) -> None:
    _check_image(image, caps, "image")


def edit_region(mask: PILImage.Image | None, image: PILImage.Image) -> PILImage.Image:
    """The area to edit as an `L` image, 255 = edit, from an OpenAI alpha mask.

    Without a mask the image's own transparency is the mask (OpenAI's dall-e-2 rule); an opaque
    image without a mask yields an all-zero region (nothing is masked: a whole-image edit).
    """
    from PIL import Image

    source = mask if mask is not None else image
    if source.size != image.size:
        raise InvalidRequestError(
            f"The mask is {source.width}x{source.height} but the image is "
            f"{image.width}x{image.height}; they must be the same size.",
            param="mask",
        )
    # Alpha may also come as a tRNS chunk (`transparency`) on P, L and RGB PNGs.
    if "A" not in source.getbands() and "transparency" not in source.info:
        if mask is not None:
            raise InvalidRequestError(
                "Invalid mask image format - mask image missing alpha channel.", param="mask"
            )
        return Image.new("L", image.size, 0)
    alpha = source.convert("RGBA").getchannel("A")
    return alpha.point(lambda a: 255 if a == 0 else 0)


def encode_image(
    image: PILImage.Image,
    output_format: str = "png",
    *,
    compression: int | None = None,
    transparent: bool = False,
    png_level: int = PNG_COMPRESS_LEVEL,
) -> bytes:
    """Encode a PIL image as `png`, `jpeg` or `webp`; `compression` 0-100 as OpenAI means it.

    `png_level` is zlib's level (0-9) for PNG, whose `output_compression` OpenAI ignores."""
    buffer = io.BytesIO()
    params: dict[str, Any] = {}
    if output_format == "png":
        image = image if transparent or image.mode in ("RGB", "L") else image.convert("RGB")
        if transparent and image.mode != "RGBA":
            image = image.convert("RGBA")
        image.save(buffer, format="PNG", compress_level=png_level)
    elif output_format == "jpeg":
        # OpenAI's output_compression is "compression level": 100 = best quality, as its default.
        params["quality"] = 95 if compression is None else max(1, min(95, compression))
        image.convert("RGB").save(buffer, format="JPEG", **params)
    elif output_format == "webp":
        if compression is None or compression >= 100:
            params["lossless"] = True
            params["quality"] = WEBP_LOSSLESS_EFFORT  # lossless: "quality" is effort
        else:
            params["quality"] = compression
        image = image.convert("RGBA" if transparent else "RGB")
        image.save(buffer, format="WEBP", **params)
    else:
        raise InvalidRequestError(
            f"Invalid output_format {output_format!r}: use png, jpeg or webp.",
            param="output_format",
        )
    return buffer.getvalue()
