"""What `HTTPTransport` and `AsyncHTTPTransport` share: everything but the I/O.

`HTTPBase` holds a transport's settings and turns a `Call` into an httpx2 request's parts (its
URL, headers and query, `_wire` giving the body), plans each attempt within the call's limits
(see `_answers`), and maps httpx2's exceptions and answers to imagegen's errors and results.

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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx2

from ._answers import Answer, Plan, images, images_as_events
from ._capabilities import retirement_hint
from ._config import Limits, Settings
from ._downloads import reach_for
from ._errors import (
    APIError,
    APIStatusError,
    ConfigurationError,
    ImagegenError,
    InvalidRequestError,
    redact,
    redact_error,
)
from ._headers import header_problem
from ._models import WireEvent
from ._network import Deadline, make_timeout
from ._proxies import Proxy, connection_error, proxy_routes, proxy_secrets
from ._request import Call, Target
from ._retry import Retries
from ._streaming import StreamContext
from ._transport import Events, Reply
from ._types import NotGiven
from ._version import __version__
from ._wire import PATHS, request_body

if TYPE_CHECKING:
    from httpx2._utils import URLPattern

    from ._results import Downloader

__all__ = ["USER_AGENT", "HTTPBase", "hint_retired"]

_T = TypeVar("_T")
_It = TypeVar("_It", Iterator[WireEvent], AsyncIterator[WireEvent])

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


class HTTPBase:
    """Settings, request parts, plans and error mapping of an HTTP transport."""

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
