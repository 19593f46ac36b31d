"""Uploaded files and Batch API jobs, kept in the server's data folder across restarts.

```
DATA_DIR/imagegen.sqlite3   files, batches, and the results of batch requests run so far
DATA_DIR/files/<file id>    the content of each file (uploads and batch outputs)
```

SQLite (the standard library's) in WAL mode; every call takes the store's lock and runs in a
worker thread (the routes and the batch worker use `anyio.to_thread`). A file's content is
written (temp file, then rename) before its row is committed, and a batch's output files before
the transaction that marks it completed, so a crash at any point leaves the store consistent;
at worst an orphan content file, removed at the next start.

Several servers may share a data folder: a batch is run by the server holding its lease
(`worker`, `lease_until`), renewed while it runs, given back at shutdown, and taken over by
another (or the restarted) server once it lapses, or at once if its holder was a process of
the same machine that is gone (killed).

The folder and the database are created on first use, so a server that never sees a file
upload writes nothing there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LEASE_SECONDS", "RUNNABLE", "JobStore", "default_data_dir", "new_id", "worker_id"]

LEASE_SECONDS = 15.0
DB_NAME = "imagegen.sqlite3"
RUNNABLE = ("validating", "in_progress", "finalizing", "cancelling")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    worker TEXT,
    lease_until REAL
);
CREATE TABLE IF NOT EXISTS results (
    batch_id TEXT NOT NULL,
    line INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (batch_id, line)
);
"""


def default_data_dir() -> Path:
    """`IMAGEGEN_USER_DIR`, else the platform's folder for an application's data."""
    chosen = os.environ.get("IMAGEGEN_USER_DIR", "").strip()
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "imagegen"


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(12)}"


def worker_id() -> str:
    """Who holds a lease: this machine, this process, this server."""
    return f"{socket.gethostname()}|{os.getpid()}|{secrets.token_hex(6)}"


def _gone(worker: str) -> bool:
    """Whether a lease holder is a server process of this machine that no longer runs."""
    host, _, rest = worker.partition("|")
    pid_text = rest.partition("|")[0]
    if os.name != "posix" or host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's (or Windows, where os.kill ends a process)
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists, owned by another user
    return False


