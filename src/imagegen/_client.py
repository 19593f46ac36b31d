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

A call flows one way: the method's arguments (declared once, in `_params`) become a checked
`Call` holding the endpoint's request model (`_request.prepare_call`); the client's transport
sends it, over HTTP (`_http`) or to an in-process engine (`_inprocess`), and its `Reply` or
`Events` become the result (`_results`). Where settings come from: `_config`; retries:
`_retry`. `AsyncClient` (in `_async_client`) shares everything here but the awaiting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._capabilities import Endpoint
from ._config import (
    DEFAULT_MAX_IMAGE_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    check_max_retries,
    make_limits,
    resolve_settings,
)
from ._errors import ConfigurationError
from ._imaging import ImageInput
from ._params import (
    EditAnyParams,
    EditParams,
    EditStreamParams,
    GenerateAnyParams,
    GenerateParams,
    GenerateStreamParams,
    VariationParams,
)
from ._request import Call, prepare_call
from ._results import ImagesResult, ImageStream
from ._transport import AsyncTransport, Events, Reply, Transport
from ._types import NOT_GIVEN, NotGiven, Unpack

if TYPE_CHECKING:
    import httpx2

    from .engines import Engine

    Timeout = float | httpx2.Timeout | None

__all__ = ["Client"]

Images = ImageInput | Sequence[ImageInput]
# httpx2 by name only: a client of an in-process engine never imports it (see `_transport_class`).
_HTTPClient = TypeVar("_HTTPClient", "httpx2.Client", "httpx2.AsyncClient")
_Transport = TypeVar("_Transport", Transport, AsyncTransport)


