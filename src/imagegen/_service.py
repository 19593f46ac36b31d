"""Turn a wire request into an engine job, run it, and shape the answer as OpenAI does.

Shared by the server and by the in-process client (`Client(engine=...)`), so both apply the same
validation, the same `auto` resolution and the same response fields.
"""

from __future__ import annotations

import base64
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from ._capabilities import (
    FLEXIBLE_MAX_PIXELS,
    GIF,
    MODELS,
    Endpoint,
    ModelCapabilities,
    get_capabilities,
    parse_size,
)
from ._encoding import encode_result, keeps_alpha, made
from ._errors import EngineError, ImagegenError, InvalidRequestError
from ._imaging import (
    PNG_COMPRESS_LEVEL,
    InputImage,
    check_edit_inputs,
    check_variation_input,
    edit_region,
    encode_image,
    open_image,
)
from ._models import (
    CompletedEvent,
    ImageData,
    ImageRequest,
    ImagesResponse,
    ImagesUsage,
    PartialImageEvent,
    SvgUsage,
)
from ._records import record
from ._validation import Problems, validate_params
from .engines import Engine, EngineResult, Job, PartialCallback

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["DEFAULT_MAX_OUTPUT_PIXELS", "ImageService", "Rendered"]

# Largest output an engine is asked for unless the server is told otherwise: gpt-image-2's
# ceiling (3840x2160). Guards engines of unknown models against "100000x100000".
DEFAULT_MAX_OUTPUT_PIXELS = FLEXIBLE_MAX_PIXELS

# A seed sent as text (multipart fields are strings): ASCII digits only ("²" passes
# `isdigit()` but not `int()`), and not so many that `int()` refuses the string.
_INTEGER = r"^\s*-?[0-9]{1,30}\s*$"  # compiled on first use, by `re`

# The quality an answer reports: the one asked for, or `high` for `auto` (and DALL·E's names).
_RESOLVED_QUALITY = {q: q for q in ("low", "medium", "high", "xhigh", "max")}


@record()
class Rendered:
    """Encoded images plus the response fields; `to_response` builds the wire answer."""

    created: int
    images: list[bytes]
    output_format: str
    echo: dict[str, str] = field(default_factory=dict)
    usage: ImagesUsage | None = None
    revised_prompts: list[str | None] = field(default_factory=list)
    svg_usage: SvgUsage | None = None

    def to_response(self, urls: list[str] | None = None, *, encoded: bool = True) -> ImagesResponse:
        """The wire answer: images as `urls`, else as base64 (`encoded`), else left out (an
        in-process caller keeps `images` as they are)."""
        data = []
        for index, image in enumerate(self.images):
            revised = self.revised_prompts[index] if index < len(self.revised_prompts) else None
            if urls is not None:
                data.append(ImageData.of(url=urls[index], revised_prompt=revised))
            else:
                b64 = base64.b64encode(image).decode("ascii") if encoded else None
                data.append(ImageData.of(b64_json=b64, revised_prompt=revised))
        return ImagesResponse.of(
            created=self.created, data=data, usage=self.usage, svg_usage=self.svg_usage, **self.echo
        )


def _rgba(image: PILImage.Image) -> PILImage.Image:
    """`image` as RGBA, without a copy when it already is (4 bytes a pixel: 256 MB at 64 MP)."""
    return image if image.mode == "RGBA" else image.convert("RGBA")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _seed(seed: Any) -> int | None:
    """The `seed` extra field as an integer (multipart fields are text)."""
    if seed is None:
        return None
    if isinstance(seed, str) and re.match(_INTEGER, seed):
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidRequestError(f"Invalid seed {seed!r}: must be an integer.", param="seed")
    return seed


def _region(mask: InputImage | None, first: PILImage.Image) -> PILImage.Image | None:
    """An edit's region: the mask's, else the first image's transparent pixels; None for an
    opaque image without a mask, which is edited whole."""
    mask_image = open_image(mask.data, param="mask", name=mask.name) if mask is not None else None
    region = edit_region(mask_image, first)
    if mask_image is None and region.getbbox() is None:
        return None
    return region


def _job_fields(request: ImageRequest) -> dict[str, Any]:
    """The fields of an engine's `Job` that come straight from the request, defaults applied."""
    fields = request.wire_params()
    output_format = fields.get("output_format", "png")
    gif = output_format == "gif"
    svg = fields.get("svg", {})
    return {
        "n": fields.get("n", 1),
        "prompt": fields.get("prompt", ""),
        "quality": fields.get("quality", "auto"),
        "background": fields.get("background", "auto"),
        "output_format": output_format,
        "output_compression": fields.get("output_compression"),
        "partial_images": fields.get("partial_images", 0),
        "complexity": fields.get("complexity"),
        "frame_count": fields.get("frame_count", GIF.default_frames) if gif else 0,
        "frame_duration_ms": GIF.duration(fields.get("frame_duration_ms")) if gif else 0,
        "svg_model": svg.get("model"),
        "svg_reasoning_effort": svg.get("reasoning", {}).get("effort"),
        "safety_identifier": getattr(request, "effective_safety_identifier", request.user),
    }


