"""`arun` and `run`: one batch from file to folder.

Read the rows, check them all (nothing is sent if one is wrong, unless `skip_invalid`), lock the
out folder, skip the rows an earlier run finished, send the rest (directly or through the Batch
API), then rewrite the manifest one line per row and write the gallery, also when the run is
stopped or cancelled.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from .._capabilities import get_capabilities
from .._errors import ImagegenError
from .._types import Unpack
from ._context import RunContext
from ._direct import send_rows
from ._gallery import GALLERY_NAME, GalleryRow, relative_to, write_gallery
from ._manifest import Manifest, lock_folder
from ._options import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, BatchOptions, RunOptions, split
from ._plan import Planned, check_rows
from ._rows import BatchFileError, RowProblem, read_batch
from ._status import BatchReport, Tracker

__all__ = ["DEFAULT_CONCURRENCY", "MAX_CONCURRENCY", "BatchInterrupted", "arun", "run"]


class BatchInterrupted(KeyboardInterrupt):
    """`run` was interrupted (Ctrl-C) after writing the manifest and the gallery; `report` says
    what was done. Running the same batch again finishes it."""

    def __init__(self, report: BatchReport | None) -> None:
        super().__init__("The batch was interrupted.")
        self.report = report


def _is_done(record: Mapping[str, Any] | None, item: Planned, folder: Path) -> bool:
    if not record or record.get("status") != "done" or record.get("key") != item.key:
        return False
    files = record.get("files")
    if not isinstance(files, list) or not files:
        return False
    return all(isinstance(name, str) and (folder / name).is_file() for name in files)


def _batch_api_problems(planned: list[Planned]) -> tuple[list[Planned], list[RowProblem]]:
    keep, problems = [], []
    for item in planned:
        row = item.row
        model = row.params.get("model")
        if row.endpoint == "variations":
            problems.append(
                RowProblem(
                    row.number, row.line, "image", "variations cannot go through the Batch API"
                )
            )
        elif (
            row.endpoint == "edits"
            and isinstance(model, str)
            and get_capabilities(model).family == "dall-e"
        ):
            problems.append(
                RowProblem(
                    row.number,
                    row.line,
                    "model",
                    f"{model} edits cannot go through the Batch API (it takes GPT image models)",
                )
            )
        else:
            keep.append(item)
    return keep, problems


def _gallery_row(folder: Path, item: Planned, record: Mapping[str, Any]) -> GalleryRow:
    """A checked row as the gallery shows it; its record counts only if made for this key."""
    row = item.row
    current = record if record.get("key") == item.key else {}
    status = str(current.get("status") or "pending")
    shown = {k: v for k, v in row.params.items() if k != "prompt"}
    if row.endpoint != "generations":
        shown = {"endpoint": row.endpoint, **shown}
    shown.update({f"extra.{k}": v for k, v in row.extra_body.items()})
    error = current.get("error")
    return GalleryRow(
        number=row.number,
        status=status,
        prompt=row.prompt,
        params=shown,
        files=tuple(current.get("files") or ()) if status == "done" else (),
        inputs=tuple(relative_to(folder, path) for path in row.inputs),
        error=error.get("message") if isinstance(error, dict) else None,
        revised_prompts=tuple(text for text in current.get("revised_prompts") or () if text),
    )


def _gallery_rows(
    folder: Path,
    planned: list[Planned],
    problems: list[RowProblem],
    records: Mapping[int, Mapping[str, Any]],
) -> list[GalleryRow]:
    rows = {
        item.row.number: _gallery_row(folder, item, records.get(item.row.number) or {})
        for item in planned
    }
    for number, found in _by_row(problems).items():
        rows[number] = GalleryRow(
            number=number, status="invalid", error="\n".join(str(problem) for problem in found)
        )
    return [rows[number] for number in sorted(rows)]


def _by_row(problems: list[RowProblem]) -> dict[int, list[RowProblem]]:
    """The problems of each row that has some (a row may break several rules)."""
    found: dict[int, list[RowProblem]] = {}
    for problem in problems:
        if problem.row is not None:
            found.setdefault(problem.row, []).append(problem)
    return found


def _finish(
    manifest: Manifest,
    folder: Path,
    title: str,
    planned: list[Planned],
    problems: list[RowProblem],
) -> None:
    """One line per row in the manifest, in row order; the gallery (blocking)."""
    records = manifest.load()
    manifest.rewrite(records[number] for number in sorted(records))
    write_gallery(folder, title, _gallery_rows(folder, planned, problems, records))


async def arun(
    source: str | os.PathLike[str],
    *,
    stop: anyio.Event | None = None,
    **options: Unpack[BatchOptions],
) -> BatchReport:
    """Run the batch file `source` into `out_dir`; see `imagegen.batch` for the whole story.

    `defaults` are request parameters for every row (a row's own values win). Client options
    (`api_key`, `base_url`, `engine`, `timeout`, ...) are `AsyncClient`'s; `max_retries` is the
    batch's own. Setting `stop` lets the requests in flight finish and ends the run (pending
    rows stay for the next run); cancelling the task stops at once. Either way the manifest
    and the gallery are written before `arun` returns or re-raises.
    """
    run_options, client_options = split("arun", options)
    return await _arun(source, run_options, client_options, stop=stop, sink=[])


def run(source: str | os.PathLike[str], **options: Unpack[BatchOptions]) -> BatchReport:
    """`arun` for synchronous code: the same arguments (but `stop`), the same report.

    Called from the main thread, the first Ctrl-C lets the requests in flight finish, a second
    one cancels them; either way the manifest and gallery are written and `BatchInterrupted`
    (a `KeyboardInterrupt` carrying the report) is raised.
    """
    run_options, client_options = split("run", options)
    sink: list[BatchReport] = []
    if threading.current_thread() is not threading.main_thread():
        return anyio.run(partial(_arun, source, run_options, client_options, stop=None, sink=sink))
    handles: dict[str, Any] = {}
    interrupts = 0

    async def main() -> BatchReport | None:
        stop = anyio.Event()
        with anyio.CancelScope() as scope:
            handles.update(loop=asyncio.get_running_loop(), scope=scope, stop=stop)
            return await _arun(source, run_options, client_options, stop=stop, sink=sink)
        return None

    def on_interrupt(signum: int, frame: Any) -> None:
        nonlocal interrupts
        interrupts += 1
        loop = handles.get("loop")
        if loop is None:
            raise KeyboardInterrupt
        action = handles["stop"].set if interrupts == 1 else handles["scope"].cancel
        loop.call_soon_threadsafe(action)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        report = anyio.run(main)
    finally:
        signal.signal(signal.SIGINT, previous)
    if report is None or report.interrupted:
        raise BatchInterrupted(report or (sink[0] if sink else None))
    return report


async def _arun(
    source: str | os.PathLike[str],
    options: RunOptions,
    client_options: Mapping[str, Any],
    *,
    stop: anyio.Event | None,
    sink: list[BatchReport],
) -> BatchReport:
    path = Path(source).expanduser()
    rows, unreadable, total = read_batch(path, options.defaults)
    folder = Path(options.out_dir).expanduser() if options.out_dir else path.with_suffix("")
    from .._async_client import AsyncClient

    # No retries inside the client: every answer reaches the batch's own loop, which paces.
    async with AsyncClient(max_retries=0, **client_options) as client:
        if options.via == "batch-api":
            from ._batch_api import check_client

            check_client(client)
        planned, problems = await anyio.to_thread.run_sync(check_rows, client, rows)
        if options.via == "batch-api":
            planned, more = _batch_api_problems(planned)
            problems += more
        # Rows that could not be read and rows that break a rule, listed together in row order.
        problems = sorted(unreadable + problems, key=lambda p: p.row or 0)
        if problems and not options.skip_invalid:
            raise BatchFileError(str(path), problems)
        with lock_folder(folder):
            manifest = Manifest(folder)
            try:
                run = _Run(client, path, folder, manifest, planned, problems, options, total)
                return await run.execute(stop, sink)
            finally:
                manifest.close()


@dataclass
class _Run:
    """One run, once the rows are checked and the folder is ours."""

    client: Any
    path: Path
    folder: Path
    manifest: Manifest
    planned: list[Planned]
    problems: list[RowProblem]
    options: RunOptions
    total: int
    interrupted: bool = False

    async def _record_invalid(self) -> None:
        """With `skip_invalid`: the rows that cannot be sent, as such, one record each with
        every problem of the row (`param` names the first)."""
        for number, found in _by_row(self.problems).items():
            message = found[0].message
            if len(found) > 1:
                message = "; ".join(
                    f"{p.param}: {p.message}" if p.param else p.message for p in found
                )
            record: dict[str, Any] = {
                "row": number,
                "line": found[0].line,
                "status": "invalid",
                "files": [],
                "error": {
                    "type": "InvalidRequestError",
                    "message": message,
                    "param": found[0].param,
                },
            }
            await anyio.to_thread.run_sync(self.manifest.append, record)

    async def _watch(self, stop: anyio.Event, ctx: RunContext) -> None:
        await stop.wait()
        self.interrupted = True
        ctx.tracker.message = (
            "Stopping: the requests in flight finish first (interrupt again to cancel them)."
        )
        ctx.halt()
        ctx.tracker.changed()

    async def execute(self, stop: anyio.Event | None, sink: list[BatchReport]) -> BatchReport:
        options, folder = self.options, self.folder
        previous = await anyio.to_thread.run_sync(self.manifest.load)
        todo = [
            item
            for item in self.planned
            if options.force or not _is_done(previous.get(item.row.number), item, folder)
        ]
        tracker = Tracker(
            self.total,
            len(self.planned) - len(todo),
            invalid=len(_by_row(self.problems)),
            on_progress=options.on_progress,
        )
        tracker.concurrency = options.concurrency
        ctx = RunContext(
            self.client, folder, self.manifest, tracker, options.metadata, options.max_retries
        )
        batch_id: str | None = None
        await self._record_invalid()
        try:
            async with anyio.create_task_group() as watch:
                if stop is not None:
                    watch.start_soon(self._watch, stop, ctx)
                tracker.changed()
                if options.via == "api":
                    await send_rows(ctx, todo, concurrency=options.concurrency)
                else:
                    from ._batch_api import run_batch_api

                    try:
                        batch_id = await run_batch_api(
                            ctx,
                            self.planned,
                            todo,
                            title=self.path.stem,
                            poll_interval=options.poll_interval,
                            force=options.force,
                        )
                    except ImagegenError as exc:
                        # The server is down, the key wrong, the route missing...: the batch
                        # stops early, as direct requests do; what was submitted is kept in
                        # batch-api.json for the next run.
                        ctx.halt(exc)
                watch.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(
                    _finish, self.manifest, folder, self.path.name, self.planned, self.problems
                )
                tracker.phase = "finished"
                if tracker.message and tracker.message.startswith("Stopping"):
                    tracker.message = None
                sink.append(self._report(ctx, batch_id))
                tracker.changed()
        return sink[-1]

    def _report(self, ctx: RunContext, batch_id: str | None) -> BatchReport:
        tracker = ctx.tracker
        return BatchReport(
            source=self.path,
            out_dir=self.folder,
            manifest=self.manifest.path,
            gallery=self.folder / GALLERY_NAME,
            total=self.total,
            skipped=tracker.skipped,
            done=tracker.done,
            failed=tracker.failed,
            invalid=tracker.invalid,
            images=tracker.images,
            elapsed=tracker.elapsed,
            interrupted=self.interrupted,
            error=ctx.error,
            failures=dict(tracker.failures),
            batch_id=batch_id,
        )
