"""Reading requests off the wire: JSON bodies, multipart forms and data URLs.

Everything here is about transport (content types, multipart parts, data URLs, byte limits);
every rule about the parameters themselves lives in the shared request models, the capability
table and `ImageService.prepare`, which the routes call next.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from .._capabilities import MAX_DATA_URL_CHARS, Endpoint, ModelCapabilities
from .._errors import InvalidRequestError
from .._imaging import CONTENT_TYPES, InputImage, format_sizes, load_input
from .._models import ImageRequest, json_type, parse_request
from .._service import ImageService
from ._bodies import Blob, JsonEditReader, read_form
from ._errors import HTTPError
from ._settings import ServerSettings

__all__ = ["ParsedRequest", "read_edit", "read_generation", "read_variation"]

# Multipart limits, set explicitly rather than left at Starlette's defaults: a text field holds
# at most a 32,000-character prompt (128 KB in UTF-8); OpenAI's forms have about 15 fields.
MAX_FIELD_BYTES = 256 * 1024
MAX_FIELDS = 64
_IMAGE_FIELDS = {"image", "image[]"}
# File parts other than the images, and the formats each may be.
_OTHER_FILES = {"mask": None, "markup": ("png",)}
# A nested field as the SDK writes it in a form: `svg[reasoning][effort]`.
_NESTED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[A-Za-z_][A-Za-z0-9_]*\])+)$")


@dataclass
class ParsedRequest:
    request: ImageRequest
    images: list[InputImage] = field(default_factory=list)
    mask: InputImage | None = None
    markup: InputImage | None = None

    @property
    def pixels(self) -> int:
        """Pixels of the inputs once decoded: all images, the markup and the mask."""
        return _pixels([*self.images, *([self.markup] if self.markup else [])], self.mask)


def _pixels(images: list[InputImage], mask: InputImage | None) -> int:
    return sum(image.width * image.height for image in [*images, *([mask] if mask else [])])


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


async def _read_json(request: Request) -> dict[str, Any]:
    return _json_object(await _json_body(request))


async def _json_body(request: Request) -> bytes:
    if _media_type(request.headers.get("content-type")) != "application/json":
        raise HTTPError(
            400,
            "This endpoint takes a JSON body: send Content-Type: application/json.",
            code="unsupported_content_type",
        )
    return await request.body()


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPError(
            400,
            "We could not parse the JSON body of your request. The API expects a JSON object "
            '(for example {"prompt": "A cat"}), and what was sent was not valid JSON.',
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return data


def _check_text(data: dict[str, Any]) -> None:
    """JSON may carry lone surrogates (`"\\ud800"`), which no engine or encoder can handle."""
    for key, value in data.items():
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequestError(
                f"The value of {key} is not valid Unicode text (it holds a lone surrogate).",
                param=key,
            ) from None
        except (ValueError, RecursionError):
            raise InvalidRequestError(
                f"The value of {key} is nested too deeply.", param=key
            ) from None


def _parse(
    endpoint: Endpoint,
    service: ImageService,
    fields: dict[str, Any],
    model: str | None,
    *,
    strict: bool = False,
) -> ImageRequest:
    """`model`, when given (an Azure deployment's), replaces whatever the body names. JSON
    bodies are typed `strict`ly, as OpenAI types them; multipart fields are all strings."""
    if model is not None:
        fields = {**fields, "model": model}
    request = parse_request(endpoint, fields, strict=strict)
    # `prepare` checks the model too; checked here as well so that an unknown name is refused
    # before any upload is read, with OpenAI's 404 rather than a complaint about the files.
    service.check_model(request.model)
    return request


def _check_declared_type(declared: str, param: str, caps: ModelCapabilities) -> None:
    """OpenAI refuses a part whose declared type is not an image type the model takes,
    `application/octet-stream` included; the bytes are sniffed as well, later."""
    allowed = [CONTENT_TYPES[fmt] for fmt in _OTHER_FILES.get(param) or caps.input_formats]
    if declared in allowed:
        return
    quoted = [f"'{kind}'" for kind in sorted(allowed)]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    raise InvalidRequestError(
        f"Invalid file '{param}': unsupported mimetype ('{declared or 'none'}'). Supported file "
        f"formats are {listed}.",
        param=param,
    )


def _check_bytes(size: int, param: str, settings: ServerSettings) -> None:
    if size > settings.max_image_bytes:
        shown, limit = format_sizes(size, settings.max_image_bytes)
        raise InvalidRequestError(
            f"The {param} is {shown}; this server accepts files of at most {limit}.",
            param=param,
        )


def _check_mask_alpha(mask: InputImage | None) -> None:
    # OpenAI reads only the mask's alpha; a mask without one is refused, not guessed at.
    if mask is not None and not mask.has_alpha:
        raise InvalidRequestError(
            "Invalid mask image format - mask image missing alpha channel.",
            param="mask",
            code="invalid_mask_image_format",
        )


def _check_pixels(
    images: list[InputImage], mask: InputImage | None, settings: ServerSettings
) -> None:
    """Decoded, every input pixel costs 4 bytes: bound the total per request, not just per image
    (sixteen small PNGs of one colour can each claim 64 MP)."""
    total = _pixels(images, mask)
    if total > settings.max_input_pixels:
        raise InvalidRequestError(
            f"The input images have {total:,} pixels in all; this server accepts at most "
            f"{settings.max_input_pixels:,} per request.",
            param="image",
        )


def _check_count(count: int, param: str, settings: ServerSettings) -> None:
    if count > settings.max_images:
        raise InvalidRequestError(
            f"{count} images were given; this server accepts at most {settings.max_images}.",
            param=param,
        )


# -- generations ---------------------------------------------------------------------------


async def read_generation(
    request: Request, service: ImageService, settings: ServerSettings, model: str | None
) -> ParsedRequest:
    body = await _read_json(request)
    _check_text(body)
    return ParsedRequest(_parse("generations", service, body, model, strict=True))


# -- multipart (edits, variations) ------------------------------------------------------------


async def _read_upload(
    upload: UploadFile, param: str, caps: ModelCapabilities, settings: ServerSettings
) -> InputImage:
    _check_declared_type(_media_type(upload.content_type), param, caps)
    if upload.size is not None:
        _check_bytes(upload.size, param, settings)
    data = await upload.read(settings.max_image_bytes + 1)
    _check_bytes(len(data), param, settings)
    return load_input(data, param=param, name=upload.filename or None)


def _nest(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields with `svg[model]` and `svg[reasoning][effort]` gathered into objects, as
    the SDK flattens them (`{"svg": {"model": ..., "reasoning": {"effort": ...}}}`)."""
    nested: dict[str, Any] = {}
    for key, value in fields.items():
        match = _NESTED.match(key)
        path = [match[1], *re.findall(r"\[(\w+)\]", match[2])] if match else [key]
        target = nested
        for depth, part in enumerate(path[:-1]):
            inner = target.setdefault(part, {})
            if not isinstance(inner, dict):
                raise InvalidRequestError(
                    f"Parameter '{'.'.join(path[: depth + 1])}' was given both as a value and "
                    "as an object.",
                    param=".".join(path[: depth + 1]),
                )
            target = inner
        if path[-1] in target:
            raise InvalidRequestError(
                f"Parameter '{'.'.join(path)}' was given more than once.", param=".".join(path)
            )
        target[path[-1]] = value
    return nested


async def _read_multipart(
    request: Request,
    endpoint: Endpoint,
    service: ImageService,
    settings: ServerSettings,
    model: str | None,
) -> ParsedRequest:
    other_files = set(_OTHER_FILES) if endpoint == "edits" else set()
    try:
        async with contextlib.aclosing(request.stream()) as stream:
            form = await read_form(
                request.headers,
                stream,
                max_files=settings.max_images + 1 + len(other_files),
                max_fields=MAX_FIELDS,
                max_part_size=MAX_FIELD_BYTES,
                max_file_bytes=settings.max_image_bytes,
            )
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=exc.message) from None
    try:
        fields: dict[str, str] = {}
        images: list[UploadFile] = []
        others: dict[str, list[UploadFile]] = {name: [] for name in other_files}
        for key, value in form.multi_items():
            takes_file = key in _IMAGE_FIELDS or key in other_files
            if isinstance(value, UploadFile):
                if not takes_file:
                    raise InvalidRequestError(
                        f"Unexpected file for parameter '{key[:80]}': only "
                        f"{'image, mask and markup' if other_files else 'image'} take files.",
                        param=key[:80],
                    )
                (images if key in _IMAGE_FIELDS else others[key]).append(value)
            elif takes_file:
                name = "image" if key in _IMAGE_FIELDS else key
                raise InvalidRequestError(
                    f"The {name} must be sent as a file part, not as a text field.", param=name
                )
            elif key in fields:
                raise InvalidRequestError(
                    f"Parameter '{key[:80]}' was given more than once.", param=key[:80]
                )
            else:
                fields[key] = value
        if not images:
            raise InvalidRequestError("Missing required parameter: image.", param="image")
        for name, uploads in others.items():
            if len(uploads) > 1:
                raise InvalidRequestError(f"Only one {name} may be given.", param=name)
        _check_count(len(images), "image", settings)
        parsed = _parse(endpoint, service, _nest(fields), model)
        caps = service.capabilities(parsed.model)
        inputs = [await _read_upload(upload, "image", caps, settings) for upload in images]
        extra = {
            name: await _read_upload(uploads[0], name, caps, settings)
            for name, uploads in others.items()
            if uploads
        }
    finally:
        await form.close()
    mask, markup = extra.get("mask"), extra.get("markup")
    _check_mask_alpha(mask)
    _check_pixels([*inputs, *([markup] if markup else [])], mask, settings)
    return ParsedRequest(parsed, inputs, mask, markup)


