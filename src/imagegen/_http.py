"""HTTP to an Images API server with httpx2: `HTTPTransport`, for `Client`, and downloads.

An attempt sends the request and reads the answer (unless it is a stream) within its plan;
`retry_loop` repeats it while the answer is one to retry (see `_retry`), so retries wrap the
sending of a request up to its status line and, for non-streaming calls and image downloads,
its body; a stream is never retried once images flow. What it shares with
`AsyncHTTPTransport` (`_async_http`) is in `HTTPBase` (`_http_base`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from typing import Any

import httpx2

from ._answers import Answer, Body, Plan, failure
from ._config import Settings
from ._downloads import private_allowed
from ._errors import APIResponseError
from ._http_base import HTTPBase, hint_retired
from ._models import WireEvent
from ._network import Deadline, install, iter_within, make_timeout, within
from ._request import Call
from ._retry import Failure, retry_loop
from ._streaming import iter_events, iter_lines
from ._transport import Events, Reply
from ._types import NotGiven

__all__ = ["HTTPTransport", "shared_downloader"]

_MAX_REDIRECTS = 10


class HTTPTransport(HTTPBase):
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
        """A URL result's bytes, read whole inside the retry loop, like an API answer: a
        download that breaks off partway (the image is paid for, and its URL stays valid for an
        hour) is tried again, and whoever writes the file gets all of it or nothing. An image
        is a few megabytes (at most `max_image_size`), less than the base64 answer of a
        `b64_json` call holds in memory anyway.

        Results outlive their client (`with Client() as c: r = c.generate(...)`, then
        `r.save()`): once the client is closed, a short-lived one with the same settings works.
        """
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
