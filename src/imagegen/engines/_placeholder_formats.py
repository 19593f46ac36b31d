"""The placeholder engine's animations, vector images and markup.

- **GIF**: the still image with a soft band of light sweeping across it diagonally, one step
  per frame, so every frame differs and the loop restarts where it began; transparent pixels
  stay transparent.
- **SVG**, generations: the still's design drawn as vectors, a document of the requested size:
  the gradient as a `<linearGradient>`, the glows as `<radialGradient>`s, the card as a rounded
  `<rect>` and the prompt as `<text>` lines, wrapped as in the still, with the size below.
  Edits: the edited image, embedded as a PNG `<image>`, with the prompt as the `<title>`.
- **Markup**: the box around what an edit's markup draws, widened a little, is the area edited.
- **Complexity**: how many glows the background gets (low 2, medium and unset 4, high 7).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from collections.abc import Sequence
from typing import Protocol

from PIL import Image

from ._lettering import MIN_FONT, fit_text, font_size, line_spacing, printable
from ._placeholder_card import MIN_TEXT_SIDE

__all__ = ["glow_count", "markup_region", "shimmer", "svg_card", "svg_picture"]

RGB = tuple[int, int, int]
_GLOWS = {"low": 2, "medium": 4, "high": 7}
_FONT_FAMILY = "DejaVu Sans, Verdana, Arial, sans-serif"  # Pillow's bundled font is DejaVu-like


class Colours(Protocol):
    """The placeholder's palette: gradient ends, text and accent colours."""

    @property
    def dark(self) -> RGB: ...
    @property
    def light(self) -> RGB: ...
    @property
    def ink(self) -> RGB: ...
    @property
    def accent(self) -> RGB: ...


def glow_count(complexity: str | None) -> int:
    return _GLOWS.get(complexity or "", _GLOWS["medium"])