def _require_multipart(request: Request, what: str) -> None:
    if _media_type(request.headers.get("content-type")) != "multipart/form-data":
        raise HTTPError(
            400,
            f"{what} must be sent as multipart/form-data.",
            code="unsupported_content_type",
        )


async def read_variation(
    request: Request, service: ImageService, settings: ServerSettings, model: str | None
) -> ParsedRequest:
    _require_multipart(request, "A variation request")
    return await _read_multipart(request, "variations", service, settings, model)


# -- edits: multipart, or JSON with data URLs -------------------------------------------------


def _reference_url(ref: Any, param: str) -> str:
    """The `image_url` of a JSON image reference (`{"image_url": ...}`)."""
    if not isinstance(ref, dict):
        raise InvalidRequestError(
            f"Invalid type for '{param}': expected an object like "
            f'{{"image_url": "data:image/png;base64,..."}}, but got {json_type(ref)} instead.',
            param=param,
            code="invalid_type",
        )
    if ref.get("file_id") is not None:
        raise InvalidRequestError(
            "File references (file_id) are not supported by this server: send the image inline "
            "as a data URL in image_url (data:image/png;base64,...).",
            param=f"{param}.file_id",
        )
    url = ref.get("image_url")
    where = f"{param}.image_url"
    if url is not None and not isinstance(url, str):
        raise InvalidRequestError(
            f"Invalid type for '{where}': expected a string, but got {json_type(url)} instead.",
            param=where,
            code="invalid_type",
        )
    if not url:
        raise InvalidRequestError(
            f"Missing {where}: give the image as a data URL (data:image/png;base64,...).",
            param=where,
        )
    return url


