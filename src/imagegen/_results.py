"""What a call returns: `ImagesResult` and its `GeneratedImage`s, and streams of image events.

A result keeps the whole wire answer (`result.response`) and adds what callers need: image bytes
(base64 decoded, or the URL downloaded with the client's HTTP settings), Pillow images, and
`save()` with atomic writes, PSOpenAI's naming and metadata (see `_saving`).

Streams (`ImageStream`, `AsyncImageStream`) yield `StreamEvent`s, partial or completed, and can
be collected into an `ImagesResult` with `result()` or saved as they arrive with `save()`.
Closing a stream (or leaving its `with` block) closes the HTTP response.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import time
from abc import ABC, abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from ._errors import APIResponseError, ImagegenError
from ._imaging import sniff_format
from ._models import (
    CompletedEvent,
    ImageData,
    ImagesResponse,
    ImagesUsage,
    PartialImageEvent,
    SvgUsage,
    WireEvent,
)
from ._saving import b64_chunks, image_bytes, write_image

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "AsyncImageStream",
    "Downloader",
    "GeneratedImage",
    "ImageStream",
    "ImagesResult",
    "StreamEvent",
]

PathLike = str | os.PathLike[str]
_V = TypeVar("_V")
_Events = TypeVar("_Events", Iterable[WireEvent], AsyncIterator[WireEvent])


class Downloader(Protocol):
    """Fetches URL results with the client's HTTP settings (proxy, timeout, retries)."""

    def download(self, url: str) -> bytes: ...


def _default_downloader() -> Downloader:
    from ._http import shared_downloader

    return shared_downloader()


def _iso(timestamp: int | None) -> str | None:
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def _metadata(**fields: str | int | None) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items() if value not in (None, "")}


def _known_size(*sizes: str | None) -> str | None:
    """The first size that names pixels; `auto` and unset say nothing about the image, whose
    own size `write_image` then records."""
    return next((size for size in sizes if size and size != "auto"), None)


def _decode_pil(data: bytes) -> PILImage.Image:
    """The image as Pillow reads it (a GIF: its first frame, `seek` for the others)."""
    from PIL import Image

    if sniff_format(data[:4096]) == "svg":
        raise ImagegenError(
            "This image is an SVG document, which Pillow cannot open: use bytes() or save(), "
            "or render it with an SVG library such as cairosvg."
        )
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


class _Field(Generic[_V]):
    """A read-only attribute: the field of the same name of the object's wire model, the
    attribute `source` names."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> _Field[_V]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> _V: ...
    def __get__(self, instance: object, owner: type) -> _Field[_V] | _V:
        if instance is None:
            return self
        value: _V = getattr(getattr(instance, self.source), self.name)
        return value


class _Source:
    """Where one image's bytes come from: the bytes themselves (an in-process engine's), base64
    text, a data: URL or an http(s) URL."""

    def __init__(
        self,
        b64_json: str | None,
        url: str | None,
        downloader: Downloader | None,
        encoded: bytes | None = None,
    ):
        self.b64_json = b64_json
        self.url = url
        self.downloader = downloader
        self.encoded = encoded

    def chunks(self) -> Iterator[bytes]:
        if self.encoded is not None:
            return iter((self.encoded,))
        if self.b64_json is not None:
            return b64_chunks(self.b64_json)
        if self.url is not None and self.url.startswith("data:"):
            return b64_chunks(self.url.partition(",")[2])
        if self.url is not None:
            return iter(((self.downloader or _default_downloader()).download(self.url),))
        raise APIResponseError("The server sent an image with neither b64_json nor url.")

    @property
    def where(self) -> str:
        """Where the bytes come from, for messages: a URL without its query (a signature)."""
        given = self.b64_json is not None or self.encoded is not None
        return f" at {_shown_url(self.url)}" if not given and self.url else ""

    def read(self) -> bytes:
        return image_bytes(self.chunks(), self.where)


class _Image(ABC):
    """What an image of a result and an image of a stream can do: give its bytes, open it in
    Pillow, save it."""

    @property
    @abstractmethod
    def metadata(self) -> dict[str, str]: ...

    @abstractmethod
    def _source(self) -> _Source: ...

    def bytes(self) -> bytes:
        """The encoded image (PNG, JPEG, WebP, GIF or SVG), decoded from base64 or downloaded;
        `APIResponseError` if the server sent anything else (an HTML page, a script)."""
        return self._source().read()

    def to_pil(self) -> PILImage.Image:
        return _decode_pil(self.bytes())

    def save(self, path: PathLike, *, metadata: bool = True, overwrite: bool = True) -> Path:
        """Write the image to `path` atomically (parents created); return the path written.

        With `overwrite=False` an existing file is never replaced, even by another process
        saving to the same name at the same moment: `FileExistsError` is raised instead.
        The bytes are written as the server sent them: a PNG saved as `a.jpg` stays PNG (a
        warning is logged); ask for `output_format="jpeg"`, or convert with `to_pil()`.
        """
        return self._save(path, "", metadata, overwrite)

    def _save(self, path: PathLike, tag: str, metadata: bool, overwrite: bool = True) -> Path:
        meta = self.metadata if metadata else None
        source = self._source()
        chunks = source.chunks()
        return write_image(
            path, chunks, tag=tag, metadata=meta, overwrite=overwrite, where=source.where
        )

    def show(self) -> None:
        """Open the image in the system's image viewer."""
        self.to_pil().show()


