"""What the client lets its sockets do: finish by a deadline, and connect only where allowed.

**Deadlines.** httpx2's timeouts are per operation (at most N seconds to connect, N seconds
between two reads), so a server that sends one byte a second never times out. The client's
`timeout` is a total instead: each attempt (connecting, sending, reading the whole answer, or
the whole stream) must end within it, and a call, its retries and the waits between them
included, within `(max_retries + 1) × timeout`. A `Deadline` is the moment a limit runs out;
the one in force is held in a context variable, so that calls made at the same time in
threads or tasks each have their own.

It is enforced under httpx2, in the network backend of the connection pools of every client
imagegen builds (`install`): each connect, read and write gets at most the time left, and one
that starts after the deadline fails at once, as a read that timed out. A server trickling
bytes is cut off when the deadline passes, not after the trickle ends. A caller's own
`http_client` keeps its backend; there each request is given the time left as its httpx2
timeouts, and the deadline is checked between chunks of the body, which bounds a trickled body
but not a trickled status line.

**Addresses.** While a URL result is downloaded a `Reach` (see `_downloads`) is in force too:
the address each new connection actually reached must be one it allows, which closes the gap
between checking a host name's addresses and connecting to one of them (DNS rebinding).
Connections through a proxy are not checked here: the proxy, not this client, connects to the
target (whose addresses `_downloads` checks before sending).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpcore2
import httpx2

from ._config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT
from ._errors import ConfigurationError
from ._types import NotGiven

__all__ = [
    "Deadline",
    "Reach",
    "aiter_within",
    "install",
    "iter_within",
    "make_timeout",
    "within",
]

_T = TypeVar("_T")


def make_timeout(value: Any) -> httpx2.Timeout:
    """The client's timeout from the caller's value.

    Not given: 600 s for each attempt, 10 s of them to connect. `None` or `0`: no limit (as the
    seeds' `TimeoutSec 0`); connecting still gives up after 10 s, since a dead host or proxy
    never answers. A number: that many seconds. An `httpx2.Timeout` is used as it is, its
    `read` value also bounding each attempt as a whole.
    """
    if isinstance(value, NotGiven):
        return httpx2.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
    if isinstance(value, httpx2.Timeout):
        return value
    if value is None or (isinstance(value, (int, float)) and value == 0):
        return httpx2.Timeout(None, connect=DEFAULT_CONNECT_TIMEOUT)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or not math.isfinite(value)
    ):
        raise ConfigurationError(
            f"Invalid timeout {value!r}: give seconds as a positive number, or 0 / None for no "
            "limit (--timeout)."
        )
    seconds = float(value)
    return httpx2.Timeout(seconds, connect=min(DEFAULT_CONNECT_TIMEOUT, seconds))


@dataclass(frozen=True)
class Deadline:
    """The moment (on `time.monotonic`'s clock) a limit of `seconds` runs out."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float | None, *, within: Deadline | None = None) -> Deadline | None:
        """A deadline `seconds` from now (`None`: no limit), never later than `within`."""
        if seconds is None:
            return within
        own = cls(seconds, time.monotonic() + seconds)
        return own if within is None or own.at <= within.at else within

    def left(self) -> float:
        return self.at - time.monotonic()

    def check(self) -> None:
        """Raise httpx2's `ReadTimeout` if the deadline has passed (between chunks)."""
        if self.left() <= 0:
            raise httpx2.ReadTimeout(self.reason())

    def reason(self) -> str:
        return f"the {self.seconds:g} s timeout ran out"


class Reach(Protocol):
    """Where a download may connect (`_downloads.Reach`)."""

    def allows(self, address: str) -> bool: ...

    def refused(self, address: str) -> Exception: ...


_DEADLINE: ContextVar[Deadline | None] = ContextVar("imagegen_deadline", default=None)
_REACH: ContextVar[Reach | None] = ContextVar("imagegen_reach", default=None)


@contextlib.contextmanager
def within(deadline: Deadline | None, reach: Reach | None = None) -> Iterator[None]:
    """Run the block under `deadline` (and, for a download, `reach`)."""
    token = _DEADLINE.set(deadline)
    reach_token = _REACH.set(reach)
    try:
        yield
    finally:
        _REACH.reset(reach_token)
        _DEADLINE.reset(token)


def iter_within(deadline: Deadline | None, items: Iterator[_T]) -> Iterator[_T]:
    """`items`, each one read under `deadline`. The deadline is set around each step only, so
    nothing leaks into the caller's code between steps (a stream read in a loop)."""
    while True:
        with within(deadline):
            if deadline is not None:
                deadline.check()
            try:
                item = next(items)
            except StopIteration:
                return
        yield item


async def aiter_within(deadline: Deadline | None, items: AsyncIterator[_T]) -> AsyncIterator[_T]:
    """`iter_within` for async iterators."""
    while True:
        with within(deadline):
            if deadline is not None:
                deadline.check()
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
        yield item


def _time_left(timeout: float | None, exc: type[Exception]) -> float | None:
    """`timeout` for one socket operation, cut to the time left; `exc` once none is left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline.left()
    if left <= 0:
        raise exc(deadline.reason())
    return left if timeout is None else min(timeout, left)


def _check_peer(stream: Any, close: Any) -> None:
    reach = _REACH.get()
    if reach is None:
        return
    peer = stream.get_extra_info("server_addr")
    address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    if not reach.allows(address):
        close()
        raise reach.refused(address)


class _Stream(httpcore2.NetworkStream):
    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend, *, check_peer: bool) -> None:
        self._inner = inner
        self._check_peer = check_peer

    # Options beyond the timeout (local address, socket options) pass through as they came.
    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *args: Any, **options: Any
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, *args, **options)
        if self._check_peer:
            _check_peer(stream, stream.close)
        return _Stream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, *args: Any, **options: Any
    ) -> httpcore2.NetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, *args, **options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _AsyncStream(httpcore2.AsyncNetworkStream):
    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, _time_left(timeout, httpcore2.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, _time_left(timeout, httpcore2.WriteTimeout))

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncBackend(httpcore2.AsyncNetworkBackend):
    # Downloads are synchronous (see `AsyncHTTPTransport.downloader`): no address check here.
    def __init__(self, inner: httpcore2.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *args: Any, **options: Any
    ) -> httpcore2.AsyncNetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.connect_tcp(host, port, left, *args, **options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, *args: Any, **options: Any
    ) -> httpcore2.AsyncNetworkStream:
        left = _time_left(timeout, httpcore2.ConnectTimeout)
        return _AsyncStream(await self._inner.connect_unix_socket(path, left, *args, **options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def install(client: httpx2.Client | httpx2.AsyncClient) -> bool:
    """Put the deadline (and address) checks under every connection pool of `client`, a client
    imagegen built; return whether every pool got them.

    httpx2 has no public way to choose a pool's network backend, so this reaches for the
    attributes it keeps them in (`Client._transport`, `_mounts`, `HTTPTransport._pool`,
    `ConnectionPool._network_backend`). If a release moves them, requests still work and
    deadlines fall back to per-operation timeouts checked between chunks; a test of this
    package fails so that the move is noticed.
    """
    transports = [getattr(client, "_transport", None)]
    transports += list(getattr(client, "_mounts", {}).values())
    complete = True
    for transport in transports:
        if transport is None:  # a NO_PROXY mount: the default transport serves it
            continue
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is None:
            complete = False
            continue
        if isinstance(backend, (_Backend, _AsyncBackend)):
            continue
        proxied = "Proxy" in type(pool).__name__  # HTTPProxy, SOCKSProxy and their async twins
        if isinstance(backend, httpcore2.AsyncNetworkBackend):
            pool._network_backend = _AsyncBackend(backend)  # type: ignore[union-attr]
        else:
            pool._network_backend = _Backend(backend, check_peer=not proxied)  # type: ignore[union-attr]
    return complete
