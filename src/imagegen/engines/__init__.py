"""Engines: what makes the pixels behind `imagegen serve` and `Client(engine=...)`.

The built-in engines (`placeholder`, `diffusers`) are listed in `BUILT_IN`, so that naming one
reads no package metadata (`importlib.metadata` and its scan of every installed distribution
cost more than drawing a small image). Any other engine is a class registered under the
entry-point group `imagegen.engines`, in its package's `pyproject.toml`:

```toml
[project.entry-points."imagegen.engines"]
myengine = "my_package.engine:MyEngine"
```

The entry points are read only for a name that is not built in, or to list every engine. The
built-in names are reserved: a plugin registered under one is never loaded (nor listed).

The contract is small. The server (or the in-process client) has already validated the
request against the model's rules, resolved `auto` sizes and decoded the inputs, so an engine
only receives a `Job` and returns PIL images of exactly `job.width` x `job.height`:

- `generate(job, on_partial)`: `job.prompt`, `job.n`; no input images.
- `edit(job, on_partial)`: `job.images` (RGBA, the first is the one to edit) and `job.mask`, an
  `L` image where 255 marks the pixels to change (already converted from OpenAI's alpha mask,
  or taken from the first image's transparency). `None` means no region: edit the whole image.
- `vary(job)`: `job.images[0]`, `job.n` distinct variations; no prompt.

`on_partial(image_index, partial_index, image)` may be called up to `job.partial_images`
times per image while it is being made; the caller encodes and streams them.

Animations and vector images: an engine that lists `gif` in `output_formats` is asked for
`job.output_format == "gif"` and returns each image as its frames, `EngineResult(frames=[[f0,
f1, ...], ...])` (`job.frame_count` PIL images of `job.width` x `job.height` each); one that lists
`svg` returns SVG documents as text, `EngineResult(svgs=["<svg ...>...</svg>", ...])`. The caller
encodes them (GIF frames shown `job.frame_duration_ms` each). An engine that lists `markup` in
`accepts` gets an edit's markup, an RGBA drawing the size of the first image, as `job.markup`.
Requests for what an engine does not list are refused with a 400 before they reach it.
An engine may also return its images encoded, `EngineResult(encoded=[b"...", ...])`, in the
job's format and settings (see `imagegen._encoding.encode_result`, which makes them as the
caller would): the placeholder does so when it draws in worker processes.

An engine whose `load()` imports optional libraries names them in `requires` (and the command
that installs them in `install_hint`): `imagegen engines` and `load_engine` then tell what is
missing without importing any of them.

An engine declares the options it reads (`-o name=value`) as `Options`, a subclass of
`EngineOptions` (a dataclass) with a field per option (or, for options read as text, as
`option_help = {name: help line}`); any other name, or a value its field refuses, is refused
when the engine is created; `parse_options` gives the values parsed. An engine that declares
nothing (what a subclass that declares nothing of its own gets) is given every option.

An engine that can serve several jobs at once (several devices, or jobs merged into one call
of its model) says how many in `capacity()`, and the server lets that many reach it together.
One that merges jobs sets `reports_calls` and reports each call of its model with
`report_call(ModelCall(...))`; the server's metrics count them. For any other engine, each job
is one call.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar

from .._capabilities import Endpoint, ModelCapabilities
from .._errors import ConfigurationError, MissingDependencyError
from .._imaging import PNG_COMPRESS_LEVEL
from .._models import ImagesUsage, SvgUsage
from .._records import record
from ._options import EngineOptions, listed, option, options_from_help, unknown_option_error

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "BUILT_IN",
    "ENTRY_POINT_GROUP",
    "Engine",
    "EngineOptions",
    "EngineResult",
    "Job",
    "ModelCall",
    "PartialCallback",
    "available_engines",
    "create_engine",
    "get_engine_class",
    "load_engine",
    "missing_dependencies_message",
    "option",
    "unknown_option_error",
]

ENTRY_POINT_GROUP = "imagegen.engines"
# The engines that come with imagegen, by name: found without reading any package's metadata.
BUILT_IN: Mapping[str, str] = {
    "diffusers": "imagegen.engines.diffusers:DiffusersEngine",
    "placeholder": "imagegen.engines.placeholder:PlaceholderEngine",
}

PartialCallback = Callable[[int, int, "PILImage.Image"], None]


@record()
class Job:
    """One validated request, in the terms an engine needs."""

    endpoint: Endpoint
    model: str
    width: int
    height: int
    n: int = 1
    prompt: str = ""
    quality: str = "auto"
    background: str = "auto"  # transparent | opaque | auto
    output_format: str = "png"
    output_compression: int | None = None
    partial_images: int = 0
    seed: int | None = None
    images: list[PILImage.Image] = field(default_factory=list)
    mask: PILImage.Image | None = None
    # An edit's markup: an RGBA drawing the size of the first image, laid over it to guide
    # the edit (never given with a mask).
    markup: PILImage.Image | None = None
    complexity: str | None = None  # low | medium | high; None: the engine's default
    frame_count: int = 0  # output_format=gif: how many frames (0 otherwise)
    frame_duration_ms: int = 0  # output_format=gif: how long each frame is shown
    svg_model: str | None = None  # output_format=svg: the model that writes the SVG
    svg_reasoning_effort: str | None = None  # and how hard it reasons
    safety_identifier: str | None = None  # the end user's id: `safety_identifier`, else `user`
    # Fields the request carried outside OpenAI's schema (`extra_body`), minus `seed`.
    options: dict[str, Any] = field(default_factory=dict)
    # zlib's level for a PNG answer (the server's --png-compress-level): for an engine that
    # encodes its images itself (`EngineResult.encoded`).
    png_compress_level: int = PNG_COMPRESS_LEVEL

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def transparent(self) -> bool:
        return self.background == "transparent"


@record()
class EngineResult:
    """What an engine made: `n` images, and usage only if the engine really counted it.

    The images come as PIL images (`images`), as the frames of each GIF (`frames`, for
    output_format=gif) or as SVG documents (`svgs`, for output_format=svg), or already encoded
    as the job asks (`encoded`: its output_format, output_compression and png_compress_level,
    with an alpha channel only for background=transparent), which the caller sends as they
    are: what an engine that draws in worker processes returns."""

    images: list[PILImage.Image] = field(default_factory=list)
    usage: ImagesUsage | None = None
    revised_prompts: list[str | None] | None = None
    frames: list[list[PILImage.Image]] | None = None
    svgs: list[str] | None = None
    svg_usage: SvgUsage | None = None
    encoded: list[bytes] | None = None


@record(frozen=True)
class ModelCall:
    """One call of an engine's model, which may have served several jobs together."""

    requests: int
    images: int
    seconds: float
    device: str = ""  # where it ran (`cuda:0`, `cpu`), for engines with several devices


