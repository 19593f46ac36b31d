"""When a failed request is tried again, and how long to wait first.

Retried: 408, 409, 429 (but not `insufficient_quota`), >= 500, connection errors and timeouts.
Never retried: other 4xx (400, 401, 403, 404, 422, ...) and refusals by the safety system, which
would fail the same way again and, for paid calls, cost nothing but time. A server's
`x-should-retry: true|false` header overrides the status rule (as OpenAI's SDKs obey it), but
never turns a quota or content-policy error into a retry.

Waits: the server's `retry-after-ms` / `retry-after` (seconds or an HTTP date) when it gives
one of at most `max_retry_wait` seconds (60 by default, `RETRY_AFTER_CAP`); past that the
error is raised at once, saying how long the server asked for, when to try again and which
setting takes longer waits (a caller who pays per image would rather know than hang for ten
minutes; OpenAI's SDK waits up to two). Otherwise exponential backoff: about 1 s, 2 s, 4 s,
8 s, 16 s ... with +-20 % jitter, capped at `BACKOFF_CAP`. A retry whose wait would end past
the call's deadline (see `_network`) is not made, and the error says so. A warning goes to
the `imagegen.client` logger before each wait, naming a wait the server asked for as such.

Each attempt of a call returns its answer or a `Failure`; `retry_loop` (or `aretry_loop`)
repeats the attempt while `Retries.wait_after` finds a wait before the next one, and raises the
failure's error once it finds none.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio

from ._errors import APIError, APIStatusError, ContentPolicyError, InsufficientQuotaError

if TYPE_CHECKING:
    from ._network import Deadline

__all__ = [
    "BACKOFF_CAP",
    "RETRY_AFTER_CAP",
    "Failure",
    "Retries",
    "aretry_loop",
    "backoff",
    "parse_retry_after",
    "retry_loop",
    "status_failure",
]

logger = logging.getLogger("imagegen.client")  # silent by default: see `_request.logger`

RETRY_AFTER_CAP = 60.0  # the default of `max_retry_wait`
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})

_T = TypeVar("_T")


@dataclass
class Failure:
    """One failed attempt: the error to raise, and whether trying again may help."""

    error: APIError
    retry: bool


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, else `retry-after` (seconds or date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return float(email.utils.mktime_tz(parsed)) - now()


def _when(seconds: float) -> str:
    moment = time.localtime(time.time() + seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S", moment)


def status_failure(error: APIStatusError, headers: Mapping[str, str]) -> Failure:
    """Decide whether a non-2xx answer is one to retry (how long to wait is `Retries`' part)."""
    if isinstance(error, (InsufficientQuotaError, ContentPolicyError)):
        return Failure(error, retry=False)
    flag = headers.get("x-should-retry", "").strip().lower()
    if flag in ("true", "false"):
        wanted = flag == "true"
    else:
        wanted = error.status_code in _RETRY_STATUSES or error.status_code >= 500
    return Failure(error, retry=wanted)


def _add_note(error: APIError, note: str) -> None:
    error.message += " " + note
    error.args = (error.message,)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def backoff(retries_taken: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry number `retries_taken + 1` when the server gave no hint."""
    base = min(BACKOFF_BASE * 2.0 ** min(retries_taken, 32), BACKOFF_CAP)
    return min(base * (0.8 + 0.4 * rand()), BACKOFF_CAP)


class Retries:
    """The retries of one call: at most `max_retries` after the first attempt, waits of at most
    `max_wait` when the server asks, none that would end past `deadline`."""

    def __init__(
        self,
        max_retries: int,
        *,
        max_wait: float = RETRY_AFTER_CAP,
        deadline: Deadline | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.deadline = deadline
        self.taken = 0

    def wait_after(self, failure: Failure) -> float:
        """The seconds to wait before trying again, announced in the log; raises the failure's
        error, with a note saying why where that helps, when it is not to be tried again."""
        error = failure.error
        wait, asked = self._wait(failure)
        if wait is None:
            raise error
        self.taken += 1
        # The message is built with secrets redacted (see `_http`).
        if asked:
            logger.warning(
                "%s Waiting %s as the server asked (Retry-After), then retry %d of %d.",
                error.message,
                _seconds(wait),
                self.taken,
                self.max_retries,
            )
        else:
            logger.warning(
                "%s Retrying in %.1f s (retry %d of %d).",
                error.message,
                wait,
                self.taken,
                self.max_retries,
            )
        return wait

    def _wait(self, failure: Failure) -> tuple[float | None, bool]:
        """The wait before the next attempt (None: no next attempt), and whether the server
        asked for it."""
        error = failure.error
        if not failure.retry:
            return None, False
        hint = error.retry_after if isinstance(error, APIStatusError) else None
        if hint is not None and hint > self.max_wait:
            _add_note(
                error,
                f"The server asks to wait {_seconds(hint)} before retrying (Retry-After), longer "
                f"than the {_seconds(self.max_wait)} this client waits: try again after "
                f"{_when(hint)}, or raise max_retry_wait (--max-retry-wait).",
            )
            return None, False
        if self.taken >= self.max_retries:
            return None, False
        asked = hint is not None and hint > 0
        wait = hint if hint is not None and asked else backoff(self.taken)
        if self.deadline is not None and wait >= self.deadline.left():
            _add_note(
                error,
                f"Not retried: after a wait of {_seconds(wait)} the call would be past its "
                f"deadline ({_seconds(self.deadline.seconds)}: the timeout for each of "
                f"{self.max_retries + 1} attempts).",
            )
            return None, False
        return wait, asked


def pause(seconds: float) -> None:
    """The wait between two attempts."""
    time.sleep(seconds)


async def apause(seconds: float) -> None:
    await anyio.sleep(seconds)


def retry_loop(attempt: Callable[[], _T | Failure], retries: Retries) -> _T:
    """Call `attempt` until it succeeds or `retries` finds no wait before another one."""
    while isinstance(outcome := attempt(), Failure):
        pause(retries.wait_after(outcome))
    return outcome


async def aretry_loop(attempt: Callable[[], Awaitable[_T | Failure]], retries: Retries) -> _T:
    """`retry_loop` for `AsyncClient`."""
    while isinstance(outcome := await attempt(), Failure):
        await apause(retries.wait_after(outcome))
    return outcome
