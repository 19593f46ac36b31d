"""HTTP to an Images API server with httpx2: URLs, headers, retries, error mapping, streams.

`HTTPTransport` and `AsyncHTTPTransport` mirror each other; what they share (URL building,
headers, reading bodies within their limits, turning answers and httpx2 exceptions into
imagegen's errors) lives in `_HTTPBase`, so the two differ only where one awaits. Retries wrap
the sending of a request up to its status line and, for non-streaming calls and image
downloads, its body; a stream is never retried once images flow.

Limits: each attempt ends within the timeout and each call within `(max_retries + 1) ×
timeout`, whatever pace the server keeps (see `_network`); an answer is read into memory only
up to `max_response_size`, a downloaded image up to `max_image_size` and a stream event up to
one such image in base64 (`Limits`), so a server sending gigabytes is cut off at the limit
rather than buffered. Downloads follow `_downloads`' rules for schemes and addresses.

Proxies are checked before a client is built, and a failure to connect through one names the
proxy and the setting it came from rather than the server behind it (see `_proxies`).

Secrets (API key, Entra ID token, URL and proxy passwords) are scrubbed from every message built
here and from every attribute of every error leaving a transport (`redact_error`), and no error
raised here chains to httpx2's exception (as `__cause__` or `__context__`): its `request` holds
the request's headers, the key among them, and logging or error-reporting tools walk that
chain. The message keeps httpx2's exception type and text, redacted.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx2

from ._answers import Answer, Body, Plan, failure, images, images_as_events
from ._capabilities import retirement_hint
from ._config import Limits, Settings
from ._downloads import private_allowed, reach_for
from ._errors import (
    APIError,
    APIResponseError,
    APIStatusError,
    ConfigurationError,
    ImagegenError,
    InvalidRequestError,
    redact,
    redact_error,
)
from ._headers import header_problem
from ._models import WireEvent
from ._network import Deadline, aiter_within, install, iter_within, make_timeout, within
from ._proxies import Proxy, connection_error, proxy_routes, proxy_secrets
from ._request import Call, Target
from ._retry import Failure, Retries, aretry_loop, retry_loop
from ._streaming import StreamContext, aiter_events, aiter_lines, iter_events, iter_lines
from ._transport import Events, Reply
from ._types import NotGiven
from ._version import __version__
from ._wire import PATHS, request_body

if TYPE_CHECKING:
    from httpx2._utils import URLPattern

    from ._results import Downloader

__all__ = ["AsyncHTTPTransport", "HTTPTransport", "hint_retired", "shared_downloader"]

_T = TypeVar("_T")
_It = TypeVar("_It", Iterator[WireEvent], AsyncIterator[WireEvent])
_MAX_REDIRECTS = 10

USER_AGENT = f"imagegen/{__version__} (python; httpx2/{httpx2.__version__})"


@functools.lru_cache(maxsize=4)
def _ssl_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # Loading the trust store takes tens of milliseconds; clients in one process share it.
    # The arguments only key the cache: httpx2 reads the same variables itself.
    return httpx2.create_ssl_context(trust_env=True)


def _origin(url: str | httpx2.URL) -> tuple[str, str, int | None]:
    parsed = httpx2.URL(str(url))
    return parsed.scheme, parsed.host, parsed.port


def _has_login(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return bool(parts.username or parts.password)
    except ValueError:
        return False


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
        limits: Limits | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self.limits = limits or Limits()
        self.proxy = proxy
        self.secrets = settings.secrets + proxy_secrets(proxy)
        # Filled in when this transport makes its own httpx2 client; a caller's client routes
        # as it was told, which this transport cannot see.
        self._routes: list[tuple[URLPattern, Proxy | None]] = []
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
        self._check_one_authorization(self.headers, "default_headers")
        self.query: dict[str, str] = dict(default_query or {})
        if settings.azure is not None:
            self.query["api-version"] = settings.azure.api_version

    def _check_one_authorization(self, headers: Mapping[str, str], source: str) -> None:
        # httpx2 replaces an Authorization header with Basic authentication from the URL's
        # `user:password@`; `_config` refuses a key with such a URL, this one a header.
        if any(name.lower() == "authorization" for name in headers) and _has_login(
            self.settings.base_url
        ):
            raise ConfigurationError(
                f"An Authorization header in {source} and a user name and password in the base "
                f"URL {self.settings.shown_url!r}, which go in that same header: one request "
                "cannot carry both. Drop one of the two.",
                param=source,
            )

    def _client_options(self) -> dict[str, Any]:
        """Options for an httpx2 client of this transport's own, after checking its proxies."""
        self._routes = proxy_routes(self.proxy)
        for _, proxy in self._routes:
            if proxy is not None:
                proxy.check()
        return {
            "timeout": self.timeout,
            "proxy": self.proxy,
            "trust_env": True,
            "verify": _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        }

    def _plan(self, request: httpx2.Request, *, stream: bool) -> Plan:
        """An API call's plan: its answer read up to `max_response_size`."""
        timeouts = dict(request.extensions.get("timeout") or {})
        return Plan(
            timeouts=timeouts,
            call=self._call_deadline(timeouts),
            stream=stream,
            limit=self.limits.max_response_size,
            what=lambda: f"The answer from {self._shown(request.url)}",
            setting="max_response_size (--max-response-mb)",
        )

    def _retries(self, plan: Plan) -> Retries:
        return Retries(self.max_retries, max_wait=self.limits.max_retry_wait, deadline=plan.call)

    def _call_deadline(self, timeouts: Mapping[str, float | None]) -> Deadline | None:
        attempt = timeouts.get("read")
        return Deadline.after(None if attempt is None else attempt * (self.max_retries + 1))

    def _download_plan(self, url: str, call: Deadline | None, private: bool) -> Plan:
        """A download's plan: the image read up to `max_image_size`, its address checked."""
        reach = reach_for(url, private=private)
        timeouts = self.timeout.as_dict()
        return Plan(
            timeouts=timeouts,
            call=call or self._call_deadline(timeouts),
            stream=False,
            limit=self.limits.max_image_size,
            what=lambda: f"The image at {reach.url}",
            setting="max_image_size (--max-image-mb)",
            reach=reach,
        )

    def _shown(self, url: str | httpx2.URL) -> str:
        return redact(str(httpx2.URL(str(url)).copy_with(query=None)), *self.secrets)

    @contextlib.contextmanager
    def _scrubbed(self) -> Iterator[None]:
        """Scrub every attribute of an imagegen error leaving the block (see `_errors`)."""
        try:
            yield
        except ImagegenError as error:
            redact_error(error, *self.secrets)
            raise

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
        added = {name: value for name, value in call.extra_headers.items() if value is not None}
        self._check_one_authorization(added, "extra_headers")
        args: dict[str, Any] = {
            "headers": headers,
            "timeout": self.timeout
            if isinstance(call.timeout, NotGiven)
            else make_timeout(call.timeout),
        }
        query = {**self.query, **call.extra_query}
        if query:  # each merge re-parses the URL, a third of the client's own time
            args["params"] = query
        return {**args, **request_body(call)}

    def _download_headers(self, url: str) -> dict[str, str]:
        # Credentials only go back to the API's own origin (a server hosting its own URLs);
        # OpenAI's URLs are pre-signed blob storage links that must not see the key.
        headers = {"User-Agent": USER_AGENT}
        if _origin(url) == _origin(self.settings.base_url):
            headers.update(self.settings.auth_headers())
        return headers

    def _transport_error(self, exc: httpx2.HTTPError, url: str | httpx2.URL) -> APIError:
        return connection_error(exc, url, routes=self._routes, secrets=self.secrets)

    # The helpers below raise imagegen's error after the `except` block has ended, so that
    # Python records no `__context__` pointing at httpx2's exception.

    def _guarded(self, items: Iterator[_T], url: str | httpx2.URL) -> Iterator[_T]:
        """`items`, with httpx2's errors while reading them turned into imagegen's."""
        error: APIError | None = None
        try:
            yield from items
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, url)
        if error is not None:
            raise error

    async def _aguarded(self, items: AsyncIterator[_T], url: str | httpx2.URL) -> AsyncIterator[_T]:
        error: APIError | None = None
        try:
            async for item in items:
                yield item
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, url)
        if error is not None:
            raise error

    def _is_answer(self, request: httpx2.Request, response: httpx2.Response) -> bool:
        # A download follows its redirects itself (`download`); an API call does not.
        return response.is_success or (request.method == "GET" and response.is_redirect)

    def _is_sse(self, answer: Answer) -> bool:
        return answer.response.headers.get("content-type", "").startswith("text/event-stream")

    def _stream_context(self, answer: Answer) -> StreamContext:
        return StreamContext(answer.request_id, self.secrets, self.limits.max_event_size)

    def _reply(self, call: Call, answer: Answer, downloader: Downloader) -> Reply:
        response = images(answer, self.secrets)
        return Reply(response, call.model, answer.response.headers, downloader=downloader)

    def _whole(
        self, call: Call, answer: Answer, events: Callable[[list[WireEvent]], _It]
    ) -> Events[_It]:
        """A whole JSON answer to a streaming call (a server that cannot stream), as the
        completed events a stream would have carried; `events` makes them an iterator."""
        completed = images_as_events(call.endpoint, answer, self.secrets)
        return Events(events(completed), lambda: None, call.model, answer.request_id)

    @property
    def target(self) -> Target:
        azure = self.settings.azure
        return Target(
            default_model=azure.deployment if azure else None, to_openai=self.settings.is_openai
        )


