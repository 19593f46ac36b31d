"""`via="batch-api"`: the rows go to the server's Batch API (`/v1/files` + `/v1/batches`; at
OpenAI, half the price of direct requests, results within 24 hours), then the results come
back into the same manifest, files and gallery as direct requests.

One batch per endpoint (generations, and edits as JSON with the images as data URLs;
variations have no Batch API), split further at OpenAI's limits (50,000 requests, 200 MB).
Each request's `custom_id` is `row-N-KEY`, so a result is only ever applied to the row, in the
version, that asked for it.

What was submitted is written to `batch-api.json` in the out folder right away: a run that is
stopped (Ctrl-C) or killed while the batch runs at the server submits nothing again; running it
once more polls the same batch and collects its results. A batch the server finished with some
rows missing (cancelled, expired) leaves those rows pending, and the next run submits them.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .._answers import Answer
from .._async_http import AsyncHTTPTransport
from .._errors import (
    APIConnectionError,
    APIError,
    ConfigurationError,
    ImagegenError,
    make_status_error,
)
from .._models import ImagesResponse
from .._network import aiter_within
from .._results import ImagesResult
from .._retry import backoff
from .._saving import atomic_write
from .._streaming import aiter_lines
from .._wire import json_body
from ._context import RunContext
from ._direct import RETRY, verdict_for
from ._plan import Planned, prepare_row

if TYPE_CHECKING:
    from .._async_client import AsyncClient

__all__ = ["STATE_NAME", "BatchAPI", "check_client", "run_batch_api"]

STATE_NAME = "batch-api.json"
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 190 * 1024 * 1024  # OpenAI's limit is 200 MB; room for the multipart framing
TERMINAL = ("completed", "failed", "expired", "cancelled")
_PATHS = {"generations": "/v1/images/generations", "edits": "/v1/images/edits"}


def custom_id(item: Planned) -> str:
    return f"row-{item.row.number}-{item.key[:16]}"


def check_client(client: AsyncClient) -> AsyncHTTPTransport:
    """The client's HTTP transport, if the Batch API can go through it; else a
    `ConfigurationError` (checked before the out folder is touched)."""
    http = client._transport
    if not isinstance(http, AsyncHTTPTransport):
        raise ConfigurationError(
            "The Batch API (--via batch-api) needs a server; an in-process engine "
            "(--engine) has none."
        )
    if http.settings.azure is not None:
        raise ConfigurationError(
            "The Batch API (--via batch-api) is not supported with Azure OpenAI here; "
            "send the rows directly (leave out --via)."
        )
    return http


class BatchAPI:
    """The Files and Batches routes, over the client's connection pool and settings."""

    def __init__(self, ctx: RunContext) -> None:
        http = check_client(ctx.client)
        self.ctx = ctx
        self.http = http
        self.base = http.settings.base_url.rstrip("/")  # routes are relative to it, as /images

    async def _call(
        self, method: str, path: str, *, stream: bool = False, **options: Any
    ) -> Answer:
        """One call with the run's retries (same policy as image requests)."""
        attempt = 0
        while True:
            request = self.http.client.build_request(
                method,
                self.base + path,
                headers=self.http.headers,
                params={**self.http.query, **options.pop("params", {})} or None,
                timeout=self.http.timeout,
                **options,
            )
            await request.aread()  # a multipart upload is sent again as it was
            try:
                with self.http._scrubbed():
                    return await self.http._send(request, self.http._plan(request, stream=stream))
            except APIError as exc:
                if verdict_for(exc, self.ctx.max_wait) != RETRY or attempt >= self.ctx.max_retries:
                    raise
                wait = getattr(exc, "retry_after", None) or backoff(attempt)
                attempt += 1
                if not await self.ctx.pause(wait):
                    raise

    async def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        answer = await self._call(method, path, **options)
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise APIError(f"The server answered {method} {path} with something other than JSON.")
        return data

    async def upload(self, name: str, content: bytes) -> str:
        data = await self._json(
            "POST",
            "/files",
            data={"purpose": "batch"},
            files={"file": (name, content, "application/jsonl")},
        )
        return str(data["id"])

    async def create(
        self, input_file_id: str, endpoint: str, metadata: Mapping[str, str]
    ) -> dict[str, Any]:
        body = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": dict(metadata),
        }
        try:
            return await self._json("POST", "/batches", json=body)
        except APIConnectionError:
            # The batch may have been created with the answer lost: never pay for it twice.
            found = await self.find(input_file_id)
            if found is None:
                raise
            return found

    async def find(self, input_file_id: str) -> dict[str, Any] | None:
        """The newest batch made from `input_file_id`, among the last 100."""
        listing = await self._json("GET", "/batches", params={"limit": "100"})
        for batch in listing.get("data") or []:
            if isinstance(batch, dict) and batch.get("input_file_id") == input_file_id:
                return batch
        return None

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/batches/{batch_id}")

    async def cancel(self, batch_id: str) -> None:
        await self._json("POST", f"/batches/{batch_id}/cancel")

    async def lines(self, file_id: str) -> AsyncIterator[str]:
        """The lines of a file's content, read as they arrive (an output file holds every
        image of the batch as base64: it is never held whole)."""
        answer = await self._call("GET", f"/files/{file_id}/content", stream=True)
        response = answer.response
        chunks = aiter_within(answer.deadline, response.aiter_bytes())
        try:
            with self.http._scrubbed():
                async for line in aiter_lines(self.http._aguarded(chunks, response.request.url)):
                    if line.strip():
                        yield line
        finally:
            await response.aclose()


