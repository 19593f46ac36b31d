"""The placeholder's worker processes: generations drawn and encoded on every CPU.

Most of the CPU a placeholder picture takes holds the GIL (the text, the small background's
float operations), and so does the server's own work on each request: in one process, two
threads draw no more pictures than one. Worker processes (`-o processes=N`, one per CPU under
`imagegen serve`) each draw and encode a generation from its job, which holds no images, only
plain data, and send back the encoded bytes, made by the functions the calling thread would use
(`encode_result`), so an answer is the same to the byte either way.

Each worker has a pipe of its own, and the thread that runs a request writes the job to an idle
worker's pipe and reads the answer itself: no thread of the pool's own stands between them (a
`ProcessPoolExecutor` passes each job through two, which cost a single client a fifth of its
requests/s here). Workers are started with `spawn`, a fresh interpreter (forking a
multi-threaded server can deadlock a child on a lock another thread held), all of them when the
engine loads, and stopped by its `close()`. A worker exits when its pipe closes, so also when
the server dies, even by SIGKILL. A worker that died (killed, out of memory) is replaced and
its job tried once more on the new one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import TYPE_CHECKING, Any

from .._encoding import encode_result

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import SpawnContext, SpawnProcess

    from . import Job
    from .placeholder import PlaceholderEngine

__all__ = ["DrawingPool", "draw", "usable_cpus"]

logger = logging.getLogger("imagegen.engines")

_START_SECONDS = 120.0  # a worker that has not started by then (a starved machine) is refused
_STOP_SECONDS = 10.0  # a worker still drawing then is killed


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def draw(kind: type[PlaceholderEngine], job: Job) -> list[bytes]:
    """A generation drawn by engine class `kind` and encoded as the job asks."""
    result = kind.draw(job)
    encoded, _ = encode_result(job, result, engine=kind.name, png_level=job.png_compress_level)
    return encoded


def _work(connection: Connection, kind: type[PlaceholderEngine]) -> None:
    """A worker: say it is ready, then draw each job it is sent until its pipe closes."""
    connection.send(os.getpid())
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):  # the pool closed, or the server is gone
            return
        try:
            answer: tuple[bool, Any] = (True, draw(kind, job))
        except Exception as exc:  # the caller's to report, as if drawn in its thread
            answer = (False, exc)
        try:
            connection.send(answer)
        except Exception:  # an exception that cannot be pickled: its type and text
            connection.send((False, RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}")))


class _WorkerGone(Exception):
    pass


class _Worker:
    """One worker process and the pool's end of its pipe."""

    def __init__(self, context: SpawnContext, kind: type[PlaceholderEngine]) -> None:
        self.connection, theirs = context.Pipe()
        self.process: SpawnProcess = context.Process(
            target=_work, args=(theirs, kind), name="imagegen-placeholder", daemon=True
        )
        self.process.start()
        theirs.close()

    def wait_ready(self) -> None:
        try:
            if self.connection.poll(_START_SECONDS):
                self.connection.recv()
                return
        except (EOFError, OSError):
            pass
        self.stop()
        raise RuntimeError(
            "a placeholder drawing process did not start "
            f"(exit code {self.process.exitcode}); a script that starts one must run its own "
            "code under `if __name__ == '__main__':`, which the process imports again"
        )

    def ask(self, job: Job) -> list[bytes]:
        try:
            self.connection.send(job)
            done, value = self.connection.recv()
        except (EOFError, OSError) as exc:
            raise _WorkerGone("its drawing process stopped (killed, or out of memory)") from exc
        if not done:
            raise value
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Close the pipe (the worker then exits) and wait for it; kill it if it lingers."""
        self.connection.close()
        self.process.join(_STOP_SECONDS)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


class DrawingPool:
    """`processes` workers that draw the generations of engine class `kind`; `run` from any
    thread (a thread waits for an idle worker)."""

    def __init__(self, kind: type[PlaceholderEngine], processes: int) -> None:
        import multiprocessing  # here: the in-process CLI, which starts no worker, skips it

        self.kind = kind
        self.processes = processes
        self._context = multiprocessing.get_context("spawn")
        # Idle workers; None once the pool is closed.
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._running = 0  # jobs being drawn, by the workers or by calling threads

    def start(self) -> None:
        """Start every worker and wait until each is ready, so requests never wait for one."""
        workers = [_Worker(self._context, self.kind) for _ in range(self.processes)]
        try:
            for worker in workers:
                worker.wait_ready()
        except BaseException:
            for worker in workers:
                worker.stop()
            raise
        for worker in workers:
            self._idle.put(worker)

    def run(self, job: Job) -> list[bytes]:
        """The job's images, encoded. Drawn by a worker while another job is being drawn; a
        job alone is drawn by the calling thread, which is then idle anyway: one client at a
        time waits for no trip to a worker and back (a fifth of its requests/s on a busy
        machine). Also in the calling thread once the pool is closed: a request still running
        when the server stops gets its answer."""
        with self._lock:
            alone = not self._running
            self._running += 1
        try:
            if alone or self._closed:
                return draw(self.kind, job)
            worker = self._idle.get()
            if worker is None:  # the pool closed while this thread waited
                self._idle.put(None)  # for the next thread that waits
                return draw(self.kind, job)
            return self._ask(worker, job)
        finally:
            with self._lock:
                self._running -= 1

    def _ask(self, worker: _Worker, job: Job) -> list[bytes]:
        try:
            try:
                return worker.ask(job)
            except _WorkerGone:
                logger.warning("a placeholder drawing process stopped; starting another")
                worker.stop()
                worker = _Worker(self._context, self.kind)
                worker.wait_ready()
                return worker.ask(job)
        finally:
            self._idle.put(worker)  # a dead one is replaced by the next job it is given

    def close(self) -> None:
        """Stop the workers, once the jobs they are drawing are done."""
        if self._closed:
            return
        self._closed = True
        for _ in range(self.processes):
            worker = self._idle.get()
            if worker is not None:
                worker.stop()
        self._idle.put(None)
