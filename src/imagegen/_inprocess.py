"""In-process engines: `Client(engine="placeholder")` with no server in between.

A call's request model goes to the same `ImageService` the server uses (same checks, same
`auto` sizes, same response fields) and comes back as the same `ImagesResult` and
`ImageStream`. Differences, by nature: no retries or timeouts (nothing travels), no URLs (no
server hosts them), and the images stay as the engine encoded them, never turned into base64
and back. An unset `model` means the engine's own model (its first declared one) rather than
`gpt-image-2`.

An engine given by name is created at once (so an unknown name, a missing extra, an undeclared
or bad option, or a model folder that does not exist fails there) but loaded by the first
request, after that request has been validated: a request the engine refuses whatever its
weights (`background=transparent` with diffusers) fails at once instead of after minutes of
loading.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError
from ._models import WireEvent
from ._request import Call, Target
from ._transport import Events, Reply

if TYPE_CHECKING:
    from .engines import Engine, Job

__all__ = ["AsyncEngineTransport", "EngineTransport"]


class EngineTransport:
    """Runs calls on a local engine through `ImageService`."""

    target = Target(in_process=True)

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

    def _job(self, call: Call) -> Job:
        """The engine's job for `call`, checked with the engine's own model declarations."""
        job = self.service.prepare(call.endpoint, call.request, call.images, call.mask, call.markup)
        if self._to_load:
            # Checked before the load, which may take minutes, and again after it: loading
            # may narrow what the engine declares (its endpoints, what `auto` sizes mean).
            self._load()
            job = self.service.prepare(
                call.endpoint, call.request, call.images, call.mask, call.markup
            )
        return job

    def _load(self) -> None:
        from ._service import ImageService

        with self._load_lock:
            if self._to_load:
                self.engine.load()
                self.service = ImageService(self.engine)
                self._to_load = False

    def check(self, call: Call) -> None:
        self.service.prepare(call.endpoint, call.request, call.images, call.mask, call.markup)

    def send(self, call: Call) -> Reply:
        job = self._job(call)
        rendered = self.service.run(job)
        return Reply(rendered.to_response(encoded=False), job.model, images=rendered.images)

    def stream(self, call: Call) -> Events[Iterator[WireEvent]]:
        job = self._job(call)
        events = self._events(job)
        return Events(events, events.close, job.model)

    def _events(self, job: Job) -> Generator[WireEvent, None, None]:
        # A generator of our own, so closing the stream closes the service's generator too.
        yield from self.service.stream(job)


class AsyncEngineTransport:
    """`EngineTransport` for `AsyncClient`: the engine's blocking work in worker threads."""

    def __init__(self, engine: str | Engine, **options: Any) -> None:
        self.sync = EngineTransport(engine, **options)  # `model` and `options`
        self.target = self.sync.target
        self.check = self.sync.check

    @property
    def name(self) -> str:
        return self.sync.name

    async def aclose(self) -> None:
        self.sync.close()

    async def send(self, call: Call) -> Reply:
        import anyio.to_thread  # here: `Client(engine=...)` never needs it

        return await anyio.to_thread.run_sync(self.sync.send, call)

    async def stream(self, call: Call) -> Events[AsyncIterator[WireEvent]]:
        """The engine's events, each awaited from the worker thread that makes it."""
        import anyio.to_thread

        opened = await anyio.to_thread.run_sync(self.sync.stream, call)
        events = opened.events
        assert isinstance(events, Generator)

        def advance() -> WireEvent | None:
            return next(events, None)

        def close() -> None:
            with contextlib.suppress(ValueError):  # still running in its worker thread
                events.close()

        async def pump() -> AsyncIterator[WireEvent]:
            try:
                while (event := await anyio.to_thread.run_sync(advance)) is not None:
                    yield event
            finally:
                close()

        return Events(pump(), close, opened.model)
