"""The routes: the three image endpoints, models, health and signed image links."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._capabilities import MODELS, Endpoint
from .._models import ImageRequest
from .._service import ImageService
from ..engines import Job
from ._azure import deployment_model
from ._errors import request_id_of
from ._inputs import ParsedRequest, read_edit, read_generation, read_variation
from ._metrics import note_model
from ._settings import ServerSettings
from ._sse import EventStreamResponse, stream_job
from ._state import ServerState, state_of
from ._storage import FILES_PREFIX

__all__ = ["routes"]


def _state(request: Request) -> ServerState:
    state = state_of(request.scope.get("state"))
    assert state is not None, "the app runs without its lifespan"
    return state


def _json(body: str | bytes, status_code: int = 200) -> Response:
    return Response(body, status_code=status_code, media_type="application/json")


def _answer(state: ServerState, job: Job, base_url: str | None) -> str:
    """Run the engine, encode the images, save them if links are wanted (`base_url`) and
    write the JSON, in one worker thread: every trip between the event loop and a worker
    costs two thread switches (~0.6 ms of CPU a request here, a fifth of a small placeholder
    answer), and base64 and JSON of large images are slow too."""
    rendered = state.service.run(job)
    urls = None
    if base_url is not None:
        store = state.store
        urls = [
            store.url(base_url, store.save(image, rendered.output_format))
            for image in rendered.images
        ]
    return rendered.to_response(urls).model_dump_json(exclude_none=True)


Reader = Callable[[Request, ImageService, ServerSettings, str | None], Awaitable[ParsedRequest]]


async def _run(endpoint: Endpoint, request: Request, read: Reader) -> Response:
    """Read the body, validate, admit, decode, run the engine, encode, answer.

    A full queue is refused before a byte of the body is read, but a place is taken only once
    the body is in: a slow upload holds bytes of the body budget (see `BodyLimitMiddleware`),
    never a place in the queue that others wait for. Input images are decoded only once their
    pixels fit in the server's pixel budget, so memory stays bounded however many requests
    wait.
    """
    state = _state(request)
    service = state.service
    # An Azure deployment URL names the model, whatever the body says; an unknown one costs
    # no place in the queue.
    model = deployment_model(request.scope, service)
    state.gate.check()
    parsed = await read(request, service, state.settings, model)
    ticket = state.gate.admit()
    streaming = False
    try:
        note_model(request.scope, parsed.request.model or service.default_model)
        await ticket.hold_pixels(state.pixels, parsed.pixels)
        if parsed.images or parsed.mask is not None or parsed.markup is not None:
            job = await anyio.to_thread.run_sync(
                service.prepare,
                endpoint,
                parsed.request,
                parsed.images,
                parsed.mask,
                parsed.markup,
                limiter=state.decode_limiter,
            )
            parsed.images.clear()  # the job holds decoded copies; let the raw bytes go
        else:  # nothing to decode: checking the fields takes less than a trip to a thread
            job = service.prepare(endpoint, parsed.request)
        if getattr(parsed.request, "stream", None) is True:
            events = stream_job(service, job, ticket, request_id_of(request.scope))
            streaming = True  # the response gives the ticket back when the stream ends
            return EventStreamResponse(events, ticket)
        base_url = None
        if _wants_urls(service, parsed.request, job):
            base_url = state.settings.public_url or str(request.base_url)
        # The slot is held while the images are encoded too: encoding takes milliseconds
        # where a model takes seconds, and one trip to a worker thread instead of two saves
        # more than that (see `_answer`).
        async with ticket.engine():
            # A client that gave up while queued (an SDK timeout, then its retry) would only
            # cost the engine a job nobody reads; a stream is cancelled the same way by
            # Starlette's disconnect watch.
            if await request.is_disconnected():
                raise ClientDisconnect()
            body = await anyio.to_thread.run_sync(_answer, state, job, base_url)
    finally:
        if not streaming:
            ticket.close()
    return _json(body)


def _wants_urls(service: ImageService, request: ImageRequest, job: Job) -> bool:
    """URLs when the request asks for them, or when it names no `response_format` and the model
    is a DALL·E one (OpenAI's default there); base64 otherwise, as GPT image models answer."""
    if request.response_format is not None:
        return request.response_format == "url"
    return service.capabilities(job.model).family == "dall-e"


async def generations(request: Request) -> Response:
    return await _run("generations", request, read_generation)


async def edits(request: Request) -> Response:
    return await _run("edits", request, read_edit)


async def variations(request: Request) -> Response:
    return await _run("variations", request, read_variation)


def _model_entries(state: ServerState) -> list[dict[str, Any]]:
    engine = state.service.engine.name or "engine"
    names = list(state.service.declared) + [
        name for name in MODELS if name not in state.service.declared
    ]
    return [
        {"id": name, "object": "model", "created": 0, "owned_by": f"imagegen-{engine}"}
        for name in names
    ]


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": _model_entries(_state(request))})


async def get_model(request: Request) -> Response:
    state = _state(request)
    name = request.path_params["model"]
    state.service.check_model(name)  # an unknown name: 404 model_not_found, as on the image routes
    return JSONResponse(next(entry for entry in _model_entries(state) if entry["id"] == name))


async def health(request: Request) -> Response:
    state = _state(request)
    gate = state.gate
    return JSONResponse(
        {
            "status": "ok",
            "engine": state.service.engine.name,
            "running": gate.running,
            "waiting": gate.waiting,
            "max_concurrency": gate.concurrency,
            "max_queue": gate.max_queue,
            "body_bytes": state.bodies.used,
            "decoded_pixels": state.pixels.used,
            "waiting_for_pixels": state.pixels.waiting,
        }
    )


async def image_file(request: Request) -> Response:
    store = _state(request).store
    name = request.path_params["name"]
    data = await anyio.to_thread.run_sync(store.read, name, request.query_params.get("signature"))
    expires = int(name.split("-", 1)[0])
    return Response(
        data,
        media_type=store.content_type(name),
        headers={
            "cache-control": f"private, max-age={max(0, expires - int(time.time()))}",
            # An SVG opened from a link must not run scripts or load anything on this origin.
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "x-content-type-options": "nosniff",
        },
    )


routes = [
    Route("/v1/images/generations", generations, methods=["POST"]),
    Route("/v1/images/edits", edits, methods=["POST"]),
    Route("/v1/images/variations", variations, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route(FILES_PREFIX + "{name}", image_file, methods=["GET"]),
]
