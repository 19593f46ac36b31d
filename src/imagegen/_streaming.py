"""Server-sent events of a streamed image request, parsed into the wire event models.

The format (WHATWG server-sent events, as OpenAI sends them): `event:` and `data:` lines, a blank
line ends one message, lines starting with `:` are comments. Like OpenAI's SDKs, the event name is
only informative: the `type` inside the JSON data decides. `data: [DONE]` ends the stream; a data
object with an `error` member raises the matching `APIStatusError`; event types this version does
not know are skipped, so a newer server does not break an older client.

Lines are split from the body's bytes here (`LineSplitter`), not by httpx2, so that a line, and
the data of one event, can be held to a limit while they are read: a server sending a 300 MB
line is cut off at the limit (one image in base64, see `Limits.max_event_size`) instead of
being buffered whole. Text from the server quoted in an error is scrubbed of the caller's
secrets (`StreamContext.secrets`).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._errors import (
    CONTENT_POLICY_CODES,
    APIResponseError,
    APIStatusError,
    make_status_error,
    redact,
)
from ._models import WireEvent, parse_stream_event

__all__ = [
    "LineSplitter",
    "SSEDecoder",
    "SSEMessage",
    "StreamContext",
    "aiter_events",
    "aiter_lines",
    "embedded_error",
    "iter_events",
    "iter_lines",
]


@dataclass
class SSEMessage:
    event: str | None
    data: str


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _too_long(limit: int) -> APIResponseError:
    return APIResponseError(
        f"The server sent a stream event of more than {limit / 2**20:.0f} MiB, more than one "
        "image takes; raise max_image_size (--max-image-mb) if its images are that large."
    )


class LineSplitter:
    """Bytes in, lines out (without their ending: `\r\n`, `\n` or `\r`, as SSE allows), none
    longer than `limit` bytes (`None`: no limit). Only the unfinished line is buffered."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._line = bytearray()
        self._after_cr = False

    def _add(self, part: bytes) -> None:
        self._line += part
        if self._limit is not None and len(self._line) > self._limit:
            self._line = bytearray()
            raise _too_long(self._limit)

    def _take(self, part: bytes) -> str:
        self._add(part)
        line = self._line.decode("utf-8", "replace")
        self._line = bytearray()
        return line

    def feed(self, chunk: bytes) -> list[str]:
        if not chunk:
            return []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the second half of a `\r\n` split between two chunks
        self._after_cr = chunk.endswith(b"\r")
        if not chunk:
            return []
        parts = _LINE_END.split(chunk)
        lines = [self._take(part) for part in parts[:-1]]
        self._add(parts[-1])
        return lines

    def flush(self) -> list[str]:
        return [self._take(b"")] if self._line else []


def iter_lines(chunks: Iterable[bytes], limit: int | None = None) -> Iterator[str]:
    """The lines of a body read as `chunks`, each at most `limit` bytes."""
    splitter = LineSplitter(limit)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.flush()


async def aiter_lines(chunks: AsyncIterable[bytes], limit: int | None = None) -> AsyncIterator[str]:
    """`iter_lines` for `AsyncClient`."""
    splitter = LineSplitter(limit)
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line
    for line in splitter.flush():
        yield line


@dataclass
class SSEDecoder:
    """Feed lines (without their line ending); get a message at each blank line. The data of
    one message is held to `limit` characters (`None`: no limit)."""

    limit: int | None = None
    _event: str | None = None
    _data: list[str] = field(default_factory=list)
    _size: int = 0

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
            self._size += len(value) + 1
            if self.limit is not None and self._size > self.limit:
                self._data, self._size = [], 0
                raise _too_long(self.limit)
            self._data.append(value)
        # `id:` and `retry:` mean nothing for image streams.
        return None

    def flush(self) -> SSEMessage | None:
        message = None
        if self._data:
            message = SSEMessage(self._event, "\n".join(self._data))
        self._event, self._data, self._size = None, [], 0
        return message


@dataclass(frozen=True)
class StreamContext:
    """What an error raised mid-stream reports."""

    request_id: str | None = None
    secrets: tuple[str, ...] = ()
    limit: int | None = None  # the largest event read, in bytes


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
        snippet = redact(message.data[:200], *context.secrets)
        raise APIResponseError(
            f"The server sent a stream event that is not JSON: {snippet!r}",
            request_id=context.request_id,
        ) from None
    if isinstance(data, dict) and data.get("error"):
        raise embedded_error(data, context)
    try:
        return parse_stream_event(data)
    except ValueError as exc:
        detail = redact(f"{data.get('type')!r} event: {exc}", *context.secrets)
        raise APIResponseError(
            f"The server sent a malformed {detail}", request_id=context.request_id
        ) from None


class _Reader:
    """SSE lines in, wire events out, until `data: [DONE]` (`done`)."""

    def __init__(self, context: StreamContext) -> None:
        self.context = context
        self.decoder = SSEDecoder(context.limit)
        self.done = False

    def _events(self, message: SSEMessage | None) -> list[WireEvent]:
        if message is None or self.done:
            return []
        try:
            event = _decode(message, self.context)
        except _Done:
            self.done = True
            return []
        return [] if event is None else [event]

    def feed(self, line: str) -> list[WireEvent]:
        return self._events(self.decoder.feed(line))

    def end(self) -> list[WireEvent]:
        return self._events(self.decoder.flush())


def iter_events(lines: Iterable[str], context: StreamContext) -> Iterator[WireEvent]:
    """Wire events from the lines of an SSE body."""
    reader = _Reader(context)
    for line in lines:
        yield from reader.feed(line)
        if reader.done:
            return
    yield from reader.end()


async def aiter_events(
    lines: AsyncIterable[str], context: StreamContext
) -> AsyncIterator[WireEvent]:
    """`iter_events` for `AsyncClient`."""
    reader = _Reader(context)
    async for line in lines:
        for event in reader.feed(line):
            yield event
        if reader.done:
            return
    for event in reader.end():
        yield event
