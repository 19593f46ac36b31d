"""How fast a batch sends: at most `limit` requests in flight, fewer while the server pushes back.

Three controls, each fed by what the server says:

- **A concurrency window** (AIMD, as TCP's congestion window). It starts at `limit`; every
  success widens it by `1/window` (about one more request per round of answers); a 503, or a
  429 from a server that does not say its rate, halves it, once per round: neither answers to
  requests sent before the last cut nor those sent before a success came back since (a 429
  comes back at once, a success a latency later) cut it again. It never falls below one more
  than the server was sustaining (Little's law: recent successes per second times their
  latency, rounded up): under a rate limit the extra request is refused now and then, which
  costs that request a wait, while a window cut below what the limit allows would cost the
  whole batch its throughput. Once the server has pushed back, starts are spread over a round
  trip (the window over the latency) instead of leaving in bursts a limiter refuses.
- **A gate**: after a 429 / 503 with `retry-after-ms` no request starts before that moment (the
  server's next free slot, for everyone). A `retry-after` in whole seconds says only that the
  slot comes within that second, so the gate holds one second less and only the refused row
  waits the whole hint.
- **The server's rate**, when it sends OpenAI's headers: `x-ratelimit-limit-requests` (per
  minute) spaces the starts `60 / limit` seconds apart on average (a start the event loop made
  late lets the next one come up to half a spacing early, as a limiter counts); a 429 then
  slows that pace by a quarter, which successes wear off, rather than cut the window; a 429
  with `x-ratelimit-remaining-requests: 0` and no `Retry-After` holds every start until the
  next request is allowed (`x-ratelimit-reset-requests`).

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

_HISTORY_SECONDS = 10.0  # what the server sustained "lately"
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
    """See the module docstring. `clock` gives monotonic seconds."""

    def __init__(
        self,
        limit: int,
        *,
        max_wait: float = RETRY_AFTER_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.max_wait = max_wait  # a longer hint is not a gate: the batch stops instead
        self.window = float(limit)
        self.in_flight = 0
        self.epoch = 0  # how many cuts so far; an answer cuts only if sent after the last one
        self.not_before = -math.inf
        self.spacing = 0.0
        self.pushbacks = 0
        self._due = -math.inf  # when the next start is due, at the current interval
        # Successes since the last cut: the window is cut only once answers have come back
        # from it (429s to a first burst, before anything is known, do not cut it).
        self._since_cut = 0
        self._last_wait = 1.0  # the client's first backoff, until the server says better
        self._slow = 1.0  # how much slower than the server's stated rate, after its 429s
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

    def interval(self) -> float:
        """Seconds between two starts, on average."""
        paced = self._round() / self.window if self.pushbacks else 0.0
        return max(self.spacing * self._slow, paced)

    def _round(self) -> float:
        """A round trip: the latency of recent successes; before the first, the server's last
        hint (or a second)."""
        return self._latency() if self._recent() else self._last_wait

    def ready_in(self) -> float:
        """Seconds until the gate and the spacing let the next request start."""
        return max(self.not_before, self._due - self.interval() / 2) - self._clock()

    def _recent(self) -> deque[tuple[float, float]]:
        now = self._clock()
        while self._successes and now - self._successes[0][1] > _HISTORY_SECONDS:
            self._successes.popleft()
        return self._successes

    def _latency(self) -> float:
        recent = self._recent()
        return sum(done - started for started, done in recent) / len(recent)

    def sustained(self) -> int:
        """Requests the server kept in flight lately (the last few round trips): successes
        per second times their latency."""
        recent = self._recent()
        if len(recent) < 2:
            return 1
        latency = self._latency()
        now = self._clock()
        span = min(_HISTORY_SECONDS, max(1.0, 4 * latency))
        starts = [started for started, done in recent if now - done <= span]
        if len(starts) < 2:
            return 1
        rate = len(starts) / max(now - min(starts), 1e-6)
        return max(1, math.ceil(rate * latency - 1e-9))

    # -- what the server said ------------------------------------------------------------

    def success(self, started: float, headers: Mapping[str, str] | None = None) -> None:
        self._successes.append((started, self._clock()))
        self._since_cut += 1
        self.window = min(float(self.limit), self.window + 1.0 / self.window)
        self._slow = max(1.0, self._slow * 0.98)
        # Only the limit: a success's remaining count was taken when the request was admitted,
        # a whole latency ago, and holding starts on it would idle the batch.
        self._headers(headers, remaining=False)
        self._wake()

    def pushback(
        self,
        epoch: int,
        *,
        wait: float | None,
        precise: bool,
        rate_limited: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A 429 (`rate_limited`) or 503 to a request sent at `epoch`; `wait` is the server's
        hint, if any, `precise` if it came to the millisecond."""
        self.pushbacks += 1
        self._headers(headers)
        hint = wait if wait is not None and 0 < wait <= self.max_wait else None
        if hint is not None and not self._recent():
            self._last_wait = hint
        if epoch == self.epoch and self._since_cut:
            if rate_limited and self.spacing:
                self._slow = min(4.0, self._slow * 1.25)
            else:
                cut = max(1.0, self.window / 2, float(min(self.sustained() + 1, self.limit)))
                self.window = min(self.window, cut)
            self.epoch += 1
            self._since_cut = 0
        if hint is not None:
            self._hold(hint if precise else hint - 1.0)
        self._wake()

    def _hold(self, seconds: float) -> None:
        if seconds > 0:
            self.not_before = max(self.not_before, self._clock() + seconds)
            # One start at the gate, then the spacing again (not a burst to catch up).
            self._due = max(self._due, self.not_before + self.interval() / 2)

    def _headers(self, headers: Mapping[str, str] | None, *, remaining: bool = True) -> None:
        if not headers:
            return
        limit = _integer(headers.get("x-ratelimit-limit-requests"))
        if limit is not None and limit > 0:
            if not self.spacing:
                # Requests sent before the rate was known ran into it; their answers say
                # nothing new.
                self.epoch += 1
                self._since_cut = 0
            self.spacing = 60.0 / limit
        left = _integer(headers.get("x-ratelimit-remaining-requests"))
        if remaining and left is not None and left <= 0:
            reset = parse_duration(headers.get("x-ratelimit-reset-requests"))
            # OpenAI's reset is the time to refill the whole allowance; one request comes back
            # after 60 / limit seconds.
            candidates = [s for s in (reset, self.spacing or None) if s is not None]
            if candidates:
                self._hold(min(min(candidates), self.max_wait))

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
                        self._start()
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

    def _start(self) -> None:
        self.in_flight += 1
        self._due = max(self._due, self._clock()) + self.interval()

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def close(self) -> None:
        """No more starts: every waiter gets `Stopped`."""
        self._closed = True
        for waiter in self._waiters:
            waiter.event.set()
