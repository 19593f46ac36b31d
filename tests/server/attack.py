"""A hostile HTTP client made of raw sockets, and a server to point it at.

Each helper is bounded by a deadline that only an unanswered attack reaches (a hang fails the
test, a slow machine does not): the assertions are about what the server answers, never about
how fast.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
from srvkit import make_settings

from imagegen.engines import Engine
from imagegen.server import HTTPProtocol, create_app
from live import live_server

# Long enough for a loaded 2-core machine; an attack the server does not answer takes longer.
HANG = 30.0


@contextlib.contextmanager
def hostile_server(engine: Engine | str, **settings: Any) -> Iterator[str]:
    """`create_app(engine)` under uvicorn with the server's own HTTP protocol, as `imagegen
    serve` runs it; yields the base URL."""
    app = create_app(engine, make_settings(**settings))
    with live_server(app, http=HTTPProtocol) as url:
        yield url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def connect(url: str, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port_of(url)), timeout=HANG)
    if data:
        sock.sendall(data)
    return sock


def head(method: str, path: str, **headers: str | int) -> bytes:
    """A request line and headers, complete (ends with an empty line)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_until_closed(sock: socket.socket, timeout: float = HANG) -> bytes:
    """Everything the server sends until it closes the connection; fails if it never does."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            break
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the server kept the connection open for {timeout} s: {received[:200]!r}")


def read_answer(sock: socket.socket, timeout: float = HANG) -> bytes:
    """One HTTP answer (headers and a Content-Length body); fails if none comes in time."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"\r\n\r\n" in received:
            header, _, body = received.partition(b"\r\n\r\n")
            for line in header.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(body) >= int(value):
                    return received
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        received += chunk
    if received:
        return received
    raise AssertionError(f"no answer within {timeout} s")


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


class Trickler:
    """Sends `data` to a socket a few bytes at a time, every `interval` seconds, until the
    server closes it or `stop()`; `answer` is what the server sent back."""

    def __init__(self, sock: socket.socket, data: bytes, *, interval: float = 0.2) -> None:
        self.sock = sock
        self.data = data
        self.interval = interval
        self.answer = b""
        self.closed_by_server = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(self.interval)
        at = 0
        while not self._stop.is_set() and at < len(self.data):
            try:
                self.sock.sendall(self.data[at : at + 1])
            except OSError:
                break
            at += 1
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            self.answer += chunk
        with contextlib.suppress(OSError):
            self.sock.settimeout(HANG)
            while not self._stop.is_set():
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.answer += chunk
        self.closed_by_server = not self._stop.is_set()

    def wait(self, timeout: float = HANG) -> bytes:
        """Until the server closed the connection; fails if it does not."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the server never closed the trickling connection"
        self.sock.close()
        assert self.closed_by_server
        return self.answer

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(HANG)


def health(url: str) -> dict[str, Any]:
    response = httpx2.get(url + "/health", timeout=HANG)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_until(check: Any, what: str, timeout: float = HANG) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def peak_memory_mb(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")
