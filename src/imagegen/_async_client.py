"""`AsyncClient`: `Client` with the I/O awaited (see `_client` for everything they share)."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, overload

import anyio.to_thread

from . import _params
from ._capabilities import Endpoint
from ._client import Images, _BaseClient
from ._imaging import ImageInput
from ._request import Call
from ._results import AsyncImageStream, ImagesResult
from ._transport import AsyncTransport
from ._types import Unpack

if TYPE_CHECKING:
    import httpx2  # noqa: F401 - named in a string below, for type checkers only

__all__ = ["AsyncClient"]


class AsyncClient(_BaseClient["httpx2.AsyncClient", AsyncTransport]):
    """The asynchronous twin of `Client`: the same arguments, `async` methods, and
    `AsyncImageStream` for streams. Close it with `await client.aclose()` or `async with`.

    Saving URL results (`result.save()`) downloads synchronously, with the same settings.
    """

    @staticmethod
    def _transport_class(in_process: bool) -> type[Any]:
        if in_process:
            from ._inprocess import AsyncEngineTransport

            return AsyncEngineTransport
        from ._async_http import AsyncHTTPTransport

        return AsyncHTTPTransport

    async def aclose(self) -> None:
        """Close the streams still open, then the connections (and an engine it loaded).

        A stream left by `break` out of `async for` is a chain of suspended async generators
        (ours and httpx2's); closed here one after the other, they are not left for asyncio to
        close all at once at exit, where each races the next ("aclose(): asynchronous
        generator is already running")."""
        for stream in list(self._streams):
            await stream.aclose()
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _aprepare(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> Call:
        # Reading image files, probing them and turning a black-and-white mask into an alpha
        # mask block for milliseconds per megabyte: in a worker thread, off the event loop.
        return await anyio.to_thread.run_sync(functools.partial(self._prepare, endpoint, arguments))

    async def _run(self, call: Call) -> ImagesResult | AsyncImageStream:
        if not call.stream:
            return self._result(call, await self._transport.send(call))
        events = await self._transport.stream(call)
        stream = AsyncImageStream(events.events, **self._stream_options(call, events))
        self._streams.add(stream)
        return stream

    @functools.cached_property
    def _streams(self) -> weakref.WeakSet[AsyncImageStream]:
        """The streams this client opened that are still referenced (see `aclose`)."""
        return weakref.WeakSet()

    @overload
    async def generate(
        self, prompt: str, **params: Unpack[_params.GenerateParams]
    ) -> ImagesResult: ...
    @overload
    async def generate(
        self, prompt: str, **params: Unpack[_params.GenerateStreamParams]
    ) -> AsyncImageStream: ...
    @overload
    async def generate(
        self, prompt: str, **params: Unpack[_params.GenerateAnyParams]
    ) -> ImagesResult | AsyncImageStream: ...
    async def generate(
        self, prompt: str, **params: Unpack[_params.GenerateAnyParams]
    ) -> ImagesResult | AsyncImageStream:
        """As `Client.generate`; streams are `AsyncImageStream`s."""
        return await self._run(self._prepare("generations", {"prompt": prompt, **params}))

    @overload
    async def edit(
        self, image: Images, prompt: str, **params: Unpack[_params.EditParams]
    ) -> ImagesResult: ...
    @overload
    async def edit(
        self, image: Images, prompt: str, **params: Unpack[_params.EditStreamParams]
    ) -> AsyncImageStream: ...
    @overload
    async def edit(
        self, image: Images, prompt: str, **params: Unpack[_params.EditAnyParams]
    ) -> ImagesResult | AsyncImageStream: ...
    async def edit(
        self, image: Images, prompt: str, **params: Unpack[_params.EditAnyParams]
    ) -> ImagesResult | AsyncImageStream:
        """As `Client.edit`; streams are `AsyncImageStream`s."""
        arguments = {"image": image, "prompt": prompt, **params}
        return await self._run(await self._aprepare("edits", arguments))

    async def create_variation(
        self, image: ImageInput, **params: Unpack[_params.VariationParams]
    ) -> ImagesResult:
        """As `Client.create_variation`."""
        call = await self._aprepare("variations", {"image": image, **params})
        return self._result(call, await self._transport.send(call))
