"""An attempt's plan and its answer: timeouts, deadlines and limits, the body read within
them, and what the body means (an `ImagesResponse`, or an error).

A `Plan` is made once per call: the request's own per-operation timeouts, the deadline of the
whole call, and how much of an answer may be read. Each attempt gets its own deadline from it
(`Plan.attempt`), and every operation of the attempt a timeout no longer than the time left
(`Plan.timeouts_within`). A `Body` collects an answer's bytes up to the limit: past it the read
stops with an `APIResponseError` naming the setting that raises the limit, or, for an error
answer, quietly (its first megabyte says all there is to say).

Parsing keeps at most two copies of an answer in memory at a time (the bytes are dropped once
they are text, the text once it is parsed; pydantic keeps the parsed strings as they are), so
a 150 MB answer of base64 costs about 300 MB while it is parsed, not five times its size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
from pydantic import ValidationError

from ._downloads import Reach
from ._errors import APIResponseError, make_status_error, redact
from ._models import CompletedEvent, ImagesResponse, WireEvent
from ._network import Deadline
from ._retry import Failure, parse_retry_after, status_failure
from ._streaming import StreamContext, embedded_error

__all__ = ["ERROR_BODY_LIMIT", "Answer", "Body", "Plan", "failure", "images", "images_as_events"]

# An error answer is read this far: enough for any message, never a server's gigabytes.
ERROR_BODY_LIMIT = 1024 * 1024


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size} bytes"


@dataclass(frozen=True)
class Plan:
    """How one call is sent: its per-operation timeouts (the request's own), the deadline of
    the whole call, how much of an answer may be read, and what to call it if it is more."""

    timeouts: Mapping[str, float | None]
    call: Deadline | None
    stream: bool
    limit: int | None
    what: Callable[[], str]  # "The answer from <url>", made only when needed (URLs are slow)
    setting: str  # the argument and flag that raise `limit`
    reach: Reach | None = None  # for a download, where it may connect

    def attempt(self) -> Deadline | None:
        """The deadline of an attempt starting now."""
        return Deadline.after(self.timeouts.get("read"), within=self.call)

    def timeouts_within(self, deadline: Deadline | None) -> dict[str, float | None]:
        """The per-operation timeouts, none longer than the time left."""
        if deadline is None:
            return dict(self.timeouts)
        deadline.check()
        left = deadline.left()
        return {name: left if v is None else min(v, left) for name, v in self.timeouts.items()}


class Body:
    """An answer's bytes, collected up to `plan.limit`; with no plan (an error answer), up to
    `ERROR_BODY_LIMIT`, the rest left unread."""

    def __init__(self, response: httpx2.Response, plan: Plan | None = None) -> None:
        self.data = bytearray()
        self.plan = plan
        self.limit = plan.limit if plan is not None else ERROR_BODY_LIMIT
        declared = response.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else 0
        if plan is not None and self.limit is not None and size > self.limit:
            raise self._too_big(size)

    def _too_big(self, size: int | None) -> APIResponseError:
        assert self.plan is not None and self.limit is not None
        said = f" ({_mib(size)})" if size else ""
        return APIResponseError(
            f"{self.plan.what()} is larger than {_mib(self.limit)}{said}, the most this client "
            f"reads; raise {self.plan.setting} if that is expected. Nothing was kept."
        )

    def add(self, chunk: bytes) -> bool:
        """Keep `chunk`; False once an error answer's limit is reached (read no more)."""
        self.data += chunk
        if self.limit is None or len(self.data) <= self.limit:
            return True
        if self.plan is not None:
            self.data = bytearray()
            raise self._too_big(None)
        del self.data[self.limit :]
        return False


@dataclass
class Answer:
    """A successful attempt: the response, its body (read unless streaming) and the deadline
    the rest of a stream is read under."""

    response: httpx2.Response
    body: bytearray
    deadline: Deadline | None

    @property
    def request_id(self) -> str | None:
        return self.response.headers.get("x-request-id")


def failure(
    response: httpx2.Response, body: bytes | bytearray, secrets: tuple[str, ...]
) -> Failure:
    """A non-2xx answer as the error to raise, and whether to retry it."""
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    error = make_status_error(
        response.status_code,
        parsed,
        request_id=response.headers.get("x-request-id"),
        retry_after=parse_retry_after(response.headers),
        text=text[:1000],
        secrets=secrets,
        headers=response.headers,
    )
    location = response.headers.get("location")
    if response.is_redirect and location:
        # API calls do not follow redirects (a POST body and its key would go elsewhere).
        shown = redact(location, *secrets)
        error.message += f" The server redirects to {shown}: use that as the base URL."
        error.args = (error.message,)
    return status_failure(error, response.headers)


def images(answer: Answer, secrets: tuple[str, ...]) -> ImagesResponse:
    """The `ImagesResponse` in `answer.body`, which is emptied on the way (see above)."""
    body, request_id = answer.body, answer.request_id
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body[:200].decode("utf-8", "replace")
    body.clear()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("error"):
        raise embedded_error(data, StreamContext(request_id, secrets))
    try:
        return ImagesResponse.model_validate(data)
    except ValidationError:
        snippet = redact(text[:200], *secrets)
        raise APIResponseError(
            f"The server answered {answer.response.status_code} with a body that is not an "
            f"Images API response: {snippet!r}",
            request_id=request_id,
        ) from None


def images_as_events(endpoint: str, answer: Answer, secrets: tuple[str, ...]) -> list[WireEvent]:
    """A whole JSON answer to a streaming call (from a server that cannot stream), as the
    completed events a stream would have carried."""
    parsed = images(answer, secrets)
    kind = "image_edit.completed" if endpoint == "edits" else "image_generation.completed"
    return [
        CompletedEvent.of(
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
