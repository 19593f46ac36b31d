"""In-process engines: `Client(engine="placeholder")` with no server in between.

Requests go through the same wire models and the same `ImageService` the server uses (same
checks, same `auto` sizes, same response fields) and come back as the same `ImagesResult` and
`ImageStream`. Differences, by nature: no retries or timeouts (nothing travels), and images are
always base64 since there is no server to host a URL. An unset `model` means the engine's own
model (its first declared one) rather than `gpt-image-2`.

An engine given by name is created at once (so an unknown name, a missing extra, an undeclared
or bad option, or a model folder that does not exist fails there) but loaded by the first
request, after that request has been validated: a request the engine refuses whatever its
weights (`background=transparent` with diffusers) fails at once instead of after minutes of
loading.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ._errors import ConfigurationError
from ._models import CompletedEvent, PartialImageEvent, parse_request
from ._request import Call
from ._results import ImagesResult

if TYPE_CHECKING:
    from .engines import Engine, Job

__all__ = ["EngineTransport"]


class EngineTransport:
    """Runs calls on a local engine through `ImageService`."""

    def __init__(
        self,
        engine: str | Engine,
        *,
        model: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        from ._service import ImageService
        from .engines import Engine, create_engine

        # An engine given by name is ours to load (and close); an instance is the caller's.
        self._to_load = False
        self._load_lock = threading.Lock()
        if isinstance(engine, str):
            self.engine = create_engine(engine, model=model, options=options)
            self._owns_engine = True
            # An engine without a `load` of its own (placeholder) needs no check before it.
            self._to_load = type(self.engine).load is not Engine.load
        elif isinstance(engine, Engine):
            if model is not None or options:
                raise ConfigurationError(
                    "engine_model and engine_options apply to an engine given by name; pass "
                    "them to the engine's constructor instead."
                )
            self.engine = engine
            self._owns_engine = False
        else:
            raise ConfigurationError(
                f"Invalid engine {engine!r}: give an engine name (see `imagegen engines`) or an "
                "Engine instance."
            )
        self.service = ImageService(self.engine)

    @property
    def name(self) -> str:
        return self.engine.name or type(self.engine).__name__

    def close(self) -> None:
        if self._owns_engine and not self._to_load:  # never loaded: nothing to release
            self.engine.close()

    def job(self, call: Call) -> Job:
        request = parse_request(call.endpoint, call.body())
        if self._to_load:
            # Validated before the load, which may take minutes, and again after it: loading
            # may narrow what the engine declares (its endpoints, what `auto` sizes mean).
            self.service.prepare(call.endpoint, request, call.images, call.mask, call.markup)
            self._load()
        return self.service.prepare(call.endpoint, request, call.images, call.mask, call.markup)

    def _load(self) -> None:
        from ._service import ImageService

        with self._load_lock:
            if self._to_load:
                self.engine.load()
                self.service = ImageService(self.engine)
                self._to_load = False

    def result(self, call: Call, job: Job) -> ImagesResult:
        response = self.service.run(job).to_response()
        return ImagesResult(
            response, model=job.model, prompt=call.prompt, requested_size=call.params.get("size")
        )

    def images(self, call: Call) -> ImagesResult:
        return self.result(call, self.job(call))

    def events(self, job: Job) -> Generator[PartialImageEvent | CompletedEvent, None, None]:
        # A generator of our own, so closing the stream closes the service's generator too.
        yield from self.service.stream(job)

    async def aimages(self, call: Call) -> ImagesResult:
        job = await anyio.to_thread.run_sync(self.job, call)
        return await anyio.to_thread.run_sync(self.result, call, job)

    async def ajob(self, call: Call) -> Job:
        return await anyio.to_thread.run_sync(self.job, call)

    def aevents(self, job: Job) -> tuple[AsyncIterator[PartialImageEvent | CompletedEvent], Any]:
        """Async events: the engine's blocking iterator is advanced in a worker thread."""
        events = self.events(job)

        def advance() -> PartialImageEvent | CompletedEvent | None:
            return next(events, None)

        async def pump() -> AsyncIterator[PartialImageEvent | CompletedEvent]:
            try:
                while (event := await anyio.to_thread.run_sync(advance)) is not None:
                    yield event
            finally:
                close()

        def close() -> None:
            with contextlib.suppress(ValueError):  # still running in its worker thread
                events.close()

        return pump(), close