class HTTPTransport(_HTTPBase):
    """Synchronous transport over an `httpx2.Client`."""

    def __init__(
        self, settings: Settings, *, http_client: httpx2.Client | None = None, **options: Any
    ) -> None:
        super().__init__(settings, **options)
        self._owns_client = http_client is None
        self.client = http_client or self._new_client()

    def _new_client(self) -> httpx2.Client:
        client = httpx2.Client(**self._client_options())
        install(client)
        return client

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def _read(self, answer: Answer, body: Body) -> None:
        """Read the rest of `answer`'s body into `body` (then `answer.body`), within its
        deadline; httpx2's errors are raised as they are."""
        for chunk in iter_within(answer.deadline, answer.response.iter_bytes()):
            if not body.add(chunk):
                break
        answer.body = body.data

    def _exchange(
        self, request: httpx2.Request, plan: Plan, client: httpx2.Client
    ) -> Answer | Failure:
        """One attempt: the request sent and, unless streaming, its answer read."""
        deadline = plan.attempt()
        request.extensions["timeout"] = plan.timeouts_within(deadline)
        with within(deadline, plan.reach):
            response = client.send(request, stream=True, follow_redirects=False)
        answer = Answer(response, bytearray(), deadline)
        try:
            if self._is_answer(request, response):
                if not plan.stream:
                    self._read(answer, Body(response, plan))
                return answer
            error_body = Body(response)
            with contextlib.suppress(httpx2.HTTPError):  # the body broke off; the status counts
                self._read(answer, error_body)
        finally:
            if not (plan.stream and response.is_success):
                response.close()
        return failure(response, error_body.data, self.secrets)

    def _attempt(
        self, request: httpx2.Request, plan: Plan, client: httpx2.Client
    ) -> Answer | Failure:
        try:
            return self._exchange(request, plan, client)
        except httpx2.HTTPError as exc:
            return Failure(self._transport_error(exc, request.url), retry=True)

    def _send(
        self, request: httpx2.Request, plan: Plan, client: httpx2.Client | None = None
    ) -> Answer:
        return retry_loop(
            lambda: self._attempt(request, plan, client or self.client), self._retries(plan)
        )

    def build(self, call: Call) -> httpx2.Request:
        request = self.client.build_request("POST", self.url(call), **self._request_args(call))
        request.read()  # a multipart body becomes bytes, so every retry resends the same
        return request

    def check(self, call: Call) -> None:
        """Nothing is left to check: a server's calls are checked when prepared."""

    def send(self, call: Call) -> Reply:
        """Send a non-streaming call; return its answer."""
        with hint_retired(call.model), self._scrubbed():
            request = self.build(call)
            answer = self._send(request, self._plan(request, stream=False))
            return self._reply(call, answer, self)

    def stream(self, call: Call) -> Events[Iterator[WireEvent]]:
        """Start a streaming call; return its events as they arrive."""
        with hint_retired(call.model), self._scrubbed():
            request = self.build(call)
            plan = self._plan(request, stream=True)
            answer = self._send(request, plan)
            response = answer.response
            if not self._is_sse(answer):
                try:
                    self._read_all(answer, Body(response, plan), request.url)
                finally:
                    response.close()
                return self._whole(call, answer, iter)

        context = self._stream_context(answer)

        def events() -> Generator[WireEvent, None, None]:
            with self._scrubbed():
                try:
                    chunks = iter_within(answer.deadline, response.iter_bytes())
                    lines = iter_lines(self._guarded(chunks, request.url), context.limit)
                    yield from iter_events(lines, context)
                finally:
                    response.close()

        generator = events()

        def close() -> None:
            generator.close()
            response.close()

        return Events(generator, close, call.model, answer.request_id)

    def _read_all(self, answer: Answer, body: Body, url: httpx2.URL) -> None:
        try:
            self._read(answer, body)
        except httpx2.HTTPError as exc:
            error = self._transport_error(exc, url)
        else:
            return
        raise error

    def download(self, url: str) -> bytes:
        """A URL result's bytes, read whole inside the retry loop (see `stream_url`)."""
        with self._scrubbed(), contextlib.ExitStack() as stack:
            client = self.client
            if client.is_closed:
                client = stack.enter_context(self._new_client())
            private = private_allowed(self.limits.private_downloads, self.settings.base_url)
            call: Deadline | None = None
            # Redirects are followed here, not by httpx2, which keeps headers such as Azure's
            # `api-key` on a redirect to another origin: each hop gets credentials only if it
            # is on the API's origin, and each hop's addresses are checked.
            for _ in range(_MAX_REDIRECTS + 1):
                plan = self._download_plan(url, call, private)
                call = plan.call  # one deadline for every hop
                request = client.build_request(
                    "GET", url, headers=self._download_headers(url), timeout=self.timeout
                )
                answer = self._send(request, plan, client)
                target = answer.response.next_request
                if not answer.response.is_redirect or target is None:
                    data = bytes(answer.body)
                    answer.body.clear()
                    return data
                url = str(target.url)
            raise APIResponseError(
                f"Downloading the image was redirected more than {_MAX_REDIRECTS} times."
            )

    @contextlib.contextmanager
    def stream_url(self, url: str) -> Iterator[Iterator[bytes]]:
        """Download a URL result; yield its body (as an iterator of chunks).

        The whole body is read inside the retry loop, like an API answer: a download that
        breaks off partway (the image is paid for, and its URL stays valid for an hour) is
        tried again, and whoever writes the file gets all of it or nothing. An image is a few
        megabytes (at most `max_image_size`), less than the base64 answer of a `b64_json`
        call holds in memory anyway.

        Results outlive their client (`with Client() as c: r = c.generate(...)`, then
        `r.save()`): once the client is closed, a short-lived one with the same settings works.
        """
        yield iter((self.download(url),))


