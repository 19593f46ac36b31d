"""What a batch reports: `BatchProgress` while it runs, `BatchReport` when it ends."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._errors import ImagegenError

__all__ = ["BatchProgress", "BatchReport", "Tracker"]

_RATE_WINDOW = 60.0  # images per minute are measured over the last minute once there is one


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot of a running batch, handed to `on_progress`.

    `phase` is `sending` (rows going out), `submitted` / `polling` / `collecting` (Batch API),
    or `finished`. Counts are rows of the file: `skipped` were done by an earlier run, `done`
    and `failed` finished in this one, `invalid` break a rule and are not sent
    (`skip_invalid`), `retrying` wait to be tried again, `pending` are not finished yet.
    """

    phase: str
    total: int
    skipped: int
    done: int
    failed: int
    retrying: int
    in_flight: int
    images: int
    elapsed: float
    images_per_minute: float | None
    eta: float | None
    concurrency: int
    message: str | None = None
    invalid: int = 0

    @property
    def pending(self) -> int:
        return max(0, self.total - self.skipped - self.done - self.failed - self.invalid)

    @property
    def finished(self) -> bool:
        return self.phase == "finished"


@dataclass(frozen=True)
class BatchReport:
    """How a batch ended.

    `ok` is true only if every row of the file is done (now or by an earlier run). `error` is
    what stopped the batch early (a wrong key, an exhausted quota, a rate limit asking for
    minutes); `interrupted` says it was stopped on request (Ctrl-C). Rows not finished stay
    pending: running the same batch again does them. `failures` maps row numbers to errors.
    """

    source: Path
    out_dir: Path
    manifest: Path
    gallery: Path
    total: int
    skipped: int
    done: int
    failed: int
    invalid: int
    images: int
    elapsed: float
    interrupted: bool = False
    error: ImagegenError | None = None
    failures: dict[int, str] = field(default_factory=dict)
    batch_id: str | None = None

    @property
    def pending(self) -> int:
        return max(0, self.total - self.skipped - self.done - self.failed - self.invalid)

    @property
    def ok(self) -> bool:
        return (
            self.failed == 0
            and self.invalid == 0
            and self.pending == 0
            and self.error is None
            and not self.interrupted
        )

    @property
    def images_per_minute(self) -> float | None:
        return self.images * 60 / self.elapsed if self.elapsed > 0 and self.images else None


class Tracker:
    """Counts of one run and the rate they imply; `snapshot()` for `on_progress`."""

    def __init__(
        self,
        total: int,
        skipped: int,
        *,
        invalid: int = 0,
        on_progress: Callable[[BatchProgress], None] | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.skipped = skipped
        self.invalid = invalid
        self.done = 0
        self.failed = 0
        self.retrying = 0
        self.in_flight = 0
        self.images = 0
        self.concurrency = 0
        self.phase = "sending"
        self.message: str | None = None
        self.failures: dict[int, str] = {}
        self._on_progress = on_progress
        self._clock = clock
        self._start = clock()
        self._finished: deque[tuple[float, int]] = deque()  # (when, images) per finished row

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def row_done(self, images: int) -> None:
        self.done += 1
        self.images += images
        self._finished.append((self._clock(), images))
        self.changed()

    def row_failed(self, row: int, message: str) -> None:
        self.failed += 1
        self.failures[row] = message
        self._finished.append((self._clock(), 0))
        self.changed()

    def _rates(self) -> tuple[float | None, float | None]:
        """Images per minute and seconds left, over the last minute (or the run so far)."""
        now = self._clock()
        while self._finished and now - self._finished[0][0] > _RATE_WINDOW:
            self._finished.popleft()
        elapsed = self.elapsed
        span = min(elapsed, _RATE_WINDOW)
        if span <= 0 or not self._finished:
            return None, None
        images = sum(count for _, count in self._finished)
        rows_per_second = len(self._finished) / span
        left = self.total - self.skipped - self.done - self.failed - self.invalid
        return images * 60 / span, left / rows_per_second if rows_per_second else None

    def snapshot(self) -> BatchProgress:
        rate, eta = self._rates()
        return BatchProgress(
            phase=self.phase,
            total=self.total,
            skipped=self.skipped,
            done=self.done,
            failed=self.failed,
            retrying=self.retrying,
            in_flight=self.in_flight,
            images=self.images,
            elapsed=self.elapsed,
            images_per_minute=rate,
            eta=eta,
            concurrency=self.concurrency,
            message=self.message,
            invalid=self.invalid,
        )

    def changed(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.snapshot())
