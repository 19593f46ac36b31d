"""The placeholder's picture: a palette from the prompt, a gradient with glows, the prompt card.

Drawn with Pillow alone. numpy is not imported: loading it costs more than a whole image (see
`_seeded`), and a generation is what `imagegen generate --engine placeholder` and a load test
of `imagegen serve` wait for. The gradient and the glows are computed in 32-bit floats, as
numpy computed them before, in Pillow's C (`ImageMath` on `F` images): only one value in
~100,000 comes out one level apart from numpy's.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageMath, ImageStat

from .._records import record
from ._lettering import MIN_FONT, fit_text, font_size, get_font, line_spacing, printable
from ._seeded import Draws

__all__ = [
    "MIN_TEXT_SIDE",
    "Palette",
    "background",
    "digest",
    "draws",
    "luminance",
    "placeholder",
    "rounded_mask",
]

RGB = tuple[int, int, int]

MIN_TEXT_SIDE = 48  # below this short side, text cannot be legible: colours only
_SMALL_SIDE = 64  # the background is drawn at most this large, then enlarged (it is smooth)


# --- seeds and colours -----------------------------------------------------------------------


def digest(*parts: object) -> int:
    data = "\x1f".join(str(part) for part in parts).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def draws(seed: int, purpose: str) -> Draws:
    """The numbers of `numpy.random.default_rng(digest(seed, purpose))`."""
    return Draws(digest(seed, purpose))


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


@record(frozen=True)
class Palette:
    """The colours of one card, from its prompt and seed: the gradient's ends, text, accent."""

    dark: RGB
    light: RGB
    ink: RGB  # text on light surfaces
    accent: RGB

    @classmethod
    def of(cls, text: str, seed: int) -> Palette:
        """Hue from the text; the seed turns it a little, so images of one prompt differ."""
        hue = digest("hue", text) % 360 + draws(seed, "hue").uniform(-28, 28)
        return cls(
            dark=_oklch(0.50, 0.13, hue),
            light=_oklch(0.80, 0.10, hue + 55),
            ink=_oklch(0.27, 0.06, hue),
            accent=_oklch(0.62, 0.15, hue - 40),
        )


