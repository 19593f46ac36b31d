"""`AsyncHTTPTransport`: `HTTPTransport` for `AsyncClient`, the same steps awaited."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx2

from ._answers import Answer, Body, Plan, failure
from ._config import Settings
from ._errors import APIError
from ._http import HTTPTransport
from ._http_base import HTTPBase, hint_retired
from ._models import WireEvent
from ._network import aiter_within, install, within
from ._request import Call
from ._retry import Failure, aretry_loop
from ._streaming import aiter_events, aiter_lines
from ._transport import Events, Reply

__all__ = ["AsyncHTTPTransport"]


class AsyncHTTPTransport(HTTPBase):
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
