"""The placeholder's edits and variations: numpy work on the input's pixels.

- An edit with a mask fills the masked area from its surroundings (`_inpaint.harmonic_fill`),
  adds a light seeded texture and a tint, and draws the prompt over it; the rest is the input.
- An edit without a mask grades the whole image in the prompt's colours, with a caption.
- A variation mirrors, turns, crops, re-hues and applies a light effect, all seeded.

Loaded when an edit or a variation is made, not with the engine: generations do without numpy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from ._inpaint import Mask, bounds, text_box
from ._lettering import fit_text, font_size, printable
from ._placeholder_card import MIN_TEXT_SIDE, Palette, background, digest, luminance, rounded_mask

__all__ = ["inpaint", "restyle", "variation"]

Array = npt.NDArray[np.float32]


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(digest(seed, purpose))


def _texture(width: int, height: int, seed: int, amplitude: float) -> Array:
    """Soft seeded noise (random values on a coarse grid, smoothly enlarged), in ±amplitude."""
    rng = _rng(seed, "texture")
    gw, gh = max(2, width // 48), max(2, height // 48)
    coarse = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    layer = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(layer, np.float32) * amplitude


def inpaint(
    source: Image.Image,
    hole: Mask,
    prompt: str,
    seed: int,
    filled: npt.NDArray[np.uint8] | None,
) -> Image.Image:
    """The filled hole with seeded texture, a tint and the prompt; the rest is `source`."""
    width, height = source.size
    palette = Palette.of(prompt, seed)
    if filled is None:  # nothing to fill from: the hole is the whole image
        filled = np.asarray(background(width, height, palette, seed).convert("RGBA"))
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
        light = luminance(region.reshape(-1, 3).mean(axis=0)) >= 140
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


def restyle(source: Image.Image, prompt: str, seed: int) -> Image.Image:
    """A whole-image edit: a poster-like duotone in the prompt's colours, with a caption."""
    rng = _rng(seed, "restyle")
    palette = Palette.of(prompt, seed)
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
    if short >= MIN_TEXT_SIDE:
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
            frost = rounded_mask(card_w, card_h, max(2, round(short * 0.02)))
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


def variation(source: Image.Image, width: int, height: int, seed: int, index: int) -> Image.Image:
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
