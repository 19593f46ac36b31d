"""`/v1/files`: OpenAI's Files API, for the Batch API's input and output files.

Upload (`purpose=batch`, a JSONL file of at most 200 MB), list, look up, download the content,
delete. Files belong to the API key that uploaded them (a server with several keys never shows
one key's files to another); on a server without keys they are everyone's. Contents live in the
data folder (`JobStore`), so they outlive a restart, like the batches that use them.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .._capabilities import MB
from .._errors import InvalidRequestError
from ._auth import _presented_key
from ._errors import HTTPError
from ._jobstore import JobStore, new_id

if TYPE_CHECKING:
    from ._batches import BatchService

__all__ = ["MAX_FILE_BYTES", "file_routes", "lookup", "owner_of", "service_of"]

MAX_FILE_BYTES = 200 * MB  # OpenAI's limit for a batch input file
BATCHES_KEY = "imagegen_batches"
_PURPOSES = ("batch",)
_CHUNK = MB


def service_of(request: Request) -> BatchService:
    service: BatchService = getattr(request.state, BATCHES_KEY)
    return service


def owner_of(request: Request, service: BatchService) -> str:
    """Whose objects a request sees: a digest of its key, or everyone's without keys."""
    if not service.keyed:
        return ""
    key = _presented_key(request.scope) or b""
    return hashlib.sha256(key).hexdigest()[:32]


def _limit(request: Request, default: int, most: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidRequestError(
            f"Invalid limit {raw!r}: must be a whole number from 1 to {most}.", param="limit"
        )
    return int(raw)


def listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(_CHUNK):
        yield chunk


async def upload_file(request: Request) -> Response:
    service = service_of(request)
    owner = owner_of(request, service)
    async with request.form(max_files=1, max_fields=4, max_part_size=64 * 1024) as form:
        purpose = form.get("purpose")
        upload = form.get("file")
        if not isinstance(purpose, str) or not purpose:
            raise InvalidRequestError("Missing required parameter: purpose.", param="purpose")
        if purpose not in _PURPOSES:
            raise InvalidRequestError(
                f"Invalid purpose {purpose[:40]!r}: this server keeps files for the Batch API "
                "only; use purpose batch.",
                param="purpose",
            )
        if not isinstance(upload, UploadFile):
            raise InvalidRequestError(
                "Missing required parameter: file (sent as a file part).", param="file"
            )
        file_id = new_id("file-")
        size = await anyio.to_thread.run_sync(
            service.store.write_content, file_id, _chunks(upload.file)
        )
        filename = (upload.filename or "upload.jsonl").replace("\\", "/").rsplit("/", 1)[-1]
    if size == 0:
        await anyio.to_thread.run_sync(service.store.content_path(file_id).unlink)
        raise InvalidRequestError("The file is empty.", param="file")
    record = {
        "id": file_id,
        "filename": filename[:255],
        "purpose": purpose,
        "bytes": size,
        "created_at": int(time.time()),
        "expires_at": None,
    }
    await anyio.to_thread.run_sync(service.store.add_file, record, owner)
    found = await anyio.to_thread.run_sync(service.store.get_file, file_id, owner)
    return JSONResponse(found)


async def list_files(request: Request) -> Response:
    service = service_of(request)
    limit = _limit(request, 10_000, 10_000)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError(f"Invalid order {order[:20]!r}: use asc or desc.", param="order")
    if not service.store.exists:
        return JSONResponse(listing([], False))
    found = await anyio.to_thread.run_sync(
        lambda: service.store.list_files(
            owner_of(request, service),
            purpose=request.query_params.get("purpose"),
            limit=limit + 1,
            after=request.query_params.get("after"),
            order=order,
        )
    )
    return JSONResponse(listing(found[:limit], len(found) > limit))


Finder = Callable[[JobStore, str, str], "dict[str, Any] | None"]


async def lookup(request: Request, kind: str, find: Finder) -> dict[str, Any]:
    """The file or batch named in the path, if the request's key may see it; else a 404."""
    service = service_of(request)
    ident = request.path_params[f"{kind}_id"]
    found = None
    if service.store.exists:
        found = await anyio.to_thread.run_sync(
            find, service.store, ident, owner_of(request, service)
        )
    if found is None:
        shown = ident if len(ident) <= 80 else ident[:80] + "..."
        raise HTTPError(404, f"No such {kind}: '{shown}'.", code="not_found")
    return found


async def _file(request: Request) -> dict[str, Any]:
    return await lookup(request, "file", JobStore.get_file)


async def get_file(request: Request) -> Response:
    return JSONResponse(await _file(request))


async def file_content(request: Request) -> Response:
    found = await _file(request)
    path = service_of(request).store.content_path(found["id"])
    return FileResponse(path, media_type="application/octet-stream", filename=found["filename"])


async def delete_file(request: Request) -> Response:
    service = service_of(request)
    found = await _file(request)
    await anyio.to_thread.run_sync(
        service.store.delete_file, found["id"], owner_of(request, service)
    )
    return JSONResponse({"id": found["id"], "object": "file", "deleted": True})


file_routes = [
    Route("/v1/files", upload_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", get_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]
