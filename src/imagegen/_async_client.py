"""`AsyncClient`: the asynchronous twin of `Client` (see `_client` for the shared behaviour)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import anyio.to_thread
import httpx2

from ._client import Timeout, _BaseClient
from ._config import (
    DEFAULT_MAX_IMAGE_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRY_WAIT,
    make_limits,
)
from ._imaging import ImageInput
from ._request import Call, hint_retired
from ._results import AsyncImageStream, ImagesResult
from ._transport import AsyncHTTPTransport
from ._types import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    from .engines import Engine

__all__ = ["AsyncClient"]


class AsyncClient(_BaseClient):
    """The asynchronous twin of `Client`: the same arguments, `async` methods, and
    `AsyncImageStream` for streams. Close it with `await client.aclose()` or `async with`.

    Saving URL results (`result.save()`) downloads synchronously, with the same settings.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
        max_image_size: int | None = DEFAULT_MAX_IMAGE_SIZE,
        allow_private_downloads: bool | None = None,
        proxy: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
        azure_endpoint: str | None = None,
        azure_deployment: str | None = None,
        api_version: str | None = None,
        azure_ad_token: str | None = None,
        engine: str | Engine | None = None,
        engine_model: str | None = None,
        engine_options: Mapping[str, str] | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._http: AsyncHTTPTransport | None = None
        self._configure(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            timeout=timeout,
            max_retries=max_retries,
            limits=make_limits(
                max_retry_wait=max_retry_wait,
                max_response_size=max_response_size,
                max_image_size=max_image_size,
                allow_private_downloads=allow_private_downloads,
            ),
            azure_endpoint=azure_endpoint,
            azure_deployment=azure_deployment,
            api_version=api_version,
            azure_ad_token=azure_ad_token,
            engine=engine,
            engine_model=engine_model,
            engine_options=engine_options,
        )
        if self._settings is not None:
            self._http = AsyncHTTPTransport(
                self._settings,
                http_client=http_client,
                timeout=self._timeout,
                max_retries=self._max_retries,
                limits=self._limits,
                proxy=proxy,
                default_headers=default_headers,
                default_query=default_query,
            )

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._engine is not None:
            self._engine.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _prepare_with_images(self, endpoint: Any, params: Any, **options: Any) -> Call:
        # Reading image files, probing them and turning a black-and-white mask into an alpha
        # mask block for milliseconds per megabyte: in a worker thread, off the event loop.
        prepare = functools.partial(self._prepare, endpoint, params, **options)
        return await anyio.to_thread.run_sync(prepare)

    async def _run(self, call: Call) -> ImagesResult | AsyncImageStream:
        size = call.params.get("size")
        if self._engine is not None:
            if not call.stream:
                return await self._engine.aimages(call)
            job = await self._engine.ajob(call)
            events, close = self._engine.aevents(job)
            return AsyncImageStream(
                events, close=close, model=job.model, prompt=call.prompt, requested_size=size
            )
        assert self._http is not None
        if call.stream:
            with hint_retired(call.model):
                stream_events, stream_close, request_id = await self._http.open_stream(call)
            return AsyncImageStream(
                stream_events,
                close=stream_close,
                model=call.model,
                prompt=call.prompt,
                request_id=request_id,
                requested_size=size,
            )
        with hint_retired(call.model):
            response, headers = await self._http.images(call)
        return ImagesResult(
            response,
            model=call.model,
            prompt=call.prompt,
            request_id=headers.get("x-request-id"),
            requested_size=size,
            downloader=self._http.downloader(),
            headers=headers,
        )

    # As in `Client`: the return type from `stream` and `partial_images`, for type checkers.
    @overload
    async def generate(
        self,
        prompt: str,
        *,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        style: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        stream: Literal[False] = False,
        partial_images: Literal[0] | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult: ...

    @overload
    async def generate(
        self,
        prompt: str,
        *,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        style: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        stream: Literal[True],
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncImageStream: ...

    @overload
    async def generate(
        self,
        prompt: str,
        *,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        style: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        stream: bool = False,
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult | AsyncImageStream: ...

    async def generate(
        self,
        prompt: str,
        *,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        style: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        stream: bool = False,
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult | AsyncImageStream:
        """As `Client.generate`; streams are `AsyncImageStream`s."""
        call = self._prepare(
            "generations",
            {
                "prompt": prompt,
                "model": model,
                "n": n,
                "size": size,
                "quality": quality,
                "style": style,
                "background": background,
                "moderation": moderation,
                "output_format": output_format,
                "output_compression": output_compression,
                "response_format": response_format,
                "user": user,
                "safety_identifier": safety_identifier,
                "complexity": complexity,
                "frame_count": frame_count,
                "frame_duration_ms": frame_duration_ms,
                "svg": svg,
                "stream": stream,
                "partial_images": partial_images,
            },
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
        )
        return await self._run(call)

    @overload
    async def edit(
        self,
        image: ImageInput | Sequence[ImageInput],
        prompt: str,
        *,
        mask: ImageInput | None = None,
        markup: ImageInput | None = None,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        input_fidelity: str | None | NotGiven = NOT_GIVEN,
        stream: Literal[False] = False,
        partial_images: Literal[0] | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult: ...

    @overload
    async def edit(
        self,
        image: ImageInput | Sequence[ImageInput],
        prompt: str,
        *,
        mask: ImageInput | None = None,
        markup: ImageInput | None = None,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        input_fidelity: str | None | NotGiven = NOT_GIVEN,
        stream: Literal[True],
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> AsyncImageStream: ...

    @overload
    async def edit(
        self,
        image: ImageInput | Sequence[ImageInput],
        prompt: str,
        *,
        mask: ImageInput | None = None,
        markup: ImageInput | None = None,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        input_fidelity: str | None | NotGiven = NOT_GIVEN,
        stream: bool = False,
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult | AsyncImageStream: ...

    async def edit(
        self,
        image: ImageInput | Sequence[ImageInput],
        prompt: str,
        *,
        mask: ImageInput | None = None,
        markup: ImageInput | None = None,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        quality: str | None | NotGiven = NOT_GIVEN,
        background: str | None | NotGiven = NOT_GIVEN,
        moderation: str | None | NotGiven = NOT_GIVEN,
        output_format: str | None | NotGiven = NOT_GIVEN,
        output_compression: int | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        safety_identifier: str | None | NotGiven = NOT_GIVEN,
        complexity: str | None | NotGiven = NOT_GIVEN,
        frame_count: int | None | NotGiven = NOT_GIVEN,
        frame_duration_ms: int | None | NotGiven = NOT_GIVEN,
        svg: Mapping[str, Any] | None | NotGiven = NOT_GIVEN,
        input_fidelity: str | None | NotGiven = NOT_GIVEN,
        stream: bool = False,
        partial_images: int | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult | AsyncImageStream:
        """As `Client.edit`; streams are `AsyncImageStream`s."""
        call = await self._prepare_with_images(
            "edits",
            {
                "prompt": prompt,
                "model": model,
                "n": n,
                "size": size,
                "quality": quality,
                "background": background,
                "moderation": moderation,
                "output_format": output_format,
                "output_compression": output_compression,
                "response_format": response_format,
                "user": user,
                "safety_identifier": safety_identifier,
                "complexity": complexity,
                "frame_count": frame_count,
                "frame_duration_ms": frame_duration_ms,
                "svg": svg,
                "input_fidelity": input_fidelity,
                "stream": stream,
                "partial_images": partial_images,
            },
            image=image,
            mask=mask,
            markup=markup,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
        )
        return await self._run(call)

    async def create_variation(
        self,
        image: ImageInput,
        *,
        model: str | None | NotGiven = NOT_GIVEN,
        n: int | None | NotGiven = NOT_GIVEN,
        size: str | None | NotGiven = NOT_GIVEN,
        response_format: str | None | NotGiven = NOT_GIVEN,
        user: str | None | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str | None] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: Timeout | NotGiven = NOT_GIVEN,
    ) -> ImagesResult:
        """As `Client.create_variation`."""
        call = await self._prepare_with_images(
            "variations",
            {
                "model": model,
                "n": n,
                "size": size,
                "response_format": response_format,
                "user": user,
            },
            image=image,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
        )
        result = await self._run(call)
        assert isinstance(result, ImagesResult)
        return result
