"""Where the images of one command run go: files (the default) or stdout.

File names, for every image of the run in order (all prompts, all images, one counter):

- `-o NAME.png`: `NAME.png`, `NAME-1.png`, `NAME-2.png`, ... (PSOpenAI's naming). Several
  prompts continue the numbering, so with one image per prompt line k of stdin gives `NAME-k`
  (the first line `NAME.png`); the file is replaced if it exists, as `-o` says (PSOpenAI's
  `-OutFile` does the same), so two runs given the same `-o` write over each other.
- Neither `-o` nor `-f` (or `-o` naming a folder, `PATH/`): `imagegen-YYYYMMDD-HHMMSS.png` in
  the current folder (or that folder), numbered the same way. Auto-named files never replace
  a file: each name is claimed atomically (`save(..., overwrite=False)`), and a name that is
  taken, beforehand or by another run at the same moment, is skipped for the next number.
- The extension of `-o` picks the format (`.png`, `.jpg` / `.jpeg`, `.webp`, `.gif`, `.svg`); a
  name without one of those gets the image's (`out.v2` -> `out.v2.png`); other image formats
  (`.bmp`) are refused before anything is sent.
- Streamed partial images are named after the next image to be saved and numbered in the order
  they arrive since the image before it: `NAME.partial-0.png`, `NAME.partial-1.png`, then
  `NAME.png`. A server that sends the partial images of several images before any completed
  one (OpenAI leaves the order open) gets them all under the first image's name.

Files are written by the library's `save` (atomically, parents created, metadata unless
`--no-metadata`) and their paths printed one per line.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._capabilities import Endpoint, ModelCapabilities
from .._errors import ImagegenError
from .._imaging import CONTENT_TYPES, EXTENSIONS, sniff_format
from .._saving import (
    FORMAT_OF_SUFFIX,
    b64_chunks,
    check_writable,
    image_head,
    split_image_suffix,
)
from ._progress import Console

# Extensions that name an image format, for inferring `output_format` from `-o`.
# Image formats no Images API returns: a name like `-o x.bmp` would get PNG bytes.
OTHER_IMAGE_EXTENSIONS = frozenset(
    {".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif", ".ico", ".jxl", ".jp2"}
)
_USE = "use a .png, .jpg, .webp, .gif or .svg name"
_NO_VIEWER = "no image viewer found (xdg-open, display, eog)."
# Auto names taken by other runs in a row before giving up (each one is skipped).
_MAX_TAKEN = 1000


def names_folder(out_file: str) -> bool:
    if out_file.endswith(("/", os.sep)):
        return True
    try:
        return Path(out_file).expanduser().is_dir()
    except OSError:  # a name too long to look up is no folder (and is refused later)
        return False


def _shown(out_file: str) -> str:
    """`-o`'s value as messages quote it: a name of hundreds of characters cut in the middle."""
    return repr(out_file if len(out_file) <= 60 else f"{out_file[:32]}...{out_file[-20:]}")