def luminance(colour: Sequence[float]) -> float:
    r, g, b = (float(v) for v in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


# --- backgrounds -----------------------------------------------------------------------------


def _rows(values: Sequence[float], height: int) -> Image.Image:
    """A 32-bit float image whose every row is `values`."""
    return Image.frombytes("F", (len(values), height), array("f", values).tobytes() * height)


def _columns(values: Sequence[float], width: int) -> Image.Image:
    """A 32-bit float image whose every column is `values`."""
    column = Image.frombytes("F", (1, len(values)), array("f", values).tobytes())
    return column.resize((width, len(values)), Image.Resampling.NEAREST)


def _scaled(image: Image.Image, scale: float, offset: float = 0.0) -> Image.Image:
    """`image * scale + offset`, for an `F` image (one pass in Pillow's C)."""
    return image.point(lambda v: v * scale + offset)


def background(width: int, height: int, palette: Palette, seed: int, glows: int = 4) -> Image.Image:
    """A diagonal gradient with a few soft glows, drawn small and enlarged (it is smooth).

    Both are separable, so each is built from one row and one column of values (`exp` is
    called for a row and a column of each glow, not for each pixel); the blending runs on whole
    `F` images, one channel each, in the order the formulas give. Every value carries + 0.5
    from the start (the blends are convex), so converting to 8 bits, which truncates, rounds."""
    rng = draws(seed, "background")
    scale = min(1.0, _SMALL_SIDE / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    xs = [(x + 0.5) / w * width for x in range(w)]
    ys = [(y + 0.5) / h * height for y in range(h)]
    angle = rng.uniform(0, 2 * math.pi)
    along_x = [x * math.cos(angle) for x in xs]
    along_y = [y * math.sin(angle) for y in ys]
    low_x, low_y = min(along_x), min(along_y)
    span = max(max(along_x) - low_x + max(along_y) - low_y, 1e-6)
    t = ImageMath.lambda_eval(
        lambda m: m["a"] + m["b"],
        a=_rows([(v - low_x) / span for v in along_x], h),
        b=_columns([(v - low_y) / span for v in along_y], w),
    )
    eased = ImageMath.lambda_eval(lambda m: m["t"] * m["t"] * m["u"], t=t, u=_scaled(t, -2, 3))
    channels = [
        _scaled(eased, light - dark, dark + 0.5)
        for dark, light in zip(palette.dark, palette.light, strict=True)
    ]
    diagonal = math.hypot(width, height)
    for _ in range(glows):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.15, 0.4) * diagonal
        strength = rng.uniform(0.15, 0.35)
        # Glows towards white or the accent colour; towards black they look muddy.
        target = (255, 255, 255) if rng.random() < 0.5 else palette.accent
        glow = ImageMath.lambda_eval(
            lambda m: m["x"] * m["y"],
            x=_rows([math.exp(-((x - cx) ** 2) / radius**2) * strength for x in xs], h),
            y=_columns([math.exp(-((y - cy) ** 2) / radius**2) for y in ys], w),
        )
        keep = _scaled(glow, -1, 1)
        towards = {value: _scaled(glow, value + 0.5) for value in set(target)}
        channels = [
            ImageMath.lambda_eval(
                lambda m: m["c"] * m["k"] + m["g"], c=channel, k=keep, g=towards[value]
            )
            for channel, value in zip(channels, target, strict=True)
        ]
    small = Image.merge("RGB", [channel.convert("L") for channel in channels])
    return small.resize((width, height), Image.Resampling.BILINEAR)  # as close, and cheaper


def _f32(value: float) -> float:
    return array("f", (value,))[0]


def _cover(radius: int, x: int, dy: float) -> int:
    distance = _f32(math.hypot(radius - (x + 0.5), dy))
    cover = min(max(_f32(_f32(radius - distance) + 0.5), 0.0), 1.0)
    return round(_f32(cover * 255))


@lru_cache(maxsize=64)
def _corner(radius: int) -> bytes:
    """The top left corner of a rounded rectangle, anti-aliased by the distance to the arc,
    in 32-bit floats as numpy computed it before (`np.hypot` on float32 values), so masks are
    the same to the bit. Only pixels near the arc are computed: those more than a pixel and a
    half inside it are opaque, those as far outside clear (about 3 % of a 62-pixel corner are
    left to compute, which took 3-4 ms a card in Python)."""
    out = bytearray(radius * radius)
    for y in range(radius):
        dy = radius - (y + 0.5)
        row = y * radius
        # Columns whose centre is within 1.5 px of the arc: the arc crosses this row between
        # `outer` (distance radius + 1.5) and `inner` (radius - 1.5) from the corner's right.
        outer = math.sqrt(max(0.0, (radius + 1.5) ** 2 - dy * dy))
        inner = math.sqrt(max(0.0, (radius - 1.5) ** 2 - dy * dy)) if radius > 1.5 + dy else 0.0
        start = max(0, math.floor(radius - 0.5 - outer))
        stop = min(radius, math.ceil(radius - 0.5 - inner) + 1)
        out[row + stop : row + radius] = b"\xff" * (radius - stop)
        for x in range(start, stop):
            out[row + x] = _cover(radius, x, dy)
    return bytes(out)


def rounded_mask(width: int, height: int, radius: int) -> Image.Image:
    """An anti-aliased rounded rectangle as an `L` mask (corners computed, not supersampled)."""
    mask = Image.new("L", (width, height), 255)
    r = min(radius, width // 2, height // 2)
    if r < 1:
        return mask
    corner = Image.frombytes("L", (r, r), _corner(r))
    flip, flop = Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM
    mask.paste(corner, (0, 0))
    mask.paste(corner.transpose(flip), (width - r, 0))
    mask.paste(corner.transpose(flop), (0, height - r))
    mask.paste(corner.transpose(Image.Transpose.ROTATE_180), (width - r, height - r))
    return mask


# --- the card --------------------------------------------------------------------------------

_FROST = [v * 80 // 100 for v in range(256)]  # the card lets 20 % of the gradient through


def placeholder(
    prompt: str, width: int, height: int, seed: int, transparent: bool, glows: int = 4
) -> Image.Image:
    """A gradient with a card: the prompt, wrapped to fit, and the size. Transparent: the card
    alone, filled with the gradient, on a clear image."""
    palette = Palette.of(prompt, seed)
    short = min(width, height)
    if short < MIN_TEXT_SIDE:
        image = background(width, height, palette, seed, glows)
        if transparent:  # a rounded tile with a clear margin, where there is room for one
            inset = short // 8
            alpha = Image.new("L", (width, height), 0)
            alpha.paste(
                rounded_mask(width - 2 * inset, height - 2 * inset, short // 3), (inset, inset)
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
    card = rounded_mask(card_w, card_h, max(2, round(short * 0.03)))

    ink = palette.ink
    if transparent:
        image = Image.new("RGB", (width, height), palette.dark)
        fill = background(card_w, card_h, palette, seed, glows)
        image.paste(fill, (x0, y0))
        if luminance(ImageStat.Stat(fill).mean) < 150:
            ink = (255, 255, 255)
    else:
        image = background(width, height, palette, seed, glows)
        # A frosted card over the gradient: the prompt stays legible whatever the colours.
        white = Image.new("RGB", (card_w, card_h), (255, 255, 255))  # faster than a colour
        image.paste(white, (x0, y0), card.point(_FROST))
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
