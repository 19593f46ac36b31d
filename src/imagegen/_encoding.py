"""An engine's result encoded as its job asks: stills, GIF animations or SVG documents.

The service encodes what an engine returns; an engine that draws in worker processes (the
placeholder under `imagegen serve`) calls the same functions there and returns the bytes, so an
answer is the same to the byte wherever its image was drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._errors import EngineError
from ._imaging import PNG_COMPRESS_LEVEL, encode_gif, encode_image, sniff_format

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .engines import EngineResult, Job

__all__ = ["encode_result", "keeps_alpha", "made"]


def keeps_alpha(job: Job, image: PILImage.Image) -> bool:
    """Whether an image is encoded with its alpha channel: always for `background=transparent`,
    and for `auto` when the engine returned real transparency (an edit of a transparent image
    keeps its transparent pixels). JPEG has no alpha."""
    if job.output_format == "jpeg":
        return False
    if job.transparent:
        return True
    if job.background != "auto" or image.mode not in ("RGBA", "LA"):
        return False
    lowest = image.getchannel("A").getextrema()[0]
    return isinstance(lowest, int) and lowest < 255


def made(job: Job, result: EngineResult) -> Sequence[object] | None:
    """The images of `result` in the form `job` asked for; None if they are not there."""
    if result.encoded is not None:
        return result.encoded
    if job.output_format == "gif":
        return result.frames
    if job.output_format == "svg":
        return result.svgs
    return result.images


def _check_size(engine: str, job: Job, image: PILImage.Image) -> None:
    if image.size != (job.width, job.height):
        raise EngineError(
            f"Engine {engine!r} returned a {image.width}x{image.height} image for a "
            f"{job.size} request."
        )


def _gif(engine: str, job: Job, frames: list[PILImage.Image]) -> bytes:
    for frame in frames:
        _check_size(engine, job, frame)
    if len(frames) != job.frame_count:
        raise EngineError(
            f"Engine {engine!r} returned {len(frames)} frames for frame_count={job.frame_count}."
        )
    transparent = any(keeps_alpha(job, frame) for frame in frames)
    return encode_gif(frames, duration_ms=job.frame_duration_ms, transparent=transparent)


def _checked(engine: str, job: Job, data: bytes) -> bytes:
    """Encoded bytes as they are, if they are the format the job asks for."""
    if sniff_format(data[:4096]) != job.output_format:
        shown = "an SVG document" if job.output_format == "svg" else f"a {job.output_format} image"
        raise EngineError(f"Engine {engine!r} returned data that is not {shown}.")
    return data


def _svg(engine: str, document: str) -> bytes:
    data = document.encode("utf-8")
    if sniff_format(data[:4096]) != "svg":
        raise EngineError(
            f"Engine {engine!r} returned text that is not an SVG document for an SVG request."
        )
    return data


def encode_result(
    job: Job, result: EngineResult, *, engine: str, png_level: int = PNG_COMPRESS_LEVEL
) -> tuple[list[bytes], list[PILImage.Image]]:
    """The encoded images of `result` (engine `engine`'s, named in errors), and the images
    whose transparency the answer reports (the stills, each GIF's first frame; none for SVG
    documents and for images the engine encoded, which have alpha only when the job asks for
    `background=transparent`)."""
    if result.encoded is not None:
        return [_checked(engine, job, data) for data in result.encoded], []
    if job.output_format == "gif" and result.frames is not None:
        shown = [frames[0] for frames in result.frames if frames]
        return [_gif(engine, job, frames) for frames in result.frames], shown
    if job.output_format == "svg" and result.svgs is not None:
        return [_svg(engine, document) for document in result.svgs], []
    for image in result.images:
        _check_size(engine, job, image)
    encoded = [
        encode_image(
            image,
            job.output_format,
            compression=job.output_compression,
            transparent=keeps_alpha(job, image),
            png_level=png_level,
        )
        for image in result.images
    ]
    return encoded, result.images
