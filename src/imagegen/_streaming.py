"""Server-sent events of a streamed image request, parsed into the wire event models.

The format (WHATWG server-sent events, as OpenAI sends them): `event:` and `data:` lines, a blank
line ends one message, lines starting with `:` are comments. Like OpenAI's SDKs, the event name is
only informative: the `type` inside the JSON data decides. `data: [DONE]` ends the stream; a data
object with an `error` member raises the matching `APIStatusError`; event types this version does
not know are skipped, so a newer server does not break an older client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._errors import CONTENT_POLICY_CODES, APIResponseError, APIStatusError, make_status_error
from ._models import CompletedEvent, PartialImageEvent, parse_stream_event

__all__ = [
    "SSEDecoder",
    "SSEMessage",
    "StreamContext",
    "WireEvent",
    "aiter_events",
    "embedded_error",
    "iter_events",
]

WireEvent = PartialImageEvent | CompletedEvent


@dataclass
class SSEMessage:
    event: str | None
    data: str


@dataclass
class SSEDecoder:
    """Feed lines (without their line ending); get a message at each blank line."""

    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SSEMessage | None:
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        # `id:` and `retry:` mean nothing for image streams.
        return None

    def flush(self) -> SSEMessage | None:
        message = None
        if self._data:
            message = SSEMessage(self._event, "\n".join(self._data))
        self._event, self._data = None, []
        return message


@dataclass(frozen=True)
class StreamContext:
    """What an error raised mid-stream reports."""

    request_id: str | None = None
    secrets: tuple[str, ...] = ()


class _Done(Exception):
    pass


def embedded_error(data: dict[str, Any], context: StreamContext) -> APIStatusError:
    """The error a 200 answer carries in its body (`{"error": {...}}`), as an exception."""
    error = data["error"]
    details = error if isinstance(error, dict) else {"message": str(error)}
    # The HTTP status said success; pick the class the error itself implies.
    status = details.get("status") or details.get("status_code")
    if not isinstance(status, int) or status < 400:
        user_error = details.get("code") in CONTENT_POLICY_CODES or details.get("type") in (
            "image_generation_user_error",
            "invalid_request_error",
        )
        status = 400 if user_error else 500
    if not details.get("message"):
        details = {**details, "message": "An error occurred during streaming."}
    return make_status_error(
        status,
        {"error": details},
        request_id=context.request_id,
        secrets=context.secrets,
    )


def _decode(message: SSEMessage, context: StreamContext) -> WireEvent | None:
    if message.data.strip() == "[DONE]":
        raise _Done
    try:
        data = json.loads(message.data)
    except ValueError:
        raise APIResponseError(
            f"The server sent a stream event that is not JSON: {message.data[:200]!r}",
            request_id=context.request_id,
        ) from None
    if isinstance(data, dict) and data.get("error"):
        raise embedded_error(data, context)
    try:
        return parse_stream_event(data)
    except ValueError as exc:
        raise APIResponseError(
            f"The server sent a malformed {data.get('type')!r} event: {exc}",
            request_id=context.request_id,
        ) from None


def iter_events(lines: Iterable[str], context: StreamContext) -> Iterator[WireEvent]:
    """Wire events from the lines of an SSE body."""
    decoder = SSEDecoder()
    try:
        for line in lines:
            message = decoder.feed(line)
            if message is not None and (event := _decode(message, context)) is not None:
                yield event
        message = decoder.flush()
        if message is not None and (event := _decode(message, context)) is not None:
            yield event
    except _Done:
        return


async def aiter_events(
    lines: AsyncIterable[str], context: StreamContext
) -> AsyncIterator[WireEvent]:
    """Wire events from the lines of an SSE body, for `AsyncClient`."""
    decoder = SSEDecoder()
    try:
        async for line in lines:
            message = decoder.feed(line)
            if message is not None and (event := _decode(message, context)) is not None:
                yield event
        message = decoder.flush()
        if message is not None and (event := _decode(message, context)) is not None:
            yield event
    except _Done:
        return
