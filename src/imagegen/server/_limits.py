"""Limits in front of the engine: request body size, and a bounded queue with a concurrency cap.

Body size is enforced while the body streams in (a `Content-Length` that is already too large
is refused before a byte is read), so an oversized upload never fills memory or disk.

The queue admits at most `max_concurrency + max_queue` requests at once; `max_concurrency`
of them run the engine, the others wait in arrival order. One more gets a 429 with a
`Retry-After` estimated from recent engine times (at most 120 s, the longest the official SDK
honours before it gives up retrying).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._capabilities import MB
from ._errors import HTTPError, error_response, shown_path

__all__ = ["BodyLimitMiddleware", "EngineGate", "Ticket"]


def _describe(limit: int) -> str:
    return f"{limit / MB:.1f} MB" if limit >= MB else f"{limit / 1024:.0f} KB"


def _too_large(scope: Scope, limit: int) -> HTTPError:
    return HTTPError(
        413,
        f"The request body is too large: {scope.get('method')} {shown_path(scope)} accepts at "
        f"most {_describe(limit)}.",
        code="request_too_large",
    )


class BodyLimitMiddleware:
    """Refuses bodies larger than `limit_for(scope)` bytes with a 413, and bodies that stop
    arriving for `chunk_timeout` seconds with a 408 (a stalled upload must not hold a place
    in the queue forever)."""

    def __init__(
        self, app: ASGIApp, *, limit_for: Callable[[Scope], int], chunk_timeout: float
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.chunk_timeout = chunk_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                error = _too_large(scope, limit)
                response = error_response(413, error.message, code=error.code)
                await response(scope, receive, send)
                return
        received = 0
        complete = False

        async def limited_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body only a disconnect can come; no deadline for that
                return await receive()
            try:
                with anyio.fail_after(self.chunk_timeout):
                    message = await receive()
            except TimeoutError:
                raise HTTPError(
                    408,
                    f"The request body stopped arriving: nothing came for "
                    f"{self.chunk_timeout:g} seconds.",
                    code="request_timeout",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise _too_large(scope, limit)
            return message

        await self.app(scope, limited_receive, send)


class Ticket:
    """One admitted request's place in the queue; `close()` gives it back (idempotent)."""

    def __init__(self, gate: EngineGate) -> None:
        self._gate = gate
        self._closed = False

    @asynccontextmanager
    async def engine(self) -> AsyncIterator[None]:
        """Hold one of the engine's `max_concurrency` slots, waiting in line for it."""
        gate = self._gate
        async with gate.semaphore:
            gate.running += 1
            start = time.perf_counter()
            try:
                yield
            finally:
                gate.running -= 1
                gate.record(time.perf_counter() - start)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._gate.admitted -= 1


class EngineGate:
    """The bounded queue. Create it inside the running event loop (in the lifespan)."""

    def __init__(self, *, concurrency: int, max_queue: int) -> None:
        self.concurrency = concurrency
        self.max_queue = max_queue
        self.semaphore = anyio.Semaphore(concurrency)
        self.admitted = 0
        self.running = 0
        self._average = 1.0  # seconds per engine job, smoothed; a guess until the first one ends

    @property
    def waiting(self) -> int:
        return max(0, self.admitted - self.running)

    def record(self, seconds: float) -> None:
        self._average = 0.8 * self._average + 0.2 * seconds

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the queue ahead, divided among the slots."""
        ahead = max(0, self.admitted - self.concurrency) + 1
        estimate = self._average * ahead / self.concurrency
        return max(1, min(120, math.ceil(estimate)))

    def admit(self) -> Ticket:
        """A place in the queue, or a 429 when it is full."""
        if self.admitted >= self.concurrency + self.max_queue:
            seconds = self.retry_after()
            raise HTTPError(
                429,
                f"The server is busy: {self.running} request(s) are running and "
                f"{self.waiting} waiting, the most it accepts. Retry after {seconds} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers={"retry-after": str(seconds)},
            )
        self.admitted += 1
        return Ticket(self)
