"""Run an ASGI app under a real uvicorn server on 127.0.0.1, port chosen by the OS.

Streaming and lifespan only behave as in production over a real socket (httpx's ASGITransport
buffers bodies and skips lifespan), so every HTTP test goes through one of these.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns signals
        pass


@contextlib.contextmanager
def live_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a thread; yield its base URL (no trailing slash); stop it."""
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections only for sockets that
    # say so; with proto 0 every small response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config.setdefault("log_level", "warning")
    config.setdefault("lifespan", "on")
    # h11, as `imagegen serve` runs, whatever else is installed: uvicorn's "auto" picks
    # httptools when present (the ray extra brings it), which parses requests differently.
    config.setdefault("http", "h11")
    server = _Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop a server process started by a test: SIGTERM first, so it shuts down cleanly (and
    removes its temporary image folder), then SIGKILL if it does not."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait(timeout=30)