class ImageService:
    """Validates requests for one engine and runs them."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_output_pixels: int = DEFAULT_MAX_OUTPUT_PIXELS,
        png_compress_level: int = PNG_COMPRESS_LEVEL,
    ):
        self.engine = engine
        self.max_output_pixels = max_output_pixels
        self.png_compress_level = png_compress_level
        self.declared: dict[str, ModelCapabilities] = {m.name: m for m in engine.models()}
        # Called with each job the engine made, its result and the seconds it took (metrics).
        self.observers: list[Callable[[Job, EngineResult, float], None]] = []

    @property
    def default_model(self) -> str:
        return next(iter(self.declared), self.engine.name)

    def capabilities(self, model: str | None) -> ModelCapabilities:
        return get_capabilities(model or self.default_model, self.declared)

    def check_model(self, model: str | None) -> ModelCapabilities:
        """The rules for the model a request names: one the engine declares or one of OpenAI's.

        Any other name is refused as OpenAI refuses it (the server answers 404), in process as
        over HTTP; `None` is the engine's own model. Raises `InvalidRequestError`.
        """
        if model is not None and model not in self.declared and model not in MODELS:
            shown = model if len(model) <= 80 else model[:80] + "..."
            raise InvalidRequestError(
                f"The model `{shown}` does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return self.capabilities(model)

    def prepare(
        self,
        endpoint: Endpoint,
        request: ImageRequest,
        images: list[InputImage] | None = None,
        mask: InputImage | None = None,
        markup: InputImage | None = None,
    ) -> Job:
        """Validate everything and build the engine's job. Raises one `InvalidRequestError`
        for every problem found."""
        images = images or []
        caps, model = self._model(endpoint, request)
        mask = self._check(endpoint, request, caps, images, mask, markup)
        pil_images = [
            _rgba(open_image(image.data, param="image", name=image.name)) for image in images
        ]
        size = request.size or caps.default_size(endpoint)
        width, height = self._size(endpoint, size, pil_images[0].size if pil_images else None)
        options = dict(request.extra_params())
        job = Job(
            endpoint=endpoint,
            model=model,
            width=width,
            height=height,
            seed=_seed(options.pop("seed", None)),
            images=pil_images,
            mask=_region(mask, pil_images[0]) if endpoint == "edits" else None,
            markup=(
                _rgba(open_image(markup.data, param="markup", name=markup.name))
                if markup is not None
                else None
            ),
            options=options,
            png_compress_level=self.png_compress_level,
            **_job_fields(request),
        )
        self.engine.check(job)
        return job

    def _model(self, endpoint: Endpoint, request: ImageRequest) -> tuple[ModelCapabilities, str]:
        """The rules of the model a request names (or the engine's own), and its name."""
        caps = self.check_model(request.model)
        model = request.model or self.default_model
        served = {name for declared in self.declared.values() for name in declared.endpoints}
        if self.declared and endpoint not in served and model not in self.declared:
            # An OpenAI name (dall-e-2 for variations) must not reach an engine method that
            # none of its models implements.
            raise InvalidRequestError(
                f"Engine {self.engine.name!r} does not make {endpoint} (its models support: "
                f"{', '.join(sorted(served))}).",
                param="model",
            )
        return caps, model

    def _check(
        self,
        endpoint: Endpoint,
        request: ImageRequest,
        caps: ModelCapabilities,
        images: list[InputImage],
        mask: InputImage | None,
        markup: InputImage | None,
    ) -> InputImage | None:
        """Every problem of the request and its files in one error; the mask in OpenAI's
        alpha form."""
        params = request.wire_params()
        problems = Problems()
        files = [name for name, given in (("mask", mask), ("markup", markup)) if given]
        with problems.collect():
            validate_params(endpoint, params, caps, files=files)
        self._check_engine_takes(params, markup, problems)
        with problems.collect():
            if endpoint == "edits":
                mask = check_edit_inputs(images, mask, caps, markup)
            elif endpoint == "variations":
                if len(images) != 1:
                    raise InvalidRequestError("A variation needs exactly one image.", param="image")
                check_variation_input(images[0], caps)
        problems.raise_any()
        return mask

    def _size(
        self, endpoint: Endpoint, size: str, input_size: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The pixels to make: the size asked for, or what `auto` means for this engine."""
        parsed = parse_size(size)
        width, height = parsed or self.engine.resolve_auto_size(endpoint, input_size)
        if parsed is None and width * height > self.max_output_pixels:
            # `auto` is ours to choose: a large input is edited smaller, keeping its shape,
            # rather than refused for a size the caller never asked for.
            scale = math.sqrt(self.max_output_pixels / (width * height))
            width, height = max(1, int(width * scale)), max(1, int(height * scale))
        if width * height > self.max_output_pixels:
            raise InvalidRequestError(
                f"Invalid size {size!r}: {width * height:,} pixels; images of at most "
                f"{self.max_output_pixels:,} pixels are made here.",
                param="size",
            )
        return width, height

    def _check_engine_takes(
        self, params: dict[str, Any], markup: InputImage | None, problems: Problems
    ) -> None:
        """Refuse what the engine declares it does not make (a format) or read (markup)."""
        name = self.engine.name or type(self.engine).__name__
        fmt = params.get("output_format")
        formats = self.engine.output_formats
        if isinstance(fmt, str) and fmt not in formats and not problems.has("output_format"):
            listed = ", ".join(sorted(formats))
            problems.add(
                f"Engine {name!r} does not make {fmt} images; use output_format {listed}.",
                "output_format",
            )
        if markup is not None and "markup" not in self.engine.accepts:
            problems.add(
                f"Engine {name!r} does not read a markup; leave markup out, or use a mask to "
                "mark the area to edit.",
                "markup",
            )

    def _echo(self, job: Job, images: Sequence[PILImage.Image] = ()) -> dict[str, str]:
        identity = {"safety_identifier": job.safety_identifier} if job.safety_identifier else {}
        if self.capabilities(job.model).family == "dall-e":
            return identity  # DALL·E answers carry no other echo fields
        transparent = job.transparent or any(keeps_alpha(job, image) for image in images)
        return {
            "background": "transparent" if transparent else "opaque",
            "output_format": job.output_format,
            "size": job.size,
            "quality": _RESOLVED_QUALITY.get(job.quality, "high"),
            **identity,
        }

    def _call(self, job: Job, on_partial: PartialCallback | None) -> EngineResult:
        started = time.perf_counter()
        try:
            if job.endpoint == "generations":
                result = self.engine.generate(job, on_partial)
            elif job.endpoint == "edits":
                result = self.engine.edit(job, on_partial)
            else:
                result = self.engine.vary(job)
        except ImagegenError:
            raise
        except Exception as exc:  # an engine's own failure, reported with its cause chained
            raise EngineError(
                f"Engine {self.engine.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        returned = made(job, result)
        if returned is None:
            kind = {"gif": "frames (EngineResult.frames)", "svg": "SVG documents (.svgs)"}
            raise EngineError(
                f"Engine {self.engine.name!r} returned no {kind.get(job.output_format, 'images')} "
                f"for output_format={job.output_format}."
            )
        if len(returned) != job.n:
            raise EngineError(
                f"Engine {self.engine.name!r} returned {len(returned)} images for n={job.n}."
            )
        seconds = time.perf_counter() - started
        for observer in self.observers:
            observer(job, result, seconds)
        return result

    def run(self, job: Job, on_partial: PartialCallback | None = None) -> Rendered:
        """Run the job to the end and encode its images."""
        return self.finish(job, self.make(job, on_partial))

    def make(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        """Only the engine's part of `run`: the server holds an engine slot just for this."""
        return self._call(job, on_partial)

    def finish(self, job: Job, result: EngineResult) -> Rendered:
        """The rest of `run`: encode the images (CPU work that needs no engine slot)."""
        encoded, shown = encode_result(
            job, result, engine=self.engine.name, png_level=self.png_compress_level
        )
        return Rendered(
            created=int(time.time()),
            images=encoded,
            output_format=job.output_format,
            echo=self._echo(job, shown),
            usage=result.usage,
            revised_prompts=list(result.revised_prompts or []),
            svg_usage=result.svg_usage,
        )

    def stream(self, job: Job) -> Iterator[PartialImageEvent | CompletedEvent]:
        """Run the job in a worker thread, yielding partial images as the engine makes them,
        then one completed event per image."""
        prefix = "image_edit" if job.endpoint == "edits" else "image_generation"
        echo = self._echo(job) or {"size": job.size, "output_format": job.output_format}
        import queue  # here: only streams need it

        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        counter = iter(range(1_000_000))

        def on_partial(image_index: int, partial_index: int, image: PILImage.Image) -> None:
            if job.partial_images <= 0:
                return
            if partial_index >= job.partial_images:
                return
            if image.size != (job.width, job.height):
                image = image.resize((job.width, job.height))
            data = encode_image(
                image,
                job.output_format,
                compression=job.output_compression,
                transparent=keeps_alpha(job, image),
                png_level=self.png_compress_level,
            )
            events.put(
                (
                    "partial",
                    PartialImageEvent.of(
                        type=f"{prefix}.partial_image",
                        b64_json=_b64(data),
                        created_at=int(time.time()),
                        partial_image_index=next(counter),
                        **echo,
                    ),
                )
            )

        def work() -> None:
            try:
                events.put(("done", self.run(job, on_partial)))
            except BaseException as exc:  # handed to the consumer thread, re-raised there
                events.put(("error", exc))

        thread = threading.Thread(target=work, name="imagegen-engine", daemon=True)
        thread.start()
        while True:
            kind, payload = events.get()
            if kind == "partial":
                yield payload
            elif kind == "error":
                raise payload
            else:
                rendered: Rendered = payload
                last = len(rendered.images) - 1
                for index, image in enumerate(rendered.images):
                    yield CompletedEvent.of(
                        type=f"{prefix}.completed",
                        b64_json=_b64(image),
                        created_at=rendered.created,
                        usage=rendered.usage if index == last else None,
                        **(rendered.echo or echo),
                    )
                return
