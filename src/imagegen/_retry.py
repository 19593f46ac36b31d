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

The loop itself is tenacity's; this module supplies its retry test, wait and logging.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt
from tenacity.retry import retry_base
from tenacity.wait import wait_base

from ._errors import APIError, APIStatusError, ContentPolicyError, InsufficientQuotaError

if TYPE_CHECKING:
    from ._network import Deadline

__all__ = [
    "BACKOFF_CAP",
    "RETRY_AFTER_CAP",
    "AttemptFailed",
    "async_retrying",
    "backoff",
    "parse_retry_after",
    "retrying",
    "status_failure",
]

logger = logging.getLogger("imagegen.client")  # silent by default: see `_request.logger`

RETRY_AFTER_CAP = 60.0  # the default of `max_retry_wait`
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})


class AttemptFailed(Exception):
    """Internal: one failed attempt, with the error to raise and whether to try again."""

    def __init__(self, error: APIError, *, retry: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry = retry
        self.wait = 0.0  # set when a retry is decided: how long to wait first
        self.asked = False  # whether the server asked for that wait (Retry-After)


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


def status_failure(error: APIStatusError, headers: Mapping[str, str]) -> AttemptFailed:
    """Decide whether a non-2xx answer is one to retry (how long to wait is the loop's part)."""
    if isinstance(error, (InsufficientQuotaError, ContentPolicyError)):
        return AttemptFailed(error, retry=False)
    flag = headers.get("x-should-retry", "").strip().lower()
    if flag in ("true", "false"):
        wanted = flag == "true"
    else:
        wanted = error.status_code in _RETRY_STATUSES or error.status_code >= 500
    return AttemptFailed(error, retry=wanted)


def _add_note(error: APIError, note: str) -> None:
    error.message += " " + note
    error.args = (error.message,)


def _seconds(value: float) -> str:
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def backoff(retries_taken: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry number `retries_taken + 1` when the server gave no hint."""
    base = min(BACKOFF_BASE * 2.0 ** min(retries_taken, 32), BACKOFF_CAP)
    return min(base * (0.8 + 0.4 * rand()), BACKOFF_CAP)


class _Decide(retry_base):
    """Whether to retry after a failed attempt, and how long to wait first (kept on the
    `AttemptFailed` for `_Wait` and the log line)."""

    def __init__(self, max_retries: int, max_wait: float, deadline: Deadline | None) -> None:
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None and outcome.failed else None
        if not isinstance(failure, AttemptFailed) or not failure.retry:
            return False
        error = failure.error
        hint = error.retry_after if isinstance(error, APIStatusError) else None
        if hint is not None and hint > self.max_wait:
            _add_note(
                error,
                f"The server asks to wait {_seconds(hint)} before retrying (Retry-After), longer "
                f"than the {_seconds(self.max_wait)} this client waits: try again after "
                f"{_when(hint)}, or raise max_retry_wait (--max-retry-wait).",
            )
            return False
        if retry_state.attempt_number > self.max_retries:
            return False
        asked = hint is not None and hint > 0
        wait = hint if hint is not None and asked else backoff(retry_state.attempt_number - 1)
        if self.deadline is not None and wait >= self.deadline.left():
            _add_note(
                error,
                f"Not retried: after a wait of {_seconds(wait)} the call would be past its "
                f"deadline ({_seconds(self.deadline.seconds)}: the timeout for each of "
                f"{self.max_retries + 1} attempts).",
            )
            return False
        failure.wait, failure.asked = wait, asked
        return True


class _Wait(wait_base):
    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return exc.wait if isinstance(exc, AttemptFailed) else 0.0


def _log_before_sleep(max_retries: int) -> Callable[[RetryCallState], None]:
    def log(retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if not isinstance(exc, AttemptFailed):
            return
        # The message is built with secrets redacted (see `_transport`).
        number = retry_state.attempt_number
        if exc.asked:
            logger.warning(
                "%s Waiting %s as the server asked (Retry-After), then retry %d of %d.",
                exc.error.message,
                _seconds(exc.wait),
                number,
                max_retries,
            )
        else:
            logger.warning(
                "%s Retrying in %.1f s (retry %d of %d).",
                exc.error.message,
                exc.wait,
                number,
                max_retries,
            )

    return log


def _options(max_retries: int, max_wait: float, deadline: Deadline | None) -> dict[str, object]:
    return {
        "stop": stop_after_attempt(max_retries + 1),
        "wait": _Wait(),
        "retry": _Decide(max_retries, max_wait, deadline),
        "before_sleep": _log_before_sleep(max_retries),
        "reraise": True,
    }


def retrying(
    max_retries: int,
    sleep: Callable[[float], None],
    *,
    max_wait: float = RETRY_AFTER_CAP,
    deadline: Deadline | None = None,
) -> Retrying:
    """A tenacity loop for one call: `max_retries` retries after the first attempt, waits of
    at most `max_wait` when the server asks, nothing started past `deadline`."""
    return Retrying(sleep=sleep, **_options(max_retries, max_wait, deadline))  # type: ignore[arg-type]


def async_retrying(
    max_retries: int,
    sleep: Callable[[float], Awaitable[None]],
    *,
    max_wait: float = RETRY_AFTER_CAP,
    deadline: Deadline | None = None,
) -> AsyncRetrying:
    """The same loop for `AsyncClient`."""
    return AsyncRetrying(sleep=sleep, **_options(max_retries, max_wait, deadline))  # type: ignore[arg-type]
