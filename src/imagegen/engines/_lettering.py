"""Text for the `placeholder` engine: fitting a prompt into a box, legibly, on any machine.

Text is drawn with Pillow's bundled font (`ImageFont.load_default(size=...)`, scalable where
Pillow has FreeType), so the same request gives the same pixels everywhere. That font covers
ASCII and a little punctuation: accents are folded (`é` → `e`) and other characters become `?`.

Fitting measures text by adding up the advances of its characters, each measured once per font
size: the bundled font has no kerning, so that is what `getlength` returns for the whole text
(a test checks it), and the search for the size and the line breaks that fit, which measures
hundreds of candidate lines, costs microseconds instead of milliseconds.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import lru_cache
from typing import Any

from PIL import ImageDraw, ImageFont

from .._records import record

__all__ = [
    "MIN_FONT",
    "TextBlock",
    "fit_text",
    "font_size",
    "get_font",
    "line_spacing",
    "measure",
    "printable",
]

Font = Any  # ImageFont.FreeTypeFont, or the bitmap ImageFont where FreeType is missing

MIN_FONT = 9  # pixels: smaller is not legible


_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "×": "x",
        "–": "-",
        "—": "-",
        "−": "-",
        "„": '"',
        "‚": "'",
    }
)


_fonts = threading.local()  # per thread: a FreeType face must not be used by two at once
# Font sizes follow image sizes, so a long-running server meets hundreds of them, in each of
# its worker threads; a face holds ~66 KB and loads in ~0.1 ms: keep the recent ones only.
FONTS_PER_THREAD = 48


def get_font(size: int) -> Font:
    cache: dict[int, Font] | None = getattr(_fonts, "cache", None)
    if cache is None:
        cache = _fonts.cache = {}
    font = cache.pop(size, None)  # re-inserted below: the dict's order is recency
    if font is None:
        font = ImageFont.load_default(size=size)
        if len(cache) >= FONTS_PER_THREAD:
            del cache[next(iter(cache))]
    cache[size] = font
    return font


@lru_cache(maxsize=8192)
def _advance(size: int, char: str) -> float:
    return float(get_font(size).getlength(char))


def measure(font: Font, text: str) -> float:
    """`font.getlength(text)`, from the advances of its characters."""
    size = getattr(font, "size", None)
    if not isinstance(size, int):  # the bitmap fallback font: measured as it is
        return float(font.getlength(text))
    return sum(_advance(size, char) for char in text)


@lru_cache(maxsize=1024)
def _has_glyph(char: str) -> bool:
    font = get_font(20)
    missing = font.getmask("\uffff")
    glyph = font.getmask(char)
    return bool(glyph.size != missing.size or bytes(glyph) != bytes(missing))


def printable(text: str) -> str:
    """The text as the bundled font can draw it: whitespace collapsed, accents folded."""
    text = unicodedata.normalize("NFKD", " ".join(text.split()).translate(_FOLD))
    out = []
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Cc", "Cf"):
            continue  # accents (folded above) and invisible controls
        out.append(char if char == " " or _has_glyph(char) else "?")
    return "".join(out)


@record()
class TextBlock:
    """Lines of text that fit a box, in one font, and the height of each line."""

    font: Font
    lines: list[str]
    line_height: int

    @property
    def width(self) -> int:
        return max((round(measure(self.font, line)) for line in self.lines), default=0)

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)

    def draw(self, draw: ImageDraw.ImageDraw, cx: float, top: float, **style: Any) -> None:
        for index, line in enumerate(self.lines):
            draw.text(
                (cx, top + index * self.line_height), line, font=self.font, anchor="ma", **style
            )


def font_size(font: Font) -> int:
    return int(getattr(font, "size", MIN_FONT))  # the bitmap fallback font has no size


def line_spacing(font: Font) -> int:
    ascent, descent = font.getmetrics()
    return max(1, round((int(ascent) + int(descent)) * 1.08))


def _wrap(text: str, font: Font, width: float, max_lines: int) -> tuple[list[str], bool, bool]:
    """Greedy word wrap, stopping after `max_lines`; words wider than a line are broken.

    Returns the lines, whether all the text is in them, and whether a word had to be broken.
    """
    lines: list[str] = []
    current, current_width, broken = "", 0.0, False
    space = measure(font, " ")
    for word in text.split(" "):
        word_width = measure(font, word)
        candidate_width = current_width + space + word_width if current else word_width
        if candidate_width <= width:
            current = f"{current} {word}" if current else word
            current_width = candidate_width
            continue
        if current:
            lines.append(current)
        while word_width > width and len(lines) < max_lines:
            cut = max(1, _fitting_prefix(word, font, width))
            lines.append(word[:cut])
            word, broken = word[cut:], True
            word_width = measure(font, word)
        current, current_width = word, word_width
        if len(lines) >= max_lines:
            return lines[:max_lines], False, broken
    if current:
        lines.append(current)
    return lines[:max_lines], len(lines) <= max_lines, broken


def _fitting_prefix(text: str, font: Font, width: float) -> int:
    """How many of the first characters of `text` fit in `width`."""
    count, total = 0, 0.0
    for char in text:
        total += measure(font, char)
        if total > width:
            break
        count += 1
    return count


def fit_text(
    text: str, width: int, height: int, largest: int, smallest: int = MIN_FONT
) -> TextBlock | None:
    """The largest font size at which `text` fits the box, else the smallest size with the text
    cut off by an ellipsis; `None` if not even one line fits."""

    def attempt(size: int) -> tuple[TextBlock, bool]:
        font = get_font(size)
        line_height = line_spacing(font)
        lines, complete, broken = _wrap(text, font, width, max(1, height // line_height))
        # A size that has to break words only fits if words are longer than any line can be.
        fits = complete and line_height * len(lines) <= height and (not broken or size == smallest)
        return TextBlock(font, lines, line_height), fits

    smallest = max(MIN_FONT, smallest)
    largest = max(smallest, largest)
    best, fits = attempt(largest)
    if not fits:
        lo, hi, found = smallest, largest - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            block, fits = attempt(mid)
            if fits:
                found, lo = block, mid + 1
            else:
                hi = mid - 1
        best = found  # type: ignore[assignment]
    if best is not None:
        return _balance(text, best)
    for size in dict.fromkeys((smallest, MIN_FONT)):
        block, _ = attempt(size)
        if block.lines and block.line_height <= height:
            break
    else:
        return None
    last = block.lines[-1].rstrip()
    while last and measure(block.font, last + "…") > width:
        last = last[:-1].rstrip()
    block.lines[-1] = last + "…"
    return block


def _balance(text: str, block: TextBlock) -> TextBlock:
    """The same number of lines, as even as possible: no lone word on the last line."""
    count = len(block.lines)
    if count < 2:
        return block
    lo, hi = 1, block.width
    while lo < hi:
        mid = (lo + hi) // 2
        lines, complete, broken = _wrap(text, block.font, mid, count)
        if complete and not broken:
            hi = mid
        else:
            lo = mid + 1
    lines, complete, broken = _wrap(text, block.font, lo, count)
    return TextBlock(block.font, lines, block.line_height) if complete and not broken else block
