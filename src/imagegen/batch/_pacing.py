"""How fast a batch sends: at most `limit` requests in flight, fewer while the server pushes back.

Three controls, each fed by what the server says:

- **A concurrency window** (AIMD, as TCP's congestion window). It starts at `limit`; every
  success widens it by `1/window` (about one more request per round of answers), every 429 or
  503 halves it, once per round: answers to requests sent before the last cut do not cut again.
  It never falls below what the server was sustaining (Little's law: recent successes per
  second times their latency, rounded up), so a rate limit that rejects the extra request costs
  that request a wait, not the batch its throughput.
- **A gate**: after a 429 / 503 with `retry-after-ms` no request starts before that moment (the
  server's next free slot, for everyone). A `retry-after` in whole seconds says only that the
  slot comes within that second, so the gate holds one second less and only the refused row
  waits the whole hint.
- **Rate-limit headers**, when the server sends OpenAI's: `x-ratelimit-limit-requests` (per
  minute) spaces the starts `60 / limit` seconds apart, and `x-ratelimit-remaining-requests: 0`
  holds every start until the next request is allowed (`x-ratelimit-reset-requests`).

Waiting requests are served by priority (retries before new rows), then in arrival order.
"""

from __future__ import annotations

import heapq
import itertools
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from .._retry import RETRY_AFTER_CAP

__all__ = ["Pacer", "Stopped", "parse_duration"]

_HISTORY_SECONDS = 30.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Stopped(Exception):
    """The pacer was closed: no more requests start."""


def parse_duration(text: str | None) -> float | None:
    """OpenAI's reset durations: `12ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`; plain seconds too."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT[unit] for number, unit in parts)


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    event: anyio.Event = field(default_factory=anyio.Event, compare=False)


class Pacer:
    """See the module docstring. `clock` is monotonic seconds (replaceable in tests)."""

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.window = float(limit)
        self.in_flight = 0
        self.epoch = 0  # how many cuts so far; an answer cuts only if sent after the last one
        self.not_before = -math.inf
        self.spacing = 0.0
        self.pushbacks = 0
        self._last_start = -math.inf
        self._clock = clock
        self._successes: deque[tuple[float, float]] = deque()  # (started, finished)
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._closed = False

    # -- state ---------------------------------------------------------------------------

    @property
    def allowed(self) -> int:
        """Requests that may be in flight now."""
        return max(1, min(self.limit, int(self.window)))

    def ready_in(self) -> float:
        """Seconds until the gate and the spacing let the next request start."""
        return max(self.not_before, self._last_start + self.spacing) - self._clock()

    def sustained(self) -> int:
        """Requests the server kept in flight lately: successes per second x their latency."""
        now = self._clock()
        while self._successes and now - self._successes[0][1] > _HISTORY_SECONDS:
            self._successes.popleft()
        if len(self._successes) < 2:
            return 1
        first_start = min(started for started, _ in self._successes)
        rate = len(self._successes) / max(now - first_start, 1e-6)
        latency = sum(done - started for started, done in self._successes) / len(self._successes)
        return max(1, math.ceil(rate * latency - 1e-9))

    # -- what the server said ------------------------------------------------------------

    def success(self, started: float, headers: Mapping[str, str] | None = None) -> None:
        self._successes.append((started, self._clock()))
        self.window = min(float(self.limit), self.window + 1.0 / self.window)
        self._headers(headers)
        self._wake()

    def pushback(
        self,
        epoch: int,
        *,
        wait: float | None,
        precise: bool,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A 429 or 503 to a request sent at `epoch`; `wait` is the server's hint, if any."""
        self.pushbacks += 1
        if epoch == self.epoch:
            cut = max(1.0, self.window / 2, float(min(self.sustained(), self.limit)))
            self.window = min(self.window, cut)
            self.epoch += 1
        if wait is not None and 0 < wait <= RETRY_AFTER_CAP:
            self._hold(wait if precise else wait - 1.0)
        self._headers(headers)
        self._wake()

    def _hold(self, seconds: float) -> None:
        if seconds > 0:
            self.not_before = max(self.not_before, self._clock() + seconds)

    def _headers(self, headers: Mapping[str, str] | None) -> None:
        if not headers:
            return
        limit = _integer(headers.get("x-ratelimit-limit-requests"))
        if limit is not None and limit > 0:
            self.spacing = 60.0 / limit
        remaining = _integer(headers.get("x-ratelimit-remaining-requests"))
        if remaining is not None and remaining <= 0:
            reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
            # OpenAI's reset is the time to refill the whole allowance; one request comes back
            # after 60 / limit seconds.
            candidates = [s for s in (reset, self.spacing or None) if s is not None]
            if candidates:
                self._hold(min(min(candidates), RETRY_AFTER_CAP))

    # -- taking and giving back a place --------------------------------------------------

    def _wake(self) -> None:
        if self._waiters:
            self._waiters[0].event.set()

    async def acquire(self, *, priority: int = 1) -> int:
        """Wait for a place in flight; return the epoch to report a pushback with.
        Raises `Stopped` once the pacer is closed."""
        if self._closed:
            raise Stopped
        entry = _Waiter(priority, next(self._seq))
        heapq.heappush(self._waiters, entry)
        self._wake()
        try:
            while True:
                if self._closed:
                    raise Stopped
                if self._waiters[0] is entry and self.in_flight < self.allowed:
                    delay = self.ready_in()
                    if delay <= 0:
                        heapq.heappop(self._waiters)
                        self.in_flight += 1
                        self._last_start = self._clock()
                        self._wake()
                        return self.epoch
                    with anyio.move_on_after(delay):
                        await entry.event.wait()
                else:
                    await entry.event.wait()
                entry.event = anyio.Event()
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
                self._wake()
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def close(self) -> None:
        """No more starts: every waiter gets `Stopped`."""
        self._closed = True
        for waiter in self._waiters:
            waiter.event.set()