class _BaseClient(ABC, Generic[_HTTPClient, _Transport]):
    """Construction and everything around a call but its I/O, shared by `Client` and
    `AsyncClient`; each names its transports in `_transport_class`."""

    _transport: _Transport
    _timeout: httpx2.Timeout | None

    @staticmethod
    @abstractmethod
    def _transport_class(in_process: bool) -> type[Any]:
        """The transport class to an in-process engine, or to a server. Imported when a client
        is made, so that one of an engine never loads httpx2 and the HTTP modules."""

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
        http_client: _HTTPClient | None = None,
    ) -> None:
        if engine is not None and isinstance(timeout, NotGiven):
            self._timeout = None  # made when asked for: nothing an engine does uses it
        else:
            from ._network import make_timeout

            self._timeout = make_timeout(timeout)
        self._max_retries = (
            DEFAULT_MAX_RETRIES if isinstance(max_retries, NotGiven) else max_retries
        )
        check_max_retries(self._max_retries)
        self._limits = make_limits(
            max_retry_wait=max_retry_wait,
            max_response_size=max_response_size,
            max_image_size=max_image_size,
            allow_private_downloads=allow_private_downloads,
        )
        self._settings = None
        self._engine_name: str | None = None
        if engine is not None:
            if base_url or azure_endpoint:
                raise ConfigurationError(
                    "An in-process engine needs no server: give either engine (--engine) or a "
                    "base URL / Azure endpoint, not both."
                )
            to_engine = self._transport_class(in_process=True)
            transport = to_engine(engine, model=engine_model, options=engine_options)
            self._engine_name = transport.name
            self._transport = transport
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
        assert self._timeout is not None
        self._transport = self._transport_class(in_process=False)(
            self._settings,
            http_client=http_client,
            timeout=self._timeout,
            max_retries=self._max_retries,
            limits=self._limits,
            proxy=proxy,
            default_headers=default_headers,
            default_query=default_query,
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
        if self._timeout is None:
            from ._network import make_timeout

            self._timeout = make_timeout(NOT_GIVEN)
        return self._timeout

    def _prepare(self, endpoint: Endpoint, arguments: Mapping[str, Any]) -> Call:
        """The checked call of a method's arguments (blocking: it reads the input images)."""
        return prepare_call(endpoint, arguments, self._transport.target)

    @staticmethod
    def _result(call: Call, reply: Reply) -> ImagesResult:
        return ImagesResult(
            reply.response,
            model=reply.model,
            prompt=call.prompt,
            request_id=reply.headers.get("x-request-id"),
            requested_size=call.size,
            downloader=reply.downloader,
            headers=reply.headers,
            encoded=reply.images,
        )

    @staticmethod
    def _stream_options(call: Call, events: Events[Any]) -> dict[str, Any]:
        """What a stream object is made with, besides its events."""
        return {
            "close": events.close,
            "model": events.model,
            "prompt": call.prompt,
            "request_id": events.request_id,
            "requested_size": call.size,
        }

    def __repr__(self) -> str:
        name = type(self).__name__
        settings = self._settings
        if settings is None:
            return f"{name}(engine={self._engine_name!r})"
        # Not `settings.secrets`, which also holds a base URL's password.
        key = "***" if settings.api_key or (settings.azure and settings.azure.ad_token) else None
        azure = f", azure_deployment={settings.azure.deployment!r}" if settings.azure else ""
        return (
            f"{name}(base_url={settings.shown_url!r}, api_key={key!r}{azure}, "
            f"max_retries={self._max_retries})"
        )


class Client(_BaseClient["httpx2.Client", Transport]):
    """A synchronous Images API client; see the module docstring. Use it as a context manager
    or call `close()` to release its connections (and an engine it loaded)."""

    @staticmethod
    def _transport_class(in_process: bool) -> type[Any]:
        if in_process:
            from ._inprocess import EngineTransport

            return EngineTransport
        from ._http import HTTPTransport

        return HTTPTransport

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, call: Call) -> ImagesResult | ImageStream:
        if not call.stream:
            return self._result(call, self._transport.send(call))
        events = self._transport.stream(call)
        return ImageStream(events.events, **self._stream_options(call, events))

    # The return type follows `stream` and `partial_images` (see `_params`).
    @overload
    def generate(self, prompt: str, **params: Unpack[GenerateParams]) -> ImagesResult: ...
    @overload
    def generate(self, prompt: str, **params: Unpack[GenerateStreamParams]) -> ImageStream: ...
    @overload
    def generate(
        self, prompt: str, **params: Unpack[GenerateAnyParams]
    ) -> ImagesResult | ImageStream: ...
    def generate(
        self, prompt: str, **params: Unpack[GenerateAnyParams]
    ) -> ImagesResult | ImageStream:
        """Create images from a prompt (`POST /images/generations`).

        Returns an `ImagesResult`, or an `ImageStream` when `stream=True` or `partial_images`
        > 0 (partial images only come in a stream). Type checkers see `ImagesResult` when
        neither is given (or `partial_images=0`), `ImageStream` with `stream=True`, and the union
        otherwise (`partial_images` without `stream=True`, `stream` a `bool` variable): pass
        `stream=True` along with `partial_images`, or narrow with `isinstance`.
        """
        return self._run(self._prepare("generations", {"prompt": prompt, **params}))

    @overload
    def edit(self, image: Images, prompt: str, **params: Unpack[EditParams]) -> ImagesResult: ...
    @overload
    def edit(
        self, image: Images, prompt: str, **params: Unpack[EditStreamParams]
    ) -> ImageStream: ...
    @overload
    def edit(
        self, image: Images, prompt: str, **params: Unpack[EditAnyParams]
    ) -> ImagesResult | ImageStream: ...
    def edit(
        self, image: Images, prompt: str, **params: Unpack[EditAnyParams]
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
        return self._run(self._prepare("edits", {"image": image, "prompt": prompt, **params}))

    def create_variation(
        self, image: ImageInput, **params: Unpack[VariationParams]
    ) -> ImagesResult:
        """Make variations of one image (`POST /images/variations`; dall-e-2 by default)."""
        call = self._prepare("variations", {"image": image, **params})
        return self._result(call, self._transport.send(call))