def _name_max(folder: Path) -> int:
    """The longest file name, in bytes, that `folder`'s file system takes."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no answer
        return 255


def check_out_file(
    out_file: str | None,
    *,
    images: int = 1,
    partials: int = 0,
    output_format: str | None = None,
    metadata: bool = True,
) -> None:
    """Refuse, before anything is sent (and paid for), a place the images cannot be saved.

    `images` is how many images the run saves, `partials` how many partial images may come
    before one of them, `output_format` the format asked for: together they give the longest
    file name the run may write (`NAME-9.partial-2.webp.json`), which must fit the file
    system. The folder the images go to (created later if missing) must be writable: its
    nearest existing ancestor is tried with a temporary file, which is removed at once.
    Raises `click.UsageError` (exit 2).
    """
    if out_file == "":
        raise click.UsageError(
            "-o/--out-file is empty; give a file name such as out.png, or a folder such as out/."
        )
    flag = f"-o/--out-file {_shown(out_file)}" if out_file is not None else "-o/--out-file"
    auto = out_file is None or names_folder(out_file)
    path = Path(out_file).expanduser() if out_file is not None else Path()
    if not auto:
        _check_name(path, flag)
    folder = path if auto else path.parent
    probe = folder
    while not os.path.exists(probe) and probe != probe.parent:  # False for a name too long
        probe = probe.parent
    if not os.path.isdir(probe):
        raise click.UsageError(
            f"{flag}: '{probe}' is a file, so no folder can be made there; choose another path."
        )
    limit = _name_max(probe)
    names = [] if auto else [_longest_name(path, images, partials, output_format, metadata)]
    for name in [*folder.relative_to(probe).parts, *names] if probe != folder else names:
        size = len(os.fsencode(name))
        if size > limit:
            sidecar = name.endswith(".json") and size - len(".json") <= limit
            also = " (or --no-metadata, which drops the .json metadata file)" if sidecar else ""
            raise click.UsageError(
                f"{flag}: the name {_shown(name)} would be {size} bytes long, and this folder "
                f"takes names of at most {limit}; choose a shorter name{also}."
            )
    if not auto:
        _check_targets(path, images, output_format, flag)
    try:
        check_writable(probe)
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


def _check_name(path: Path, flag: str) -> None:
    suffix = path.suffix.lower()
    if suffix in OTHER_IMAGE_EXTENSIONS:
        raise click.UsageError(
            f"{flag}: images come as PNG, JPEG, WebP, GIF or SVG, not "
            f"{suffix.lstrip('.').upper()}; {_USE}."
        )
    if _exists_as_other(path):
        raise click.UsageError(
            f"{flag} exists and is not a regular file (a device or a pipe?); images are saved "
            "as files: give a file name, or print them with -f."
        )


def _exists_as_other(path: Path) -> bool:
    """Whether `path` exists as something a file cannot replace: a device, a pipe, a folder."""
    try:
        return path.exists() and not path.is_file()
    except OSError:
        return False


def _suffixes(path: Path, output_format: str | None) -> list[str]:
    """The extensions the files named after `path` may get."""
    suffix = split_image_suffix(path)[1]
    if suffix:
        return [suffix]
    if output_format in EXTENSIONS:
        return [EXTENSIONS[output_format]]
    return sorted(set(EXTENSIONS.values()))  # the server chooses: any it may send


def _longest_name(
    path: Path, images: int, partials: int, output_format: str | None, metadata: bool
) -> str:
    stem = split_image_suffix(path)[0]
    suffix = max(_suffixes(path, output_format), key=len)
    number = f"-{images - 1}" if images > 1 else ""
    partial = f".partial-{partials - 1}" if partials else ""
    sidecar = ".json" if metadata and suffix.lower() != ".png" else ""
    return f"{stem}{number}{partial}{suffix}{sidecar}"


def _check_targets(path: Path, images: int, output_format: str | None, flag: str) -> None:
    """A file the run would replace must be a file, not a folder or a device."""
    stem = split_image_suffix(path)[0]
    for index in range(images):
        for suffix in _suffixes(path, output_format):
            target = path.with_name(f"{stem}{f'-{index}' if index else ''}{suffix}")
            if _exists_as_other(target):
                raise click.UsageError(
                    f"{flag}: '{target}' exists and is not a file, so the image cannot be saved "
                    "there; choose another name."
                )


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
    wanted = FORMAT_OF_SUFFIX.get(Path(out_file).suffix.lower())
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
            head = base64.b64decode(b64_json[:5464])  # 4 KB: an SVG's `<svg` may come late
        except (binascii.Error, ValueError):
            return None
        return sniff_format(head)
    return None


class Namer:
    """Paths for the images of one run; see the module docstring for the rules."""

    def __init__(self, out_file: str | None) -> None:
        self.auto = out_file is None or names_folder(out_file)
        path = Path(out_file).expanduser() if out_file is not None else None
        self._folder = path if path is not None and self.auto else Path()
        self._template = None if self.auto else path
        self._base: str | None = None
        self._count = 0
        self._partials = 0  # partial images saved since the last final one
        self._slot: tuple[Path, str] | None = None  # (stem path, suffix) of the next image

    def _stem(self, index: int, suffix: str) -> tuple[Path, str]:
        if self._template is not None:
            # As the library does, a name without an extension gets the image format's.
            stem_name, own = split_image_suffix(self._template)
            base = self._template.with_name(stem_name)
            suffix = own or suffix
        else:
            if self._base is None:
                self._base = time.strftime("imagegen-%Y%m%d-%H%M%S")
            base = self._folder / self._base
        stem = base if index == 0 else base.with_name(f"{base.name}-{index}")
        return stem, suffix

    def _in_use(self, stem: Path, suffix: str) -> bool:
        # A slot whose partial images another run is writing is taken too.
        names = (f"{stem}{suffix}", f"{stem}.partial-0{suffix}")
        return any(os.path.lexists(name) for name in names)

    def _next_slot(self, fmt: str | None) -> tuple[Path, str]:
        if self._slot is None:
            suffix = EXTENSIONS.get(fmt or "png", ".png")
            stem, suffix = self._stem(self._count, suffix)
            while self.auto and self._in_use(stem, suffix):
                self._count += 1
                stem, suffix = self._stem(self._count, suffix)
            self._slot = (stem, suffix)
        return self._slot

    def final(self, fmt: str | None) -> Path:
        stem, suffix = self._next_slot(fmt)
        return Path(f"{stem}{suffix}")

    def partial(self, fmt: str | None) -> Path:
        stem, suffix = self._next_slot(fmt)
        return Path(f"{stem}.partial-{self._partials}{suffix}")

    def saved(self, final: bool) -> None:
        """The name last given was written: the next final image gets the next number."""
        if final:
            self._slot = None
            self._count += 1
            self._partials = 0
        else:
            self._partials += 1

    def taken(self) -> None:
        """Another run took the auto name last given: move this image to the next number."""
        self._slot = None
        self._count += 1
        self._partials = 0


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
            self.console.out(result.response.model_dump_json(exclude_none=True))
        for image in result.images:
            self._final(image, image.b64_json, result.output_format)

    def partial(self, event: Any) -> None:
        """A streamed partial image: saved (its path printed), or one JSON line with -f json."""
        if self.format == "json":
            self.console.out(_event_json(event))
        elif self.namer is not None:
            fmt = image_format(event.b64_json, event.output_format)
            namer = self.namer
            self._save(event, lambda: namer.partial(fmt), final=False)

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
            namer, name_fmt = self.namer, fmt or _url_format(url)
            # A server that ignored output_format is reported by the library's save.
            path = self._save(image, lambda: namer.final(name_fmt), final=True)
            self._revised(image, f" ({path})")
            if self.show and not _viewer().show_file(path):
                self.console.warn(f"Could not open {path}: {_NO_VIEWER}")
            return
        if self.format in ("url", "base64") and image.b64_json:
            image_head(b64_chunks(image.b64_json))  # what is not an image is refused, as in save
        self._revised(image, "")
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
        if self.show and not _viewer().show_bytes(image.bytes()):
            self.console.warn(f"Could not open the image: {_NO_VIEWER}")

    def _revised(self, image: Any, where: str) -> None:
        """dall-e-3 rewrites prompts: say how, on stderr (stdout carries paths or images), one
        line per image. `-f json` prints it in the response already."""
        revised = getattr(image, "revised_prompt", None)
        if revised and self.format != "json" and not self.console.quiet:
            self.console.err(f"Revised prompt{where}: {' '.join(revised.split())}")

    def _save(self, item: Any, name: Callable[[], Path], *, final: bool) -> Path:
        namer = self.namer
        assert namer is not None
        for _ in range(_MAX_TAKEN):
            path = name()
            try:
                saved = Path(item.save(path, metadata=self.metadata, overwrite=not namer.auto))
            except FileExistsError:
                namer.taken()  # claimed by another run since we looked: try the next number
                continue
            namer.saved(final)
            self.console.out(str(saved))
            return saved
        raise ImagegenError(
            f"Could not find a free file name after {path} ({_MAX_TAKEN} were taken); "
            "save elsewhere with -o FOLDER/."
        )


def _event_json(event: Any) -> str:
    model = getattr(event, "event", event)
    text: str = model.model_dump_json(exclude_none=True)
    return text


def _url_format(url: str | None) -> str | None:
    if not url:
        return None
    suffix = Path(url.split("?", 1)[0]).suffix.lower()
    return FORMAT_OF_SUFFIX.get(suffix)


def _viewer() -> Any:
    """The viewer module, imported for --show only (it brings subprocess)."""
    return importlib.import_module("._viewer", __package__)