ModelCallWatcher = Callable[[ModelCall], None]


class Engine(ABC):
    """Base class of engines. Subclasses set `name` and implement the three operations."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # Top-level modules `load()` imports that may not be installed (the engine's module itself
    # must import without them), and the command that installs them.
    requires: ClassVar[tuple[str, ...]] = ()
    install_hint: ClassVar[str] = ""
    # The options the engine reads (see `parse_options`); None: not declared, so every
    # option is passed through unchecked. `option_help` (`{name: help line}`) follows from it,
    # or declares options read as text from `self.options` (`{}`: none at all).
    Options: ClassVar[type[EngineOptions] | None] = None
    option_help: ClassVar[Mapping[str, str] | None] = None
    # The size an `auto` generation gets.
    default_size: tuple[int, int] = (1024, 1024)
    # The output formats it makes: `gif` returns frames, `svg` documents (see the module
    # docstring); other formats are refused before a request reaches the engine.
    output_formats: ClassVar[frozenset[str]] = frozenset({"png", "jpeg", "webp"})
    # Optional inputs it reads: `markup` (an edit's guiding drawing); refused otherwise, so
    # an engine that would ignore it never silently does.
    accepts: ClassVar[frozenset[str]] = frozenset()
    # Whether the engine reports each call of its model with `report_call`; if not, each job
    # counts as one call that served it alone.
    reports_calls: ClassVar[bool] = False
    _watchers: tuple[ModelCallWatcher, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Not inherited: a subclass (of the placeholder, say) may read options its parent
        # does not, and one that declares none of its own is given every option.
        if "Options" in cls.__dict__ and cls.Options is not None:
            cls.option_help = cls.Options.help()
        elif cls.__dict__.get("option_help") is not None:
            cls.Options = options_from_help(cls.__name__, cls.__dict__["option_help"])
        else:
            cls.Options = cls.option_help = None

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        self.model = model
        self.options = dict(options or {})
        self.check_options(self.options)

    @classmethod
    def parse_options(cls, options: Mapping[str, str]) -> EngineOptions | None:
        """`options` parsed by the engine's `Options`; None for an engine that declares none.
        Raises `ConfigurationError(param="options")` for an unknown name or a bad value."""
        if cls.Options is None:
            return None
        return cls.Options.parse(options, cls.name or cls.__name__)

    @classmethod
    def serve_options(cls) -> dict[str, str]:
        """Options `imagegen serve` gives the engine unless its command line (or
        IMAGEGEN_ENGINE_OPTIONS) sets them: what pays in a long-running server but not in one
        call of the library or the CLI, such as worker processes that take a while to start."""
        return {}

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Refuse, with `ConfigurationError(param="options")`, an option the engine does not
        take or a value its field refuses; called by `__init__`, so a bad option fails when
        the engine is created. Override it for checks a field cannot say; keep it cheap."""
        cls.parse_options(options)

    @classmethod
    def missing_dependencies(cls) -> list[str]:
        """The modules of `requires` that are not installed, found without importing them.

        Override it for a finer test (a minimum version, a GPU build); it must stay cheap and
        import nothing heavy, as `imagegen engines` calls it for every engine.
        """
        return [module for module in cls.requires if not _installed(module)]

    def models(self) -> list[ModelCapabilities]:
        """Model names this engine declares, with their rules (shown by `GET /v1/models`).

        Requests may also name any of OpenAI's models; the engine then answers under that
        model's rules.
        """
        return [ModelCapabilities(name=self.model or self.name)]

    def capacity(self) -> int:
        """How many jobs the engine can usefully hold at once: its devices times the jobs one
        call of its model may merge. The server lets at least this many reach it together
        (the rest wait in its queue). Read after `load()`."""
        return 1

    def watch(self, watcher: ModelCallWatcher) -> Callable[[], None]:
        """Have `watcher` called (on the engine's thread, so it must be quick) with every
        `ModelCall` the engine reports; returns the function that stops it."""
        self._watchers = (*self._watchers, watcher)

        def stop() -> None:
            self._watchers = tuple(each for each in self._watchers if each is not watcher)

        return stop

    def report_call(self, call: ModelCall) -> None:
        """Tell the watchers about one call of the model (engines with `reports_calls`)."""
        for watcher in self._watchers:
            watcher(call)

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights; called once before the first request: at server start, or by the
        in-process client's first request once it has been validated. `models`,
        `resolve_auto_size` and `check` must work before it too."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what `load` took."""

    def resolve_auto_size(
        self, endpoint: Endpoint, input_size: tuple[int, int] | None
    ) -> tuple[int, int]:
        """The size `size=auto` (or no size) means: the input's size for edits and variations."""
        return input_size if input_size else self.default_size

    def check(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Refuse a job this engine can never make, with `InvalidRequestError`.

        Called when the request is validated, before it waits for the engine, so a server
        answers 400 at once instead of after a turn in the queue. It must not need the
        weights: the in-process client calls it before `load()` on its first request, so a
        refusal comes before a slow load.
        """

    @abstractmethod
    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult: ...

    @abstractmethod
    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult: ...

    @abstractmethod
    def vary(self, job: Job) -> EngineResult: ...


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent is missing
        return False
    except ValueError:  # imported already, without a spec (__main__, some test doubles)
        return True


def missing_dependencies_message(cls: type[Engine], name: str) -> str | None:
    """One sentence naming the modules engine `name` lacks and how to install them, or None."""
    missing = cls.missing_dependencies()
    if not missing:
        return None
    names = listed(missing)
    hint = cls.install_hint or f"install the packages that provide {names}."
    verb = "is" if len(missing) == 1 else "are"
    return f"Engine {name!r} needs {names}, which {verb} not installed: {hint}"


def _plugins() -> dict[str, str]:
    """`{name: "module:Class"}` of the engines installed packages register, but for the names
    of built-in engines, which they cannot take."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {name: target for name, target in found.items() if name not in BUILT_IN}


def available_engines() -> dict[str, str]:
    """`{name: "module:Class"}` for every installed engine, built-in ones included, by name."""
    return dict(sorted({**_plugins(), **BUILT_IN}.items()))


def get_engine_class(name: str) -> type[Engine]:
    """The engine class registered as `name`; a clear error if unknown or its extra is missing."""
    target = BUILT_IN.get(name) or _plugins().get(name)
    if target is None:
        known = ", ".join(available_engines()) or "none"
        raise ConfigurationError(f"Unknown engine {name!r}. Installed engines: {known}.")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if isinstance(exc, MissingDependencyError):
            raise
        raise MissingDependencyError(
            f"Engine {name!r} could not be imported ({exc}). If it is a built-in engine, "
            f"install its extra: pip install 'imagegen[{name}]'."
        ) from exc
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise ConfigurationError(
            f"Entry point {target!r} of engine {name!r} is not an Engine class."
        )
    return cls


def create_engine(
    name: str, *, model: str | None = None, options: Mapping[str, str] | None = None
) -> Engine:
    """Create the engine registered as `name`, without loading it.

    Raises `MissingDependencyError` at once when a module it `requires` is not installed, so
    the fix comes before the engine checks its model and options.
    """
    cls = get_engine_class(name)
    message = missing_dependencies_message(cls, name)
    if message is not None:
        raise MissingDependencyError(message)
    return cls(model=model, options=options)


def load_engine(
    name: str, *, model: str | None = None, options: Mapping[str, str] | None = None
) -> Engine:
    """Create and load the engine registered as `name`."""
    engine = create_engine(name, model=model, options=options)
    engine.load()
    return engine