def _data_url(url: str, where: str, blob: Blob | None) -> tuple[str, str]:
    """A base64 data URL's declared type and payload (empty for a blob, decoded already)."""
    length = blob.chars if blob is not None else len(url)
    if length > MAX_DATA_URL_CHARS:
        raise InvalidRequestError(
            f"Invalid {where}: {length:,} characters; at most {MAX_DATA_URL_CHARS:,} are "
            "accepted. Send large images as multipart/form-data.",
            param=where,
        )
    if blob is None and url[:8].lower().startswith(("http://", "https://")):
        raise InvalidRequestError(
            "This server does not download images from URLs: send the image inline as a data "
            "URL (data:image/png;base64,...).",
            param=where,
        )
    header, comma, payload = (blob.header, ",", "") if blob is not None else url.partition(",")
    if not header.lower().startswith("data:") or not comma:
        raise InvalidRequestError(
            f"Invalid {where}: expected a data URL such as data:image/png;base64,....",
            param=where,
        )
    declared, *flags = header[5:].split(";")
    if "base64" not in [flag.strip().lower() for flag in flags]:
        raise InvalidRequestError(f"Invalid {where}: the data URL must be base64.", param=where)
    return declared.strip().lower(), payload


def _decode_reference(
    ref: Any,
    param: str,
    caps: ModelCapabilities,
    settings: ServerSettings,
    blobs: Mapping[str, Blob],
) -> InputImage:
    url = _reference_url(ref, param)
    where = f"{param}.image_url"
    # A long data URL arrived already decoded (see `JsonEditReader`); its marker stands for it.
    blob = blobs.get(url)
    declared, payload = _data_url(url, where, blob)
    # What is wrong with the image itself is reported as `image` (or `mask`, `markup`), as in
    # multipart.
    subject = param if param in _OTHER_FILES else "image"
    _check_declared_type(declared, subject, caps)
    _check_bytes(blob.size if blob is not None else len(payload) * 3 // 4 - 2, subject, settings)
    try:
        data = blob.data if blob is not None else base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        data = None
    if data is None:
        raise InvalidRequestError(f"Invalid {where}: the base64 data is malformed.", param=where)
    _check_bytes(len(data), subject, settings)
    # Several JSON images are told apart by their place ('images[2]'); one mask needs no name.
    return load_input(data, param=subject, name=None if param in _OTHER_FILES else param)


async def read_edit(
    request: Request, service: ImageService, settings: ServerSettings, model: str | None
) -> ParsedRequest:
    kind = _media_type(request.headers.get("content-type"))
    if kind == "multipart/form-data":
        return await _read_multipart(request, "edits", service, settings, model)
    if kind != "application/json":
        raise HTTPError(
            400,
            "An edit request must be sent as multipart/form-data, or as JSON with images given "
            "as data URLs.",
            code="unsupported_content_type",
        )
    # Data URLs are decoded as they arrive, a block at a time; what is left is a small JSON
    # text, parsed (and the images' headers read) in a worker thread.
    reader = JsonEditReader(max_image_bytes=settings.max_image_bytes)
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            reader.feed(chunk)
    raw, blobs = reader.finish()
    return await anyio.to_thread.run_sync(_json_edit, raw, blobs, service, settings, model)


def _json_edit(
    raw: bytes,
    blobs: Mapping[str, Blob],
    service: ImageService,
    settings: ServerSettings,
    model: str | None,
) -> ParsedRequest:
    body = _json_object(raw)
    refs = body.pop("images", None)
    other_refs = {name: body.pop(name, None) for name in _OTHER_FILES}
    if "image" in body:
        raise InvalidRequestError(
            'In a JSON edit, give the images as "images": [{"image_url": "data:..."}].',
            param="image",
        )
    _check_text(body)
    parsed = _parse("edits", service, body, model, strict=True)
    caps = service.capabilities(parsed.model)
    if caps.family == "dall-e":
        raise InvalidRequestError(
            f"JSON edits are for GPT image models; send {caps.name} edits as multipart/form-data.",
            param="model",
        )
    if refs is not None and not isinstance(refs, list):
        raise InvalidRequestError(
            f"Invalid type for 'images': expected an array, but got {json_type(refs)} instead.",
            param="images",
            code="invalid_type",
        )
    if not refs:
        raise InvalidRequestError(
            'Missing required parameter: images (a list of {"image_url": "data:..."}).',
            param="images",
        )
    _check_count(len(refs), "images", settings)
    images = [
        _decode_reference(ref, f"images[{index}]", caps, settings, blobs)
        for index, ref in enumerate(refs)
    ]
    mask, markup = (
        None
        if other_refs[name] is None
        else _decode_reference(other_refs[name], name, caps, settings, blobs)
        for name in ("mask", "markup")
    )
    _check_mask_alpha(mask)
    _check_pixels([*images, *([markup] if markup else [])], mask, settings)
    return ParsedRequest(parsed, images, mask, markup)
