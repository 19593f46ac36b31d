"""HTTP to an Images API server with httpx2: URLs, headers, retries, error mapping, streams.

`HTTPTransport` and `AsyncHTTPTransport` mirror each other; what they share (URL building,
headers, turning answers and httpx2 exceptions into imagegen's errors) lives in `_HTTPBase`, so
the two differ only where one awaits. Retries wrap the sending of a request up to its status
line and, for non-streaming calls and image downloads, its body; a stream is never retried once
images flow.

Proxies (the `proxy` argument, else HTTPS_PROXY / HTTP_PROXY / ALL_PROXY with NO_PROXY) are
checked before a client is built, and a failure to connect through one names the proxy and the
setting it came from rather than the server behind it.

Secrets (API key, Entra ID token, proxy passwords) are scrubbed from every message built here,
and no error raised here chains to httpx2's exception (as `__cause__` or `__context__`): its
`request` holds the request's headers, the key among them, and logging or error-reporting tools
walk that chain. The message keeps httpx2's exception type and text, redacted.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import ssl
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import httpx2
from pydantic import ValidationError

try:
    # Private helpers, used only so that errors can blame the right proxy: if a release of
    # httpx2 moves them, requests still work and errors just name the server.
    from httpx2._utils import URLPattern, get_environment_proxies

    _CAN_ROUTE = True
except ImportError:  # pragma: no cover - depends on the installed httpx2
    _CAN_ROUTE = False

from ._config import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Settings, redacted_url
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APITimeoutError,
    ConfigurationError,
    InvalidRequestError,
    MissingDependencyError,
    make_status_error,
    redact,
)
from ._headers import header_problem
from ._models import CompletedEvent, ImagesResponse
from ._request import PATHS, Call, form_fields, multipart_files
from ._retry import AttemptFailed, async_retrying, parse_retry_after, retrying, status_failure
from ._streaming import StreamContext, WireEvent, aiter_events, embedded_error, iter_events
from ._types import NotGiven
from ._version import __version__

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "make_timeout", "shared_downloader"]

_T = TypeVar("_T")
_MAX_REDIRECTS = 10

USER_AGENT = f"imagegen/{__version__} (python; httpx2/{httpx2.__version__})"
_PROXY_VARS = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
# The schemes `httpx2.Proxy` accepts; socks5 and socks5h also need the socksio package.
_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def make_timeout(value: Any) -> httpx2.Timeout:
    """The client's timeout from the caller's value.

    Not given: 600 s to answer, 10 s to connect. `None` or `0`: no limit on the answer (as
    the seeds' `TimeoutSec 0`); connecting still gives up after 10 s, since a dead host or proxy
    never answers. A number: that many seconds. An `httpx2.Timeout` is used as it is.
    """
    if isinstance(value, NotGiven):
        return httpx2.Timeout(DEFAULT_TIMEOUT, connect=DEFAULT_CONNECT_TIMEOUT)
    if isinstance(value, httpx2.Timeout):
        return value
    if value is None or (isinstance(value, (int, float)) and value == 0):
        return httpx2.Timeout(None, connect=DEFAULT_CONNECT_TIMEOUT)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or not math.isfinite(value)
    ):
        raise ConfigurationError(
            f"Invalid timeout {value!r}: give seconds as a positive number, or 0 / None for no "
            "limit (--timeout)."
        )
    seconds = float(value)
    return httpx2.Timeout(seconds, connect=min(DEFAULT_CONNECT_TIMEOUT, seconds))


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # Loading the trust store takes tens of milliseconds; clients in one process share it.
    # The arguments only key the cache: httpx2 reads the same variables itself.
    return httpx2.create_ssl_context(trust_env=True)


def _proxy_secrets(proxy: str | None) -> tuple[str, ...]:
    found = []
    for url in (proxy, *(os.environ.get(name) for name in _PROXY_VARS)):
        if url:
            with contextlib.suppress(ValueError):
                password = urlsplit(url).password
                if password:
                    found.append(password)
    return tuple(found)


@dataclass(frozen=True)
class _Proxy:
    url: str
    source: str  # `--proxy`, or the environment variable that set it

    def check(self) -> None:
        """Refuse a URL that httpx2 would reject with a bare ValueError or ImportError (which
        names `httpx[socks]`, not our httpx2), or that could only fail when connecting."""
        shown = redacted_url(self.url)
        example = (
            "use a URL such as 'http://proxy.example:3128' (httpx2 supports http://, https://, "
            "socks5:// and socks5h:// proxies)"
        )
        try:
            parsed = httpx2.URL(self.url)
        except httpx2.InvalidURL as exc:
            detail = redact(str(exc), *_proxy_secrets(self.url))
            problem = f"it is not a valid URL ({detail})"
        else:
            if not parsed.scheme:
                problem = "it has no scheme"
            elif parsed.scheme not in _PROXY_SCHEMES:
                problem = f"{parsed.scheme}:// is not a proxy scheme"
            elif any(char.isspace() for char in self.url):
                problem = "it contains a space"
            elif not parsed.host:
                problem = "it names no host"
            elif parsed.scheme.startswith("socks") and importlib.util.find_spec("socksio") is None:
                raise MissingDependencyError(
                    f"The SOCKS proxy {shown!r} ({self.source}) needs the socksio package: "
                    "pip install 'httpx2[socks]'."
                )
            else:
                return
        raise ConfigurationError(
            f"Invalid proxy URL {shown!r} ({self.source}): {problem}; {example}."
        )


def _env_proxy_source(key: str, url: str) -> str:
    scheme = key.removesuffix("://")
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        value = os.environ.get(name, "")
        if value and url in (value, f"http://{value}"):  # httpx2 adds http:// to a bare host
            return name
    return f"{scheme.upper()}_PROXY"


def _proxy_routes(proxy: str | None) -> list[tuple[URLPattern, _Proxy | None]]:
    """Which proxy each URL goes through, built as httpx2 builds its mounts (the proxy
    argument, else the environment with NO_PROXY), so that errors can blame the proxy."""
    if not _CAN_ROUTE:
        return []
    routes: dict[URLPattern, _Proxy | None] = {}
    if proxy is not None:
        routes[URLPattern("all://")] = _Proxy(proxy, "--proxy")
    else:
        for key, url in get_environment_proxies().items():
            try:
                pattern = URLPattern(key)
            except (ValueError, httpx2.InvalidURL) as exc:
                raise ConfigurationError(
                    f"Invalid NO_PROXY entry {key!r} in the environment: {exc}; list host names, "
                    "IP addresses or networks such as 10.0.0.0/8, separated by commas."
                ) from None
            routes[pattern] = None if url is None else _Proxy(url, _env_proxy_source(key, url))
    return sorted(routes.items())


def _tls_failure(exc: BaseException) -> bool:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.append(current)
        current = current.__cause__ or current.__context__
    return False


def _origin(url: str | httpx2.URL) -> tuple[str, str, int | None]:
    parsed = httpx2.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


class _HTTPBase:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: httpx2.Timeout,
        max_retries: int,
        proxy: str | None,
        default_headers: Mapping[str, str] | None,
        default_query: Mapping[str, str] | None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self.proxy = proxy
        self.secrets = settings.secrets + _proxy_secrets(proxy)
        # Filled in when this transport makes its own httpx2 client; a caller's client routes
        # as it was told, which this transport cannot see.
        self._routes: list[tuple[URLPattern, _Proxy | None]] = []
        for name, value in (default_headers or {}).items():
            problem = header_problem(name, value)
            if problem is not None:
                raise ConfigurationError(
                    f"Invalid header {name!r} in default_headers: {problem}.",
                    param="default_headers",
                )
        self.headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **settings.auth_headers(),
            **(default_headers or {}),
        }
        self.query: dict[str, str] = dict(default_query or {})
        if settings.azure is not None:
            self.query["api-version"] = settings.azure.api_version

    def _client_options(self) -> dict[str, Any]:
        """Options for an httpx2 client of this transport's own, after checking its proxies."""
        self._routes = _proxy_routes(self.proxy)
        for _, proxy in self._routes:
            if proxy is not None:
                proxy.check()
        return {
            "timeout": self.timeout,
            "proxy": self.proxy,
            "trust_env": True,
            "verify": _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        }

    def url(self, call: Call) -> str:
        azure = self.settings.azure
        if azure is None:
            return self.settings.base_url + PATHS[call.endpoint]
        if call.endpoint == "variations":
            # Azure lists variations outside its deployment routes.
            return f"{azure.endpoint}/openai{PATHS['variations']}"
        deployment = azure.deployment or call.model or ""
        if deployment in ("", ".", ".."):
            # Quoting leaves dots alone, and `/deployments/../images` is another route.
            raise InvalidRequestError(
                f"Invalid model {deployment!r}: with Azure, the model names the deployment.",
                param="model",
            )
        return (
            f"{azure.endpoint}/openai/deployments/{quote(deployment, safe='')}"
            + PATHS[call.endpoint]
        )

    def _request_args(self, call: Call) -> dict[str, Any]:
        headers: dict[str, str] = dict(self.headers)
        if call.stream:
            headers["Accept"] = "text/event-stream"
        for name, value in call.extra_headers.items():
            if value is None:
                headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
            else:
                headers[name] = value
        args: dict[str, Any] = {
            "headers": headers,
            "timeout": self.timeout
            if isinstance(call.timeout, NotGiven)
            else make_timeout(call.timeout),
        }
        query = {**self.query, **call.extra_query}
        if query:  # each merge re-parses the URL, a third of the client's own time
            args["params"] = query
        if call.endpoint == "generations" or call.json_edit:
            args["json"] = call.json_body()
        else:
            args["data"] = form_fields(call.body())
            args["files"] = multipart_files(call)
        return args

    def _download_headers(self, url: str) -> dict[str, str]:
        # Credentials only go back to the API's own origin (a server hosting its own URLs);
        # OpenAI's URLs are pre-signed blob storage links that must not see the key.
        headers = {"User-Agent": USER_AGENT}
        if _origin(url) == _origin(self.settings.base_url):
            headers.update(self.settings.auth_headers())
        return headers

    def _proxy_for(self, url: httpx2.URL) -> _Proxy | None:
        for pattern, proxy in self._routes:  # sorted as httpx2 sorts its mounts
            if pattern.matches(url):
                return proxy
        return None

    def _transport_error(self, exc: httpx2.HTTPError, url: str | httpx2.URL) -> APIError:
        detail = redact(str(exc) or type(exc).__name__, *self.secrets)
        parsed = httpx2.URL(str(url))
        target = redact(str(parsed.copy_with(query=None)), *self.secrets)
        proxy = self._proxy_for(parsed)
        error: APIError
        connecting = isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout))
        if proxy is not None and connecting and not _tls_failure(exc):
            # Through a proxy, the client only connects to the proxy: a TLS failure comes
            # from the target (through the tunnel), every other connect failure from the proxy.
            shown = redact(redacted_url(proxy.url), *self.secrets)
            where = f"the proxy {shown} ({proxy.source})"
            if isinstance(exc, httpx2.ConnectTimeout):
                error = APITimeoutError(
                    f"No answer in time from {where} on the way to {target} "
                    f"({type(exc).__name__}: {detail}). Check that the proxy is running."
                )
            else:
                error = APIConnectionError(
                    f"Could not reach {where} on the way to {target}: {type(exc).__name__}: "
                    f"{detail}. Check that the proxy is running and its address is right."
                )
        elif proxy is not None and isinstance(exc, httpx2.ProxyError):
            shown = redact(redacted_url(proxy.url), *self.secrets)
            error = APIConnectionError(
                f"The proxy {shown} ({proxy.source}) could not connect to {target}: "
                f"{type(exc).__name__}: {detail}."
            )
        elif isinstance(exc, httpx2.TimeoutException):
            error = APITimeoutError(
                f"No answer from {target} in time ({type(exc).__name__}: {detail}). Raise the "
                "timeout (--timeout) or try again later."
            )
        else:
            error = APIConnectionError(
                f"Could not talk to {target}: {type(exc).__name__}: {detail}."
            )
        return error

    # The helpers below raise imagegen's error after the `except` block has ended, so that
    # Python records no `__context__` pointing at httpx2's exception.

    def _guarded(self, items: Iterator[_T], url: str | httpx2.URL) -> Iterator[_T]:
        """`items`, with httpx2's errors while reading them turned into imagegen's."""
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except httpx2.HTTPError as exc:
                error = self._transport_error(exc, url)
                break
            yield item
        raise error

    async def _aguarded(self, items: AsyncIterator[_T], url: str | httpx2.URL) -> AsyncIterator[_T]:
        while True:
            try:
                item = await items.__anext__()
            except StopAsyncIteration:
                return
            except httpx2.HTTPError as exc:
                error = self._transport_error(exc, url)
                break
            yield item
        raise error

    def _status_failure(self, response: httpx2.Response) -> AttemptFailed:
        try:
            text = response.text
        except httpx2.ResponseNotRead:  # the body broke off; the status still counts
            text = ""
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = None
        error = make_status_error(
            response.status_code,
            body,
            request_id=response.headers.get("x-request-id"),
            retry_after=parse_retry_after(response.headers),
            text=text[:1000],
            secrets=self.secrets,
            headers=response.headers,
        )
        location = response.headers.get("location")
        if response.is_redirect and location:
            # API calls do not follow redirects (a POST body and its key would go elsewhere).
            error.message += f" The server redirects to {location}: use that as the base URL."
            error.args = (error.message,)
        return status_failure(error, response.headers)

    def _parse(self, response: httpx2.Response) -> ImagesResponse:
        request_id = response.headers.get("x-request-id")
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("error"):
            raise embedded_error(data, StreamContext(request_id, self.secrets))
        try:
            return ImagesResponse.model_validate(data)
        except ValidationError:
            snippet = redact(response.text[:200], *self.secrets)
            raise APIResponseError(
                f"The server answered {response.status_code} with a body that is not an Images "
                f"API response: {snippet!r}",
                request_id=request_id,
            ) from None

    def _json_as_events(self, call: Call, response: httpx2.Response) -> list[WireEvent]:
        # A server that cannot stream may answer the whole JSON body instead.
        parsed = self._parse(response)
        kind = "image_edit.completed" if call.endpoint == "edits" else "image_generation.completed"
        return [
            CompletedEvent(
                type=kind,
                b64_json=item.b64_json or "",
                created_at=parsed.created,
                size=parsed.size,
                quality=parsed.quality,
                background=parsed.background,
                output_format=parsed.output_format,
                usage=parsed.usage if index == len(parsed.data) - 1 else None,
            )
            for index, item in enumerate(parsed.data)
        ]


