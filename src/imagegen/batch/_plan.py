"""Every row checked before anything is sent, each with its identity and its file name.

A row is checked exactly as the client checks a call (the model's rules, the images and the
mask, `extra_body`), and for an in-process engine as that engine's service would check it. All
problems are collected, so one run reports every bad row of the file at once.

A row's key is a digest of its effective request: endpoint, parameters (defaults applied),
extra fields and the bytes of its input images. A finished row is skipped on the next run only
if its key is unchanged, so editing a prompt (or replacing an input image) redoes that row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import InvalidRequestError
from ._naming import base_name
from ._rows import Row, RowProblem

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from .._request import Call

__all__ = ["Planned", "check_rows", "prepare_row"]


@dataclass(frozen=True)
class Planned:
    """A checked row: its key and the name its images are saved under (before `-k.ext`)."""

    row: Row
    key: str
    base: str


def prepare_row(client: AsyncClient, row: Row) -> Call:
    """The client's checked call for `row`, and for an in-process engine checked by that
    engine's own rules too (blocking: it reads the images)."""
    arguments: dict[str, Any] = {**row.params, "extra_body": dict(row.extra_body) or None}
    if row.endpoint == "edits":
        image = list(row.images) if len(row.images) > 1 else row.images[0]
        arguments.update(image=image, mask=row.mask, markup=row.markup)
    elif row.endpoint == "variations":
        arguments["image"] = row.images[0]
    call = client._prepare(row.endpoint, arguments)
    client._transport.check(call)
    return call


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row_key(row: Row, call: Call) -> str:
    identity = {
        "endpoint": row.endpoint,
        "params": dict(row.params),
        "extra_body": dict(row.extra_body),
        "images": [_digest(image.data) for image in call.images],
        "mask": _digest(call.mask.data) if call.mask is not None else None,
        "markup": _digest(call.markup.data) if call.markup is not None else None,
    }
    text = json.dumps(identity, sort_keys=True, ensure_ascii=False, default=str)
    return _digest(text.encode("utf-8"))[:32]


def _name_words(row: Row) -> str | None:
    if row.name:
        return row.name
    if row.prompt:
        return row.prompt
    return row.images[0].stem if row.images else None


def check_rows(client: AsyncClient, rows: list[Row]) -> tuple[list[Planned], list[RowProblem]]:
    """Check every row (blocking; run it in a worker thread)."""
    planned: list[Planned] = []
    problems: list[RowProblem] = []
    for row in rows:
        try:
            call = prepare_row(client, row)
        except InvalidRequestError as exc:
            problems += [RowProblem(row.number, row.line, p.param, p.message) for p in exc.problems]
            continue
        fallback = "variation" if row.endpoint == "variations" else "image"
        planned.append(
            Planned(
                row, row_key(row, call), base_name(row.number, _name_words(row), fallback=fallback)
            )
        )
    return planned, problems
