"""A `Call` in HTTP's terms: the route, and the body as JSON or as a multipart form.

Generations are JSON. Edits and variations are multipart forms (text fields, then the image
files), except an edit with `moderation`, which OpenAI takes only as JSON: its images go as
data URLs then. The Batch API has no forms, so its edits are JSON too (`inline_images`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from ._capabilities import Endpoint
from ._imaging import InputImage
from ._request import Call

__all__ = ["PATHS", "form_fields", "json_body", "multipart_files", "request_body"]

PATHS: dict[Endpoint, str] = {
    "generations": "/images/generations",
    "edits": "/images/edits",
    "variations": "/images/variations",
}


def _data_url(image: InputImage) -> str:
    return f"data:{image.content_type};base64," + base64.b64encode(image.data).decode("ascii")


def json_body(call: Call, *, inline_images: bool = False) -> dict[str, Any]:
    """The JSON body of a generation, or of an edit with its images as data URLs (any edit
    with `inline_images`)."""
    body = call.body()
    if call.json_edit or (inline_images and call.endpoint == "edits"):
        body["images"] = [{"image_url": _data_url(image)} for image in call.images]
        for name, image in (("mask", call.mask), ("markup", call.markup)):
            if image is not None:
                body[name] = {"image_url": _data_url(image)}
    return body


def form_fields(body: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Multipart text fields as OpenAI's SDK writes them: `true`/`false`, numbers via `str`,
    objects as one field per member, `svg[reasoning][effort]`; `None` leaves a field out."""
    fields: dict[str, str] = {}
    for name, value in body.items():
        key = f"{prefix}[{name}]" if prefix else name
        if value is None:
            continue
        if isinstance(value, Mapping):
            fields.update(form_fields(value, key))
        elif isinstance(value, bool):
            fields[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            fields[key] = str(value)
        else:
            fields[key] = json.dumps(value)
    return fields


def multipart_files(call: Call) -> list[tuple[str, tuple[str, bytes, str]]]:
    """File parts: `image` for one image, repeated `image[]` for several, then `markup` and
    `mask` (the SDK's order)."""
    name = "image" if len(call.images) == 1 else "image[]"
    files = [(name, image.multipart()) for image in call.images]
    for part, image in (("markup", call.markup), ("mask", call.mask)):
        if image is not None:
            files.append((part, image.multipart()))
    return files


def request_body(call: Call) -> dict[str, Any]:
    """httpx2's body arguments for `call`: `json`, or `data` and `files`."""
    if call.endpoint == "generations" or call.json_edit:
        return {"json": json_body(call)}
    return {"data": form_fields(call.body()), "files": multipart_files(call)}