class GeneratedImage(_Image):
    """One image of an `ImagesResult`."""

    def __init__(
        self, data: ImageData, index: int, result: ImagesResult, encoded: bytes | None = None
    ) -> None:
        self.data = data
        self.index = index
        self._result = result
        self._encoded = encoded

    @property
    def b64_json(self) -> str | None:
        """The image in base64 (made on first use from an in-process engine's bytes)."""
        if self.data.b64_json is None and self._encoded is not None:
            self.data.b64_json = base64.b64encode(self._encoded).decode("ascii")
        return self.data.b64_json

    @property
    def url(self) -> str | None:
        return self.data.url

    @property
    def revised_prompt(self) -> str | None:
        return self.data.revised_prompt

    @property
    def metadata(self) -> dict[str, str]:
        """What `save()` records: prompt, model, size, revised prompt, creation time.

        `size` is the answer's, else the request's; when neither names pixels (unset or `auto`,
        as in variations) `save()` records the saved image's own WxH.
        """
        result = self._result
        return _metadata(
            prompt=result.prompt,
            model=result.model,
            size=_known_size(result.size, result.requested_size),
            revised_prompt=self.revised_prompt,
            created=_iso(result.created),
        )

    def _source(self) -> _Source:
        return _Source(self.data.b64_json, self.url, self._result.downloader, self._encoded)

    def __repr__(self) -> str:
        given = self.data.b64_json is not None or self._encoded is not None
        kind = "b64_json" if given else f"url={_shown_url(self.url)!r}"
        return f"GeneratedImage(index={self.index}, {kind})"


def _shown_url(url: str | None) -> str | None:
    """A result URL as a repr shows it: a signed URL's query (OpenAI's `sig=`, a SAS token
    that reads the image for an hour) and a data: URL's megabytes of base64 left out."""
    if url is None:
        return None
    if url.startswith("data:"):
        return url.partition(",")[0] + ",..."
    base, mark, _ = url.partition("?")
    return base + ("?..." if mark else "")


