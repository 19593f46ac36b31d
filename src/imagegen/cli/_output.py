"""Where the images of one command run go: files (the default) or stdout.

File names, for every image of the run in order (all prompts, all images, one counter):

- `-o NAME.png`: `NAME.png`, `NAME-1.png`, `NAME-2.png`, ... (PSOpenAI's naming). Several
  prompts continue the numbering, so with one image per prompt line k of stdin gives `NAME-k`
  (the first line `NAME.png`); the file is replaced if it exists, as `-o` says.
- Neither `-o` nor `-f` (or `-o` naming a folder, `PATH/`): `imagegen-YYYYMMDD-HHMMSS.png` in
  the current folder (or that folder), numbered the same way; auto-named files never replace
  an existing file, the number skips past it. The extension follows the image's format.
- Streamed partial images are named after the image they lead to: `NAME.partial-0.png`,
  `NAME-1.partial-0.png`, ...

Files are written by the library's `save` (atomically, parents created, metadata unless
`--no-metadata`) and their paths printed one per line.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from .._capabilities import Endpoint, ModelCapabilities
from .._imaging import CONTENT_TYPES, EXTENSIONS, sniff_format
from ._progress import Console

# Extensions that name an image format, for inferring `output_format` from `-o`.
FORMAT_OF_EXTENSION = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
# Image formats no Images API returns: a name like `-o x.gif` would get PNG bytes.
OTHER_IMAGE_EXTENSIONS = frozenset(
    {".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif", ".ico", ".jxl", ".jp2", ".svg"}
)


def names_folder(out_file: str) -> bool:
    return out_file.endswith(("/", os.sep)) or Path(out_file).expanduser().is_dir()


def check_out_file(out_file: str | None) -> None:
    """Refuse, before anything is sent (and paid for), a place the images cannot be saved.

    The folder the images go to (created later if missing) must be writable: its nearest
    existing ancestor is tried with a temporary file, which is removed at once.
    Raises `click.UsageError` (exit 2).
    """
    flag = f"-o/--out-file {out_file!r}"
    auto = out_file is None or names_folder(out_file)
    path = Path(out_file).expanduser() if out_file is not None else Path()
    if not auto and path.suffix.lower() in OTHER_IMAGE_EXTENSIONS:
        raise click.UsageError(
            f"{flag}: images come as PNG, JPEG or WebP, not {path.suffix.lstrip('.').upper()}; "
            "use a .png, .jpg or .webp name."
        )
    folder = path if auto else path.parent
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise click.UsageError(
            f"{flag}: '{probe}' is a file, so no folder can be made there; choose another path."
        )
    try:
        with tempfile.TemporaryFile(dir=probe, prefix=".imagegen-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if out_file is None:
            raise click.UsageError(
                f"Cannot save in the current folder '{Path.cwd()}' ({reason}); save elsewhere "
                "with -o FOLDER/ or print with -f."
            ) from None
        raise click.UsageError(
            f"{flag}: cannot write in folder '{probe}' ({reason}); choose another folder."
        ) from None


def output_format_for(
    out_file: str | None,
    requested: str | None,
    caps: ModelCapabilities,
    endpoint: Endpoint,
) -> str | None:
    """The `output_format` to send, given `-o`'s extension and `--output-format`.

    GPT image models return the format asked for, so `-o x.jpg` asks for jpeg (and `-o x.png`
    for nothing: png is the default); DALL-E models and
    variations only return PNG, so a `.jpg` name for them is refused rather than filled with PNG
    bytes. Models the table does not know get the format asked for, nothing inferred.
    Raises `click.BadParameter` (exit 2) on a conflict.
    """
    if out_file is None or names_folder(out_file):
        return requested
    wanted = FORMAT_OF_EXTENSION.get(Path(out_file).suffix.lower())
    if wanted is None:
        return requested
    if requested is not None and requested != wanted:
        raise click.UsageError(
            f"--output-format {requested} conflicts with the extension of -o/--out-file "
            f"{out_file!r} ({wanted}); drop one, or make them agree."
        )
    if caps.family == "generic":
        return requested
    if caps.is_gpt_image and endpoint != "variations":
        # png is every model's default: `-o x.png` needs no parameter on the wire.
        return requested if wanted == "png" else wanted
    if wanted != "png":
        who = "variations are" if endpoint == "variations" else f"{caps.name} makes"
        raise click.UsageError(
            f"-o/--out-file {out_file!r}: {who} PNG images only; use a .png name."
        )
    return requested


def image_format(b64_json: str | None, declared: str | None) -> str | None:
    """The image's format: the response's `output_format`, else sniffed from the b64 prefix."""
    if declared in EXTENSIONS:
        return declared
    if b64_json:
        try:
            head = base64.b64decode(b64_json[:24])
        except (binascii.Error, ValueError):
            return None
        return sniff_format(head)
    return None


class Namer:
    """Paths for the images of one run; see the module docstring for the rules."""

    def __init__(self, out_file: str | None) -> None:
        self._auto = out_file is None or names_folder(out_file)
        path = Path(out_file).expanduser() if out_file is not None else None
        self._folder = path if path is not None and self._auto else Path()
        self._template = None if self._auto else path
        self._base: str | None = None
        self._count = 0
        self._slot: tuple[Path, str] | None = None  # (stem path, suffix) of the next image

    def _stem(self, index: int, suffix: str) -> tuple[Path, str]:
        if self._template is not None:
            # As the library does, a name without an extension gets the image format's.
            base = self._template.with_suffix("") if self._template.suffix else self._template
            suffix = self._template.suffix or suffix
        else:
            if self._base is None:
                self._base = time.strftime("imagegen-%Y%m%d-%H%M%S")
            base = self._folder / self._base
        stem = base if index == 0 else base.with_name(f"{base.name}-{index}")
        return stem, suffix

    def _next_slot(self, fmt: str | None) -> tuple[Path, str]:
        if self._slot is None:
            suffix = EXTENSIONS.get(fmt or "png", ".png")
            stem, suffix = self._stem(self._count, suffix)
            while self._auto and Path(f"{stem}{suffix}").exists():
                self._count += 1
                stem, suffix = self._stem(self._count, suffix)
            self._slot = (stem, suffix)
        return self._slot

    def final(self, fmt: str | None) -> Path:
        stem, suffix = self._next_slot(fmt)
        self._slot = None
        self._count += 1
        return Path(f"{stem}{suffix}")

    def partial(self, index: int, fmt: str | None) -> Path:
        stem, suffix = self._next_slot(fmt)
        return Path(f"{stem}.partial-{index}{suffix}")


class Writer:
    """Saves or prints each image as it comes, in the form `-f` / `-o` asked for."""

    def __init__(
        self,
        console: Console,
        *,
        format_: str | None,
        out_file: str | None,
        metadata: bool,
        show: bool,
    ) -> None:
        self.console = console
        self.format = format_
        self.namer = None if format_ else Namer(out_file)
        self.metadata = metadata
        self.show = show

    def result(self, result: Any) -> None:
        """A whole `ImagesResult`: every image, or the response as JSON."""
        if self.format == "json":
            self.console.out(result.response.model_dump_json(exclude_unset=True))
        for image in result.images:
            self._final(image, image.b64_json, result.output_format)

    def partial(self, event: Any) -> None:
        """A streamed partial image: saved (its path printed), or one JSON line with -f json."""
        if self.format == "json":
            self.console.out(_event_json(event))
        elif self.namer is not None:
            fmt = image_format(event.b64_json, event.output_format)
            path = self.namer.partial(event.partial_image_index or 0, fmt)
            self._save(event, path)

    def completed(self, event: Any) -> None:
        """A streamed final image (a `StreamEvent`: it saves with the prompt and model too)."""
        if self.format == "json":
            self.console.out(_event_json(event))
        else:
            self._final(event, event.b64_json, event.output_format)

    def _final(self, image: Any, b64_json: str | None, declared: str | None) -> None:
        fmt = image_format(b64_json, declared)
        if self.namer is not None:
            url = getattr(image, "url", None)
            path = self._save(image, self.namer.final(fmt or _url_format(url)))
            named = FORMAT_OF_EXTENSION.get(path.suffix.lower())
            if fmt and named and named != fmt:  # a server that ignored output_format
                self.console.warn(f"{path} holds {fmt} data: the server sent {fmt}, not {named}.")
            if self.show:
                _launch(path, self.console)
            return
        if self.format == "url":
            if getattr(image, "url", None):
                self.console.out(image.url)
            else:
                content_type = CONTENT_TYPES.get(fmt or "png", "image/png")
                self.console.out(f"data:{content_type};base64,{image.b64_json}")
        elif self.format == "base64":
            b64 = image.b64_json or base64.b64encode(image.bytes()).decode("ascii")
            self.console.out(b64)
        elif self.format == "byte":
            self.console.out_bytes(image.bytes())
        if self.show:
            _show_bytes(image.bytes(), self.console)

    def _save(self, item: Any, path: Path) -> Path:
        saved = Path(item.save(path, metadata=self.metadata))
        self.console.out(str(saved))
        return saved


def _event_json(event: Any) -> str:
    model = getattr(event, "event", event)
    text: str = model.model_dump_json(exclude_unset=True)
    return text


def _url_format(url: str | None) -> str | None:
    if not url:
        return None
    suffix = Path(url.split("?", 1)[0]).suffix.lower()
    return FORMAT_OF_EXTENSION.get(suffix)


def _launch(path: Path, console: Console) -> None:
    if click.launch(str(path)) != 0:
        console.warn(f"Could not open {path} in an image viewer (no xdg-open?).")


def _show_bytes(data: bytes, console: Console) -> None:
    import io

    from PIL import Image, ImageShow

    with Image.open(io.BytesIO(data)) as picture:
        if not ImageShow.show(picture):
            console.warn("Could not open the image: no image viewer found (xdg-open, display).")
