"""uvicorn's HTTP/1.1 protocol (h11) with what it lacks against hostile clients.

uvicorn has no deadline for a request's headers: its keep-alive timer only runs between
requests and is reset by every byte, so a client that sends a header a byte at a time, or
nothing at all, holds its connection forever, and enough of them exhaust the server. Here:

- **A header deadline.** From the moment a connection waits for a request (it opened, or its
  previous answer was sent) the headers must be complete within `header_timeout` seconds, in
  total: bytes that trickle in do not extend it. Then the connection gets a 408 and is closed.
- **A connection cap.** Past `max_connections` open connections, the one that has waited
  longest for its headers (slow or idle: the cheapest to lose) is closed to make room; when
  every connection is busy with a request, the newcomer gets a 503 with `Retry-After`
  instead. A flood of slow connections thus delays nobody who sends a request at once.
- **No lingering.** A connection whose answer went out before its body was read (a 401, a
  413...) is closed, instead of swallowing whatever the client keeps sending.

The deadline of the body itself is the app's (`BodyLimitMiddleware`). Settings come from the
app's `ServerSettings` (read from the lifespan state), so `uvicorn --http
imagegen.server:HTTPProtocol` gives any ASGI deployment of `create_app` the same guards.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import weakref
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState as UvicornState

from ._errors import error_body
from ._settings import ServerSettings
from ._state import state_of

__all__ = ["HTTPProtocol"]

logger = logging.getLogger("imagegen.server")

# Per uvicorn server, the connections waiting for a request's headers, oldest first.
_WAITING: weakref.WeakKeyDictionary[UvicornState, dict[HTTPProtocol, None]] = (
    weakref.WeakKeyDictionary()
)


@functools.cache
def _default_settings() -> ServerSettings:
    return ServerSettings()


def _raw_error(status: int, message: str, *, code: str, retry_after: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer in OpenAI's error shape, for a connection about to be closed
    (h11 cannot answer a request whose headers never came)."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = json.dumps(error_body(message, type=kind, code=code)).encode()
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class HTTPProtocol(H11Protocol):
    """`H11Protocol` with a header deadline, a connection cap and no lingering (see the module
    docstring). Pass it to uvicorn as `http=HTTPProtocol`."""

    def __init__(
        self,
        config: Config,
        server_state: UvicornState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._partial = False  # bytes of the awaited request have come
        self._waiting = _WAITING.setdefault(server_state, {})

    def _settings(self) -> ServerSettings:
        state = state_of(self.app_state)
        return state.settings if state is not None else _default_settings()

    # -- waiting for a request's headers ------------------------------------------------------

    def _await_request(self) -> None:
        self._forget()
        self._partial = False
        self._waiting[self] = None
        timeout = self._settings().header_timeout
        self._deadline = self.loop.call_later(timeout, self._headers_late, timeout)

    def _forget(self) -> None:
        self._waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_late(self, timeout: float) -> None:
        self._deadline = None
        if self._partial:
            logger.warning(
                "closed a connection from %s: its request headers did not arrive within %g s",
                self._peer(),
                timeout,
            )
        self._close(
            408,
            f"The request headers did not arrive in time: the server allows {timeout:g} seconds.",
            code="request_timeout",
        )

    def _close(
        self, status: int, message: str, *, code: str, retry_after: int | None = None
    ) -> None:
        """Answer `status` if a request had begun (or a refusal is due), then close."""
        self._forget()
        if self.transport.is_closing():
            return
        self.connections.discard(self)  # no longer counted against the cap (gone next tick)
        if self._partial or status == 503:
            self.transport.write(_raw_error(status, message, code=code, retry_after=retry_after))
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "-"

    # -- uvicorn's hooks -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_request()
        cap = self._settings().max_connections
        if len(self.connections) <= cap:
            return
        oldest = next(iter(self._waiting))
        if oldest is not self:
            logger.warning(
                "closed a connection from %s that was waiting for its request: %d connections "
                "are open, the most allowed",
                oldest._peer(),
                cap,
            )
            oldest._close(
                408,
                "The connection was closed to make room for others: its request did not come "
                "in time, and the server has as many connections open as it allows.",
                code="request_timeout",
            )
        else:
            logger.warning(
                "refused a connection from %s: %d connections are open and busy, the most allowed",
                self._peer(),
                cap,
            )
            self._close(
                503,
                f"The server has {cap} connections open, the most it allows. Retry shortly.",
                code="too_many_connections",
                retry_after=1,
            )

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        if self._deadline is not None:
            self._partial = True
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers are complete
            self._forget()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        if self.transport.is_closing():
            self._forget()
        elif self.conn.their_state is h11.SEND_BODY:
            # Answered before its body was read: close rather than read (and drop) the rest.
            self._forget()
            self.transport.close()
        elif self.cycle is cycle:  # no pipelined request already under way
            self._await_request()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._forget()
        super().handle_websocket_upgrade(event)
