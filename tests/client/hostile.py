"""A hostile HTTP server for the client tests: raw sockets on 127.0.0.1, answers byte by byte.

`HostileServer(handler)` accepts connections in a thread; for each request it reads the head
and body, then calls `handler(request, send)`, where `send(data)` writes to the socket and
returns False once the client has gone (or the server is stopping). Handlers write whatever
bytes they like, as slowly as they like: a status line trickled a byte at a time, a body that
never ends, a 300 MB line. Leaving the `with` block stops the server and every handler.

`finishes_within(seconds, fn)` runs `fn` and fails the test if it has not returned by then: a
bound that only a hang reaches, never a timing assertion.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
Send = Callable[[bytes], bool]


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class HostileServer:
    handler: Callable[[Request, Send], None]
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _conns: list[socket.socket] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def __enter__(self) -> HostileServer:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._start(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=20)
        self._listener.close()

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.2)
            buffer = b""
            while not self._stop.is_set():
                request, buffer = _read_request(conn, buffer, self._stop)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(request, lambda data: self._send(conn, data))
                if request.headers.get("connection", "").lower() == "close":
                    return

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        if self._stop.is_set():
            return False
        try:
            conn.sendall(data)
        except OSError:
            return False
        return True


def _read_request(
    conn: socket.socket, buffer: bytes, stop: threading.Event
) -> tuple[Request | None, bytes]:
    def more() -> bool:
        nonlocal buffer
        while not stop.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return False
            if not chunk:
                return False
            buffer += chunk
            return True
        return False

    while b"\r\n\r\n" not in buffer:
        if not more():
            return None, b""
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        if not more():
            return None, b""
    return Request(method, target, headers, buffer[:length]), buffer[length:]


def head(
    status: int = 200,
    content_type: str = "application/json",
    length: int | None = None,
    **extra: str,
) -> bytes:
    """A response head; without `length` the body is chunked."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {content_type}"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


def send_chunked(send: Send, parts: Iterable[bytes]) -> bool:
    """Send `parts` as chunks, then the last chunk; False if the client went away."""
    for part in parts:
        if not send(chunk(part)):
            return False
    return send(LAST_CHUNK)


def trickle(send: Send, data: bytes, *, interval: float, limit: float = 60.0) -> None:
    """Send `data` a byte at a time, one every `interval` seconds, for at most `limit` seconds
    (a client that ignores its deadline gets its answer after that, rather than hanging)."""
    ends = time.monotonic() + limit
    for index in range(len(data)):
        if time.monotonic() > ends or not send(data[index : index + 1]):
            return
        time.sleep(interval)


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes made of `piece` repeated, in 1 MiB parts (nothing held but one part)."""
    part = piece * max(1, (1 << 20) // len(piece))
    sent = 0
    while sent < total:
        out = part[: total - sent]
        sent += len(out)
        yield out


def finishes_within(seconds: float, fn: Callable[[], T]) -> T:
    """`fn()`, or a test failure if it is still running after `seconds` (a hang)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:  # handed to the test below
            outcome.append(("error", exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"still running after {seconds} s: the client ignored its deadline")
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]