class ImagesResult:
    """The answer to one request: the whole response plus its images.

    `result.response` is the wire body; `created`, `usage`, `svg_usage`, `background`,
    `output_format`, `size`, `quality` and `safety_identifier` are read from it. `model` and
    `prompt` are what was asked for; `request_id` is the server's `x-request-id`;
    `headers` the answer's HTTP headers. `encoded` holds the images of an in-process engine
    as it encoded them; the response then carries them in base64 only once asked for.
    """

    def __init__(
        self,
        response: ImagesResponse,
        *,
        model: str | None = None,
        prompt: str | None = None,
        request_id: str | None = None,
        requested_size: str | None = None,
        downloader: Downloader | None = None,
        headers: Mapping[str, str] | None = None,
        encoded: Sequence[bytes] | None = None,
    ) -> None:
        self._response = response
        self.model = model
        self.prompt = prompt
        self.request_id = request_id
        self.requested_size = requested_size
        self.downloader = downloader
        raw: Sequence[bytes | None] = encoded or [None] * len(response.data)
        self.images = [
            GeneratedImage(data, i, self, image)
            for i, (data, image) in enumerate(zip(response.data, raw, strict=True))
        ]
        self._headers = MappingProxyType({k.lower(): v for k, v in (headers or {}).items()})

    @property
    def response(self) -> ImagesResponse:
        """The answer's wire body."""
        for image in self.images:
            image.b64_json  # noqa: B018 - an in-process engine's images, now in base64
        return self._response

    @property
    def headers(self) -> Mapping[str, str]:
        """The HTTP headers of the answer, names in lower case (`x-ratelimit-remaining-requests`
        and the like); empty for in-process engines and results built from a stream."""
        return self._headers

    created: _Field[int] = _Field("_response")
    usage: _Field[ImagesUsage | None] = _Field("_response")
    background: _Field[str | None] = _Field("_response")
    output_format: _Field[str | None] = _Field("_response")
    size: _Field[str | None] = _Field("_response")
    quality: _Field[str | None] = _Field("_response")
    # Tokens spent writing an SVG (output_format=svg), apart from `usage`.
    svg_usage: _Field[SvgUsage | None] = _Field("_response")
    # The end-user identifier the server used for safety monitoring, as it echoed it.
    safety_identifier: _Field[str | None] = _Field("_response")

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._response.created, tz=timezone.utc)

    def __iter__(self) -> Iterator[GeneratedImage]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    @overload
    def __getitem__(self, index: int) -> GeneratedImage: ...
    @overload
    def __getitem__(self, index: slice) -> list[GeneratedImage]: ...
    def __getitem__(self, index: int | slice) -> GeneratedImage | list[GeneratedImage]:
        return self.images[index]

    def save(self, path: PathLike, *, metadata: bool = True, overwrite: bool = True) -> list[Path]:
        """Save every image: `name.png`, then `name-1.png`, `name-2.png` ... (PSOpenAI's rule).

        Images are decoded and written one at a time, each atomically. With `overwrite=False`
        an existing file is never replaced (`FileExistsError`, as in `GeneratedImage.save`).
        """
        if not self.images:
            raise APIResponseError(
                "The answer holds no images to save.", request_id=self.request_id
            )
        return [
            image._save(path, _number_tag(image.index), metadata, overwrite)
            for image in self.images
        ]

    def __repr__(self) -> str:
        return (
            f"ImagesResult(model={self.model!r}, images={len(self.images)}, "
            f"created={self.created}, request_id={self.request_id!r})"
        )


def _number_tag(index: int) -> str:
    return f"-{index}" if index else ""


class StreamEvent(_Image):
    """One event of an image stream: a partial image or a completed one.

    `event` is the wire model (`PartialImageEvent` or `CompletedEvent`); `index` counts images
    of the same kind within the stream (partial images and completed images separately).
    """

    def __init__(
        self, event: PartialImageEvent | CompletedEvent, index: int, context: _StreamState[Any]
    ) -> None:
        self.event = event
        self.index = index
        self._context = context

    type: _Field[str] = _Field("event")
    b64_json: _Field[str] = _Field("event")
    created_at: _Field[int] = _Field("event")
    size: _Field[str | None] = _Field("event")
    output_format: _Field[str | None] = _Field("event")

    @property
    def is_partial(self) -> bool:
        return isinstance(self.event, PartialImageEvent)

    @property
    def partial_image_index(self) -> int | None:
        return self.event.partial_image_index if isinstance(self.event, PartialImageEvent) else None

    @property
    def usage(self) -> ImagesUsage | None:
        return self.event.usage if isinstance(self.event, CompletedEvent) else None

    @property
    def metadata(self) -> dict[str, str]:
        state = self._context
        return _metadata(
            prompt=state.prompt,
            model=state.model,
            size=_known_size(self.event.size, state.requested_size),
            created=_iso(self.event.created_at or int(time.time())),
        )

    def _source(self) -> _Source:
        return _Source(self.event.b64_json, None, None)

    def _default_tag(self) -> str:
        return f".partial-{self.index}" if self.is_partial else _number_tag(self.index)

    def __repr__(self) -> str:
        return f"StreamEvent(type={self.type!r}, index={self.index})"


