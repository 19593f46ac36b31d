"""What both ways of sending (direct requests, the Batch API) share: the run's state, saving a
row's images and writing its manifest record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import APIError, ImagegenError
from .._retry import backoff
from ._gallery import relative_to
from ._manifest import Manifest
from ._plan import Planned
from ._status import Tracker

if TYPE_CHECKING:
    from .._async_client import AsyncClient
    from .._results import ImagesResult

__all__ = ["RunContext", "error_info"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def error_info(error: BaseException) -> dict[str, Any]:
    """An error as the manifest records it."""
    info: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ImagegenError):
        for name in ("status_code", "code", "param", "request_id"):
            value = getattr(error, name, None)
            if value is not None:
                info[name] = value
    return info


@dataclass
class RunContext:
    """One run of a batch: where it writes, what it has done, and how it stops."""

    client: AsyncClient
    out_dir: Path
    manifest: Manifest
    tracker: Tracker
    metadata: bool
    max_retries: int
    stop: anyio.Event = field(default_factory=anyio.Event)
    error: ImagegenError | None = None  # what stopped the run early

    @property
    def max_wait(self) -> float:
        """The longest wait taken when the server asks for one: the client's setting."""
        return self.client._limits.max_retry_wait

    @property
    def stopping(self) -> bool:
        return self.stop.is_set()

    def halt(self, error: ImagegenError | None = None) -> None:
        """Start no more rows; with `error`, record why."""
        if error is not None and self.error is None:
            self.error = error
        self.stop.set()

    async def pause(self, seconds: float) -> bool:
        """Sleep, unless the run stops first; return whether it is still running."""
        with anyio.move_on_after(seconds):
            await self.stop.wait()
        return not self.stopping

    def describe(self, item: Planned) -> dict[str, Any]:
        """The start of a row's record: where it is, its key, and its request (image paths
        relative to the out folder)."""
        row = item.row
        request = row.describe()
        if row.images:
            request["image"] = [relative_to(self.out_dir, path) for path in row.images]
        for name, path in (("mask", row.mask), ("markup", row.markup)):
            if path is not None:
                request[name] = relative_to(self.out_dir, path)
        return {"row": row.number, "line": row.line, "key": item.key, "request": request}

    # -- saving and recording --------------------------------------------------------------

    def _save(self, item: Planned, result: ImagesResult) -> list[Path]:
        """Write the images (blocking). A URL result whose download breaks is fetched again
        up to `max_retries` times: the image is paid for."""
        attempt = 0
        while True:
            try:
                return result.save(self.out_dir / item.base, metadata=self.metadata)
            except APIError:
                if attempt >= self.max_retries:
                    raise
                time.sleep(backoff(attempt))
                attempt += 1

    async def record_success(
        self, item: Planned, result: ImagesResult, *, attempts: int, seconds: float, **extra: Any
    ) -> None:
        """Save the images, then append the row's record; both finish even if the run is
        cancelled meanwhile (the answer is paid for)."""
        with anyio.CancelScope(shield=True):
            try:
                paths = await anyio.to_thread.run_sync(self._save, item, result)
            except APIError as exc:  # the download of a URL result failed for good
                await self.record_failure(item, exc, attempts=attempts)
                return
            except ImagegenError as exc:  # the disk is full, the folder went away...
                self.halt(exc)
                return
            if not paths:
                return
            revised = [image.revised_prompt for image in result]
            record: dict[str, Any] = {
                **self.describe(item),
                "status": "done",
                "files": [path.name for path in paths],
                "request_id": result.request_id,
                "attempts": attempts,
                "seconds": round(seconds, 3),
                "finished_at": _now(),
                **extra,
            }
            if any(revised):
                record["revised_prompts"] = revised
            if result.usage is not None:
                record["usage"] = result.usage.model_dump(exclude_none=True)
            await anyio.to_thread.run_sync(self.manifest.append, record)
            self.tracker.row_done(len(paths))

    async def record_failure(
        self, item: Planned, error: BaseException, *, attempts: int, **extra: Any
    ) -> None:
        record = {
            **self.describe(item),
            "status": "failed",
            "files": [],
            "attempts": attempts,
            "finished_at": _now(),
            "error": error_info(error),
            **extra,
        }
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.manifest.append, record)
        self.tracker.row_failed(item.row.number, str(error))
