"""Helpers for the batch tests: our server on a socket, and a fault-injecting ASGI layer.

`Faults` breaks a share of the image requests on purpose, drawn from a seeded generator so a
run is repeatable: 429 with `Retry-After`, 500 and 503, a connection dropped before any answer,
a connection dropped after the engine made the image (half the body sent: the image was paid
for and lost), and slow answers. Everything else reaches the real app untouched. It counts what
it did, so a test can check that every kind of fault really happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from PIL import Image

from imagegen.server import ServerSettings
from live import live_server

Scope = dict[str, Any]

# Small images keep hundreds of rows fast: the placeholder engine answers as the model named
# `placeholder` (generic rules: any size), so 64x64 is allowed.
DEFAULTS = {"model": "placeholder", "size": "64x64"}


def settings(data_dir: Path, **values: Any) -> ServerSettings:
    """Settings from arguments only, whatever IMAGEGEN_* the machine has."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("IMAGEGEN_"):
                patch.delenv(name)
        values.setdefault("max_concurrency", 4)
        values.setdefault("max_queue", 512)
        return ServerSettings(data_dir=data_dir, **values)


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """`app` on a real socket; yields the base URL with /v1. Faults make uvicorn log the
    connections they drop: those lines are expected, so only critical ones are shown."""
    with live_server(app, log_level="critical") as url:
        yield f"{url}/v1"


DROP = "drop"  # uvicorn closes the connection when an app returns a value instead of None


async def _drain(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"


async def _answer(send: Any, status: int, headers: dict[str, str], message: str) -> None:
    body = json.dumps(
        {"error": {"message": message, "type": "injected", "param": None, "code": None}}
    ).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class Faults:
    """Wraps `app`; each image request meets at most one fault, by the given shares."""

    def __init__(
        self,
        app: Any,
        *,
        seed: int = 0,
        rate_limited: float = 0.0,
        server_error: float = 0.0,
        unavailable: float = 0.0,
        dropped: float = 0.0,
        dropped_after: float = 0.0,
        slow: float = 0.0,
        slow_seconds: float = 0.05,
        hint_ms: int = 20,
    ) -> None:
        self.app = app
        self.random = random.Random(seed)
        self.shares = [
            ("rate_limited", rate_limited),
            ("server_error", server_error),
            ("unavailable", unavailable),
            ("dropped", dropped),
            ("dropped_after", dropped_after),
            ("slow", slow),
        ]
        self.slow_seconds = slow_seconds
        self.hint_ms = hint_ms
        self.counts: Counter[str] = Counter()
        self.in_flight = self.most_in_flight = 0

    def _draw(self) -> str:
        point = self.random.random()
        for name, share in self.shares:
            if point < share:
                return name
            point -= share
        return "ok"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/images/"):
            return await self.app(scope, receive, send)
        self.counts["requests"] += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await self._serve(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _serve(self, scope: Scope, receive: Any, send: Any) -> Any:
        fault = self._draw()
        self.counts[fault] += 1
        hint = {"retry-after-ms": str(self.hint_ms), "retry-after": "1"}
        if fault == "rate_limited":
            await _drain(receive)
            await _answer(send, 429, hint, "Injected rate limit.")
        elif fault in ("server_error", "unavailable"):
            await _drain(receive)
            status = 500 if fault == "server_error" else 503
            await _answer(send, status, hint, f"Injected {status}.")
        elif fault == "dropped":
            await _drain(receive)
            return DROP
        elif fault == "dropped_after":
            return await self._cut(scope, receive, send)
        else:
            if fault == "slow":
                await anyio.sleep(self.slow_seconds)
            await self.app(scope, receive, send)
        return None

    async def _cut(self, scope: Scope, receive: Any, send: Any) -> Any:
        """Run the real request, then send only half of its answer's body and hang up."""
        started: dict[str, Any] = {}

        async def half(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
                await send(message)
            elif message["type"] == "http.response.body" and not started.get("cut"):
                started["cut"] = True
                body = message.get("body", b"")
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[: len(body) // 2],
                        "more_body": True,
                    }
                )

        await self.app(scope, receive, half)
        return DROP


def prompts(count: int) -> list[str]:
    """`count` different prompts, some with characters file names cannot keep."""
    subjects = ["fox", "lighthouse", "café au lait", "robot", "señor gato", "teapot", "kite"]
    styles = ["oil painting", "watercolour", "pixel art", "photo", "ink sketch"]
    return [
        f"{subjects[i % len(subjects)]} number {i}, {styles[i % len(styles)]} / variant #{i}"
        for i in range(count)
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def png(
    path: Path, size: tuple[int, int] = (64, 64), colour: tuple[int, ...] = (40, 90, 200, 255)
) -> Path:
    Image.new("RGBA", size, colour).save(path)
    return path


def image_files(folder: Path) -> list[str]:
    """The image files of an out folder (not the manifest, gallery, state or lock)."""
    return sorted(
        entry.name for entry in folder.iterdir() if entry.suffix in (".png", ".jpg", ".webp")
    )


def manifest_lines(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
