"""The manifest (`manifest.jsonl`): one JSON line per finished row, and the out folder's lock.

Each line is written with one `write` and made durable with `fsync` before the next row counts
as done, and only after the row's image files are complete on disk (they are written atomically,
temp file then rename). So whenever the process dies (`kill -9`, a power cut after the fsync),
a row the manifest calls done has all its files, and a row it does not mention is simply done
again. A line cut short by a crash is dropped (and the file trimmed) when the manifest is read.

A row may have several lines (failed, then done on a later run); the last one counts. At the
end of a run the manifest is rewritten atomically with one line per row, in row order.

One batch at a time writes to a folder: `lock_folder` holds an exclusive lock on
`.imagegen-batch.lock` for the whole run (released by the OS if the process dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .._errors import ConfigurationError, ImagegenError

__all__ = ["LOCK_NAME", "MANIFEST_NAME", "Manifest", "lock_folder"]

MANIFEST_NAME = "manifest.jsonl"
LOCK_NAME = ".imagegen-batch.lock"
_TEMP_GLOB = ".imagegen-*.tmp"  # what `_saving.atomic_write` leaves if killed mid-write

Record = dict[str, Any]


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder; its renames are durable once done
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _line(record: Record) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class Manifest:
    """Reads and appends the manifest of one out folder. Appends come from worker threads."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.unreadable = 0  # lines that were not records (edited by hand, or torn)

    def load(self) -> dict[int, Record]:
        """The last record of each row. A torn last line is cut off the file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        end = data.rfind(b"\n") + 1
        if end < len(data):
            os.truncate(self.path, end)
            self.unreadable += 1
        latest: dict[int, Record] = {}
        for raw in data[:end].splitlines():
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                self.unreadable += 1
                continue
            row = record.get("row") if isinstance(record, dict) else None
            if isinstance(row, int) and not isinstance(row, bool):
                latest[row] = record
            else:
                self.unreadable += 1
        return latest

    def _open(self) -> int:
        if self._fd is None:
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            if created:
                _fsync_folder(self.path.parent)
        return self._fd

    def append(self, record: Record) -> None:
        """Add one record durably (blocks for the fsync: call it from a worker thread)."""
        data = _line(record)
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)

    def rewrite(self, records: Iterable[Record]) -> None:
        """Replace the manifest with `records`, atomically."""
        temp = self.path.with_name(f".{MANIFEST_NAME}.tmp")
        with self._lock:
            self._close()
            with open(temp, "wb") as handle:
                for record in records:
                    handle.write(_line(record))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
            _fsync_folder(self.path.parent)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def lock_folder(folder: Path) -> Iterator[None]:
    """Hold the folder's batch lock, or raise `ImagegenError` if another run holds it.

    The lock file stays (removing it while others may open it would let two runs hold two
    different files); leftover temporary files of an earlier, killed run are removed.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        # Nothing was sent yet: a wrong out_dir is the caller's to fix, as a wrong flag is.
        reason = "it is a file" if folder.is_file() else (exc.strerror or str(exc)).lower()
        raise ConfigurationError(
            f"Cannot use {str(folder)!r} as the out folder: {reason}; choose another out_dir "
            "(--out-dir).",
            param="out_dir",
        ) from None
    try:
        if not _try_lock(fd):
            raise ImagegenError(
                f"Another imagegen batch is writing to {str(folder)!r}; wait for it to end, "
                "or give this one another --out-dir."
            )
        for temp in folder.glob(_TEMP_GLOB):
            with contextlib.suppress(OSError):
                temp.unlink()
        yield
    finally:
        os.close(fd)  # releases the lock
