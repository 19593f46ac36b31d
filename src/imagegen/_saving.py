"""Writing images to disk: atomic files, PSOpenAI's naming, metadata in PNG text or a sidecar.

- Atomic: bytes go to a temporary file in the target's folder (`.imagegen-XXXXXXXX.tmp`, short
  whatever the target's name, so any name the folder takes works), which is renamed over the
  target only when complete (`os.replace`); a failure part-way (a download that breaks, a full
  disk) leaves neither a partial image nor the temporary file. Missing parent folders are created.
- No-replace (`overwrite=False`): the complete temporary file is hard-linked to the target, which
  fails if the target exists (`FileExistsError`), so two processes choosing the same name at the
  same moment cannot both get it. Where hard links are not supported (FAT, some network shares)
  the name is first reserved by creating it exclusively (empty, for an instant) and then
  replaced by the complete file.
- Streaming: images arrive as an iterator of byte chunks (base64 decoded a few MB at a time, or
  a download's body), so saving n large images holds about one chunk in memory, not n images.
- Naming: `name.png`, `name-1.png`, `name-2.png` for the images of one answer (PSOpenAI's
  rule); streamed partial images as `name.partial-0.png`, `name.partial-1.png`. A path without
  an extension gets the one matching the image's real format (sniffed from its first bytes).
  A folder (an existing one, or a path ending in a separator) is refused: `out` would
  otherwise become `out.png` beside it.
- Only images: the first bytes of every image are sniffed before anything is written (PNG,
  JPEG, WebP, GIF or SVG); anything else, an HTML page, a script, text, is refused with an
  `APIResponseError` saying what it looks like, and no file (not even a temporary one) is made.
- Metadata: PNG files get text chunks inserted right after the header; the image data chunks
  are copied byte for byte, so the pixels cannot change. Other formats (JPEG, WebP, GIF, SVG)
  get `<file>.json`.
  Metadata without a `size` gets the image's own `WxH`, read from its header.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO

from ._errors import APIResponseError, ImagegenError, redact
from ._imaging import EXTENSIONS, sniff_format

logger = logging.getLogger("imagegen.client")  # silent by default: see `_request.logger`
# Extensions of the formats Images APIs return, and the format each names.
FORMAT_OF_SUFFIX = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".gif": "gif",
    ".svg": "svg",
}


def split_image_suffix(path: Path) -> tuple[str, str]:
    """`path`'s name as (stem, image extension), the extension '' unless it is one of
    `FORMAT_OF_SUFFIX`: in `2024.01.05-cat` or `out.v2` the dot is part of the name."""
    suffix = path.suffix if path.suffix.lower() in FORMAT_OF_SUFFIX else ""
    return path.name[: len(path.name) - len(suffix)], suffix


__all__ = [
    "atomic_write",
    "b64_chunks",
    "image_bytes",
    "image_head",
    "png_text_chunks",
    "target_path",
    "write_image",
]

# Characters of base64 decoded at a time (a multiple of 4): 1 MiB of text, 768 KiB of image.
_B64_CHUNK = 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IHDR_END = 8 + 4 + 4 + 13 + 4  # signature, then IHDR: length, type, 13 data bytes, CRC
# Bytes read before the format is decided: an SVG may open with a declaration, comments and a
# doctype before its `<svg`.
_SNIFF_BYTES = 4096
_NOT_CANONICAL = ("\n", "\r", " ")


def b64_chunks(text: str) -> Iterator[bytes]:
    """Decode base64 a slice at a time; raises `APIResponseError` on invalid data."""
    try:
        if len(text) % 4 or any(ch in text for ch in _NOT_CANONICAL):
            yield base64.b64decode(text)  # wrapped or unpadded: decode in one go
            return
        for start in range(0, len(text), _B64_CHUNK):
            yield base64.b64decode(text[start : start + _B64_CHUNK])
    except (binascii.Error, ValueError) as exc:
        raise APIResponseError(
            f"The server sent image data that is not valid base64: {exc}."
        ) from None


def png_text_chunks(metadata: Mapping[str, str]) -> bytes:
    """PNG `tEXt` chunks (`iTXt` for text outside Latin-1) holding `metadata`."""
    out = bytearray()
    for key, value in metadata.items():
        value = value.replace("\0", " ")
        try:
            kind, payload = b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")
        except UnicodeEncodeError:
            # keyword NUL, compression flag 0, method 0, empty language NUL, empty keyword NUL
            kind = b"iTXt"
            payload = key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8")
        out += struct.pack(">I", len(payload)) + kind + payload
        out += struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    return bytes(out)


def target_path(
    base: str | os.PathLike[str], tag: str = "", image_format: str | None = None
) -> Path:
    """`base` with `tag` before its extension: `out.png` + `-1` -> `out-1.png`.

    Without an image extension the image format's is added: `out` + `-1` + png ->
    `out-1.png`, `out.v2` -> `out.v2.png`.
    """
    path = Path(base).expanduser()
    stem, suffix = split_image_suffix(path)
    suffix = suffix or EXTENSIONS.get(image_format or "", "")
    return path.with_name(f"{stem}{tag}{suffix}")


@contextlib.contextmanager
def atomic_write(path: Path, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Open a temporary file beside `path`; on success it becomes `path`, else it is removed.

    With `overwrite=False` an existing `path` is left alone and `FileExistsError` raised.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".imagegen-{os.urandom(4).hex()}.tmp")
        fd = _create(temp)
    except OSError as exc:
        raise ImagegenError(f"Cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            _move_new(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, FileExistsError) and not overwrite:
            raise
        if isinstance(exc, OSError):
            raise ImagegenError(f"Cannot write {str(path)!r}: {exc.strerror or exc}.") from exc
        raise


def _create(temp: Path) -> int:
    # Made like a normal file (mode 0o666 minus the umask), unlike mkstemp's 0o600; by hand
    # rather than with `tempfile`, whose import (shutil, bz2, lzma, random) costs more than the
    # whole rest of saving.
    return os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)


def check_writable(folder: Path) -> None:
    """Raise `OSError` unless a file can be made in `folder` (which exists), as `atomic_write`
    makes its temporary file there."""
    temp = folder / f".imagegen-{os.urandom(4).hex()}.tmp"
    os.close(_create(temp))
    os.unlink(temp)


def _move_new(temp: Path, path: Path) -> None:
    """Move `temp` to `path` unless `path` exists (`FileExistsError`), atomically."""
    try:
        os.link(temp, path)  # never replaces: EEXIST even for a dangling symlink
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    except OSError:
        _reserve_and_replace(temp, path)  # no hard links on this file system
        return
    with contextlib.suppress(OSError):
        os.unlink(temp)


def _reserve_and_replace(temp: Path, path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)  # the empty reservation, never someone else's file
        raise


def _head(chunks: Iterator[bytes], size: int) -> bytes:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= size:
            break
    return head


def _looks_like(head: bytes) -> str:
    """What bytes that are not an image look like, for messages."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = text[:1024].lower()
    first_line = text.split(b"\n", 1)[0][:60].decode("utf-8", "replace").strip()
    if lower.startswith((b"<!doctype html", b"<html")) or any(
        tag in lower for tag in (b"<html", b"<head>", b"<body")
    ):
        return "an HTML page"
    if text.startswith(b"#!"):
        return f"a script ({redact(first_line)!r})"
    kinds = {
        b"<": "XML or other markup",
        b"{": "JSON",
        b"[": "JSON",
        b"%PDF": "a PDF document",
        b"PK\x03\x04": "a ZIP archive",
        b"\x7fELF": "a program (ELF)",
        b"MZ": "a Windows program",
        b"BM": "a BMP image",
        b"II*\x00": "a TIFF image",
        b"MM\x00*": "a TIFF image",
    }
    for magic, kind in kinds.items():
        if text.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":
        return "an HEIF or AVIF image"
    try:
        decoded = head[:1024].decode("utf-8")
    except UnicodeDecodeError:
        decoded = ""
    if decoded and all(ch.isprintable() or ch.isspace() for ch in decoded):
        return f"text ({redact(first_line)!r}...)"
    return f"unknown bytes ({head[:8].hex(' ')} ...)"


