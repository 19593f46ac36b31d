"""Limits in front of the engine: request bodies (size, deadline, a server-wide byte budget),
decoded pixels (a server-wide budget) and a bounded queue with a concurrency cap.

Bodies are checked while they stream in: a `Content-Length` that is already too large, or that
does not fit in the bytes still free server-wide, is refused before a byte is read, and a body
must arrive within one deadline for the whole of it (`body_timeout`, plus a second for every
`min_upload_rate` bytes received), so a body trickled a byte at a time is cut off at the deadline
whatever the pace of its bytes.

A request takes a place in the queue only once its body is in and has been read (an upload in
progress holds bytes of the budget, never a place), then waits for its input pixels to fit in
the pixel budget before they are decoded, then for one of the engine's slots. The queue admits
at most `max_concurrency + max_queue` requests at once; one more gets a 429 with a
`Retry-After` estimated from recent engine times (at most 120 s, the longest the official SDK
honours before it gives up retrying).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._capabilities import MB
from ._errors import HTTPError, error_response, shown_path

__all__ = ["BodyBudget", "BodyLimitMiddleware", "EngineGate", "PixelBudget", "Ticket"]


def describe_bytes(size: int) -> str:
    if size >= 1024 * MB:
        return f"{size / (1024 * MB):.1f} GB"
    return f"{size / MB:.1f} MB" if size >= MB else f"{size / 1024:.0f} KB"


def _too_large(scope: Scope, limit: int) -> HTTPError:
    return HTTPError(
        413,
        f"The request body is too large: {scope.get('method')} {shown_path(scope)} accepts at "
        f"most {describe_bytes(limit)}.",
        code="request_too_large",
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyBudget:
    """Bytes of request bodies the server holds at once, from their first byte to the answer.

    `take` either fits now or fails: a body that does not fit is refused at once (429), never
    left waiting with its connection open."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.total:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        self.used -= size


class BodyLimitMiddleware:
    """Refuses bodies larger than `limit_for(scope)` bytes with a 413, bodies that do not fit in
    `budget` with a 429, and bodies that do not arrive in time with a 408. `retry_after(scope)`
    is the delay a 429 suggests."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit_for: Callable[[Scope], int],
        budget: BodyBudget,
        timeout: float,
        min_rate: int,
        retry_after: Callable[[Scope], int],
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.budget = budget
        self.timeout = timeout
        self.min_rate = min_rate
        self.retry_after = retry_after

    def _busy(self, scope: Scope, size: int) -> HTTPError:
        seconds = self.retry_after(scope)
        return HTTPError(
            429,
            f"The server is busy: the request bodies it holds take "
            f"{describe_bytes(self.budget.used)} of the {describe_bytes(self.budget.total)} it "
            f"holds at once, and this one needs {describe_bytes(size)}. Retry after {seconds} s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": str(seconds)},
        )

    def _late(self, received: int, started: float) -> HTTPError:
        return HTTPError(
            408,
            f"The request body did not arrive in time: {received:,} bytes in "
            f"{time.monotonic() - started:.0f} seconds (the server allows {self.timeout:g} s, "
            f"plus 1 s for every {describe_bytes(self.min_rate)} received).",
            code="request_timeout",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = min(self.limit_for(scope), self.budget.total)
        declared = _content_length(scope)
        early: HTTPError | None = None
        if declared is not None and declared > limit:
            early = _too_large(scope, limit)
        elif declared and not self.budget.take(declared):
            early = self._busy(scope, declared)
        if early is not None:
            response = error_response(
                early.status_code,
                early.message,
                type=early.type,
                code=early.code,
                headers=early.headers,
            )
            await response(scope, receive, send)
            return
        reserved = declared or 0
        received = 0
        complete = False
        started = time.monotonic()

        async def limited_receive() -> Message:
            nonlocal received, reserved, complete
            if complete:  # after the body only a disconnect can come; no deadline for that
                return await receive()
            allowed = self.timeout + (received / self.min_rate if self.min_rate else 0.0)
            remaining = started + allowed - time.monotonic()
            message: Message | None = None
            if remaining > 0:
                with anyio.move_on_after(remaining):
                    message = await receive()
            if message is None:
                raise self._late(received, started)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > limit:
                    raise _too_large(scope, limit)
                if received > reserved:  # a body without Content-Length, or a longer one
                    if not self.budget.take(received - reserved):
                        raise self._busy(scope, received)
                    reserved = received
            return message

        try:
            await self.app(scope, limited_receive, send)
        finally:
            self.budget.give(reserved)


class PixelBudget:
    """Decoded input pixels held at once, server-wide. Requests wait for their share in
    arrival order, so a large request is not passed over forever by small ones."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting: deque[tuple[int, anyio.Event]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def take(self, pixels: int) -> int:
        """Wait until `pixels` (at most the whole budget) fit; return what was taken."""
        pixels = min(pixels, self.total)
        if not self._waiting and self.used + pixels <= self.total:
            self.used += pixels
            return pixels
        entry = (pixels, anyio.Event())
        self._waiting.append(entry)
        try:
            await entry[1].wait()
        except BaseException:
            if entry in self._waiting:
                self._waiting.remove(entry)
                self._wake()  # those behind it may fit now
            else:  # granted just as it was cancelled
                self.give(pixels)
            raise
        return pixels

    def give(self, pixels: int) -> None:
        self.used -= pixels
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self.used + self._waiting[0][0] <= self.total:
            pixels, event = self._waiting.popleft()
            self.used += pixels
            event.set()


class Ticket:
    """One admitted request's place in the queue, and the pixels it holds; `close()` gives both
    back (idempotent)."""

    def __init__(self, gate: EngineGate) -> None:
        self._gate = gate
        self._closed = False
        self._pixels: tuple[PixelBudget, int] | None = None

    async def hold_pixels(self, budget: PixelBudget, pixels: int) -> None:
        """Wait until this request's decoded input pixels fit in `budget`; held until `close`."""
        if pixels > 0 and self._pixels is None:
            self._pixels = (budget, await budget.take(pixels))

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
            if self._pixels is not None:
                budget, pixels = self._pixels
                budget.give(pixels)


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

    def check(self) -> None:
        """A 429 now if the queue is full, so a client learns it before sending its body."""
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

    def admit(self) -> Ticket:
        """A place in the queue, or a 429 when it is full."""
        self.check()
        self.admitted += 1
        return Ticket(self)