def _unit(seed: int, purpose: str) -> float:
    """A number in [0, 1) that follows from the seed."""
    digest = hashlib.sha256(f"{seed}\x1f{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- GIF -------------------------------------------------------------------------------------


def shimmer(image: Image.Image, count: int) -> list[Image.Image]:
    """`count` frames of `image` with a band of light crossing it from corner to corner."""
    import numpy as np  # here, not at import: stills are drawn without it

    width, height = image.size
    # The band is smooth: drawn small and enlarged, then blended towards white in Pillow's C.
    scale = min(1.0, 256 / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = ((xs + 0.5) / w + (ys + 0.5) / h) / 2  # 0 at the top left, 1 at the bottom right
    rgb = image.convert("RGB")
    white = Image.new("RGB", image.size, (255, 255, 255))
    alpha = image.getchannel("A") if "A" in image.getbands() else None
    frames = []
    for index in range(count):
        # Centres from just before the image to just past it: every frame shows the band.
        centre = -0.1 + 1.2 * index / count
        band = np.exp(-(((along - centre) / 0.09) ** 2)) * (0.38 * 255)
        small = Image.fromarray(np.clip(band + 0.5, 0, 255).astype(np.uint8))
        frame = Image.composite(white, rgb, small.resize(image.size, Image.Resampling.BILINEAR))
        if alpha is not None:
            frame.putalpha(alpha)
        frames.append(frame)
    return frames


# --- SVG -------------------------------------------------------------------------------------


def _hex(colour: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour[:3])


def _xml_text(text: str) -> str:
    """`text` as XML character data: characters XML 1.0 cannot hold dropped, `<&>` escaped."""
    kept = "".join(
        ch for ch in text if ch in "\t\n\r" or (ord(ch) >= 0x20 and not 0xD800 <= ord(ch) < 0xE000)
    )
    from html import escape  # here, as below: only SVG answers need it

    return escape(kept.replace("\ufffe", "").replace("\uffff", ""), quote=False)


def _attribute(value: str) -> str:
    """`value` escaped for an XML attribute in double quotes."""
    from html import escape

    return escape(value)


def svg_card(
    prompt: str,
    width: int,
    height: int,
    colours: Colours,
    seed: int,
    *,
    transparent: bool = False,
    glows: int = 4,
) -> str:
    """The placeholder's card as an SVG document of `width` x `height`."""
    short = min(width, height)
    angle = _unit(seed, "angle") * 2 * math.pi
    cx, cy, reach = (
        width / 2,
        height / 2,
        (abs(math.cos(angle)) * width + abs(math.sin(angle)) * height) / 2,
    )
    x1, y1 = cx - math.cos(angle) * reach, cy - math.sin(angle) * reach
    x2, y2 = cx + math.cos(angle) * reach, cy + math.sin(angle) * reach
    defs = [
        f'<linearGradient id="background" gradientUnits="userSpaceOnUse" x1="{x1:.1f}" '
        f'y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}">'
        f'<stop offset="0" stop-color="{_hex(colours.dark)}"/>'
        f'<stop offset="1" stop-color="{_hex(colours.light)}"/></linearGradient>'
    ]
    shapes = []
    diagonal = math.hypot(width, height)
    for index in range(glows):
        tint = "#ffffff" if _unit(seed, f"glow{index}") < 0.5 else _hex(colours.accent)
        strength = 0.15 + 0.2 * _unit(seed, f"strength{index}")
        defs.append(
            f'<radialGradient id="glow{index}"><stop offset="0" stop-color="{tint}" '
            f'stop-opacity="{strength:.2f}"/><stop offset="1" stop-color="{tint}" '
            'stop-opacity="0"/></radialGradient>'
        )
        gx, gy = _unit(seed, f"x{index}") * width, _unit(seed, f"y{index}") * height
        radius = (0.15 + 0.25 * _unit(seed, f"r{index}")) * diagonal
        shapes.append(
            f'<circle cx="{gx:.1f}" cy="{gy:.1f}" r="{radius:.1f}" fill="url(#glow{index})"/>'
        )

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{_xml_text(prompt)}</title>",
        f"<defs>{''.join(defs)}</defs>",
    ]
    if not transparent:
        parts.append(f'<rect width="{width}" height="{height}" fill="url(#background)"/>')
        parts.extend(shapes)
    if short >= MIN_TEXT_SIDE:
        parts.extend(_card(prompt, width, height, colours, transparent))
    elif transparent:
        inset = short // 8
        parts.append(
            f'<rect x="{inset}" y="{inset}" width="{width - 2 * inset}" '
            f'height="{height - 2 * inset}" rx="{short // 3}" fill="url(#background)"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _card(prompt: str, width: int, height: int, colours: Colours, transparent: bool) -> list[str]:
    short = min(width, height)
    margin, pad = max(3, round(short * 0.07)), max(3, round(short * 0.05))
    label = f"{width} x {height}"
    label_size = max(MIN_FONT, round(short * 0.03))
    block = fit_text(
        printable(prompt) or "(empty prompt)",
        width - 2 * (margin + pad),
        height - 2 * (margin + pad) - round(label_size * 2),
        largest=round(short * 0.085),
        smallest=round(short * 0.02),
    )
    text_w = block.width if block else 0
    text_h = block.height + round(label_size * 0.6) if block else 0
    card_w = min(width - 2 * margin, max(text_w + 2 * pad, round(width * 0.45)))
    card_h = min(height - 2 * margin, text_h + round(label_size * 1.3) + 2 * pad)
    x0, y0 = (width - card_w) // 2, (height - card_h) // 2
    fill = 'fill="url(#background)"' if transparent else 'fill="#ffffff" fill-opacity="0.8"'
    ink = "#ffffff" if transparent else _hex(colours.ink)
    out = [
        f'<rect x="{x0}" y="{y0}" width="{card_w}" height="{card_h}" '
        f'rx="{max(2, round(short * 0.03))}" {fill}/>'
    ]
    top = y0 + pad
    if block:
        size, step = font_size(block.font), line_spacing(block.font)
        lines = "".join(
            f'<tspan x="{width / 2:g}" y="{top + size + index * step:g}">{_xml_text(line)}</tspan>'
            for index, line in enumerate(block.lines)
        )
        out.append(
            f'<text font-family="{_FONT_FAMILY}" font-size="{size}" fill="{ink}" '
            f'text-anchor="middle">{lines}</text>'
        )
        top += text_h
    out.append(
        f'<text x="{width / 2:g}" y="{top + label_size:g}" font-family="{_FONT_FAMILY}" '
        f'font-size="{label_size}" fill="{ink}" fill-opacity="0.75" '
        f'text-anchor="middle">{label}</text>'
    )
    return out


def svg_picture(image: Image.Image, prompt: str) -> str:
    """An SVG document showing `image` (embedded as a PNG) at its size, titled `prompt`."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    href = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    width, height = image.size
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">\n'
        f"<title>{_xml_text(prompt)}</title>\n"
        f'<image width="{width}" height="{height}" href="{_attribute(href)}"/>\n'
        "</svg>\n"
    )


# --- markup ----------------------------------------------------------------------------------


def markup_region(markup: Image.Image) -> Image.Image:
    """The area to edit (`L`, 255 = edit): the box around what the markup draws (a circle
    marks what is inside it too), widened by 2 % of the short side. Nothing drawn: nothing."""
    region = Image.new("L", markup.size, 0)
    box = markup.convert("RGBA").getchannel("A").getbbox()
    if box is not None:
        grow = max(1, round(min(markup.size) * 0.02))
        x0, y0, x1, y1 = box
        width, height = markup.size
        region.paste(
            255,
            (max(0, x0 - grow), max(0, y0 - grow), min(width, x1 + grow), min(height, y1 + grow)),
        )
    return region