class JobStore:
    """The database and the content folder. Methods block: call them in a worker thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.content = folder / "files"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def exists(self) -> bool:
        return (self.folder / DB_NAME).exists()

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                self.content.mkdir(parents=True, exist_ok=True, mode=0o700)
                db = sqlite3.connect(
                    self.folder / DB_NAME, check_same_thread=False, isolation_level=None
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA busy_timeout=10000")
                db.executescript(_SCHEMA)
                self._db = db
                self._remove_orphans(db)
            yield self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _remove_orphans(self, db: sqlite3.Connection) -> None:
        known = {row[0] for row in db.execute("SELECT id FROM files")}
        for entry in self.content.iterdir():
            stale_temp = entry.name.startswith(".") and time.time() - entry.stat().st_mtime > 3600
            if (not entry.name.startswith(".") and entry.name not in known) or stale_temp:
                with contextlib.suppress(OSError):
                    entry.unlink()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- files -------------------------------------------------------------------------

    def content_path(self, file_id: str) -> Path:
        return self.content / file_id

    def write_content(self, file_id: str, chunks: Iterator[bytes]) -> int:
        """Write a file's content atomically; return its size."""
        with self._connection():
            pass  # the folder exists from here on
        return self._write_file(file_id, chunks)

    def _write_file(self, file_id: str, chunks: Iterator[bytes]) -> int:
        temp = self.content / f".{file_id}.tmp"
        size = 0
        try:
            with open(temp, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.content_path(file_id))
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return size

    def add_file(self, record: dict[str, Any], owner: str) -> None:
        with self._transaction() as db:
            self._insert_file(db, record, owner)

    @staticmethod
    def _insert_file(db: sqlite3.Connection, record: dict[str, Any], owner: str) -> None:
        db.execute(
            "INSERT INTO files (id, owner, filename, purpose, bytes, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record["id"],
                owner,
                record["filename"],
                record["purpose"],
                record["bytes"],
                record["created_at"],
                record.get("expires_at"),
            ),
        )

    def get_file(self, file_id: str, owner: str) -> dict[str, Any] | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT id, filename, purpose, bytes, created_at, expires_at FROM files "
                "WHERE id = ? AND owner = ?",
                (file_id, owner),
            ).fetchone()
        return _file_object(row) if row else None

    def list_files(
        self, owner: str, *, purpose: str | None, limit: int, after: str | None, order: str
    ) -> list[dict[str, Any]]:
        query = (
            "SELECT id, filename, purpose, bytes, created_at, expires_at FROM files WHERE owner = ?"
        )
        args: list[Any] = [owner]
        if purpose:
            query += " AND purpose = ?"
            args.append(purpose)
        direction = "ASC" if order == "asc" else "DESC"
        if after:
            compare = ">" if order == "asc" else "<"
            query += (
                f" AND (created_at, id) {compare} "
                "(SELECT created_at, id FROM files WHERE id = ? AND owner = ?)"
            )
            args += [after, owner]
        query += f" ORDER BY created_at {direction}, id {direction} LIMIT ?"
        args.append(limit)
        with self._connection() as db:
            return [_file_object(row) for row in db.execute(query, args)]

    def delete_file(self, file_id: str, owner: str) -> bool:
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM files WHERE id = ? AND owner = ?", (file_id, owner)
            ).rowcount
        if deleted:
            with contextlib.suppress(OSError):
                self.content_path(file_id).unlink()
        return bool(deleted)

    # -- batches -----------------------------------------------------------------------

    def add_batch(self, batch: dict[str, Any], owner: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO batches (id, owner, status, created_at, body) VALUES (?, ?, ?, ?, ?)",
                (batch["id"], owner, batch["status"], batch["created_at"], json.dumps(batch)),
            )

    def get_batch(self, batch_id: str, owner: str | None = None) -> dict[str, Any] | None:
        with self._connection() as db:
            return self._batch(db, batch_id, owner)

    def _batch(
        self, db: sqlite3.Connection, batch_id: str, owner: str | None
    ) -> dict[str, Any] | None:
        query = "SELECT body FROM batches WHERE id = ?"
        args: list[Any] = [batch_id]
        if owner is not None:
            query += " AND owner = ?"
            args.append(owner)
        row = db.execute(query, args).fetchone()
        if row is None:
            return None
        batch: dict[str, Any] = json.loads(row[0])
        if batch["status"] in RUNNABLE:  # counts of a running batch come from its results
            counts = dict(
                db.execute(
                    "SELECT ok, COUNT(*) FROM results WHERE batch_id = ? GROUP BY ok", (batch_id,)
                ).fetchall()
            )
            total = (batch.get("request_counts") or {}).get("total", 0)
            batch["request_counts"] = {
                "total": total,
                "completed": counts.get(1, 0),
                "failed": counts.get(0, 0),
            }
        return batch

    def public_batch(self, batch_id: str, owner: str) -> dict[str, Any] | None:
        """A batch as clients see it: without the fields the worker keeps for itself."""
        batch = self.get_batch(batch_id, owner)
        return None if batch is None else _public(batch)

    def list_batches(self, owner: str, *, limit: int, after: str | None) -> list[dict[str, Any]]:
        query = "SELECT id FROM batches WHERE owner = ?"
        args: list[Any] = [owner]
        if after:
            query += (
                " AND (created_at, id) < (SELECT created_at, id FROM batches WHERE id = ? AND "
                "owner = ?)"
            )
            args += [after, owner]
        query += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self._connection() as db:
            ids = [row[0] for row in db.execute(query, args)]
            found = (self._batch(db, batch_id, owner) for batch_id in ids)
            return [_public(batch) for batch in found if batch]

    def update_batch(self, batch_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Merge `changes` into the batch; `None` if there is no such batch."""
        with self._transaction() as db:
            return self._update(db, batch_id, changes)

    def _update(
        self, db: sqlite3.Connection, batch_id: str, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        row = db.execute("SELECT body FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None:
            return None
        batch: dict[str, Any] = {**json.loads(row[0]), **changes}
        db.execute(
            "UPDATE batches SET body = ?, status = ? WHERE id = ?",
            (json.dumps(batch), batch["status"], batch_id),
        )
        return batch

    def request_cancel(self, batch_id: str, owner: str) -> dict[str, Any] | None:
        """Move a batch that has not ended to `cancelling`; return it as it is now."""
        with self._transaction() as db:
            batch = self._batch(db, batch_id, owner)
            if batch is None or batch["status"] not in RUNNABLE or batch["status"] == "cancelling":
                return batch
            if batch["status"] == "finalizing":
                return batch  # its requests are all done; it ends as completed
            self._update(db, batch_id, {"status": "cancelling", "cancelling_at": int(time.time())})
            return self._batch(db, batch_id, owner)

    # -- the worker's side ---------------------------------------------------------------

    def claim(self, worker: str) -> str | None:
        """Take the lease of the oldest batch that needs running and is not someone else's:
        no lease, a lapsed one, or one of a server of this machine that is gone (killed)."""
        now = time.time()
        with self._transaction() as db:
            placeholders = ", ".join("?" for _ in RUNNABLE)
            rows = db.execute(
                f"SELECT id, worker, lease_until FROM batches WHERE status IN ({placeholders}) "
                "ORDER BY created_at, id",
                RUNNABLE,
            ).fetchall()
            for batch_id, holder, lease_until in rows:
                if holder is None or holder == worker or lease_until < now or _gone(holder):
                    db.execute(
                        "UPDATE batches SET worker = ?, lease_until = ? WHERE id = ?",
                        (worker, now + LEASE_SECONDS, batch_id),
                    )
                    return str(batch_id)
            return None

    def renew(self, batch_id: str, worker: str) -> bool:
        with self._transaction() as db:
            return bool(
                db.execute(
                    "UPDATE batches SET lease_until = ? WHERE id = ? AND worker = ?",
                    (time.time() + LEASE_SECONDS, batch_id, worker),
                ).rowcount
            )

    def release(self, worker: str) -> None:
        """Give back every lease of `worker` (at shutdown: a restart resumes at once)."""
        if self._db is None:
            return
        with self._transaction() as db:
            db.execute(
                "UPDATE batches SET worker = NULL, lease_until = NULL WHERE worker = ?", (worker,)
            )

    def owner_of(self, batch_id: str) -> str:
        with self._connection() as db:
            row = db.execute("SELECT owner FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return str(row[0]) if row else ""

    def done_lines(self, batch_id: str) -> set[int]:
        with self._connection() as db:
            return {
                row[0]
                for row in db.execute("SELECT line FROM results WHERE batch_id = ?", (batch_id,))
            }

    def add_result(self, batch_id: str, line: int, ok: bool, data: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO results (batch_id, line, ok, data) VALUES (?, ?, ?, ?)",
                (batch_id, line, int(ok), data),
            )

    def export(self, batch_id: str, ok: bool, file_id: str) -> tuple[int, int]:
        """Write the batch's successful (or failed) results, in input order, as the content
        of `file_id`; return (lines, bytes), (0, 0) and no content if there is none."""
        with self._connection() as db:
            cursor = db.execute(
                "SELECT data FROM results WHERE batch_id = ? AND ok = ? ORDER BY line",
                (batch_id, int(ok)),
            )
            count = 0

            def lines() -> Iterator[bytes]:
                nonlocal count
                while rows := cursor.fetchmany(64):
                    for (data,) in rows:
                        count += 1
                        yield str(data).encode("utf-8") + b"\n"

            size = self._write_file(file_id, lines())
        if not count:
            with contextlib.suppress(OSError):
                self.content_path(file_id).unlink()
            return 0, 0
        return count, size

    def finish(
        self, batch_id: str, changes: dict[str, Any], outputs: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """End a batch: its output files (content already written), its new status; its
        results are dropped, now that the files hold them."""
        owner = self.owner_of(batch_id)
        with self._transaction() as db:
            for record in outputs:
                self._insert_file(db, record, owner)
            batch = self._update(db, batch_id, changes)
            db.execute("DELETE FROM results WHERE batch_id = ?", (batch_id,))
            db.execute(
                "UPDATE batches SET worker = NULL, lease_until = NULL WHERE id = ?", (batch_id,)
            )
            return batch


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if not key.startswith("_")}


def _file_object(row: Any) -> dict[str, Any]:
    file_id, filename, purpose, size, created_at, expires_at = row
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "expires_at": expires_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
