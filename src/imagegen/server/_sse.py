"""`stream=true`: OpenAI's server-sent events, written as the engine produces them.

`ImageService.stream` is a blocking generator (the engine runs in its own thread and hands
partial images over a queue); each `next()` runs in a worker thread so the event loop keeps
serving other requests. If the client goes away mid-stream, the rest of the job is drained
before the engine slot is given back: the engine is still busy until it finishes, and the
concurrency limit must stay true.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .._errors import InvalidRequestError
from .._models import WireModel
from .._service import ImageService
from ..engines import Job
from ._errors import error_body, internal_error_message
from ._limits import Ticket

__all__ = ["EventStreamResponse", "encode_event", "stream_job"]

logger = logging.getLogger("imagegen.server")


def _frame(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def encode_event(event: WireModel) -> bytes:
    data = event.model_dump(exclude_none=True)
    return _frame(str(data["type"]), data)


def _error_frame(message: str, *, type: str, param: str | None, code: str | None) -> bytes:
    # The official SDK raises APIError for any data object with a truthy "error" key.
    body = error_body(message, type=type, param=param, code=code)
    return _frame("error", {"type": "error", **body})


def _next_frame(events: Iterator[WireModel]) -> bytes | None:
    # Serializing an event copies its base64 image twice (dump, then JSON): 9 ms for a
    # 1024x1024 PNG, 60 ms at 3840x2160, so it runs here, off the event loop, with `next`.
    event = next(events, None)
    return None if event is None else encode_event(event)


def _drain(events: Iterator[Any]) -> None:
    try:
        for _ in events:
            pass
    except Exception:  # already reported to the client, or the client is gone
        pass


async def stream_job(
    service: ImageService, job: Job, ticket: Ticket, request_id: str
) -> AsyncGenerator[bytes, None]:
    async with ticket.engine():
        events = service.stream(job)
        finished = False
        try:
            while True:
                frame = await anyio.to_thread.run_sync(_next_frame, events)
                if frame is None:
                    finished = True
                    break
                yield frame
        except InvalidRequestError as exc:
            finished = True
            yield _error_frame(
                exc.message, type="invalid_request_error", param=exc.param, code=exc.code
            )
        except Exception as exc:  # the engine (or encoding its output) failed
            finished = True
            logger.error(
                "request %s failed: %s: %s", request_id, type(exc).__name__, exc, exc_info=exc
            )
            yield _error_frame(
                internal_error_message(request_id), type="server_error", param=None, code=None
            )
        finally:
            if not finished:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_drain, events)


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` answer that gives its queue ticket back however it ends."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[bytes, None], ticket: Ticket) -> None:
        super().__init__(
            events,
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
        self._events = events
        self._ticket = ticket

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()
            self._ticket.close()
