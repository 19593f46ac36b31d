"""`Client` and `AsyncClient`: generate, edit and vary images through an Images API.

```python
import imagegen

client = imagegen.Client()                     # OPENAI_API_KEY / OPENAI_BASE_URL from the env
result = client.generate("a lighthouse at dawn", size="1536x1024")
result.save("lighthouse.png")

local = imagegen.Client(base_url="http://127.0.0.1:8000/v1")   # any compatible server
offline = imagegen.Client(engine="placeholder")                # no server: in-process engine
```

Every call is checked against the model's rules before anything is sent (`InvalidRequestError`
names the parameter); only the parameters you set are sent, plus `model` (default `gpt-image-2`
for generations and edits, `dall-e-2` for variations). `stream=True` or `partial_images > 0`
returns an `ImageStream` of partial and completed images instead of an `ImagesResult`.

Limits, each a keyword argument: `timeout` (600 s) bounds each attempt as a whole, however
slowly the server sends, and a call with its retries ends within `(max_retries + 1) × timeout`;
`max_retry_wait` (60 s) is the longest wait taken when a server asks for one (Retry-After), a
longer one being an error at once; `max_response_size` (512 MiB) and `max_image_size` (64 MiB,
also one streamed image) cap what is read into memory; `allow_private_downloads` says whether
URL results may point at private addresses (by default only when the base URL does too).
Answers that are not images (an HTML page, a script) are refused, nothing saved.

Where settings come from: `imagegen._config`. Transport, retries and error mapping:
`imagegen._transport` and `imagegen._retry`. `AsyncClient` (in `_async_client`) mirrors `Client`
method for method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx2

from ._capabilities import Endpoint
from ._config import (
    DEFAULT_MAX_IMAGE_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    Limits,
    Settings,
    check_max_retries,
    make_limits,
    resolve_settings,
)
from ._errors import ConfigurationError
from ._imaging import ImageInput
from ._network import make_timeout
from ._request import Call, hint_retired, prepare_call
from ._results import ImagesResult, ImageStream
from ._transport import HTTPTransport
from ._types import NOT_GIVEN, NotGiven

if TYPE_CHECKING:
    from ._inprocess import EngineTransport
    from .engines import Engine

__all__ = ["Client"]

Timeout = float | httpx2.Timeout | None


class _BaseClient:
    """Construction and call preparation, shared by `Client` and `AsyncClient`."""

    _settings: Settings | None
    _engine: EngineTransport | None

    def _configure(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        organization: str | None,
        project: str | None,
        timeout: Timeout | NotGiven,
        max_retries: int | NotGiven,
        limits: Limits,
        azure_endpoint: str | None,
        azure_deployment: str | None,
        api_version: str | None,
        azure_ad_token: str | None,
        engine: str | Engine | None,
        engine_model: str | None,
        engine_options: Mapping[str, str] | None,
    ) -> None:
        self._timeout = make_timeout(timeout)
        self._max_retries = (
            DEFAULT_MAX_RETRIES if isinstance(max_retries, NotGiven) else max_retries
        )
        check_max_retries(self._max_retries)
        self._limits = limits
        self._engine = None
        self._settings = None
        if engine is not None:
            if base_url or azure_endpoint:
                raise ConfigurationError(
                    "An in-process engine needs no server: give either engine (--engine) or a "
                    "base URL / Azure endpoint, not both."
                )
            from ._inprocess import EngineTransport

            self._engine = EngineTransport(engine, model=engine_model, options=engine_options)
            return
        self._settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            project=project,
            azure_endpoint=azure_endpoint,
            azure_deployment=azure_deployment,
            api_version=api_version,
            azure_ad_token=azure_ad_token,
        )

    @property
    def base_url(self) -> str | None:
        """The server's base URL (the Azure endpoint for Azure); `None` for in-process engines."""
        return self._settings.base_url if self._settings else None

    @property
    def max_retries(self) -> int:
        return self._max_retries

    @property
    def timeout(self) -> httpx2.Timeout:
        return self._timeout

    @property
    def _azure_deployment(self) -> str | None:
        settings = self._settings
        return settings.azure.deployment if settings is not None and settings.azure else None

    def _prepare(
        self,
        endpoint: Endpoint,
        params: dict[str, Any],
        *,
        image: ImageInput | Sequence[ImageInput] | None = None,
        mask: ImageInput | None = None,
        markup: ImageInput | None = None,
        extra_headers: Mapping[str, str | None] | None,
        extra_query: Mapping[str, str] | None,
        extra_body: Mapping[str, Any] | None,
        timeout: Timeout | NotGiven,
    ) -> Call:
        return prepare_call(
            endpoint,
            params,
            image=image,
            mask=mask,
            markup=markup,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
            timeout=timeout,
            in_process=self._engine is not None,
            default_model=self._azure_deployment,
            to_openai=self._settings is not None and self._settings.is_openai,
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        if self._engine is not None:
            return f"{name}(engine={self._engine.name!r})"
        settings = self._settings
        assert settings is not None
        # Not `settings.secrets`, which also holds a base URL's password.
        key = "***" if settings.api_key or (settings.azure and settings.azure.ad_token) else None
        azure = f", azure_deployment={settings.azure.deployment!r}" if settings.azure else ""
        return (
            f"{name}(base_url={settings.shown_url!r}, api_key={key!r}{azure}, "
            f"max_retries={self._max_retries})"
        )


class Client(_BaseClient):
    """A synchronous Images API client; see the module docstring. Use it as a context manager
    or call `close()` to release its connections (and an engine it loaded)."""

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
        http_client: httpx2.Client | None = None,
    ) -> None:
        self._http: HTTPTransport | None = None
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
            self._http = HTTPTransport(
                self._settings,
                http_client=http_client,
                timeout=self._timeout,
                max_retries=self._max_retries,
                limits=self._limits,
                proxy=proxy,
                default_headers=default_headers,
                default_query=default_query,
            )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._engine is not None:
            self._engine.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call) -> ImagesResult | ImageStream:
        size = call.params.get("size")
        if self._engine is not None:
            if not call.stream:
                return self._engine.images(call)
            job = self._engine.job(call)
            engine_events = self._engine.events(job)
            return ImageStream(
                engine_events,
                close=engine_events.close,
                model=job.model,
                prompt=call.prompt,
                requested_size=size,
            )
        assert self._http is not None
        if call.stream:
            with hint_retired(call.model):
                events, close, request_id = self._http.open_stream(call)
            return ImageStream(
                events,
                close=close,
                model=call.model,
                prompt=call.prompt,
                request_id=request_id,
                requested_size=size,
            )
        with hint_retired(call.model):
            response, headers = self._http.images(call)
        return ImagesResult(
            response,
            model=call.model,
            prompt=call.prompt,
            request_id=headers.get("x-request-id"),
            requested_size=size,
            downloader=self._http,
            headers=headers,
        )

    # The overloads tell type checkers what `stream` and `partial_images` return (as openai's
    # SDK does); tests/test_typing.py checks they keep the implementation's parameters.
    @overload
    def generate(
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
    def generate(
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
    ) -> ImageStream: ...

    @overload
    def generate(
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
    ) -> ImagesResult | ImageStream: ...

    def generate(
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
    ) -> ImagesResult | ImageStream:
        """Create images from a prompt (`POST /images/generations`).

        Returns an `ImagesResult`, or an `ImageStream` when `stream=True` or `partial_images`
        > 0 (partial images only come in a stream). Type checkers see `ImagesResult` when
        neither is given (or `partial_images=0`), `ImageStream` with `stream=True`, and the union
        otherwise (`partial_images` without `stream=True`, `stream` a `bool` variable): pass
        `stream=True` along with `partial_images`, or narrow with `isinstance`.
        """
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
        return self._run(call)

    @overload
    def edit(
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
    def edit(
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
    ) -> ImageStream: ...

    @overload
    def edit(
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
    ) -> ImagesResult | ImageStream: ...

    def edit(
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
    ) -> ImagesResult | ImageStream:
        """Edit one image, or combine several (GPT image models, up to 16), guided by a prompt
        (`POST /images/edits`).

        `image`, `mask` and `markup` take a path, bytes, a binary file object or a PIL image.
        The mask marks the area to edit by full transparency (OpenAI's rule); a mask without an
        alpha channel is read as black and white, white = edit, and converted before sending.
        A markup (GPT Image 2.5 and later; not with a mask) is a PNG drawing the size of the
        first image, transparent where nothing is drawn, laid over it to guide the edit.
        `stream` and `partial_images` choose the return type as in `generate`.
        """
        call = self._prepare(
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
        return self._run(call)

    def create_variation(
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
        """Make variations of one image (`POST /images/variations`; dall-e-2 by default)."""
        call = self._prepare(
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
        result = self._run(call)
        assert isinstance(result, ImagesResult)
        return result
