"""Log lines rate-limited per kind of event, so hostile traffic cannot flood the log.

A kind is a logger, a level and a message template (the same line with other values is the
same kind; the access log counts each status as its own kind). Each kind may write
`per_second` lines a second, in bursts of as many; the lines over that are counted, and the
count is written once the kind is quiet again (or with its next line): "... (and 1,234 similar
lines in the last 3 s, not written)".
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
_MAX_KINDS = 1024  # templates come from code, not from clients; this is only a safety net


@dataclass
class _Kind:
    tokens: float
    at: float
    suppressed: int = 0
    since: float = 0.0  # when the first of the suppressed lines came
    logger: str = ""
    level: int = logging.INFO
    template: str = ""


class RateLimitFilter(logging.Filter):
    """A `logging.Filter` that lets each kind of line through at most `per_second` times a
    second. Call `flush()` now and then to write the counts of kinds that went quiet."""

    def __init__(self, per_second: int) -> None:
        super().__init__()
        self.per_second = per_second
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "rate_limit_summary", False):
            return True
        template = str(record.msg)
        key = (record.name, record.levelno, template + str(getattr(record, "rate_kind", "")))
        now = time.monotonic()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is None:
                if len(self._kinds) >= _MAX_KINDS:
                    self._kinds.clear()
                kind = self._kinds[key] = _Kind(
                    self.per_second,
                    now,
                    logger=record.name,
                    level=record.levelno,
                    template=template,
                )
            kind.tokens = min(self.per_second, kind.tokens + (now - kind.at) * self.per_second)
            kind.at = now
            if kind.tokens < 1:
                if not kind.suppressed:
                    kind.since = now
                kind.suppressed += 1
                return False
            kind.tokens -= 1
            suppressed, since = kind.suppressed, kind.since
            kind.suppressed = 0
        if suppressed:
            self._summary(kind, suppressed, since, now)
        return True

    def _summary(self, kind: _Kind, count: int, since: float, now: float) -> None:
        shown = kind.template if len(kind.template) <= 80 else kind.template[:77] + "..."
        logging.getLogger(kind.logger).log(
            kind.level,
            "%s similar line(s) in the last %.0f s were not written (at most %d a second): %r",
            f"{count:,}",
            max(1.0, now - since),
            self.per_second,
            shown,
            extra={"rate_limit_summary": True},
        )

    def flush(self, *, everything: bool = False) -> None:
        """Write the counts of kinds whose suppressed lines stopped a second or more ago (of
        every kind with `everything`)."""
        now = time.monotonic()
        pending: list[tuple[_Kind, int, float]] = []
        with self._lock:
            for kind in self._kinds.values():
                if kind.suppressed and (everything or now - kind.at >= 1.0):
                    pending.append((kind, kind.suppressed, kind.since))
                    kind.suppressed = 0
        for kind, count, since in pending:
            self._summary(kind, count, since, now)


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