def image_head(chunks: Iterable[bytes], where: str = "") -> tuple[str, bytes, Iterator[bytes]]:
    """The format of the image `chunks` hold, its first bytes, and the rest of the chunks.

    Raises `APIResponseError` if they hold no image (nothing read but the first bytes):
    empty, or anything but PNG, JPEG, WebP, GIF or SVG. `where` names the source in messages
    (" at https://...").
    """
    stream = iter(chunks)
    head = _head(stream, _SNIFF_BYTES)
    if not head:
        raise APIResponseError(f"The server sent an empty image{where}.")
    image_format = sniff_format(head)
    if image_format is None:
        raise APIResponseError(
            f"The server sent {_looks_like(head)} instead of an image{where}; it is refused, "
            "nothing was written."
        )
    return image_format, head, stream


def image_bytes(chunks: Iterable[bytes], where: str = "") -> bytes:
    """All of `chunks`, once `image_head` has found an image in them."""
    _, head, rest = image_head(chunks, where)
    return b"".join([head, *rest])


def _with_pixel_size(metadata: Mapping[str, str], path: Path) -> Mapping[str, str]:
    """`metadata` with the size of the image written at `path` (Pillow reads only the header)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return metadata  # not an image Pillow knows: the file is saved, its size left unsaid
    return {**metadata, "size": f"{width}x{height}"}


def _refuse_folder(base: str | os.PathLike[str]) -> None:
    """A folder is no file name: `out` would become `out.png` beside it, not a file in it."""
    given = os.fspath(base)
    path = Path(given).expanduser()
    if given.endswith(("/", os.sep)) or path.is_dir():
        raise ImagegenError(
            f"Cannot write {given!r}: it is a folder; give a file name in it, such as "
            f"{str(path / 'image.png')!r}."
        )


def write_image(
    base: str | os.PathLike[str],
    chunks: Iterable[bytes],
    *,
    tag: str = "",
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = True,
    where: str = "",
) -> Path:
    """Write one image atomically, metadata included; return the path written.

    Bytes that are not an image are refused before anything is written (see `image_head`;
    `where` names their source).

    With `overwrite=False` an existing file is never replaced: `FileExistsError` is raised and
    nothing is written. The `.json` sidecar of a non-PNG image belongs to the image's name and
    is replaced in any case.
    """
    _refuse_folder(base)
    image_format, head, stream = image_head(chunks, where)
    path = target_path(base, tag, image_format)
    named = FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if named and named != image_format:
        # The bytes are the server's and are written as they came (nothing paid for is lost,
        # nothing re-encoded); the name is the caller's. Say that they disagree.
        logger.warning(
            "%s holds %s data: the server sent %s, not %s.", path, image_format, image_format, named
        )
    in_png = (
        bool(metadata)
        and head.startswith(_PNG_SIGNATURE)
        and len(head) >= _IHDR_END
        and head[12:16] == b"IHDR"
    )
    if in_png and metadata and "size" not in metadata:
        width, height = struct.unpack(">II", head[16:24])  # IHDR's first fields
        metadata = {**metadata, "size": f"{width}x{height}"}
    with atomic_write(path, overwrite=overwrite) as handle:
        if in_png and metadata:
            handle.write(head[:_IHDR_END])
            handle.write(png_text_chunks(metadata))
            handle.write(head[_IHDR_END:])
        else:
            handle.write(head)
        del head
        for chunk in stream:
            handle.write(chunk)
    if metadata and not in_png:
        if "size" not in metadata:
            metadata = _with_pixel_size(metadata, path)
        sidecar = path.with_name(path.name + ".json")
        import json  # here: only formats without text chunks have a JSON sidecar

        text = json.dumps(dict(metadata), indent=2, ensure_ascii=False) + "\n"
        with atomic_write(sidecar) as handle:
            handle.write(text.encode("utf-8"))
    return path
