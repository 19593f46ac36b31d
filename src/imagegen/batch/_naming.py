"""File names of a batch: `{row:04d}-{slug}`, then `-1`, `-2` ... for the further images of a
row (`n > 1`) and the extension of the image's real format, added when it is saved.

The row number makes every name unique within a batch whatever the prompts, and keeps the files
in row order when sorted. The slug is the prompt's (or the row's `name`'s) first words in plain
lower-case ASCII (accents folded, everything else a hyphen), cut at a word boundary: the same on
every file system, with no character a shell or a URL would need to quote, and never a name
Windows reserves (`con`, `nul`), since the number comes first.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_SLUG", "base_name", "slugify"]

MAX_SLUG = 48
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str | None, *, fallback: str = "image", limit: int = MAX_SLUG) -> str:
    """`"Un café, s'il vous plaît!"` -> `"un-cafe-s-il-vous-plait"`; `fallback` if nothing is
    left (a prompt in a script ASCII cannot spell)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    # Accents go (é -> e); any other letter or sign ASCII lacks separates words (s’il -> s-il).
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    slug = _NOT_WORD.sub("-", folded.lower()).strip("-")
    if len(slug) > limit:
        cut = slug[: limit + 1]
        boundary = cut.rfind("-")
        slug = cut[:boundary] if boundary > 0 else slug[:limit]
    return slug or fallback


def base_name(number: int, text: str | None, *, fallback: str = "image") -> str:
    """The name (without extension) of row `number`'s first image."""
    return f"{number:04d}-{slugify(text, fallback=fallback)}"
