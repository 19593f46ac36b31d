"""When a failed request is tried again, and how long to wait first.

Retried: 408, 409, 429 (but not `insufficient_quota`), >= 500, connection errors and timeouts.
Never retried: other 4xx (400, 401, 403, 404, 422, ...) and refusals by the safety system, which
would fail the same way again and, for paid calls, cost nothing but time. A server's
`x-should-retry: true|false` header overrides the status rule (as OpenAI's SDKs obey it), but
never turns a quota or content-policy error into a retry.

Waits: the server's `retry-after-ms` / `retry-after` (seconds or an HTTP date) when it gives
one of at most `RETRY_AFTER_CAP` seconds; past that cap the error is raised at once with a
message saying when to try again (a caller who pays per image would rather know than hang for
ten minutes). Otherwise exponential backoff: about 1 s, 2 s, 4 s, 8 s, 16 s ... with +-20 %
jitter, capped at `BACKOFF_CAP`. A warning goes to the `imagegen` logger before each wait.

The loop itself is tenacity's; this module supplies its retry test, wait and logging.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from tenacity import AsyncRetrying, RetryCallState, Retrying, stop_after_attempt
from tenacity.retry import retry_base
from tenacity.wait import wait_base

from ._errors import APIError, APIStatusError, ContentPolicyError, InsufficientQuotaError

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

RETRY_AFTER_CAP = 120.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})


class AttemptFailed(Exception):
    """Internal: one failed attempt, with the error to raise and whether to try again."""

    def __init__(self, error: APIError, *, retry: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.retry = retry


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
    """Decide whether a non-2xx answer is retried; explain a wait that is too long."""
    if isinstance(error, (InsufficientQuotaError, ContentPolicyError)):
        return AttemptFailed(error, retry=False)
    flag = headers.get("x-should-retry", "").strip().lower()
    if flag in ("true", "false"):
        wanted = flag == "true"
    else:
        wanted = error.status_code in _RETRY_STATUSES or error.status_code >= 500
    wait = error.retry_after
    if wanted and wait is not None and wait > RETRY_AFTER_CAP:
        error.message += (
            f" The server asks to wait {wait:.0f} s before retrying, longer than the "
            f"{RETRY_AFTER_CAP:.0f} s imagegen waits: try again after {_when(wait)}."
        )
        error.args = (error.message,)
        return AttemptFailed(error, retry=False)
    return AttemptFailed(error, retry=wanted)


def backoff(retries_taken: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry number `retries_taken + 1` when the server gave no hint."""
    base = min(BACKOFF_BASE * 2.0 ** min(retries_taken, 32), BACKOFF_CAP)
    return min(base * (0.8 + 0.4 * rand()), BACKOFF_CAP)


class _RetryIfWanted(retry_base):
    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return isinstance(exc, AttemptFailed) and exc.retry


class _Wait(wait_base):
    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, AttemptFailed) and isinstance(exc.error, APIStatusError):
            hint = exc.error.retry_after
            if hint is not None and 0 < hint <= RETRY_AFTER_CAP:
                return hint
        return backoff(retry_state.attempt_number - 1)


def _log_before_sleep(max_retries: int) -> Callable[[RetryCallState], None]:
    def log(retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        reason = exc.error.message if isinstance(exc, AttemptFailed) else "Request failed."
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        # `reason` comes from an error message, which is built with secrets redacted.
        logger.warning(
            "%s Retrying in %.1f s (retry %d of %d).",
            reason,
            delay,
            retry_state.attempt_number,
            max_retries,
        )

    return log


def retrying(max_retries: int, sleep: Callable[[float], None]) -> Retrying:
    """A tenacity loop for one request: `max_retries` retries after the first attempt."""
    return Retrying(
        sleep=sleep,
        stop=stop_after_attempt(max_retries + 1),
        wait=_Wait(),
        retry=_RetryIfWanted(),
        before_sleep=_log_before_sleep(max_retries),
        reraise=True,
    )


def async_retrying(max_retries: int, sleep: Callable[[float], Awaitable[None]]) -> AsyncRetrying:
    """The same loop for `AsyncClient`."""
    return AsyncRetrying(
        sleep=sleep,
        stop=stop_after_attempt(max_retries + 1),
        wait=_Wait(),
        retry=_RetryIfWanted(),
        before_sleep=_log_before_sleep(max_retries),
        reraise=True,
    )
