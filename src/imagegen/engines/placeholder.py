"""The `placeholder` engine: real, deterministic images without a model, a GPU or a network.

- **Generations** draw a gradient in colours derived from the prompt, a card with the prompt
  wrapped to fit and the size below it. With `background=transparent` only the card is drawn,
  opaque, on a fully transparent image. Images too small for legible text (under 48 px on the
  short side) keep the colours and leave the text out.
- **Edits** fill the pixels under the mask from their surroundings with a multi-scale harmonic
  (Laplace) fill, add a light seeded texture and tint, and draw the prompt over that area, clipped
  to it. Every pixel outside the mask is returned unchanged, alpha included. Without a mask the
  whole image is edited: a poster-like colour grade in the prompt's colours with the prompt on a
  banner. Only the first input image is used. If the requested size differs from the input's,
  the image and the mask are first resized (stretched) to the requested size, and "unchanged"
  refers to that resized image.
- **Variations** apply a seeded mix of mirroring, a small rotation and crop, a hue shift and a
  light effect (posterize, blur, sharpen, contrast) to the input, cropped to cover the size.

Everything follows from the prompt (or, for variations, the input), the size and the seed:
image `i` of a request uses `seed + i`, and without a seed one is derived from the prompt (or
the input pixels). The text uses Pillow's bundled font, so output is the same on every machine;
that font covers ASCII only, so accents are folded (`é` → `e`) and other characters become `?`.
The engine counts no tokens, so results carry no usage.

With `-o processes=N` (which `imagegen serve` sets to the number of CPUs) generations are drawn
and encoded in N worker processes, started by `load()` and stopped by `close()`, so that a
server uses every CPU (see `_placeholder_pool`); the images are the same to the byte. Edits and
variations, whose input images would cross to the worker and back, and streams with partial
images stay in the calling thread.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from PIL import Image

from .._capabilities import FLEXIBLE_MAX_PIXELS, Endpoint, ModelCapabilities, get_capabilities
from . import Engine, EngineOptions, EngineResult, Job, PartialCallback, option
from ._placeholder_card import Palette, digest, placeholder
from ._placeholder_formats import glow_count, markup_region, shimmer, svg_card, svg_picture

if TYPE_CHECKING:
    from ._inpaint import Mask
    from ._placeholder_pool import DrawingPool

__all__ = ["PlaceholderEngine"]


# --- the engine ------------------------------------------------------------------------------


def _coarse(image: Image.Image, factor: int) -> Image.Image:
    """A blurred low-resolution render of `image`: what a partial image looks like."""
    small = image.resize(
        (max(1, image.width // factor), max(1, image.height // factor)), Image.Resampling.BOX
    )
    return small.resize(image.size, Image.Resampling.BILINEAR)


def _opaque(image: Image.Image) -> Image.Image:
    """RGB if the alpha channel is fully opaque, so callers see what the image really is."""
    if image.mode == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        return image.convert("RGB")
    return image


class PlaceholderOptions(EngineOptions):
    """What `-o` sets for the placeholder engine."""

    processes: int = option(
        default=0,
        help="worker processes that draw generations, so a server uses every CPU (0: the "
        "calling thread; imagegen serve starts one per CPU)",
        ge=0,
        le=1024,
    )


class PlaceholderEngine(Engine):
    """Deterministic images with no model: see the module docstring for what each call does."""

    name: ClassVar[str] = "placeholder"
    description: ClassVar[str] = (
        "Built-in, no model: prompt placeholders, real inpainting edits, seeded variations."
    )
    Options = PlaceholderOptions
    default_size = (1024, 1024)
    output_formats: ClassVar[frozenset[str]] = frozenset({"png", "jpeg", "webp", "gif", "svg"})
    accepts: ClassVar[frozenset[str]] = frozenset({"markup"})

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        super().__init__(model=model, options=options)
        parsed = self.parse_options(self.options)
        self.processes: int = getattr(parsed, "processes", 0)  # a subclass may not read it
        self._pool: DrawingPool | None = None

    @classmethod
    def serve_options(cls) -> dict[str, str]:
        # A process per CPU where there are several (with one, a worker would only add a
        # trip); not for a subclass that does not read the option.
        from ._placeholder_pool import usable_cpus  # here, as below: only servers start workers

        cpus = usable_cpus()
        return (
            {"processes": str(cpus)} if cpus > 1 and "processes" in (cls.option_help or {}) else {}
        )

    def load(self) -> None:
        if self.processes and self._pool is None:
            from ._placeholder_pool import DrawingPool

            pool = DrawingPool(type(self), self.processes)
            pool.start()
            self._pool = pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def models(self) -> list[ModelCapabilities]:
        # Generic rules: any size up to the server's cap, every parameter of every endpoint;
        # edits and variations keep the input's size unless the request names one.
        return [
            ModelCapabilities(
                name=self.model or self.name,
                default_sizes={"edits": "auto", "variations": "auto"},
            )
        ]

    def capacity(self) -> int:
        if self._pool is not None:
            # Two jobs a worker: one drawn while the request of the one before writes its
            # answer (base64, JSON), so no worker waits for the next job.
            return 2 * self.processes
        return os.cpu_count() or 1

    def resolve_auto_size(
        self, endpoint: Endpoint, input_size: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The input's size, scaled down (keeping its shape) if it has more pixels than any
        output may have: a large photo is edited at a smaller size rather than refused."""
        if input_size is None:
            return self.default_size
        width, height = input_size
        scale = min(1.0, math.sqrt(FLEXIBLE_MAX_PIXELS / (width * height)))
        return max(1, int(width * scale)), max(1, int(height * scale))

    @staticmethod
    def _seed(job: Job, fallback: str) -> int:
        return job.seed if job.seed is not None else digest("seed", fallback) % 2**31

    @staticmethod
    def _partials(
        job: Job,
        index: int,
        image: Image.Image,
        on_partial: PartialCallback | None,
        keep: Mask | None = None,
    ) -> None:
        """Coarse-to-fine renders of the final image (outside an edit's mask: the input)."""
        if on_partial is None or job.partial_images <= 0:
            return
        for step in range(job.partial_images):
            partial = _coarse(image, 2 ** (job.partial_images + 1 - step))
            if keep is not None:
                import numpy as np  # an edit's: numpy is loaded already

                merged = np.asarray(partial.convert("RGBA")).copy()
                np.copyto(merged, np.asarray(image.convert("RGBA")), where=keep[..., None])
                partial = Image.fromarray(merged)
            on_partial(index, step, partial)

    @staticmethod
    def _result(job: Job, images: list[Image.Image]) -> EngineResult:
        """The images as the job's format wants them: stills, GIF frames or SVG documents."""
        if job.output_format == "gif":
            return EngineResult(frames=[shimmer(image, job.frame_count) for image in images])
        if job.output_format == "svg":
            return EngineResult(svgs=[svg_picture(image, job.prompt) for image in images])
        return EngineResult(images=images)

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        pool = self._pool
        if pool is None or (on_partial is not None and job.partial_images > 0):
            result = self.draw(job, on_partial)
        else:
            result = EngineResult(encoded=pool.run(job))
        if get_capabilities(job.model).revised_prompt:
            # dall-e-3 answers with the prompt it drew from, rewritten; so does its stand-in, so
            # that code reading `revised_prompt` has one to read offline.
            revised = f"A placeholder card on a two-colour gradient, reading: {job.prompt}"
            result.revised_prompts = [revised] * job.n
        return result

    @classmethod
    def draw(cls, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        """A generation drawn in this thread (in a worker process when there is a pool)."""
        seed = cls._seed(job, job.prompt)
        glows = glow_count(job.complexity)
        if job.output_format == "svg":  # drawn as vectors, not as a picture of the still
            return EngineResult(
                svgs=[
                    svg_card(
                        job.prompt,
                        job.width,
                        job.height,
                        Palette.of(job.prompt, seed + index),
                        seed + index,
                        transparent=job.transparent,
                        glows=glows,
                    )
                    for index in range(job.n)
                ]
            )
        images = []
        for index in range(job.n):
            image = placeholder(
                job.prompt, job.width, job.height, seed + index, job.transparent, glows
            )
            cls._partials(job, index, image, on_partial)
            images.append(image)
        return cls._result(job, images)

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        import numpy as np

        from ._inpaint import harmonic_fill
        from ._placeholder_edits import inpaint, restyle

        # Further input images are not used: the first one is the image being edited.
        source = job.images[0]
        mask = job.mask if job.markup is None else markup_region(job.markup)
        size = (job.width, job.height)
        if source.size != size:  # resized before it is copied: a large input is copied small
            source = source.resize(size, Image.Resampling.LANCZOS)
            if mask is not None:
                mask = mask.resize(size, Image.Resampling.NEAREST)
        source = source.convert("RGBA")
        seed = self._seed(job, job.prompt)
        hole = None if mask is None else np.asarray(mask.convert("L")) >= 128
        filled = None if hole is None or not hole.any() else harmonic_fill(source, hole)
        images = []
        for index in range(job.n):
            if hole is None:
                image = restyle(source, job.prompt, seed + index)
            elif not hole.any():
                image = source.copy()  # an empty mask: nothing to change
            else:
                image = inpaint(source, hole, job.prompt, seed + index, filled)
            image = _opaque(image)
            self._partials(job, index, image, on_partial, None if hole is None else ~hole)
            images.append(image)
        return self._result(job, images)

    def vary(self, job: Job) -> EngineResult:
        from ._placeholder_edits import variation

        source = job.images[0].convert("RGBA")
        fallback = hashlib.sha256(source.tobytes()).hexdigest()
        seed = self._seed(job, fallback)
        images = [
            _opaque(variation(source, job.width, job.height, seed + index, index))
            for index in range(job.n)
        ]
        return EngineResult(images=images)