class HTTPTransport(_HTTPBase):
    """Synchronous transport over an `httpx2.Client`."""

    def __init__(
        self, settings: Settings, *, http_client: httpx2.Client | None = None, **options: Any
    ) -> None:
        super().__init__(settings, **options)
        self._owns_client = http_client is None
        self.client = http_client or httpx2.Client(**self._client_options())
        # Tests replace this to observe waits without sleeping; nothing else does.
        self._sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def _attempt(
        self, request: httpx2.Request, stream: bool, client: httpx2.Client
    ) -> httpx2.Response:
        try:
            response = client.send(request, stream=stream, follow_redirects=False)
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, request.url)
        else:
            if response.is_success or (request.method == "GET" and response.is_redirect):
                return response  # a download follows its redirects itself (`stream_url`)
            try:
                response.read()
            except httpx2.HTTPError:
                pass
            finally:
                response.close()
            raise self._status_failure(response)
        raise AttemptFailed(error, retry=True)

    def _send(
        self, request: httpx2.Request, *, stream: bool, client: httpx2.Client | None = None
    ) -> httpx2.Response:
        loop = retrying(self.max_retries, lambda seconds: self._sleep(seconds))
        try:
            return loop(self._attempt, request, stream, client or self.client)
        except AttemptFailed as failure:
            error = failure.error
        raise error

    def _read(self, response: httpx2.Response, url: str | httpx2.URL) -> None:
        try:
            response.read()
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, url)
        else:
            return
        finally:
            response.close()
        raise error

    def build(self, call: Call) -> httpx2.Request:
        request = self.client.build_request("POST", self.url(call), **self._request_args(call))
        request.read()  # a multipart body becomes bytes, so every retry resends the same
        return request

    def images(self, call: Call) -> tuple[ImagesResponse, httpx2.Headers]:
        """Send a non-streaming call; return the parsed answer and the response's headers."""
        response = self._send(self.build(call), stream=False)
        return self._parse(response), response.headers

    def open_stream(self, call: Call) -> tuple[Iterator[WireEvent], Callable[[], None], str | None]:
        """Start a streaming call; return its events, a close function and the request id."""
        request = self.build(call)
        response = self._send(request, stream=True)
        request_id = response.headers.get("x-request-id")
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            self._read(response, request.url)
            return iter(self._json_as_events(call, response)), response.close, request_id

        context = StreamContext(request_id, self.secrets)

        def events() -> Generator[WireEvent, None, None]:
            try:
                yield from self._guarded(iter_events(response.iter_lines(), context), request.url)
            finally:
                response.close()

        generator = events()

        def close() -> None:
            generator.close()
            response.close()

        return generator, close, request_id

    @contextlib.contextmanager
    def stream_url(self, url: str) -> Iterator[Iterator[bytes]]:
        """Download a URL result; yield its body (as an iterator of chunks).

        The whole body is read inside the retry loop, like an API answer: a download that
        breaks off partway (the image is paid for, and its URL stays valid for an hour) is
        tried again, and whoever writes the file gets all of it or nothing. An image is a few
        megabytes, less than the base64 answer of a `b64_json` call holds in memory anyway.

        Results outlive their client (`with Client() as c: r = c.generate(...)`, then
        `r.save()`): once the client is closed, a short-lived one with the same settings works.
        """
        with contextlib.ExitStack() as stack:
            client = self.client
            if client.is_closed:
                client = stack.enter_context(httpx2.Client(**self._client_options()))
            # Redirects are followed here, not by httpx2, which keeps headers such as Azure's
            # `api-key` on a redirect to another origin: each hop gets credentials only if it
            # is on the API's origin.
            for _ in range(_MAX_REDIRECTS + 1):
                request = client.build_request(
                    "GET", url, headers=self._download_headers(url), timeout=self.timeout
                )
                response = self._send(request, stream=False, client=client)
                target = response.next_request
                if not response.is_redirect or target is None:
                    break
                url = str(target.url)
            else:
                raise APIResponseError(
                    f"Downloading the image was redirected more than {_MAX_REDIRECTS} times."
                )
            yield iter((response.content,))


