"""Process-wide settings `imagegen serve` makes before it listens (an app embedded in another
server leaves the process to its owner; docs/server.md says what to set by hand)."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["raise_open_files_limit", "return_freed_memory"]

logger = logging.getLogger("imagegen.server")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD = 1024 * 1024


def return_freed_memory() -> None:
    """Give large blocks back to the system as soon as they are freed.

    Pillow allocates images in 16 MB blocks; glibc's default threshold for mapping a block on
    its own grows up to 32 MB as blocks are freed, after which image blocks come from the heap,
    which fragments and keeps its peak: a 64 MP edit left the server at 412 MB of memory after
    a peak of 1,034 MB. With a fixed 1 MB threshold the same edit peaks at 813 MB and the
    server falls back to 64 MB. Does nothing where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - no C library to tune
        return
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc (musl, macOS)
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


def raise_open_files_limit(connections: int) -> None:
    """Let the process hold `connections` sockets and some files besides: raise the soft limit
    on open files towards the hard one (many systems start processes at 1,024). Warns when even
    the hard limit is too low."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    wanted = connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        logger.warning(
            "this process may open only %d files, fewer than --max-connections %d needs (%d); "
            "raise `ulimit -n` or lower --max-connections",
            soft,
            connections,
            wanted,
        )
