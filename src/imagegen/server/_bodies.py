"""Request bodies read as they stream in, so that no limit is checked only after the fact.

- Multipart: each file part is held to the per-image limit while it arrives (Starlette's parser
  bounds text fields only, and would spool a file part of any size to disk first).
- JSON edits: a data URL in an `image_url` field is base64-decoded chunk by chunk as it
  arrives, so the request holds the decoded bytes (3/4 of the text) and never the text itself,
  nor a parsed copy of it. Everything else in the body is kept as JSON text, at most
  `JSON_FIELDS_BYTES`, and parsed by the `json` module as usual, with each data URL replaced by
  a marker that names its decoded `Blob`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartParser

from .._capabilities import MAX_DATA_URL_CHARS, MB
from .._errors import InvalidRequestError
from ._errors import HTTPError
from ._limits import describe_bytes

__all__ = ["JSON_FIELDS_BYTES", "Blob", "JsonEditReader", "read_form"]

# A JSON body without its images: a prompt of at most 32,000 characters and a few fields.
JSON_FIELDS_BYTES = MB


# -- multipart ----------------------------------------------------------------------------------


class _LimitedParser(MultiPartParser):
    """Starlette's multipart parser, with every file part refused as soon as it passes
    `max_file_bytes` (nothing more of it is written to the spool file)."""

    def __init__(self, *args: Any, max_file_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_file_bytes = max_file_bytes
        self._file_bytes = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_bytes = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                name = self._current_part.field_name
                param = name if name in ("mask", "markup") else "image"
                raise InvalidRequestError(
                    f"The {param} is larger than {describe_bytes(self.max_file_bytes)}, the most "
                    "this server accepts per file.",
                    param=param,
                )
        super().on_part_data(data, start, end)


async def read_form(
    headers: Headers,
    stream: AsyncIterator[bytes],
    *,
    max_files: int,
    max_fields: int,
    max_part_size: int,
    max_file_bytes: int,
) -> FormData:
    """The multipart form of a request, each file part at most `max_file_bytes`; close it after
    use (`await form.close()`). Raises Starlette's `MultiPartException` for malformed bodies."""
    parser = _LimitedParser(
        headers,
        stream,
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_part_size,
        max_file_bytes=max_file_bytes,
    )
    return await parser.parse()


# -- JSON edits ---------------------------------------------------------------------------------

_IMAGE_URL_KEY = re.compile(rb'"image_url"\s*:\s*$')
_SPECIAL = re.compile(rb'["\\]')
_HEADER_CHARS = 256  # a data URL's header ("data:image/png;base64") is far shorter
_BLOCK = 64 * 1024  # base64 characters decoded at a time


