"""Engines: what makes the pixels behind `imagegen serve` and `Client(engine=...)`.

An engine is a class registered under the entry-point group `imagegen.engines`; the built-in
ones (`placeholder`, `diffusers`) register through the same group as third-party ones, in
`pyproject.toml`:

```toml
[project.entry-points."imagegen.engines"]
myengine = "my_package.engine:MyEngine"
```

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

An engine whose `load()` imports optional libraries names them in `requires` (and the command
that installs them in `install_hint`): `imagegen engines` and `load_engine` then tell what is
missing without importing any of them.

An engine declares the options it reads (`-o name=value`) in `option_help`; any other name is
refused when the engine is created. An engine that declares nothing (`None`, what a subclass
that does not set it gets) is given every option, as before declarations existed.

An engine that can serve several jobs at once (several devices, or jobs merged into one call
of its model) says how many in `capacity()`, and the server lets that many reach it together.
One that merges jobs sets `reports_calls` and reports each call of its model with
`report_call(ModelCall(...))`; the server's metrics count them. For any other engine, each job
is one call.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from .._capabilities import Endpoint, ModelCapabilities
from .._errors import ConfigurationError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .._models import ImagesUsage, SvgUsage  # annotations only: pydantic loads with a client

__all__ = [
    "ENTRY_POINT_GROUP",
    "Engine",
    "EngineResult",
    "Job",
    "ModelCall",
    "PartialCallback",
    "available_engines",
    "create_engine",
    "get_engine_class",
    "load_engine",
    "missing_dependencies_message",
    "unknown_option_error",
]

ENTRY_POINT_GROUP = "imagegen.engines"

PartialCallback = Callable[[int, int, "PILImage.Image"], None]


@dataclass
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

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def transparent(self) -> bool:
        return self.background == "transparent"


@dataclass
class EngineResult:
    """What an engine made: `n` images, and usage only if the engine really counted it.

    The images come as PIL images (`images`), as the frames of each GIF (`frames`, for
    output_format=gif) or as SVG documents (`svgs`, for output_format=svg)."""

    images: list[PILImage.Image] = field(default_factory=list)
    usage: ImagesUsage | None = None
    revised_prompts: list[str | None] | None = None
    frames: list[list[PILImage.Image]] | None = None
    svgs: list[str] | None = None
    svg_usage: SvgUsage | None = None


@dataclass(frozen=True)
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
    # The options the engine reads from `self.options`, each with one line of help; `{}` when
    # it reads none. None: not declared, so every option is passed through unchecked.
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
        if "option_help" not in cls.__dict__:
            # Not inherited: a subclass (of the placeholder, say) may read options its parent
            # does not, and one written before declarations existed must keep working.
            cls.option_help = None

    def __init__(self, *, model: str | None = None, options: Mapping[str, str] | None = None):
        self.model = model
        self.options = dict(options or {})
        self.check_options(self.options)

    @classmethod
    def check_options(cls, options: Mapping[str, str]) -> None:
        """Refuse, with `ConfigurationError(param="options")`, an option the engine does not
        take; called by `__init__`, so a bad option fails when the engine is created.

        The default refuses names missing from `option_help` (none when it is None). Override
        it to check values too, or to accept other spellings; keep it cheap, loading nothing.
        """
        if cls.option_help is None:
            return
        for name in options:
            if name not in cls.option_help:
                raise unknown_option_error(cls.name or cls.__name__, name, cls.option_help)

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
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent is missing
        return False
    except ValueError:  # imported already, without a spec (__main__, some test doubles)
        return True


def _listed(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def unknown_option_error(
    engine: str, option: str, accepted: Iterable[str], note: str = ""
) -> ConfigurationError:
    """The error for option `option`, which engine `engine` does not take; `note` (in
    parentheses after the list) may name other spellings it accepts."""
    names = sorted(accepted)
    if not names:
        return ConfigurationError(
            f"Unknown option {option!r}: the {engine} engine takes no options; leave it out.",
            param="options",
        )
    return ConfigurationError(
        f"Unknown option {option!r} for the {engine} engine, which takes {_listed(names)}"
        + (f" ({note})" if note else "")
        + ".",
        param="options",
    )


def missing_dependencies_message(cls: type[Engine], name: str) -> str | None:
    """One sentence naming the modules engine `name` lacks and how to install them, or None."""
    missing = cls.missing_dependencies()
    if not missing:
        return None
    names = _listed(missing)
    hint = cls.install_hint or f"install the packages that provide {names}."
    verb = "is" if len(missing) == 1 else "are"
    return f"Engine {name!r} needs {names}, which {verb} not installed: {hint}"


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


# Built-in engines, so a source checkout without installed metadata still finds them.
_BUILTIN = {
    "placeholder": "imagegen.engines.placeholder:PlaceholderEngine",
    "diffusers": "imagegen.engines.diffusers:DiffusersEngine",
}


def available_engines() -> dict[str, str]:
    """`{name: "module:Class"}` for every installed engine, built-in ones included."""
    found = dict(_BUILTIN)
    for name, ep in _entry_points().items():
        found[name] = ep.value
    return dict(sorted(found.items()))


def get_engine_class(name: str) -> type[Engine]:
    """The engine class registered as `name`; a clear error if unknown or its extra is missing."""
    target = available_engines().get(name)
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