class _StreamState(ABC, Generic[_Events]):
    """What sync and async streams share: counting, collecting completed images, the result;
    they differ only in how the events are read and the connection closed."""

    def __init__(
        self,
        events: _Events,
        *,
        close: Callable[[], Any] | None = None,
        model: str | None = None,
        prompt: str | None = None,
        request_id: str | None = None,
        requested_size: str | None = None,
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.request_id = request_id
        self.requested_size = requested_size
        self.completed: list[CompletedEvent] = []
        self._partials = 0
        self._events: _Events = events
        self._close = close
        self._closed = False
        self._iterator = self._iterate()

    @abstractmethod
    def _iterate(self) -> Any:
        """The events as `StreamEvent`s (a generator: sync or async)."""

    @property
    def closed(self) -> bool:
        """Whether the stream is done: read to its end, or closed."""
        return self._closed

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, completed={len(self.completed)})"

    def _wrap(self, event: PartialImageEvent | CompletedEvent) -> StreamEvent:
        if isinstance(event, PartialImageEvent):
            self._partials += 1
            return StreamEvent(event, self._partials - 1, self)
        self.completed.append(event)
        return StreamEvent(event, len(self.completed) - 1, self)

    def _result(self) -> ImagesResult:
        if not self.completed:
            raise APIResponseError(
                "The stream ended without a completed image.", request_id=self.request_id
            )
        last = self.completed[-1]
        usages = [event.usage for event in self.completed if event.usage is not None]
        response = ImagesResponse(
            created=self.completed[0].created_at or int(time.time()),
            data=[ImageData(b64_json=event.b64_json) for event in self.completed],
            background=last.background,
            output_format=last.output_format,
            size=last.size,
            quality=last.quality,
            usage=_sum_usage(usages),
            safety_identifier=last.safety_identifier,
        )
        return ImagesResult(
            response,
            model=self.model,
            prompt=self.prompt,
            request_id=self.request_id,
            requested_size=self.requested_size,
        )


def _sum_usage(usages: list[ImagesUsage]) -> ImagesUsage | None:
    if len(usages) <= 1:
        return usages[0] if usages else None
    total: dict[str, Any] = usages[0].model_dump()
    for usage in usages[1:]:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            total[key] += getattr(usage, key)
        for key in ("text_tokens", "image_tokens"):
            total["input_tokens_details"][key] += getattr(usage.input_tokens_details, key)
    return ImagesUsage.of(**total)


class ImageStream(_StreamState[Iterable[WireEvent]]):
    """An iterator of `StreamEvent`s; a context manager that closes the response.

    Iterate once: events are read from the connection as they arrive.
    """

    _iterator: Generator[StreamEvent, None, None]

    def _iterate(self) -> Generator[StreamEvent, None, None]:
        try:
            for event in self._events:
                yield self._wrap(event)
        finally:
            self.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self._iterator

    def __next__(self) -> StreamEvent:
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):  # closed from inside the iteration itself
            self._iterator.close()
        if self._close is not None:
            self._close()

    def __enter__(self) -> ImageStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def result(self) -> ImagesResult:
        """Read the rest of the stream; return its completed images as one result."""
        for _ in self._iterator:
            pass
        return self._result()

    def save(self, path: PathLike, *, metadata: bool = True, overwrite: bool = True) -> list[Path]:
        """Save images as they arrive: partial images as `name.partial-0.png` ..., completed
        ones as `name.png`, `name-1.png` ...; return every path written. `overwrite=False` as
        in `GeneratedImage.save`."""
        paths = [
            event._save(path, event._default_tag(), metadata, overwrite) for event in self._iterator
        ]
        self._result()  # a stream without a completed image is an error, not an empty save
        return paths


class AsyncImageStream(_StreamState[AsyncIterator[WireEvent]]):
    """An async iterator of `StreamEvent`s; an async context manager that closes the response."""

    _iterator: AsyncGenerator[StreamEvent, None]

    async def _iterate(self) -> AsyncGenerator[StreamEvent, None]:
        try:
            async for event in self._events:
                yield self._wrap(event)
        finally:
            await self.aclose()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self._iterator

    async def __anext__(self) -> StreamEvent:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop reading and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # closed from inside the iteration itself
            await self._iterator.aclose()
        if self._close is not None:
            outcome = self._close()
            if hasattr(outcome, "__await__"):
                await outcome

    async def __aenter__(self) -> AsyncImageStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def result(self) -> ImagesResult:
        """Read the rest of the stream; return its completed images as one result."""
        async for _ in self._iterator:
            pass
        return self._result()

    async def save(
        self, path: PathLike, *, metadata: bool = True, overwrite: bool = True
    ) -> list[Path]:
        """As `ImageStream.save`; files are written as the events arrive."""
        paths = []
        async for event in self._iterator:
            paths.append(event._save(path, event._default_tag(), metadata, overwrite))
        self._result()
        return paths
