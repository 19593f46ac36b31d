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
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from .._capabilities import Endpoint, ModelCapabilities
from .._service import DEFAULT_MAX_OUTPUT_PIXELS
from . import Engine, EngineOptions, EngineResult, Job, PartialCallback
from ._inpaint import Mask, bounds, harmonic_fill, text_box
from ._lettering import MIN_FONT, fit_text, font_size, get_font, line_spacing, printable
from ._placeholder_formats import glow_count, markup_region, shimmer, svg_card, svg_picture

__all__ = ["PlaceholderEngine"]

Array = npt.NDArray[np.float32]
RGB = tuple[int, int, int]

_MIN_TEXT_SIDE = 48  # below this short side, text cannot be legible: colours only


# --- seeds and colours -----------------------------------------------------------------------


def _digest(*parts: object) -> int:
    data = "\x1f".join(str(part) for part in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(_digest(seed, purpose))


def _oklch(lightness: float, chroma: float, hue: float) -> RGB:
    """An sRGB colour from OKLCH, so palettes of any hue look equally bright."""
    a = chroma * math.cos(math.radians(hue))
    b = chroma * math.sin(math.radians(hue))
    l_ = (lightness + 0.3963377774 * a + 0.2158037573 * b) ** 3
    m_ = (lightness - 0.1055613458 * a - 0.0638541728 * b) ** 3
    s_ = (lightness - 0.0894841775 * a - 1.2914855480 * b) ** 3
    linear = (
        4.0767416621 * l_ - 3.3077115913 * m_ + 0.2309699292 * s_,
        -1.2684380046 * l_ + 2.6097574011 * m_ - 0.3413193965 * s_,
        -0.0041960863 * l_ - 0.7034186147 * m_ + 1.7076147010 * s_,
    )

    def encode(v: float) -> int:
        v = min(max(v, 0.0), 1.0)
        v = 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055
        return round(v * 255)

    r, g, b_ = (encode(v) for v in linear)
    return r, g, b_


@dataclass(frozen=True)
class _Palette:
    dark: RGB
    light: RGB
    ink: RGB  # text on light surfaces
    accent: RGB

    @classmethod
    def of(cls, text: str, seed: int) -> _Palette:
        """Hue from the text; the seed turns it a little, so images of one prompt differ."""
        hue = _digest("hue", text) % 360 + float(_rng(seed, "hue").uniform(-28, 28))
        return cls(
            dark=_oklch(0.50, 0.13, hue),
            light=_oklch(0.80, 0.10, hue + 55),
            ink=_oklch(0.27, 0.06, hue),
            accent=_oklch(0.62, 0.15, hue - 40),
        )


def _luminance(colour: npt.ArrayLike) -> float:
    r, g, b = np.asarray(colour, dtype=np.float64)[:3]
    return float(0.2126 * r + 0.7152 * g + 0.0722 * b)


# --- backgrounds -----------------------------------------------------------------------------


def _background(
    width: int, height: int, palette: _Palette, seed: int, glows: int = 4
) -> Image.Image:
    """A diagonal gradient with a few soft glows, drawn small and enlarged (it is smooth)."""
    rng = _rng(seed, "background")
    scale = min(1.0, 256 / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs = (xs + 0.5) / w * width
    ys = (ys + 0.5) / h * height
    angle = float(rng.uniform(0, 2 * math.pi))
    proj = xs * math.cos(angle) + ys * math.sin(angle)
    t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    t = t * t * (3 - 2 * t)
    dark = np.array(palette.dark, np.float32)
    light = np.array(palette.light, np.float32)
    rgb = dark + (light - dark) * t[..., None]
    diagonal = math.hypot(width, height)
    for _ in range(glows):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = float(rng.uniform(0.15, 0.4)) * diagonal
        glow = np.exp(-(((xs - cx) ** 2 + (ys - cy) ** 2) / radius**2)) * rng.uniform(0.15, 0.35)
        # Glows towards white or the accent colour; towards black they look muddy.
        target = np.array((255, 255, 255) if rng.random() < 0.5 else palette.accent, np.float32)
        rgb += (target - rgb) * glow[..., None].astype(np.float32)
    small = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


def _rounded_mask(width: int, height: int, radius: int) -> Image.Image:
    """An anti-aliased rounded rectangle as an `L` mask (corners computed, not supersampled)."""
    mask = Image.new("L", (width, height), 255)
    r = min(radius, width // 2, height // 2)
    if r < 1:
        return mask
    ys, xs = np.mgrid[0:r, 0:r].astype(np.float32) + 0.5
    corner = np.clip(r - np.hypot(r - xs, r - ys) + 0.5, 0, 1) * 255
    patch = corner.round().astype(np.uint8)
    mask.paste(Image.fromarray(patch), (0, 0))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[:, ::-1])), (width - r, 0))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[::-1, :])), (0, height - r))
    mask.paste(Image.fromarray(np.ascontiguousarray(patch[::-1, ::-1])), (width - r, height - r))
    return mask


