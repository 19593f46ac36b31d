"""Images behind `response_format=url`: stored under a random name, linked with an HMAC
signature and an expiry, as OpenAI's blob links are (60 minutes by default).

A file's name carries its expiry (`<unix expiry>-<random>.<ext>`), and the signature covers
the name, so a link cannot be extended or pointed at another file without the secret. The
sweeper deletes expired files; it touches only names of this shape, so a configured folder
may hold other files. Responses never contain a server path, only `/files/<name>`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from .._imaging import CONTENT_TYPES, EXTENSIONS
from ._errors import HTTPError

__all__ = ["FILES_PREFIX", "ImageStore"]

FILES_PREFIX = "/files/"
_NAME = re.compile(r"^(?P<expires>\d{1,12})-[A-Za-z0-9_\-]{22}\.(?P<ext>png|jpg|webp)$")
_TYPE_OF_EXT = {ext.lstrip("."): CONTENT_TYPES[fmt] for fmt, ext in EXTENSIONS.items()}
_STALE_TEMP_SECONDS = 3600


class ImageStore:
    """A folder of expiring images and the key that signs links to them."""

    def __init__(self, directory: Path | None, *, ttl: int, secret: bytes | None = None) -> None:
        self.owned = directory is None  # a folder we made is removed at shutdown
        if directory is None:
            self.directory = Path(tempfile.mkdtemp(prefix="imagegen-images-"))
        else:
            self.directory = directory.expanduser()
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.ttl = ttl
        self._secret = secret or secrets.token_bytes(32)

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
        return name

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
            raise HTTPError(404, "No such image.", code="not_found") from None

    @staticmethod
    def content_type(name: str) -> str:
        return _TYPE_OF_EXT.get(name.rsplit(".", 1)[-1], "application/octet-stream")

    def sweep(self, *, now: float | None = None) -> int:
        """Delete expired images (and temp files a crash left behind); return how many."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
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
        return removed

    def close(self) -> None:
        if self.owned:
            shutil.rmtree(self.directory, ignore_errors=True)
