"""Sending a batch's rows as ordinary requests, many at a time, paced by the server's answers.

The client runs with `max_retries=0`, so every answer reaches this loop: a 429 or 503 feeds the
pacer before the row waits and tries again. What is retried, and how long a row waits, follow
the client's policy (`imagegen._retry`): the same retryable statuses, the server's
`Retry-After` up to the client's `max_retry_wait`, otherwise exponential backoff with jitter.
A 429 or 503 that says how long to wait is pacing, not a failure: it does not use up
`max_retries` (up to `MAX_PUSHBACKS` per row). Errors that would fail every row alike (a wrong
key, no quota, no such server route, a rate limit asking for longer than `max_retry_wait`)
stop the batch instead of being repeated for each row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio

from .._async_http import AsyncHTTPTransport
from .._capabilities import DEFAULT_MODELS, get_capabilities
from .._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    ImagegenError,
    InsufficientQuotaError,
    NotFoundError,
    PermissionDeniedError,
)
from .._results import ImagesResult
from .._retry import backoff, status_failure
from ._context import RunContext
from ._pacing import Pacer, Stopped
from ._plan import Planned

__all__ = ["HALT", "MAX_PUSHBACKS", "RETRY", "send_rows", "verdict_for"]

MAX_PUSHBACKS = 50
_PUSHBACK_STATUSES = (429, 503)

# What to do after a failed attempt.
RETRY, FAIL, HALT = "retry", "fail", "halt"


def verdict_for(error: ImagegenError, max_wait: float) -> str:
    """`retry`, `fail` (this row) or `halt` (the whole batch) after a failed attempt; a wait
    the server asks for that is longer than `max_wait` is not taken."""
    if isinstance(error, (AuthenticationError, PermissionDeniedError, InsufficientQuotaError)):
        return HALT
    if isinstance(error, NotFoundError) and error.code != "model_not_found":
        return HALT  # a wrong base URL: every row would get the same 404
    if isinstance(error, ConfigurationError):
        return HALT
    if isinstance(error, APIStatusError):
        hint = error.retry_after
        if hint is not None and hint > max_wait:
            # Retryable, but not for minutes: the message says when to try again.
            wanted = error.status_code in _PUSHBACK_STATUSES or error.status_code >= 500
            return HALT if wanted else FAIL
        return RETRY if status_failure(error, error.headers).retry else FAIL
    if isinstance(error, APIConnectionError):
        return RETRY
    return FAIL  # APIResponseError, EngineError, InvalidRequestError: this row only


async def _send(ctx: RunContext, item: Planned) -> ImagesResult:
    row = item.row
    client = ctx.client
    params: dict[str, Any] = dict(row.params)
    model = params.get("model") or DEFAULT_MODELS[row.endpoint]
    if (
        isinstance(client._transport, AsyncHTTPTransport)
        and "response_format" not in params
        and get_capabilities(model).family == "dall-e"
    ):
        # DALL-E models answer with links by default; the batch would only download them (a
        # second request, to a link that expires): ask for the image itself, as the CLI does.
        params["response_format"] = "b64_json"
    extra = dict(row.extra_body) or None
    answer: Any
    if row.endpoint == "generations":
        answer = await client.generate(extra_body=extra, **params)
    elif row.endpoint == "edits":
        images: Any = list(row.images) if len(row.images) > 1 else row.images[0]
        answer = await client.edit(
            images, mask=row.mask, markup=row.markup, extra_body=extra, **params
        )
    else:
        answer = await client.create_variation(row.images[0], extra_body=extra, **params)
    assert isinstance(answer, ImagesResult)  # rows never stream
    return answer


class _Sender:
    def __init__(self, ctx: RunContext, pacer: Pacer) -> None:
        self.ctx = ctx
        self.pacer = pacer

    def _update(self) -> None:
        tracker = self.ctx.tracker
        tracker.in_flight = self.pacer.in_flight
        tracker.concurrency = self.pacer.allowed
        tracker.changed()

    async def row(self, item: Planned, epoch: int) -> None:
        """Send one row until it is done, fails, or the run stops. Holds a place in flight on
        entry (the scheduler took it)."""
        ctx, pacer = self.ctx, self.pacer
        tries = _Tries()
        first_sent = time.monotonic()
        holding = True
        while True:
            if not holding:
                try:
                    epoch = await pacer.acquire(priority=0)  # retries go before new rows
                except Stopped:
                    return
            holding = False
            started = time.monotonic()
            tries.attempts += 1
            outcome = await self._attempt(item)
            if isinstance(outcome, ImagesResult):
                pacer.success(started, outcome.headers)
                self._update()
                seconds = time.monotonic() - first_sent
                await ctx.record_success(item, outcome, attempts=tries.attempts, seconds=seconds)
                return
            verdict, wait = self._verdict(outcome, epoch, tries)
            if verdict == HALT:
                ctx.halt(outcome)
                pacer.close()
                return
            if verdict == FAIL:
                await ctx.record_failure(item, outcome, attempts=tries.attempts)
                return
            if not await self._pause(wait):
                return  # stopped: the row stays pending, to be done by the next run

    async def _attempt(self, item: Planned) -> ImagesResult | ImagegenError:
        self._update()
        try:
            return await _send(self.ctx, item)
        except ImagegenError as exc:
            return exc
        finally:
            self.pacer.release()

    def _verdict(self, error: ImagegenError, epoch: int, tries: _Tries) -> tuple[str, float]:
        """What to do after `error` (counted in `tries`), and how long to wait first."""
        verdict = verdict_for(error, self.ctx.max_wait)
        if verdict != RETRY:
            return verdict, 0.0
        wait, pacing = self._pushback(error, epoch)
        if pacing:
            tries.pushbacks += 1
            return (RETRY if tries.pushbacks <= MAX_PUSHBACKS else FAIL), wait or 0.0
        tries.retries += 1
        verdict = RETRY if tries.retries <= self.ctx.max_retries else FAIL
        return verdict, wait if wait is not None else backoff(tries.retries - 1)

    def _pushback(self, error: ImagegenError, epoch: int) -> tuple[float | None, bool]:
        """The wait the server asked for, if one this run takes; and whether it is pacing (a
        pushback status with such a wait: not counted as a failure). The pacer hears of every
        pushback status."""
        if not isinstance(error, APIStatusError):
            return None, False
        hint = error.retry_after
        wait = hint if hint is not None and 0 < hint <= self.ctx.max_wait else None
        if error.status_code not in _PUSHBACK_STATUSES:
            return wait, False
        self.pacer.pushback(
            epoch,
            wait=hint,
            precise="retry-after-ms" in error.headers,
            rate_limited=error.status_code == 429,
            headers=error.headers,
        )
        return wait, wait is not None

    async def _pause(self, wait: float) -> bool:
        """Wait before a retry, counted as retrying; False if the run stopped meanwhile."""
        ctx = self.ctx
        ctx.tracker.retrying += 1
        self._update()
        try:
            return await ctx.pause(wait)
        finally:
            ctx.tracker.retrying -= 1


@dataclass
class _Tries:
    """A row's failed attempts so far: retries after errors, and after the server's pushback."""

    retries: int = 0
    pushbacks: int = 0
    attempts: int = 0  # sent so far, counting the one under way


async def send_rows(ctx: RunContext, todo: list[Planned], *, concurrency: int) -> None:
    """Send every row of `todo`, at most `concurrency` at once, until done or stopped."""
    pacer = Pacer(concurrency, max_wait=ctx.max_wait)
    sender = _Sender(ctx, pacer)

    async def close_on_stop() -> None:
        await ctx.stop.wait()
        pacer.close()

    async with anyio.create_task_group() as watch:
        watch.start_soon(close_on_stop)
        async with anyio.create_task_group() as rows:
            for item in todo:
                if ctx.stopping:
                    break
                try:
                    epoch = await pacer.acquire()
                except Stopped:
                    break
                rows.start_soon(sender.row, item, epoch)
        watch.cancel_scope.cancel()  # every row has ended
