"""A scriptable Images API server for the client tests.

It records every request exactly as it arrived (method, path, query, headers, raw body, parsed
multipart parts) and answers with the replies a test queued, in order; with none queued it
answers a small valid `ImagesResponse`. It runs for real on 127.0.0.1 (see `live.py`), so the
client under test goes through sockets, HTTP parsing and multipart encoding as in production.

Requests in absolute form (`POST http://host/path`, what a client sends to a forward proxy)
are recorded with their full target in `Recorded.target`, then served like any other, so the
same server doubles as a recording proxy.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

API_KEY = "sk-test-0123456789abcdefSECRET"


def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (64, 64),
    mode: str = "RGB",
    color: Any = (10, 120, 200),
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


TINY_PNG = image_bytes(size=(8, 8), color=(200, 30, 30))
TINY_B64 = base64.b64encode(TINY_PNG).decode()


def images_body(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid ImagesResponse body with `n` tiny PNG images; `fields` override or add keys."""
    body: dict[str, Any] = {"created": 1_790_000_000, "data": [{"b64_json": TINY_B64}] * n}
    body.update(fields)
    return body


@dataclass
class Part:
    name: str
    value: str | None = None  # text fields
    filename: str | None = None  # file parts
    content_type: str | None = None
    data: bytes = b""

    @property
    def is_file(self) -> bool:
        return self.filename is not None


@dataclass
class Recorded:
    method: str
    path: str
    target: str  # the target as sent, without query: a raw path, or a full URL to a proxy
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    parts: list[Part] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)

    def fields(self) -> dict[str, str]:
        """Multipart text fields by name."""
        return {p.name: p.value for p in self.parts if not p.is_file and p.value is not None}

    def files(self) -> list[Part]:
        return [p for p in self.parts if p.is_file]


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    json: Any = None  # None: a valid one-image ImagesResponse
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    delay: float = 0.0  # seconds before the answer starts
    sse: list[Any] | None = None  # events: dict -> `data: <json>`, str -> sent as it is
    sse_delay: float = 0.0  # seconds between events
    sse_forever: bool = False  # keep sending comments after the events, until disconnected
    break_after: bytes | None = None  # send these body bytes, then drop the connection


class ScriptedServer:
    def __init__(self) -> None:
        self.url = ""
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.disconnected = threading.Event()
        self.events_sent = 0
        self._starlette = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "DELETE", "PATCH"],
                )
            ]
        )

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()
        self.events_sent = 0
        self.disconnected = threading.Event()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def last(self) -> Recorded:
        assert self.requests, "the server received no request"
        return self.requests[-1]

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if target.startswith(("http://", "https://")):
                scope = dict(scope)
                parsed = urlsplit(target)
                scope["path"] = parsed.path or "/"
                scope["raw_path"] = scope["path"].encode()
            scope["imagegen.target"] = target
        await self._starlette(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        parts: list[Part] = []
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_part_size=64 * 1024 * 1024) as form:
                for name, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        parts.append(
                            Part(
                                name,
                                filename=value.filename or "",
                                content_type=value.headers.get("content-type"),
                                data=await value.read(),
                            )
                        )
                    else:
                        parts.append(Part(name, value=value))
        self.requests.append(
            Recorded(
                method=request.method,
                path=request.url.path,
                target=request.scope["imagegen.target"],
                query=parse_qs(request.url.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                parts=parts,
            )
        )
        reply = self.replies.popleft() if self.replies else Reply(json=images_body())
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = {"x-request-id": f"req_{len(self.requests)}", **reply.headers}
        if reply.sse is not None:
            return StreamingResponse(
                self._sse(reply), headers=headers, media_type="text/event-stream"
            )
        if reply.break_after is not None:
            return StreamingResponse(
                self._broken(reply.break_after),
                status_code=reply.status,
                headers=headers,
                media_type=reply.content_type or "image/png",
            )
        if reply.body is not None:
            return Response(
                reply.body,
                status_code=reply.status,
                headers=headers,
                media_type=reply.content_type or "application/octet-stream",
            )
        return JSONResponse(
            reply.json if reply.json is not None else images_body(),
            status_code=reply.status,
            headers=headers,
        )

    async def _sse(self, reply: Reply) -> Any:
        try:
            for event in reply.sse or []:
                if isinstance(event, dict):
                    kind = event.get("type", "message")
                    chunk = f"event: {kind}\ndata: {json.dumps(event)}\n\n"
                else:
                    chunk = event
                yield chunk.encode()
                self.events_sent += 1
                if reply.sse_delay:
                    await asyncio.sleep(reply.sse_delay)
            while reply.sse_forever:
                yield b": keep-alive\n\n"
                await asyncio.sleep(0.05)
        finally:
            self.disconnected.set()

    async def _broken(self, first: bytes) -> Any:
        yield first
        await asyncio.sleep(0.05)
        raise ConnectionResetError("scripted: connection dropped mid-body")
