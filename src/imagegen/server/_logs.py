"""Log lines rate-limited per kind of event, so hostile traffic cannot flood the log.

A kind is a logger, a level and a message template (the same line with other values is the
same kind; the access log counts each error status as its own kind, and does not limit
answers below 400, one line per request served as usual). Each kind may write `per_second`
lines a second. Past that, its lines are held back and counted until the kind has been quiet
for a second, with one line giving the count every `SUMMARY_SECONDS` meanwhile: a flood that
lasts an hour writes a burst of lines, then a count every 10 s, whatever its rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

__all__ = ["RateLimitFilter", "rate_limited_logs"]

# The server's own loggers, uvicorn's, and asyncio's (which reports failed accepts, such as
# running out of file descriptors, once per attempt).
LOGGERS = ("imagegen.server", "imagegen.server.access", "uvicorn.error", "asyncio")
SUMMARY_SECONDS = 10.0
_QUIET_SECONDS = 1.0
_MAX_KINDS = 1024  # templates come from code, not from clients; this is only a safety net


@dataclass
class _Kind:
    logger: str
    level: int
    template: str
    tokens: float
    at: float  # when `tokens` was last refilled
    holding: bool = False  # lines are held back until the kind is quiet
    held: int = 0  # lines held back since `since`
    since: float = 0.0
    last: float = 0.0  # when the last line came


class RateLimitFilter(logging.Filter):
    """A `logging.Filter` that lets each kind of line through at most `per_second` times a
    second (see the module docstring). Call `flush()` about once a second to write counts."""

    def __init__(self, per_second: int) -> None:
        super().__init__()
        self.per_second = per_second
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "rate_limit_summary", False):
            return True
        status = getattr(record, "http_status", None)
        if isinstance(status, int) and status < 400:
            return True
        template = str(record.msg)
        key = (record.name, record.levelno, f"{template}{status or ''}")
        now = time.monotonic()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None:
                if len(self._kinds) >= _MAX_KINDS:
                    self._kinds.clear()
                kind = self._kinds[key] = _Kind(
                    record.name, record.levelno, template, self.per_second, now
                )
            kind.last = now
            if kind.holding:
                kind.held += 1
                return False
            kind.tokens = min(self.per_second, kind.tokens + (now - kind.at) * self.per_second)
            kind.at = now
            if kind.tokens >= 1:
                kind.tokens -= 1
                return True
            kind.holding, kind.held, kind.since = True, 1, now
            return False

    def flush(self, *, everything: bool = False) -> None:
        """Write the count of each kind held back that went quiet, or has not been counted for
        `SUMMARY_SECONDS` (of every kind held back with `everything`)."""
        now = time.monotonic()
        due: list[tuple[_Kind, int, float]] = []
        with self._lock:
            for kind in self._kinds.values():
                if not kind.holding:
                    continue
                quiet = everything or now - kind.last >= _QUIET_SECONDS
                if quiet or now - kind.since >= SUMMARY_SECONDS:
                    if kind.held:
                        due.append((kind, kind.held, kind.since))
                    kind.held, kind.since = 0, now
                    kind.holding = not quiet  # a kind still flooding stays held back
        for kind, count, since in due:
            shown = kind.template if len(kind.template) <= 80 else kind.template[:77] + "..."
            logging.getLogger(kind.logger).log(
                kind.level,
                "%s more line(s) like this in the last %.0f s were not written (at most %d a "
                "second): %r",
                f"{count:,}",
                max(1.0, now - since),
                self.per_second,
                shown,
                extra={"rate_limit_summary": True},
            )


@asynccontextmanager
async def rate_limited_logs(per_second: int, *, interval: float = 1.0) -> AsyncIterator[None]:
    """Rate-limit `LOGGERS` while the block runs, writing the counts of what was held back."""
    limiter = RateLimitFilter(per_second)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addFilter(limiter)

    async def flush_forever() -> None:
        while True:
            await anyio.sleep(interval)
            limiter.flush()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(flush_forever)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
    finally:
        for logger in loggers:
            logger.removeFilter(limiter)
        limiter.flush(everything=True)
