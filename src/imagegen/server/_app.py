"""`create_app`: the Starlette application, built from plain lists, run by uvicorn."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Scope

from .._capabilities import MAX_DATA_URL_CHARS
from .._service import ImageService
from ..engines import Engine, load_engine
from ._auth import AuthMiddleware
from ._azure import AzureRoutesMiddleware
from ._batches import BatchService, batch_routes
from ._bodies import JSON_FIELDS_BYTES
from ._context import RequestContextMiddleware
from ._errors import exception_handlers
from ._files import BATCHES_KEY, MAX_FILE_BYTES, file_routes
from ._jobstore import default_data_dir
from ._limits import BodyBudget, BodyLimitMiddleware, EngineGate, PixelBudget
from ._logs import rate_limited_logs
from ._metrics import Metrics, MetricsMiddleware
from ._routes import routes
from ._settings import MB, ServerSettings
from ._state import STATE_KEY, ServerState, state_of
from ._storage import ImageStore

__all__ = ["create_app"]

logger = logging.getLogger("imagegen.server")

_SMALL_BODY = 64 * 1024  # every other route takes no body


def _body_limits(settings: ServerSettings) -> Callable[[Scope], int]:
    multipart = settings.request_limit
    # JSON edits carry the images as base64 data URLs, each at most OpenAI's 20 MiB characters.
    per_image = min(settings.max_image_bytes * 4 // 3 + 1024, MAX_DATA_URL_CHARS)
    json_edits = min(
        multipart,
        settings.max_json_edit_bytes,
        (settings.max_images + 1) * per_image + JSON_FIELDS_BYTES,
    )
    variation = settings.max_image_bytes + MB

    def limit_for(scope: Scope) -> int:
        path = scope.get("path", "")
        if path == "/v1/images/edits":
            for name, value in scope.get("headers", ()):
                if name == b"content-type":
                    return (
                        json_edits if value.lower().startswith(b"application/json") else multipart
                    )
            return multipart
        if path == "/v1/images/variations":
            return variation
        if path == "/v1/images/generations":
            return JSON_FIELDS_BYTES
        if path == "/v1/files":
            return MAX_FILE_BYTES + MB
        return _SMALL_BODY

    return limit_for


def _retry_after(scope: Scope) -> int:
    state = state_of(scope.get("state"))
    return state.gate.retry_after() if state is not None else 1


async def _sweep_forever(store: ImageStore, interval: float) -> None:
    while True:
        try:
            removed = await anyio.to_thread.run_sync(store.sweep)
            if removed:
                logger.info("removed %d expired image file(s)", removed)
        except OSError as exc:  # a vanished or unreadable folder must not stop the server
            logger.warning("could not sweep expired images: %s", exc)
        await anyio.sleep(interval)


def create_app(
    engine: Engine | str | None = None, settings: ServerSettings | None = None
) -> Starlette:
    """The OpenAI-compatible Images API as an ASGI app.

    `engine` is an engine name (loaded once at startup with `settings.model` and
    `settings.engine_options`, closed at shutdown) or a ready `Engine` instance (used as it is;
    its owner loads and closes it). Default: `settings.engine`, which defaults to `placeholder`.
    `settings` defaults to `ServerSettings()`, which reads `IMAGEGEN_*` variables.
    """
    settings = settings or ServerSettings()
    keys = settings.resolved_api_keys()
    chosen: Engine | str = settings.engine if engine is None else engine
    bodies = BodyBudget(settings.inflight_limit)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if isinstance(chosen, Engine):
            ready = chosen
        else:
            name = chosen
            ready = await anyio.to_thread.run_sync(
                lambda: load_engine(name, model=settings.model, options=settings.engine_options)
            )
        # Whatever fails from here on, what was made so far is released: an engine we
        # loaded holds weights and GPU memory, the store a temporary folder.
        with contextlib.ExitStack() as release:
            if not isinstance(chosen, Engine):
                release.callback(ready.close)
            secret = (
                settings.url_secret.get_secret_value().encode() if settings.url_secret else None
            )
            store = ImageStore(
                settings.storage_dir,
                ttl=settings.url_ttl,
                secret=secret,
                max_bytes=settings.max_storage,
            )
            release.callback(store.close)
            # An engine with several devices, or merging jobs into one call, runs best with
            # that many jobs in it at once.
            slots = max(settings.max_concurrency, ready.capacity())
            state = ServerState(
                settings=settings,
                service=ImageService(
                    ready,
                    max_output_pixels=settings.max_output_pixels,
                    png_compress_level=settings.png_compress_level,
                ),
                store=store,
                gate=EngineGate(concurrency=slots, max_queue=settings.max_queue),
                decode_limiter=anyio.CapacityLimiter(max(2, slots)),
                bodies=bodies,
                pixels=PixelBudget(settings.pixel_budget(slots)),
            )
            release.callback(metrics.attach(state.service, state.gate))
            if not keys:
                logger.warning(
                    "No API key is configured: the server answers every client that can reach "
                    "it without authentication."
                )
            logger.info(
                "engine %r ready (concurrency %d, queue %d)",
                ready.name,
                slots,
                settings.max_queue,
            )
            batches = BatchService(state, settings.data_dir or default_data_dir(), keyed=bool(keys))
            release.callback(batches.close)
            async with rate_limited_logs(settings.log_rate), anyio.create_task_group() as tasks:
                tasks.start_soon(_sweep_forever, store, settings.sweep_interval)
                tasks.start_soon(batches.run_worker)
                yield {STATE_KEY: state, BATCHES_KEY: batches}
                tasks.cancel_scope.cancel()

    return Starlette(
        routes=[
            *routes,
            *file_routes,
            *batch_routes,
            Route("/metrics", metrics.endpoint, methods=["GET"]),
        ],
        middleware=[
            Middleware(RequestContextMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(AuthMiddleware, keys=keys),
            # After authentication (an unknown caller learns nothing of the routes), before the
            # body limits, which then see the `/v1/` route an Azure URL stands for.
            Middleware(AzureRoutesMiddleware),
            Middleware(
                BodyLimitMiddleware,
                limit_for=_body_limits(settings),
                budget=bodies,
                timeout=settings.body_timeout,
                min_rate=settings.min_upload_rate,
                retry_after=_retry_after,
            ),
        ],
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )
