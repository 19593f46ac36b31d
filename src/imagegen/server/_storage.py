"""Images behind `response_format=url`: stored under a random name, linked with an HMAC
signature and an expiry, as OpenAI's blob links are (60 minutes by default).

A file's name carries its expiry (`<unix expiry>-<random>.<ext>`), and the signature covers
the name, so a link cannot be extended or pointed at another file without the secret. The
sweeper deletes expired files; it touches only names of this shape, so a configured folder
may hold other files. Responses never contain a server path, only `/files/<name>`.

The images take at most `max_bytes` of disk: past it, the oldest are removed before they
expire (links nobody fetched must not fill the disk). The default folder is a temporary one,
removed at shutdown; it holds a lock file locked for the server's life, so a server that
starts later can tell the folder of one that was killed (its lock is free) and remove it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from .._imaging import CONTENT_TYPES, EXTENSIONS
from ._errors import HTTPError

__all__ = ["FILES_PREFIX", "ImageStore", "remove_abandoned_folders"]

logger = logging.getLogger("imagegen.server")

FILES_PREFIX = "/files/"
# Every format an answer may take (a name the sweeper and the cap would not know is never made).
_EXTENSIONS = "|".join(sorted(ext.lstrip(".") for ext in EXTENSIONS.values()))
_NAME = re.compile(rf"^(?P<expires>\d{{1,12}})-[A-Za-z0-9_\-]{{22}}\.(?P<ext>{_EXTENSIONS})$")
_TYPE_OF_EXT = {ext.lstrip("."): CONTENT_TYPES[fmt] for fmt, ext in EXTENSIONS.items()}
_STALE_TEMP_SECONDS = 3600
_TEMP_PREFIX = "imagegen-images-"
_OWNER_LOCK = ".owner.lock"


def _claim(directory: Path) -> int | None:
    """Lock `directory`'s owner file for as long as the returned descriptor stays open.

    The file is locked before it gets its name, so no other server ever sees it unlocked
    while its owner lives. `None` where `fcntl` is missing (Windows): such folders are never
    taken for abandoned."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".owner-")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temp, directory / _OWNER_LOCK)
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return None
    return fd


def remove_abandoned_folders(parent: Path | None = None) -> int:
    """Remove the temporary image folders of servers that died without removing them (killed,
    or the machine lost power): those whose owner file is not locked. Folders without one (an
    older version's, or one being created) are left alone. Returns how many were removed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return 0
    removed = 0
    for folder in Path(parent or tempfile.gettempdir()).glob(_TEMP_PREFIX + "*"):
        try:
            fd = os.open(folder / _OWNER_LOCK, os.O_RDWR)
        except OSError:  # no owner file, or another user's folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its server is alive
            os.close(fd)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)
        removed += 1
    if removed:
        logger.info("removed %d image folder(s) left by servers that were stopped", removed)
    return removed


class ImageStore:
    """A folder of expiring images, at most `max_bytes` of them, and the key that signs links
    to them."""

    def __init__(
        self,
        directory: Path | None,
        *,
        ttl: int,
        secret: bytes | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self.owned = directory is None  # a folder we made is removed at shutdown
        self._owner_fd: int | None = None
        if directory is None:
            remove_abandoned_folders()
            self.directory = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
            self._owner_fd = _claim(self.directory)
        else:
            self.directory = directory.expanduser()
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._secret = secret or secrets.token_bytes(32)
        self._lock = threading.Lock()  # saves run in worker threads
        self._sizes: dict[str, int] = {}  # the images in the folder, oldest first
        self.used = 0
        self._rescan()

    def _signature(self, name: str) -> str:
        digest = hmac.new(self._secret, name.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def save(self, data: bytes, output_format: str) -> str:
        """Write one image atomically; return its file name."""
        ext = EXTENSIONS.get(output_format, ".png").lstrip(".")
        name = f"{int(time.time()) + self.ttl}-{secrets.token_urlsafe(16)}.{ext}"
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        with self._lock:
            self._sizes[name] = len(data)
            self.used += len(data)
            self._trim(keep=name)
        return name

    def _trim(self, *, keep: str | None = None) -> None:
        """Remove the oldest images until the folder is within `max_bytes` (never `keep`, the
        image just saved: a link this server is about to hand out must work). Call with the
        lock held."""
        if self.max_bytes is None or self.used <= self.max_bytes:
            return
        removed = 0
        for name in list(self._sizes):  # oldest first
            if self.used <= self.max_bytes:
                break
            if name == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.directory / name)
            self.used -= self._sizes.pop(name)
            removed += 1
        if removed:
            logger.info(
                "removed %d image(s) before they expired: image storage is capped at %d bytes",
                removed,
                self.max_bytes,
            )

    def _rescan(self) -> list[os.DirEntry[str]]:
        """Learn what the folder holds (other workers may share it); return its entries."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            entries = []
        found: list[tuple[int, int, str, int]] = []
        for entry in entries:
            match = _NAME.match(entry.name)
            if match:
                with contextlib.suppress(OSError):
                    stat = entry.stat()
                    found.append(
                        (int(match["expires"]), stat.st_mtime_ns, entry.name, stat.st_size)
                    )
        with self._lock:
            self._sizes = {name: size for _, _, name, size in sorted(found)}  # oldest first
            self.used = sum(self._sizes.values())
        return entries

    def url(self, base_url: str, name: str) -> str:
        return f"{base_url.rstrip('/')}{FILES_PREFIX}{name}?signature={self._signature(name)}"

    def read(self, name: str, signature: str | None, *, now: float | None = None) -> bytes:
        """The image behind a link; `HTTPError` 403 if the link was altered, 404 if expired."""
        match = _NAME.match(name)
        if match is None:
            raise HTTPError(404, "No such image.", code="not_found")
        if not signature or not hmac.compare_digest(
            signature.encode("ascii", "replace"), self._signature(name).encode("ascii")
        ):
            raise HTTPError(
                403, "This image link is not valid: its signature does not match.", code=None
            )
        expires = int(match["expires"])
        if (time.time() if now is None else now) >= expires:
            when = datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise HTTPError(
                404,
                f"This image link expired at {when}; links are valid for {self.ttl} seconds "
                "after the image was made.",
                code="expired",
            )
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            # A real, unexpired link (the signature says so) whose file is gone: removed early.
            raise HTTPError(
                404,
                "This image is no longer stored: the server removes its oldest images before "
                "they expire when its image storage is full. Fetch image links soon after "
                "they are made.",
                code="expired",
            ) from None

    @staticmethod
    def content_type(name: str) -> str:
        return _TYPE_OF_EXT.get(name.rsplit(".", 1)[-1], "application/octet-stream")

    def sweep(self, *, now: float | None = None) -> int:
        """Delete expired images (and temp files a crash left behind); return how many."""
        now = time.time() if now is None else now
        removed = 0
        entries = self._rescan()
        for entry in entries:
            match = _NAME.match(entry.name)
            expired = match is not None and now >= int(match["expires"])
            if not expired and entry.name.startswith(".") and entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    expired = now - entry.stat().st_mtime > _STALE_TEMP_SECONDS
            if expired:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
                with self._lock:
                    self.used -= self._sizes.pop(entry.name, 0)
        with self._lock:
            self._trim()
        return removed

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._owner_fd is not None:
            os.close(self._owner_fd)
            self._owner_fd = None
