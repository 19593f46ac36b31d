"""What carries a checked `Call` to where images are made, and what it brings back.

A transport sends a call and returns a `Reply` (a whole answer), or opens a stream of wire
events (`Events`). Two kinds exist: `HTTPTransport` (`_http`), to a server at a base URL, and
`EngineTransport` (`_inprocess`), to an engine in this process; `AsyncHTTPTransport` and
`AsyncEngineTransport` are their `AsyncClient` forms. A client picks one when it is made and
never asks again which kind it holds: results are built from a reply the same way whatever
brought it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ._models import ImagesResponse, WireEvent
from ._records import record
from ._request import Call, Target

if TYPE_CHECKING:
    from ._results import Downloader

__all__ = ["AsyncTransport", "Events", "Reply", "Transport"]

_Iterator = TypeVar("_Iterator", Iterator[WireEvent], AsyncIterator[WireEvent])


@record()
class Reply:
    """A whole answer: the wire response, and what a result needs beside it."""

    response: ImagesResponse
    model: str | None  # what was asked for, or what an engine chose for a call naming none
    headers: Mapping[str, str] = field(default_factory=dict)  # the HTTP answer's
    # An engine's images as it encoded them, which the response then leaves out: they are
    # never turned into base64 and back for a caller in the same process.
    images: list[bytes] | None = None
    downloader: Downloader | None = None  # fetches URL results with the client's settings


@record()
class Events(Generic[_Iterator]):
    """An open stream: its events as they arrive, and how to stop reading early."""

    events: _Iterator
    close: Callable[[], Any]
    model: str | None
    request_id: str | None = None


class Transport(Protocol):
    """A `Client`'s transport."""

    @property
    def target(self) -> Target:
        """What calls are checked by before they are sent (`prepare_call`)."""
        ...

    def check(self, call: Call) -> None:
        """Whatever check of `call` is left to the receiving side, made now (the Batch API's
        rows are checked before any is sent)."""

    def send(self, call: Call) -> Reply: ...

    def stream(self, call: Call) -> Events[Iterator[WireEvent]]: ...

    def close(self) -> None: ...


class AsyncTransport(Protocol):
    """An `AsyncClient`'s transport: `Transport` with `send`, `stream` and `close` awaited."""

    @property
    def target(self) -> Target: ...

    def check(self, call: Call) -> None: ...

    async def send(self, call: Call) -> Reply: ...

    async def stream(self, call: Call) -> Events[AsyncIterator[WireEvent]]: ...

    async def aclose(self) -> None: ...