class AsyncHTTPTransport(_HTTPBase):
    """Asynchronous transport over an `httpx2.AsyncClient`."""

    def __init__(
        self, settings: Settings, *, http_client: httpx2.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(settings, **options)
        self._options = options
        self._owns_client = http_client is None
        if http_client is None:
            http_client = httpx2.AsyncClient(**self._client_options())
            install(http_client)
        self.client = http_client
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

    async def _read(self, answer: Answer, body: Body) -> None:
        async for chunk in aiter_within(answer.deadline, answer.response.aiter_bytes()):
            if not body.add(chunk):
                break
        answer.body = body.data

    async def _exchange(self, request: httpx2.Request, plan: Plan) -> Answer | Failure:
        deadline = plan.attempt()
        request.extensions["timeout"] = plan.timeouts_within(deadline)
        with within(deadline):
            response = await self.client.send(request, stream=True, follow_redirects=False)
        answer = Answer(response, bytearray(), deadline)
        try:
            if self._is_answer(request, response):
                if not plan.stream:
                    await self._read(answer, Body(response, plan))
                return answer
            error_body = Body(response)
            with contextlib.suppress(httpx2.HTTPError):
                await self._read(answer, error_body)
        finally:
            if not (plan.stream and response.is_success):
                await response.aclose()
        return failure(response, error_body.data, self.secrets)

    async def _attempt(self, request: httpx2.Request, plan: Plan) -> Answer | Failure:
        try:
            return await self._exchange(request, plan)
        except httpx2.HTTPError as exc:
            return Failure(self._transport_error(exc, request.url), retry=True)

    async def _send(self, request: httpx2.Request, plan: Plan) -> Answer:
        return await aretry_loop(lambda: self._attempt(request, plan), self._retries(plan))

    async def build(self, call: Call) -> httpx2.Request:
        request = self.client.build_request("POST", self.url(call), **self._request_args(call))
        await request.aread()
        return request

    def check(self, call: Call) -> None:
        """Nothing is left to check: a server's calls are checked when prepared."""

    async def send(self, call: Call) -> Reply:
        with hint_retired(call.model), self._scrubbed():
            request = await self.build(call)
            answer = await self._send(request, self._plan(request, stream=False))
            return self._reply(call, answer, self.downloader())

    async def stream(self, call: Call) -> Events[AsyncIterator[WireEvent]]:
        with hint_retired(call.model), self._scrubbed():
            request = await self.build(call)
            plan = self._plan(request, stream=True)
            answer = await self._send(request, plan)
            response = answer.response
            if not self._is_sse(answer):
                error: APIError | None = None
                try:
                    await self._read(answer, Body(response, plan))
                except httpx2.HTTPError as exc:
                    error = self._transport_error(exc, request.url)
                finally:
                    await response.aclose()
                if error is not None:
                    raise error
                return self._whole(call, answer, _replay)

        context = self._stream_context(answer)

        async def events() -> AsyncGenerator[WireEvent, None]:
            with self._scrubbed():
                try:
                    chunks = aiter_within(answer.deadline, response.aiter_bytes())
                    lines = aiter_lines(self._aguarded(chunks, request.url), context.limit)
                    async for event in aiter_events(lines, context):
                        yield event
                finally:
                    await response.aclose()

        generator = events()

        async def close() -> None:
            await generator.aclose()
            await response.aclose()

        return Events(generator, close, call.model, answer.request_id)


async def _replay(events: list[WireEvent]) -> AsyncIterator[WireEvent]:
    for event in events:
        yield event


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


@contextlib.contextmanager
def hint_retired(model: str | None) -> Iterator[None]:
    """A server's `model_not_found` for a model OpenAI has retired gets the date and the
    replacement added to its message (a gateway that forwards to OpenAI answers so)."""
    try:
        yield
    except APIStatusError as exc:
        hint = retirement_hint(model)
        if hint and exc.code == "model_not_found" and hint not in exc.message:
            exc.message = f"{exc.message} {hint}"
            exc.args = (exc.message,)
        raise
