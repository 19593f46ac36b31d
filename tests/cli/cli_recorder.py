"""A small Images API for the CLI tests: records every request, answers with real images.

It speaks just enough of OpenAI's API for the command line to be tested over a real socket:
JSON generations, multipart edits and variations (also under Azure's deployment paths),
`b64_json` or `url` results (served by `GET /files/...`), SSE streams with partial images, and
scripted errors. Images are real PNG / JPEG / WebP files, small so the tests stay fast.

Unlike `imagegen.server`, it keeps what it received (`Recorder.requests`) so a test can check
the exact wire form of each flag.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_bytes(fmt: str = "png", size: tuple[int, int] = (24, 16), colour: int = 0) -> bytes:
    """A real encoded image; `colour` varies the pixels so images of one answer differ."""
    if fmt == "svg":
        width, height = size
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<rect width="{width}" height="{height}" fill="#{colour:02x}5a9f"/></svg>'
        ).encode()
    mode = "RGB" if fmt in ("jpeg", "gif") else "RGBA"
    picture = Image.new(mode, size, (40 + colour * 30 % 200, 90, 160, 255)[: len(mode)])
    out = io.BytesIO()
    picture.save(out, format=fmt.upper())
    return out.getvalue()


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, list[str]] = field(default_factory=dict)
    files: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # name, file, type

    @property
    def params(self) -> dict[str, Any]:
        """The non-file parameters, whichever way they were sent."""
        if self.json is not None:
            return dict(self.json)
        return {key: values[0] if len(values) == 1 else values for key, values in self.form.items()}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._errors: list[tuple[int, Any, dict[str, str]]] = []
        self._numbered: dict[int, tuple[int, Any, dict[str, str]]] = {}
        self._lock = threading.Lock()
        self.base_url = ""
        self.extra_fields: dict[str, Any] = {}
        self.image_fields: dict[str, Any] = {}  # added to each item of `data` (revised_prompt)
        self.delay = 0.0  # seconds to wait before answering an API request
        self.stream_completed = True  # False: streams end after the partial images

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._errors.clear()
            self._numbered.clear()
            self.extra_fields = {}
            self.image_fields = {}
            self.delay = 0.0
            self.stream_completed = True

    def fail_next(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Answer the next API request with this error (queue several for several)."""
        with self._lock:
            self._errors.append((status, body, headers or {}))

    def fail_request(self, number: int, status: int, body: Any) -> None:
        """Answer the `number`-th API request (0-based, since the last reset) with this error."""
        with self._lock:
            self._numbered[number] = (status, body, {})

    @property
    def api_requests(self) -> list[Recorded]:
        return [r for r in self.requests if "/images/" in r.path]

    def app(self) -> Starlette:
        routes = [
            Route("/v1/images/{endpoint}", self._images, methods=["POST"]),
            Route(
                "/openai/deployments/{deployment}/images/{endpoint}",
                self._images,
                methods=["POST"],
            ),
            Route("/files/{name}", self._file, methods=["GET"]),
        ]
        return Starlette(routes=routes)

    async def _record(self, request: Request) -> Recorded:
        recorded = Recorded(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            recorded.json = json.loads(await request.body())
        elif content_type.startswith("multipart/form-data"):
            async with request.form(max_part_size=64 * 1024 * 1024) as form:
                for key, value in form.multi_items():
                    if isinstance(value, str):
                        recorded.form.setdefault(key, []).append(value)
                    else:
                        data = await value.read()
                        recorded.files.append(
                            (key, value.filename or "", value.content_type or "", data)
                        )
        with self._lock:
            self.requests.append(recorded)
        return recorded

    async def _images(self, request: Request) -> Response:
        recorded = await self._record(request)
        deadline = time.monotonic() + self.delay
        while time.monotonic() < deadline:  # a slow server, that notices a client leaving
            if await request.is_disconnected():
                return Response(status_code=499)
            await asyncio.sleep(0.05)
        with self._lock:
            number = sum(1 for r in self.requests if "/images/" in r.path) - 1
            error = self._numbered.pop(number, None)
            if error is None and self._errors:
                error = self._errors.pop(0)
        if error is not None:
            status, body, headers = error
            return JSONResponse(body, status_code=status, headers=headers)
        params = recorded.params
        n = int(params.get("n", 1))
        fmt = str(params.get("output_format", "png"))
        kind = "image_edit" if request.path_params["endpoint"] == "edits" else "image_generation"
        stream = str(params.get("stream", "false")).lower() == "true"
        partials = int(params.get("partial_images", 0))
        if stream or partials:
            return StreamingResponse(
                self._events(kind, n, partials, fmt), media_type="text/event-stream"
            )
        images = [image_bytes(fmt, colour=i) for i in range(n)]
        if params.get("response_format") == "url":
            data = [{"url": f"{self.base_url}/files/img-{i}.{fmt}"} for i in range(n)]
        else:
            data = [{"b64_json": base64.b64encode(img).decode()} for img in images]
        data = [{**item, **self.image_fields} for item in data]
        body: dict[str, Any] = {"created": int(time.time()), "data": data, **self.extra_fields}
        if str(params.get("model", "")).startswith("gpt-image"):
            body.update(output_format=fmt, size="1024x1024", quality="low", background="opaque")
        return JSONResponse(body, headers={"x-request-id": "req_test_123"})

    async def _events(self, kind: str, n: int, partials: int, fmt: str) -> Any:
        for image in range(n):
            for index in range(partials):
                event = {
                    "type": f"{kind}.partial_image",
                    "b64_json": base64.b64encode(image_bytes(fmt, colour=10 + index)).decode(),
                    "partial_image_index": index,
                    "created_at": int(time.time()),
                    "size": "1024x1024",
                    "quality": "low",
                    "background": "opaque",
                    "output_format": fmt,
                }
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
            if not self.stream_completed:
                continue
            event = {
                "type": f"{kind}.completed",
                "b64_json": base64.b64encode(image_bytes(fmt, colour=image)).decode(),
                "created_at": int(time.time()),
                "size": "1024x1024",
                "quality": "low",
                "background": "opaque",
                "output_format": fmt,
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 10,
                    "total_tokens": 15,
                    "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
                },
            }
            yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"

    async def _file(self, request: Request) -> Response:
        await self._record(request)
        name = request.path_params["name"]
        stem, _, ext = name.rpartition(".")
        index = int(stem.rsplit("-", 1)[-1]) if "-" in stem else 0
        fmt = {"jpg": "jpeg"}.get(ext, ext)
        if fmt not in _MEDIA:
            return Response(status_code=404)
        return Response(image_bytes(fmt, colour=index), media_type=_MEDIA[fmt])
