"""`/v1/batches`: OpenAI's Batch API over the server's engine, and the worker that runs it.

A batch names an uploaded JSONL file of requests (`{"custom_id", "method": "POST", "url",
"body"}` per line) for `/v1/images/generations` or `/v1/images/edits` (JSON edits, images as
data URLs). The worker checks the file (`validating`: a bad line fails the whole batch, with
the line numbers in `errors`), runs each request through the same `ImageService` as the HTTP
routes, taking the engine's slots in turn with live requests (`in_progress`), then writes the
output file (successes, in input order) and the error file (failures) (`finalizing`) and ends
`completed`; `cancel` ends it `cancelled`, the completion window `expired`. Results carry images
as base64 (a link would expire before anyone collects them).

Each request's result is committed to SQLite as it finishes, so a restart (or a crash) loses
none: the batch resumes with the requests that have no result yet.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._capabilities import Endpoint
from .._errors import ImagegenError, InvalidRequestError
from .._models import parse_request
from ._errors import _STATUS_BY_CODE, HTTPError, error_body, internal_error_message
from ._files import _limit, listing, lookup, owner_of, service_of
from ._inputs import _check_text, _json_edit
from ._jobstore import LEASE_SECONDS, RUNNABLE, JobStore, new_id, worker_id
from ._limits import Ticket
from ._state import ServerState

__all__ = ["BatchService", "batch_routes"]

logger = logging.getLogger("imagegen.server")

ENDPOINTS: dict[str, Endpoint] = {
    "/v1/images/generations": "generations",
    "/v1/images/edits": "edits",
}
MAX_REQUESTS = 50_000
COMPLETION_WINDOW = 24 * 3600
_ENDING = "_ending"  # how a finalizing batch ends; kept in the store, never shown


class BatchService:
    """The store, and the worker that runs the batches in it."""

    def __init__(self, state: ServerState, folder: Path, *, keyed: bool) -> None:
        self.state = state
        self.store = JobStore(folder)
        self.keyed = keyed
        self.worker_id = worker_id()
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Give back this server's leases (a restart resumes at once) and close the store."""
        try:
            self.store.release(self.worker_id)
        finally:
            self.store.close()

    async def run_worker(self) -> None:
        """Run batches, oldest first, forever."""
        while True:
            batch_id = None
            if self.store.exists:
                batch_id = await anyio.to_thread.run_sync(self.store.claim, self.worker_id)
            if batch_id is None:
                with anyio.move_on_after(LEASE_SECONDS / 3):  # also: leases of others lapse
                    await self._wake.wait()
                self._wake = anyio.Event()
                continue
            try:
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(self._keep_lease, batch_id, tasks.cancel_scope)
                    await _Run(self, batch_id).advance()
                    tasks.cancel_scope.cancel()
            except Exception as exc:  # a bug or a broken disk must not stop every batch
                logger.error("batch %s failed: %s", batch_id, exc, exc_info=exc)
                error = {"code": "server_error", "message": "The server failed to run the batch."}
                try:
                    await anyio.to_thread.run_sync(
                        _end, self.store, batch_id, "failed", {"errors": _errors([error])}
                    )
                except Exception as again:  # the store itself fails: try again later
                    logger.error("could not record the failure of batch %s: %s", batch_id, again)
                    await anyio.sleep(LEASE_SECONDS)

    async def _keep_lease(self, batch_id: str, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(LEASE_SECONDS / 3)
            if not await anyio.to_thread.run_sync(self.store.renew, batch_id, self.worker_id):
                scope.cancel()  # another server took it over; it goes on from the results
                return


def _errors(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data}


def _end(store: JobStore, batch_id: str, status: str, extra: dict[str, Any]) -> None:
    store.finish(batch_id, {"status": status, f"{status}_at": int(time.time()), **extra}, [])


def _lines(path: Path) -> Generator[tuple[int, bytes], None, None]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def _check_input(path: Path, url: str) -> tuple[int, list[dict[str, Any]]]:
    """Count the requests of an input file; list what is wrong with it (blocking)."""
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    total = 0

    def problem(code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(problems) < 100:
            problems.append({"code": code, "message": message, "line": line, "param": param})

    for number, raw in _lines(path):
        total += 1
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):
            problem("invalid_json_line", "This line is not valid JSON.", number)
            continue
        if not isinstance(item, dict):
            problem("invalid_json_line", "This line is not a JSON object.", number)
            continue
        custom = item.get("custom_id")
        if not isinstance(custom, str) or not custom:
            problem("missing_required_parameter", "custom_id is missing.", number, "custom_id")
        elif custom in seen:
            problem("duplicate_custom_id", f"custom_id {custom[:64]!r} is used twice.", number)
        else:
            seen.add(custom)
        if item.get("method") != "POST":
            problem("invalid_method", "method must be POST.", number, "method")
        if item.get("url") != url:
            problem("mismatched_url", f"url must be the batch's endpoint, {url}.", number, "url")
        if not isinstance(item.get("body"), dict):
            problem("invalid_body", "body must be a JSON object.", number, "body")
    if total == 0:
        problem("empty_file", "The input file holds no requests.", None)
    elif total > MAX_REQUESTS:
        problem("too_many_requests", f"A batch holds at most {MAX_REQUESTS:,} requests.", None)
    return total, problems


class _Run:
    """Advances one batch as far as it goes."""

    def __init__(self, service: BatchService, batch_id: str) -> None:
        self.service = service
        self.store = service.store
        self.id = batch_id

    async def _get(self) -> dict[str, Any]:
        batch = await anyio.to_thread.run_sync(self.store.get_batch, self.id)
        assert batch is not None
        return batch

    async def _update(self, **changes: Any) -> None:
        await anyio.to_thread.run_sync(self.store.update_batch, self.id, changes)

    async def advance(self) -> None:
        batch = await self._get()
        path = self.store.content_path(batch["input_file_id"])
        if batch["status"] == "validating":
            if not path.exists():
                error = {
                    "code": "invalid_file",
                    "message": "The input file was deleted.",
                    "line": None,
                }
                await anyio.to_thread.run_sync(
                    _end, self.store, self.id, "failed", {"errors": _errors([error])}
                )
                return
            total, problems = await anyio.to_thread.run_sync(_check_input, path, batch["endpoint"])
            if problems:
                counts = {"total": total, "completed": 0, "failed": 0}
                await anyio.to_thread.run_sync(
                    _end,
                    self.store,
                    self.id,
                    "failed",
                    {"errors": _errors(problems), "request_counts": counts},
                )
                return
            await self._update(
                status="in_progress",
                in_progress_at=int(time.time()),
                request_counts={"total": total, "completed": 0, "failed": 0},
            )
            batch = await self._get()
        if batch["status"] == "in_progress":
            await self._run_requests(batch, path)
            batch = await self._get()
        if batch["status"] in ("in_progress", "finalizing", "cancelling"):
            await self._finalize(batch, path)

    def _stopping(self, batch: dict[str, Any]) -> str | None:
        if batch["status"] == "cancelling":
            return "cancelled"
        if time.time() >= batch["expires_at"]:
            return "expired"
        return None

    async def _run_requests(self, batch: dict[str, Any], path: Path) -> None:
        done = await anyio.to_thread.run_sync(self.store.done_lines, self.id)
        endpoint = ENDPOINTS[batch["endpoint"]]
        slots = anyio.Semaphore(self.service.state.settings.max_concurrency)
        lines = _lines(path)
        try:
            async with anyio.create_task_group() as tasks:
                while True:
                    entry = await anyio.to_thread.run_sync(next, lines, None)
                    if entry is None:
                        break
                    number, raw = entry
                    if number in done:
                        continue
                    await slots.acquire()
                    if self._stopping(await self._get()):
                        slots.release()
                        break
                    tasks.start_soon(self._one, endpoint, number, raw, slots)
        finally:
            await anyio.to_thread.run_sync(lines.close)

    async def _one(
        self, endpoint: Endpoint, number: int, raw: bytes, slots: anyio.Semaphore
    ) -> None:
        try:
            item = json.loads(raw)
            status, body = await _execute(self.service.state, endpoint, item["body"])
            line = {
                "id": new_id("batch_req_"),
                "custom_id": item["custom_id"],
                "response": {
                    "status_code": status,
                    "request_id": new_id("req_"),
                    "body": body,
                },
                "error": None,
            }
            data = json.dumps(line, separators=(",", ":"))
            await anyio.to_thread.run_sync(
                self.store.add_result, self.id, number, status == 200, data
            )
        finally:
            slots.release()

    async def _finalize(self, batch: dict[str, Any], path: Path) -> None:
        if batch["status"] == "finalizing":  # resumed: the ending was decided before
            ending = str(batch.get(_ENDING) or "completed")
        else:
            ending = self._stopping(batch) or "completed"
            if ending != "completed":
                await anyio.to_thread.run_sync(self._mark_unrun, path, ending)
            await self._update(
                status="finalizing", finalizing_at=int(time.time()), **{_ENDING: ending}
            )
        await anyio.to_thread.run_sync(self._write_outputs, batch, ending)

    def _mark_unrun(self, path: Path, ending: str) -> None:
        """Requests a cancelled or expired batch never ran go to the error file."""
        done = self.store.done_lines(self.id)
        message = (
            "This request was not run: the batch was cancelled."
            if ending == "cancelled"
            else "This request could not be executed before the completion window expired."
        )
        for number, raw in _lines(path):
            if number in done:
                continue
            try:
                custom = json.loads(raw).get("custom_id")
            except ValueError:
                custom = None
            line = {
                "id": new_id("batch_req_"),
                "custom_id": custom,
                "response": None,
                "error": {"code": f"batch_{ending}", "message": message},
            }
            self.store.add_result(self.id, number, False, json.dumps(line, separators=(",", ":")))

    def _write_outputs(self, batch: dict[str, Any], status: str) -> None:
        now = int(time.time())
        outputs: list[dict[str, Any]] = []
        ids: dict[str, str | None] = {}
        counts = {}
        for ok, name in ((True, "output"), (False, "error")):
            file_id = new_id("file-")
            lines, size = self.store.export(self.id, ok, file_id)
            counts[name] = lines
            ids[f"{name}_file_id"] = file_id if lines else None
            if lines:
                outputs.append(
                    {
                        "id": file_id,
                        "filename": f"{self.id}_{name}.jsonl",
                        "purpose": "batch_output",
                        "bytes": size,
                        "created_at": now,
                    }
                )
        total = (batch.get("request_counts") or {}).get("total", counts["output"] + counts["error"])
        changes = {
            "status": status,
            f"{status}_at": now,
            "request_counts": {
                "total": total,
                "completed": counts["output"],
                "failed": counts["error"],
            },
            **ids,
        }
        self.store.finish(self.id, changes, outputs)


async def _execute(state: ServerState, endpoint: Endpoint, body: Any) -> tuple[int, dict[str, Any]]:
    """Run one request of a batch as the HTTP route would; return its status and body."""
    service = state.service
    try:
        if not isinstance(body, dict):
            raise InvalidRequestError("The request body must be a JSON object.")
        if body.get("stream"):
            raise InvalidRequestError(
                "Streaming is not available in a batch; leave out stream.", param="stream"
            )
        pixels = 0
        if endpoint == "generations":
            _check_text(body)
            request = parse_request("generations", body, strict=True)
            service.check_model(request.model)
            images, mask = [], None
        else:
            raw = json.dumps(body).encode("utf-8")
            parsed = await anyio.to_thread.run_sync(
                _json_edit, raw, {}, service, state.settings, None
            )
            request, images, mask = parsed.request, parsed.images, parsed.mask
            pixels = parsed.pixels
        # Decoded within the server's pixel budget, in turn with live requests.
        held = await state.pixels.take(pixels) if pixels else 0
        try:
            job = await anyio.to_thread.run_sync(
                service.prepare, endpoint, request, images, mask, limiter=state.decode_limiter
            )
            async with Ticket(state.gate).engine():  # in turn with live requests
                made = await anyio.to_thread.run_sync(service.make, job)
            rendered = await anyio.to_thread.run_sync(service.finish, job, made)
        finally:
            if held:
                state.pixels.give(held)
        response = rendered.to_response(None)
        return 200, response.model_dump(exclude_none=True)
    except InvalidRequestError as exc:
        status = _STATUS_BY_CODE.get(exc.code or "", 400)
        return status, error_body(
            exc.message, type="invalid_request_error", param=exc.param, code=exc.code
        )
    except HTTPError as exc:
        return exc.status_code, error_body(
            exc.message, type=exc.type, param=exc.param, code=exc.code
        )
    except ImagegenError as exc:
        request_id = new_id("req_")
        logger.error("batch request %s failed: %s", request_id, exc, exc_info=exc)
        return 500, error_body(internal_error_message(request_id), type="server_error")


# -- the routes ---------------------------------------------------------------------------


async def _json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise InvalidRequestError("The request body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return data


def _check_metadata(metadata: Any) -> dict[str, str] | None:
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        )
    ):
        raise InvalidRequestError(
            "metadata must be at most 16 pairs of strings, keys up to 64 characters and values "
            "up to 512.",
            param="metadata",
        )
    return dict(metadata)