@dataclass
class Blob:
    """One data URL of a JSON edit, decoded as it arrived."""

    header: str  # "data:image/png;base64", unescaped
    chars: int = 0  # characters of the whole URL, as OpenAI counts its 20,971,520
    decoded: int = 0  # bytes decoded so far
    problem: str | None = None  # why `data` is None: "too_long", "too_large" or "malformed"
    parts: list[bytes] = field(default_factory=list)
    data: bytes | None = None

    @property
    def size(self) -> int:
        """The decoded size, or an estimate from the text once decoding stopped."""
        if self.problem is None:
            return self.decoded
        return max(self.decoded, (self.chars - len(self.header) - 1) * 3 // 4)

    @property
    def base64(self) -> bool:
        return "base64" in [flag.strip().lower() for flag in self.header.split(";")[1:]]


class _Decoder:
    """Base64 characters in, bytes out, a block at a time, with `base64.b64decode`'s rules."""

    def __init__(self, blob: Blob, max_bytes: int) -> None:
        self.blob = blob
        self.max_bytes = max_bytes
        self.pending = bytearray()
        self.padded = False
        self.active = blob.base64  # a data URL that is not base64 is only counted

    def feed(self, text: bytes) -> None:
        blob = self.blob
        blob.chars += len(text)
        if not self.active:
            return
        if blob.chars > MAX_DATA_URL_CHARS:
            self._stop("too_long")
            return
        self.pending += text
        if len(self.pending) >= _BLOCK:
            cut = len(self.pending) // 4 * 4
            self._decode(bytes(self.pending[:cut]))
            del self.pending[:cut]

    def _decode(self, block: bytes) -> None:
        if not block:
            return
        if self.padded:  # data after the padding
            self._stop("malformed")
            return
        try:
            data = base64.b64decode(block, validate=True)
        except (binascii.Error, ValueError):
            self._stop("malformed")
            return
        self.padded = block.endswith(b"=")
        self.blob.decoded += len(data)
        if self.blob.decoded > self.max_bytes:
            self._stop("too_large")
            return
        self.blob.parts.append(data)

    def _stop(self, problem: str) -> None:
        self.active = False
        self.blob.problem = problem
        self.blob.parts.clear()
        self.pending.clear()

    def close(self) -> None:
        if self.active:
            self._decode(bytes(self.pending))
        if self.active and self.blob.problem is None:
            self.blob.data = b"".join(self.blob.parts)
        self.blob.parts.clear()
        self.pending.clear()


class JsonEditReader:
    """Feed a JSON edit body chunk by chunk, then `finish()` for its fields and data URLs.

    The scanner only tells strings from the rest (JSON strings start and end with an unescaped
    `"`; neither `"` nor `\\` occurs inside a multi-byte UTF-8 character); the `json` module
    still parses, and judges, everything but the data URLs.
    """

    def __init__(self, *, max_image_bytes: int, max_text: int = JSON_FIELDS_BYTES) -> None:
        self.max_image_bytes = max_image_bytes
        self.max_text = max_text
        self.text = bytearray()  # the body, with each data URL replaced by a marker
        self.blobs: dict[str, Blob] = {}
        self._marker = f"\x00imagegen-{secrets.token_hex(8)}:"
        self._in_string = False
        self._string_start = 0  # where the open string's quote is in `text`
        self._watch = False  # the open string is an `image_url` value, not yet known a data URL
        self._decoder: _Decoder | None = None  # set while inside a data URL
        self._blob_name = ""  # the marker of the data URL being decoded
        self._escape = b""  # an escape sequence split across chunks (inside a data URL)
        self._escaped = False  # the previous byte was a backslash (inside other strings)

    def feed(self, chunk: bytes) -> None:
        at = 0
        while at < len(chunk):
            if self._decoder is not None:
                at = self._feed_data_url(chunk, at)
            elif self._in_string:
                at = self._feed_string(chunk, at)
            else:
                quote = chunk.find(b'"', at)
                end = len(chunk) if quote < 0 else quote + 1
                self._keep(chunk[at:end])
                if quote >= 0:
                    self._open_string()
                at = end

    def _keep(self, data: bytes) -> None:
        self.text += data
        if len(self.text) > self.max_text:
            raise HTTPError(
                413,
                f"The JSON body is too large: its fields other than the images' data URLs take "
                f"more than {self.max_text // 1024:,} KB.",
                code="request_too_large",
            )

    def _open_string(self) -> None:
        self._in_string = True
        self._string_start = len(self.text) - 1
        key = _IMAGE_URL_KEY.search(self.text, max(0, self._string_start - 64), self._string_start)
        self._watch = key is not None

    def _feed_string(self, chunk: bytes, at: int) -> int:
        if self._escaped:  # the byte after a backslash never ends the string
            self._escaped = False
            self._keep(chunk[at : at + 1])
            return at + 1
        special = _SPECIAL.search(chunk, at)
        end = len(chunk) if special is None else special.end()
        self._keep(chunk[at:end])
        if special is not None:
            if special.group() == b"\\":
                self._escaped = True
            else:
                self._in_string = False
        if self._watch:
            self._check_data_url()
        return end

    def _check_data_url(self) -> None:
        """Once an `image_url` value shows its comma, a `data:` URL's payload goes to a decoder."""
        content = bytes(self.text[self._string_start + 1 :])
        comma = content.find(b",")
        if comma < 0:
            self._watch = self._in_string and len(content) < _HEADER_CHARS
            return
        self._watch = False
        if not self._in_string and len(content) < _HEADER_CHARS:
            return  # a short URL, complete: left to the json module
        try:
            header = json.loads(b'"' + content[:comma] + b'"')
        except ValueError:
            return
        if header[:5].lower() != "data:":
            return
        blob = Blob(header=header, chars=len(header) + 1)
        self._decoder = _Decoder(blob, self.max_image_bytes)
        self._blob_name = f"{self._marker}{len(self.blobs)}"
        self.blobs[self._blob_name] = blob
        del self.text[self._string_start :]
        # What came after the comma (up to the closing quote, if it came) is payload.
        rest, at = content[comma + 1 :], 0
        self._in_string, self._escaped = True, False
        while at < len(rest) and self._decoder is not None:
            at = self._feed_data_url(rest, at)

    def _feed_data_url(self, chunk: bytes, at: int) -> int:
        decoder = self._decoder
        assert decoder is not None
        if self._escape:
            return self._finish_escape(chunk, at)
        special = _SPECIAL.search(chunk, at)
        end = len(chunk) if special is None else special.start()
        decoder.feed(chunk[at:end])
        if special is None:
            return end
        if special.group() == b"\\":
            self._escape = b"\\"
            return self._finish_escape(chunk, end + 1)
        self._close_data_url()
        return end + 1

    def _finish_escape(self, chunk: bytes, at: int) -> int:
        """`\\/` (as PHP writes `/`) and `\\u002F` are characters of the payload too."""
        need = 6 if self._escape[1:2] == b"u" else 2
        take = min(len(chunk) - at, need - len(self._escape))
        self._escape += chunk[at : at + take]
        if len(self._escape) >= 2 and self._escape[1:2] == b"u":
            need = 6
        if len(self._escape) < need:
            return at + take
        escape, self._escape = self._escape, b""
        try:
            character = json.loads(b'"' + escape + b'"').encode("utf-8")
        except (ValueError, UnicodeEncodeError):
            character = b"\x00"  # not a base64 character: the decoder refuses it
        assert self._decoder is not None
        self._decoder.feed(character)
        return at + take

    def _close_data_url(self) -> None:
        assert self._decoder is not None
        self._decoder.close()
        self._decoder = None
        self._in_string = False
        self._keep(json.dumps(self._blob_name).encode("ascii"))

    def finish(self) -> tuple[bytes, dict[str, Blob]]:
        """The JSON text without the data URLs, and the data URLs by marker."""
        return bytes(self.text), self.blobs