# --- generation ------------------------------------------------------------------------------


def _placeholder(
    prompt: str, width: int, height: int, seed: int, transparent: bool, glows: int = 4
) -> Image.Image:
    """A gradient with a card: the prompt, wrapped to fit, and the size. Transparent: the card
    alone, filled with the gradient, on a clear image."""
    palette = _Palette.of(prompt, seed)
    short = min(width, height)
    if short < _MIN_TEXT_SIDE:
        image = _background(width, height, palette, seed, glows)
        if transparent:  # a rounded tile with a clear margin, where there is room for one
            inset = short // 8
            alpha = Image.new("L", (width, height), 0)
            alpha.paste(
                _rounded_mask(width - 2 * inset, height - 2 * inset, short // 3), (inset, inset)
            )
            image.putalpha(alpha)
        return image

    margin = max(3, round(short * 0.07))
    pad = max(3, round(short * 0.05))
    label = f"{width} x {height}"
    reserved = line_spacing(get_font(max(MIN_FONT, round(short * 0.04))))
    text = printable(prompt) or "(empty prompt)"
    block = fit_text(
        text,
        width - 2 * (margin + pad),
        height - 2 * (margin + pad) - round(reserved * 1.6),
        largest=round(short * 0.085),
        smallest=round(short * 0.02),
    )
    # The size line follows the prompt's size, smaller, within what was reserved for it.
    half = round(font_size(block.font) * 0.5) if block else short
    label_font = get_font(max(MIN_FONT, round(short * 0.025), min(round(short * 0.04), half)))
    label_height = line_spacing(label_font)
    gap = max(2, round(label_height * 0.6))
    content_w = max(block.width if block else 0, round(label_font.getlength(label)))
    content_h = label_height + (block.height + gap if block else 0)
    card_w = min(width - 2 * margin, max(content_w + 2 * pad, round(width * 0.45)))
    card_h = min(height - 2 * margin, content_h + 2 * pad)
    x0, y0 = (width - card_w) // 2, (height - card_h) // 2
    card = _rounded_mask(card_w, card_h, max(2, round(short * 0.03)))

    ink = palette.ink
    if transparent:
        image = Image.new("RGB", (width, height), palette.dark)
        fill = _background(card_w, card_h, palette, seed, glows)
        image.paste(fill, (x0, y0))
        if _luminance(np.asarray(fill, np.float32).reshape(-1, 3).mean(axis=0)) < 150:
            ink = (255, 255, 255)
    else:
        image = _background(width, height, palette, seed, glows)
        # A frosted card over the gradient: the prompt stays legible whatever the colours.
        frost = card.point(lambda v: v * 80 // 100)
        image.paste((255, 255, 255), (x0, y0, x0 + card_w, y0 + card_h), frost)
    draw = ImageDraw.Draw(image)
    top = y0 + (card_h - content_h) // 2
    if block:
        block.draw(draw, width / 2, top, fill=ink)
        top += block.height + gap
    muted = tuple(round(c * 0.7 + a * 0.3) for c, a in zip(ink, palette.accent, strict=True))
    draw.text(
        (width / 2, top), label, font=label_font, anchor="ma", fill=ink if transparent else muted
    )
    if transparent:
        alpha = Image.new("L", (width, height), 0)
        alpha.paste(card, (x0, y0))
        image.putalpha(alpha)
    return image


# --- edits ---------------------------------------------------------------------------------


def _texture(width: int, height: int, seed: int, amplitude: float) -> Array:
    """Soft seeded noise (random values on a coarse grid, smoothly enlarged), in ±amplitude."""
    rng = _rng(seed, "texture")
    gw, gh = max(2, width // 48), max(2, height // 48)
    coarse = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    layer = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(layer, np.float32) * amplitude


def _inpaint(
    source: Image.Image,
    hole: Mask,
    prompt: str,
    seed: int,
    filled: npt.NDArray[np.uint8] | None,
) -> Image.Image:
    """The filled hole with seeded texture, a tint and the prompt; the rest is `source`."""
    width, height = source.size
    palette = _Palette.of(prompt, seed)
    if filled is None:  # nothing to fill from: the hole is the whole image
        filled = np.asarray(_background(width, height, palette, seed).convert("RGBA"))
    bx0, by0, bx1, by1 = bounds(hole)  # work on the hole's bounding box only
    inside = hole[by0:by1, bx0:bx1]
    work = filled[by0:by1, bx0:bx1].astype(np.float32)
    # A light seeded texture and a tint towards the prompt's colour: each image of an edit is
    # different, and the edited area reads as edited rather than as a smear.
    rgb = work[..., :3]
    rgb += _texture(bx1 - bx0, by1 - by0, seed, 10.0)[..., None]
    rgb += (np.array(palette.accent, np.float32) - rgb) * float(
        _rng(seed, "tint").uniform(0.10, 0.22)
    )
    canvas = Image.fromarray(np.clip(work + 0.5, 0, 255).astype(np.uint8))

    x0, y0, x1, y1 = text_box(inside)
    box_w, box_h = x1 - x0, y1 - y0
    pad = max(1, round(min(box_w, box_h) * 0.08))
    coverage = Image.new("L", canvas.size, 0)
    block = fit_text(
        printable(prompt),
        box_w - 2 * pad,
        box_h - 2 * pad,
        largest=round(min(box_h * 0.3, min(width, height) * 0.12)),
    )
    if block is not None:
        top = y0 + (box_h - block.height) / 2
        region = np.asarray(canvas, np.float32)[y0:y1, x0:x1, :3]
        light = _luminance(region.reshape(-1, 3).mean(axis=0)) >= 140
        ink, halo = ((20, 20, 20), (255, 255, 255)) if light else ((255, 255, 255), (0, 0, 0))
        stroke = max(1, font_size(block.font) // 14)
        block.draw(
            ImageDraw.Draw(canvas),
            (x0 + x1) / 2,
            top,
            fill=ink + (255,),
            stroke_width=stroke,
            stroke_fill=halo + (255,),
        )
        block.draw(
            ImageDraw.Draw(coverage),
            (x0 + x1) / 2,
            top,
            fill=255,
            stroke_width=stroke,
            stroke_fill=255,
        )
    patch = np.asarray(canvas).copy()
    # Text is opaque even where the fill inherited transparency from its surroundings.
    patch[..., 3] = np.maximum(patch[..., 3], np.asarray(coverage))
    out = np.asarray(source, np.uint8).copy()
    np.copyto(out[by0:by1, bx0:bx1], patch, where=inside[..., None])
    return Image.fromarray(out)


# --- whole-image edits and variations ---------------------------------------------------------


def _hue_shift(image: Image.Image, degrees: float) -> Image.Image:
    """Turn the hues, keeping luminance: the matrix of CSS/SVG `hue-rotate` (a fraction of the
    cost of a round trip through HSV)."""
    cos, sin = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    matrix = np.array(
        [
            [0.213 + cos * 0.787 - sin * 0.213, 0.715 - cos * 0.715 - sin * 0.715,
             0.072 - cos * 0.072 + sin * 0.928],
            [0.213 - cos * 0.213 + sin * 0.143, 0.715 + cos * 0.285 + sin * 0.140,
             0.072 - cos * 0.072 - sin * 0.283],
            [0.213 - cos * 0.213 - sin * 0.787, 0.715 - cos * 0.715 + sin * 0.715,
             0.072 + cos * 0.928 + sin * 0.072],
        ],
        np.float32,
    )  # fmt: skip
    pixels = np.asarray(image.convert("RGB"), np.float32)
    turned = Image.fromarray(np.clip(pixels @ matrix.T + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "RGBA":
        turned.putalpha(image.getchannel("A"))
    return turned


def _restyle(source: Image.Image, prompt: str, seed: int) -> Image.Image:
    """A whole-image edit: a poster-like duotone in the prompt's colours, with a caption."""
    rng = _rng(seed, "restyle")
    palette = _Palette.of(prompt, seed)
    width, height = source.size
    grey = np.asarray(ImageOps.autocontrast(source.convert("L"), cutoff=1), np.float32) / 255
    ends = [np.array(c, np.float32) for c in (palette.ink, palette.accent, palette.light)]
    # Dark → accent → light: a three-stop map keeps the midtones colourful.
    low = np.clip(grey * 2, 0, 1)[..., None]
    high = np.clip(grey * 2 - 1, 0, 1)[..., None]
    duo = np.where(
        grey[..., None] < 0.5,
        ends[0] + (ends[1] - ends[0]) * low,
        ends[1] + (ends[2] - ends[1]) * high,
    )
    mix = float(rng.uniform(0.65, 0.85))
    original = np.asarray(source.convert("RGB"), np.float32)
    graded = Image.fromarray(
        np.clip(original * (1 - mix) + duo * mix + 0.5, 0, 255).astype(np.uint8)
    )
    graded = ImageOps.posterize(graded, int(rng.integers(3, 5))).filter(ImageFilter.SMOOTH)
    short = min(width, height)
    if short >= _MIN_TEXT_SIDE:
        pad = max(3, round(short * 0.04))
        block = fit_text(
            printable(prompt),
            width - 4 * pad,
            round(height * 0.3),
            round(short * 0.07),
            round(short * 0.025),
        )
        if block is not None:
            card_w, card_h = min(width - 2 * pad, block.width + 2 * pad), block.height + 2 * pad
            x0 = (width - card_w) // 2
            y0 = pad if rng.random() < 0.3 else height - card_h - pad
            frost = _rounded_mask(card_w, card_h, max(2, round(short * 0.02)))
            graded.paste(
                palette.ink,
                (x0, y0, x0 + card_w, y0 + card_h),
                frost.point(lambda v: v * 78 // 100),
            )
            block.draw(ImageDraw.Draw(graded), width / 2, y0 + pad, fill=(255, 255, 255))
    graded = graded.convert("RGBA")
    graded.putalpha(source.getchannel("A"))
    return graded


def _reframe(
    image: Image.Image,
    width: int,
    height: int,
    angle: float,
    zoom: float,
    shift: tuple[float, float],
) -> Image.Image:
    """Rotate by `angle` degrees and crop to cover `width` x `height`, in one resampling.

    The scale is the smallest at which the rotated frame stays inside the image (no empty
    corners), times `zoom`; `shift` (-1..1 on each axis) moves the frame within the slack.
    """
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    span_w, span_h = width * cos + height * sin, width * sin + height * cos
    scale = max(span_w / image.width, span_h / image.height) * zoom
    factor = int(1 / scale)
    if factor >= 2:  # shrink first with a box filter: an affine transform does not antialias
        image = image.reduce(factor)
        scale *= factor
    half_w, half_h = span_w / scale / 2, span_h / scale / 2
    cx = image.width / 2 + shift[0] * max(0.0, image.width / 2 - half_w)
    cy = image.height / 2 + shift[1] * max(0.0, image.height / 2 - half_h)
    rad = math.radians(angle)
    a, b = math.cos(rad) / scale, -math.sin(rad) / scale
    d, e = math.sin(rad) / scale, math.cos(rad) / scale
    c = cx - a * width / 2 - b * height / 2
    f = cy - d * width / 2 - e * height / 2
    return image.transform(
        (width, height),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,  # near 1:1 scale; bicubic costs 2.5x as much
    )


_EFFECTS = ("posterize", "soften", "sharpen", "contrast", "saturate", "mute")


def _variation(source: Image.Image, width: int, height: int, seed: int, index: int) -> Image.Image:
    rng = _rng(seed, "variation")
    # The index sets the big moves (mirror, hue, effect), so the images of one request always
    # differ from each other; the seed sets the fine ones.
    image = ImageOps.mirror(source) if (index + int(rng.integers(0, 2))) % 2 else source
    angle = float(rng.uniform(2.5, 7.0)) * (1 if rng.random() < 0.5 else -1)
    shift = (float(rng.uniform(-1, 1)), float(rng.uniform(-1, 1)))
    image = _reframe(image, width, height, angle, float(rng.uniform(1.0, 1.08)), shift)
    hue = ((index * 0.381966 + float(rng.uniform(0, 0.1))) % 1.0) * 240 - 120
    image = _hue_shift(image, hue + (25 if abs(hue) < 25 else 0))
    effect = _EFFECTS[(index + int(rng.integers(0, len(_EFFECTS)))) % len(_EFFECTS)]
    alpha = image.getchannel("A")
    rgb = image.convert("RGB")
    if effect == "posterize":
        rgb = ImageOps.posterize(rgb, 4)
    elif effect == "soften":
        rgb = rgb.filter(ImageFilter.BoxBlur(max(1, min(width, height) // 400)))
    elif effect == "sharpen":
        rgb = rgb.filter(ImageFilter.UnsharpMask(radius=2, percent=140, threshold=2))
    elif effect == "contrast":
        rgb = ImageEnhance.Contrast(rgb).enhance(1.35)
    elif effect == "saturate":
        rgb = ImageEnhance.Color(rgb).enhance(1.5)
    else:
        rgb = ImageEnhance.Color(rgb).enhance(0.55)
    rgb.putalpha(alpha)
    return rgb


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


class PlaceholderEngine(Engine):
    """Deterministic images with no model: see the module docstring for what each call does."""

    name: ClassVar[str] = "placeholder"
    description: ClassVar[str] = (
        "Built-in, no model: prompt placeholders, real inpainting edits, seeded variations."
    )
    Options = EngineOptions  # it reads no -o option
    default_size = (1024, 1024)
    output_formats: ClassVar[frozenset[str]] = frozenset({"png", "jpeg", "webp", "gif", "svg"})
    accepts: ClassVar[frozenset[str]] = frozenset({"markup"})

    def models(self) -> list[ModelCapabilities]:
        # Generic rules: any size up to the server's cap, every parameter of every endpoint;
        # edits and variations keep the input's size unless the request names one.
        return [
            ModelCapabilities(
                name=self.model or self.name,
                default_sizes={"edits": "auto", "variations": "auto"},
            )
        ]

    def resolve_auto_size(
        self, endpoint: Endpoint, input_size: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The input's size, scaled down (keeping its shape) if it has more pixels than any
        output may have: a large photo is edited at a smaller size rather than refused."""
        if input_size is None:
            return self.default_size
        width, height = input_size
        scale = min(1.0, math.sqrt(DEFAULT_MAX_OUTPUT_PIXELS / (width * height)))
        return max(1, int(width * scale)), max(1, int(height * scale))

    @staticmethod
    def _seed(job: Job, fallback: str) -> int:
        return job.seed if job.seed is not None else _digest("seed", fallback) % 2**31

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
        seed = self._seed(job, job.prompt)
        glows = glow_count(job.complexity)
        if job.output_format == "svg":  # drawn as vectors, not as a picture of the still
            return EngineResult(
                svgs=[
                    svg_card(
                        job.prompt,
                        job.width,
                        job.height,
                        _Palette.of(job.prompt, seed + index),
                        seed + index,
                        transparent=job.transparent,
                        glows=glows,
                    )
                    for index in range(job.n)
                ]
            )
        images = []
        for index in range(job.n):
            image = _placeholder(
                job.prompt, job.width, job.height, seed + index, job.transparent, glows
            )
            self._partials(job, index, image, on_partial)
            images.append(image)
        return self._result(job, images)

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
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
                image = _restyle(source, job.prompt, seed + index)
            elif not hole.any():
                image = source.copy()  # an empty mask: nothing to change
            else:
                image = _inpaint(source, hole, job.prompt, seed + index, filled)
            image = _opaque(image)
            self._partials(job, index, image, on_partial, None if hole is None else ~hole)
            images.append(image)
        return self._result(job, images)

    def vary(self, job: Job) -> EngineResult:
        source = job.images[0].convert("RGBA")
        fallback = hashlib.sha256(source.tobytes()).hexdigest()
        seed = self._seed(job, fallback)
        images = [
            _opaque(_variation(source, job.width, job.height, seed + index, index))
            for index in range(job.n)
        ]
        return EngineResult(images=images)