class AsyncHTTPTransport(_HTTPBase):
    """Asynchronous transport over an `httpx2.AsyncClient`."""

    def __init__(
        self, settings: Settings, *, http_client: httpx2.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(settings, **options)
        self._options = options
        self._owns_client = http_client is None
        self.client = http_client or httpx2.AsyncClient(**self._client_options())
        self._sleep: Callable[[float], Any] = anyio.sleep
        self._downloader: HTTPTransport | None = None

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
        if self._downloader is not None:
            self._downloader.close()

    def downloader(self) -> HTTPTransport:
        """A synchronous twin with the same settings, for `result.save()` of URL results."""
        if self._downloader is None:
            self._downloader = HTTPTransport(self.settings, **self._options)
        return self._downloader

    async def _attempt(self, request: httpx2.Request, stream: bool) -> httpx2.Response:
        try:
            response = await self.client.send(request, stream=stream, follow_redirects=False)
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, request.url)
        else:
            if response.is_success:
                return response
            try:
                await response.aread()
            except httpx2.HTTPError:
                pass
            finally:
                await response.aclose()
            raise self._status_failure(response)
        raise AttemptFailed(error, retry=True)

    async def _send(self, request: httpx2.Request, *, stream: bool) -> httpx2.Response:
        loop = async_retrying(self.max_retries, lambda seconds: self._sleep(seconds))
        try:
            return await loop(self._attempt, request, stream)
        except AttemptFailed as failure:
            error = failure.error
        raise error

    async def build(self, call: Call) -> httpx2.Request:
        request = self.client.build_request("POST", self.url(call), **self._request_args(call))
        await request.aread()
        return request

    async def images(self, call: Call) -> tuple[ImagesResponse, httpx2.Headers]:
        response = await self._send(await self.build(call), stream=False)
        return self._parse(response), response.headers

    async def open_stream(
        self, call: Call
    ) -> tuple[AsyncIterator[WireEvent], Callable[[], Any], str | None]:
        request = await self.build(call)
        response = await self._send(request, stream=True)
        request_id = response.headers.get("x-request-id")
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            error: APIError | None = None
            try:
                await response.aread()
            except httpx2.HTTPError as exc:
                error = self._transport_error(exc, request.url)
            finally:
                await response.aclose()
            if error is not None:
                raise error
            completed = self._json_as_events(call, response)

            async def replay() -> AsyncIterator[WireEvent]:
                for event in completed:
                    yield event

            return replay(), response.aclose, request_id

        context = StreamContext(request_id, self.secrets)

        async def events() -> AsyncGenerator[WireEvent, None]:
            try:
                lines = self._aguarded(response.aiter_lines(), request.url)
                async for event in aiter_events(lines, context):
                    yield event
            finally:
                await response.aclose()

        generator = events()

        async def close() -> None:
            await generator.aclose()
            await response.aclose()

        return generator, close, request_id


_shared: HTTPTransport | None = None


def shared_downloader() -> HTTPTransport:
    """For results built by hand (no client): plain settings, environment proxies."""
    global _shared
    if _shared is None:
        _shared = HTTPTransport(
            Settings(base_url="http://localhost"),
            timeout=make_timeout(NotGiven()),
            max_retries=2,
            proxy=None,
            default_headers=None,
            default_query=None,
        )
    return _shared