async def create_batch(request: Request) -> Response:
    service = service_of(request)
    owner = owner_of(request, service)
    body = await _json(request)
    for name in ("input_file_id", "endpoint", "completion_window"):
        if body.get(name) in (None, ""):
            raise InvalidRequestError(f"Missing required parameter: {name}.", param=name)
    endpoint = body.get("endpoint")
    if endpoint not in ENDPOINTS:
        raise InvalidRequestError(
            f"Invalid endpoint {str(endpoint)[:60]!r}: this server runs batches of "
            f"{' and '.join(ENDPOINTS)}.",
            param="endpoint",
        )
    if body.get("completion_window") != "24h":
        raise InvalidRequestError("completion_window must be 24h.", param="completion_window")
    metadata = _check_metadata(body.get("metadata"))
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str):
        raise InvalidRequestError(
            f"Invalid input_file_id {file_id!r}: must be a file id such as 'file-abc123'.",
            param="input_file_id",
        )
    found = None
    if service.store.exists:
        found = await anyio.to_thread.run_sync(service.store.get_file, file_id, owner)
    if found is None:
        raise InvalidRequestError(f"No such file: {file_id[:80]!r}.", param="input_file_id")
    if found["purpose"] != "batch":
        raise InvalidRequestError(
            f"The file {file_id} has purpose {found['purpose']}; a batch needs purpose batch.",
            param="input_file_id",
        )
    now = int(time.time())
    batch: dict[str, Any] = {
        "id": new_id("batch_"),
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": file_id,
        "completion_window": "24h",
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + COMPLETION_WINDOW,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata,
    }
    await anyio.to_thread.run_sync(service.store.add_batch, batch, owner)
    service.wake()
    return JSONResponse(batch)


async def _batch(request: Request) -> dict[str, Any]:
    return await lookup(request, "batch", JobStore.public_batch)


async def get_batch(request: Request) -> Response:
    return JSONResponse(await _batch(request))


async def cancel_batch(request: Request) -> Response:
    service = service_of(request)
    found = await _batch(request)
    if found["status"] not in RUNNABLE:
        raise HTTPError(
            409,
            f"Cannot cancel batch {found['id']}: it is already {found['status']}.",
            code="batch_not_cancellable",
        )
    owner = owner_of(request, service)
    await anyio.to_thread.run_sync(service.store.request_cancel, found["id"], owner)
    service.wake()
    return JSONResponse(
        await anyio.to_thread.run_sync(service.store.public_batch, found["id"], owner)
    )


async def list_batches(request: Request) -> Response:
    service = service_of(request)
    limit = _limit(request, 20, 100)
    if not service.store.exists:
        return JSONResponse(listing([], False))
    found = await anyio.to_thread.run_sync(
        lambda: service.store.list_batches(
            owner_of(request, service), limit=limit + 1, after=request.query_params.get("after")
        )
    )
    return JSONResponse(listing(found[:limit], len(found) > limit))


batch_routes = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
]