# -- the state file -----------------------------------------------------------------------


def _load_state(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {"batches": []}
    return (
        data
        if isinstance(data, dict) and isinstance(data.get("batches"), list)
        else {"batches": []}
    )


def _save_state(folder: Path, state: Mapping[str, Any]) -> None:
    with atomic_write(folder / STATE_NAME) as handle:
        handle.write((json.dumps(state, indent=2) + "\n").encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())


# -- building the requests ----------------------------------------------------------------


def request_line(ctx: RunContext, item: Planned) -> bytes:
    """The input file line of one row (blocking: reads its images)."""
    call = prepare_row(ctx.client, item.row)
    line = {
        "custom_id": custom_id(item),
        "method": "POST",
        "url": _PATHS[call.endpoint],
        "body": json_body(call, inline_images=True),
    }
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def _request_lines(ctx: RunContext, items: list[Planned]) -> list[tuple[Planned, bytes]]:
    return [(item, request_line(ctx, item)) for item in items]


def _chunks(lines: list[tuple[Planned, bytes]]) -> list[list[tuple[Planned, bytes]]]:
    chunks: list[list[tuple[Planned, bytes]]] = [[]]
    size = 0
    for entry in lines:
        if chunks[-1] and (
            len(chunks[-1]) >= MAX_REQUESTS or size + len(entry[1]) > MAX_FILE_BYTES
        ):
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += len(entry[1])
    return [chunk for chunk in chunks if chunk]


# -- the run ------------------------------------------------------------------------------


async def _submit(
    api: BatchAPI, ctx: RunContext, state: dict[str, Any], todo: list[Planned], title: str
) -> None:
    by_endpoint: dict[str, list[Planned]] = {}
    for item in todo:
        by_endpoint.setdefault(item.row.endpoint, []).append(item)
    for endpoint, items in by_endpoint.items():
        lines = await anyio.to_thread.run_sync(_request_lines, ctx, items)
        for number, chunk in enumerate(_chunks(lines), start=1):
            if ctx.stopping:
                return
            name = f"imagegen-{title}-{endpoint}-{number}.jsonl"
            file_id = await api.upload(name, b"".join(line for _, line in chunk))
            entry: dict[str, Any] = {
                "id": None,
                "endpoint": _PATHS[endpoint],
                "input_file_id": file_id,
                "rows": {custom_id(item): item.row.number for item, _ in chunk},
                "collected": False,
            }
            state["batches"].append(entry)
            _save_state(ctx.out_dir, state)  # before creating: a crash now re-finds the batch
            batch = await api.create(file_id, _PATHS[endpoint], {"imagegen": title})
            entry["id"] = batch["id"]
            _save_state(ctx.out_dir, state)


def _result(item: Planned, response: Mapping[str, Any]) -> ImagesResult:
    body = response.get("body")
    parsed = ImagesResponse.model_validate(body)
    row = item.row
    model = row.params.get("model") or (body.get("model") if isinstance(body, dict) else None)
    return ImagesResult(
        parsed,
        model=model if isinstance(model, str) else None,
        prompt=row.prompt,
        request_id=response.get("request_id"),
        requested_size=row.params.get("size"),
    )


async def _collect_file(
    api: BatchAPI,
    ctx: RunContext,
    file_id: str,
    items: Mapping[str, Planned],
    batch_id: str,
    seen: set[str],
) -> None:
    async for raw in api.lines(file_id):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        key = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(key, str):
            continue
        item = items.get(key)
        if item is None or key in seen:
            continue  # another version of the row, or already recorded
        seen.add(key)
        response = line.get("response")
        error = line.get("error")
        status = response.get("status_code") if isinstance(response, dict) else None
        if status == 200 and isinstance(response, dict):
            try:
                result = _result(item, response)
            except ValueError as exc:
                await ctx.record_failure(
                    item, APIError(f"Unreadable result: {exc}"), attempts=1, batch_id=batch_id
                )
                continue
            await ctx.record_success(
                item, result, attempts=1, seconds=0.0, via="batch-api", batch_id=batch_id
            )
        elif isinstance(response, dict) and isinstance(status, int):
            failure: ImagegenError = make_status_error(
                status, response.get("body"), request_id=response.get("request_id")
            )
            await ctx.record_failure(item, failure, attempts=1, batch_id=batch_id)
        else:
            message = error.get("message") if isinstance(error, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            text = f"{message or 'The request was not run'}" + (f" ({code})" if code else "")
            await ctx.record_failure(item, APIError(text), attempts=1, batch_id=batch_id)


def _batch_errors(batch: Mapping[str, Any]) -> str:
    errors = batch.get("errors") or {}
    data = errors.get("data") if isinstance(errors, dict) else None
    shown = []
    for error in (data or [])[:3]:
        if isinstance(error, dict):
            where = f"line {error['line']}: " if error.get("line") else ""
            shown.append(f"{where}{error.get('message') or error.get('code')}")
    return "; ".join(shown) or "no reason given"


async def _poll(
    api: BatchAPI, ctx: RunContext, entry: dict[str, Any], poll_interval: float
) -> dict[str, Any] | None:
    """Wait for the batch to end; `None` if the run stops first."""
    delay = min(1.0, poll_interval)
    tracker = ctx.tracker
    while True:
        batch = await api.retrieve(entry["id"])
        counts = batch.get("request_counts") or {}
        status = str(batch.get("status"))
        tracker.phase = "polling"
        tracker.message = (
            f"batch {entry['id']} {status}: {counts.get('completed', 0)} of "
            f"{counts.get('total', len(entry['rows']))} completed, {counts.get('failed', 0)} failed"
        )
        tracker.changed()
        if status in TERMINAL:
            return batch
        if not await ctx.pause(delay):
            return None
        delay = min(delay * 2, poll_interval)


async def _reopen(
    api: BatchAPI, ctx: RunContext, state: dict[str, Any], title: str, force: bool
) -> list[dict[str, Any]]:
    """The batches a previous run left open: cancelled with `force`, else each with its id
    (a batch created but not recorded is found, one never created is created)."""
    open_entries = [entry for entry in state["batches"] if not entry.get("collected")]
    if force:
        for entry in open_entries:
            if entry.get("id"):
                await api.cancel(entry["id"])
            entry["collected"] = True
        _save_state(ctx.out_dir, state)
        return []
    for entry in open_entries:
        if entry.get("id") is None:  # killed between upload and create
            found = await api.find(entry["input_file_id"])
            if found is None:
                found = await api.create(
                    entry["input_file_id"], entry["endpoint"], {"imagegen": title}
                )
            entry["id"] = found["id"]
            _save_state(ctx.out_dir, state)
    return open_entries


async def _finish_batch(
    api: BatchAPI,
    ctx: RunContext,
    entry: dict[str, Any],
    batch: Mapping[str, Any],
    rows: dict[str, Planned],
) -> None:
    """Collect a finished batch's output and error files into the rows of `rows` it holds."""
    ctx.tracker.phase = "collecting"
    ctx.tracker.changed()
    seen: set[str] = set()
    mine = {key: rows[key] for key in entry["rows"] if key in rows}
    for name in ("output_file_id", "error_file_id"):
        if batch.get(name):
            await _collect_file(api, ctx, batch[name], mine, entry["id"], seen)
    if batch.get("status") == "failed":
        ctx.halt(
            ImagegenError(f"The Batch API refused batch {entry['id']}: {_batch_errors(batch)}.")
        )


async def run_batch_api(
    ctx: RunContext,
    planned: list[Planned],
    todo: list[Planned],
    *,
    title: str,
    poll_interval: float,
    force: bool,
) -> str | None:
    """Submit what is not done, wait for every open batch, collect; return the last batch id."""
    api = BatchAPI(ctx)
    state = _load_state(ctx.out_dir)
    wanted = {custom_id(item) for item in todo}
    rows = {key: item for item in planned if (key := custom_id(item)) in wanted}
    open_entries = await _reopen(api, ctx, state, title, force)
    submitted = {key for entry in open_entries for key in entry["rows"]}
    await _submit(
        api, ctx, state, [item for item in todo if custom_id(item) not in submitted], title
    )
    last: str | None = None
    for entry in [entry for entry in state["batches"] if not entry.get("collected")]:
        if ctx.stopping or entry.get("id") is None:
            break
        last = entry["id"]
        batch = await _poll(api, ctx, entry, poll_interval)
        if batch is None:
            break
        await _finish_batch(api, ctx, entry, batch, rows)
        entry["collected"] = True
        _save_state(ctx.out_dir, state)
    return last
