"""`index.html`: a page to browse a batch's images, written into its out folder.

One self-contained file: inline CSS, no script, no font or image from the network, only
relative links to the images beside it, so the folder can be zipped, moved or opened offline.
Images are shown as thumbnails (the files themselves, scaled by the browser and loaded as they
scroll into view) and link to the full image. Failed rows come first, with their errors. Every
text from the batch file or the server is HTML-escaped: a prompt is shown, never run.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .._saving import atomic_write

__all__ = ["GALLERY_NAME", "GalleryRow", "write_gallery"]

GALLERY_NAME = "index.html"
_THUMB = 256

_CSS = """
:root { color-scheme: light dark; --line: #8884; --muted: #888; --bad: #c0392b; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1.5rem; max-width: 110rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; word-break: break-all; }
.summary { color: var(--muted); margin: 0 0 1.5rem; }
.summary b { color: inherit; }
h2 { font-size: 1.1rem; margin: 2rem 0 .75rem; }
.grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); }
.card { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; overflow: hidden; }
.card.failed, .card.invalid { border-color: var(--bad); }
.thumbs { display: flex; flex-wrap: wrap; gap: .35rem; margin-bottom: .5rem; }
.thumbs img { display: block; max-width: 100%; height: auto; border-radius: .25rem;
  background: repeating-conic-gradient(#8882 0 25%, transparent 0 50%) 0 0 / 16px 16px; }
.thumbs.inputs img { max-width: 5rem; opacity: .85; }
.row { font-weight: 600; }
.status { float: right; font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; }
.done .status { color: var(--ok); } .failed .status, .invalid .status { color: var(--bad); }
.pending .status { color: var(--muted); }
.prompt { margin: .35rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.revised { color: var(--muted); font-style: italic; white-space: pre-wrap; }
.error { color: var(--bad); white-space: pre-wrap; overflow-wrap: anywhere; margin: .35rem 0; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0 .6rem; margin: .35rem 0 0;
  font-size: .85rem; color: var(--muted); }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
ul.failures { padding-left: 1.2rem; } ul.failures a { color: var(--bad); }
"""


@dataclass(frozen=True)
class GalleryRow:
    """One row as the page shows it; `files` and `inputs` are paths relative to the page."""

    number: int
    status: str  # done, failed, invalid, pending
    prompt: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    error: str | None = None
    revised_prompts: tuple[str, ...] = ()


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(relative: str) -> str:
    return _e(quote(relative.replace(os.sep, "/"), safe="/._-~"))


def relative_to(folder: Path, path: Path) -> str:
    """`path` as a link from a page in `folder` (absolute if no relative path exists)."""
    try:
        return os.path.relpath(path, folder).replace(os.sep, "/")
    except ValueError:  # another drive, on Windows
        return path.as_uri()


def _thumbs(paths: Iterable[str], width: int, alt: Callable[[str], str], kind: str) -> str:
    """Images linking to themselves, shown `width` pixels wide, loaded as they scroll in."""
    links = "".join(
        f'<a href="{_href(path)}"><img src="{_href(path)}" width="{width}" loading="lazy" '
        f'alt="{_e(alt(path))}"></a>'
        for path in paths
    )
    return f'<div class="{kind}">{links}</div>'


def _card(row: GalleryRow) -> str:
    parts = [f'<article class="card {_e(row.status)}" id="row-{row.number}">']
    if row.files:
        parts.append(_thumbs(row.files, _THUMB, lambda name: row.prompt or name, "thumbs"))
    parts.append(
        f'<div><span class="row">#{row.number}</span>'
        f'<span class="status">{_e(row.status)}</span></div>'
    )
    if row.prompt:
        parts.append(f'<p class="prompt">{_e(row.prompt)}</p>')
    for revised in row.revised_prompts:
        parts.append(f'<p class="revised">Revised: {_e(revised)}</p>')
    if row.error:
        parts.append(f'<p class="error">{_e(row.error)}</p>')
    if row.inputs:
        parts.append(_thumbs(row.inputs, 80, lambda path: f"input {path}", "thumbs inputs"))
    if row.params:
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in row.params.items())
        parts.append(f"<dl>{items}</dl>")
    parts.append("</article>")
    return "".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def render(title: str, rows: Iterable[GalleryRow]) -> str:
    rows = list(rows)
    counts = {status: 0 for status in ("done", "failed", "invalid", "pending")}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    images = sum(len(row.files) for row in rows)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    summary = ", ".join(f"<b>{count}</b> {status}" for status, count in counts.items() if count)
    bad = [row for row in rows if row.status in ("failed", "invalid")]
    page = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} - imagegen batch</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        f'<p class="summary">{_count(len(rows), "row")}: {summary}; '
        f"{_count(images, 'image')}. Updated {when}.</p></header>",
    ]
    if bad:
        page.append(f'<section><h2>Failed ({len(bad)})</h2><ul class="failures">')
        page.extend(
            f'<li><a href="#row-{row.number}">#{row.number}</a>: {_e(row.error or row.status)}</li>'
            for row in bad
        )
        page.append("</ul></section>")
    page.append('<h2>All rows</h2><main class="grid">')
    page.extend(_card(row) for row in rows)
    page.append("</main></body></html>\n")
    return "\n".join(page)


def write_gallery(folder: Path, title: str, rows: Iterable[GalleryRow]) -> Path:
    """Write `folder/index.html` atomically; return its path."""
    path = folder / GALLERY_NAME
    text = render(title, rows)
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return path
