"""What each model accepts, and the checks that follow from it.

The facts live in one data file beside this module, `catalogue.toml`: the parameters of each
endpoint, the values they take and OpenAI's models with their rules, from the official SDK it
names. It is read once, at import, into the objects below, shared by the client (checks before
sending), the command line (help texts) and the server (checks before an engine runs). A model
that is not in the catalogue (a compatible server's own names, a newer OpenAI model) gets only
the generic checks: the wire-level values and ranges that hold for every model.

The checks that follow from these facts are `_validation.validate_params`.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal

from ._errors import InvalidRequestError
from ._records import record

__all__ = [
    "DEFAULT_MODELS",
    "ENDPOINT_PARAMS",
    "ENUMS",
    "FLEXIBLE_MAX_PIXELS",
    "GENERIC",
    "GIF",
    "GPT_ONLY",
    "MB",
    "MODELS",
    "SNAPSHOT",
    "Endpoint",
    "GifRules",
    "ModelCapabilities",
    "check_retired",
    "get_capabilities",
    "parse_size",
    "retirement_hint",
    "without_snapshots",
]

Endpoint = Literal["generations", "edits", "variations"]
_ENDPOINTS: tuple[Endpoint, ...] = ("generations", "edits", "variations")

MB = 1024 * 1024
# OpenAI's cap on one JSON edit `image_url` (a 15 MB image as base64).
MAX_DATA_URL_CHARS = 20_971_520

# The model a request that names none is sent with (OpenAI's defaults; our choice, not a fact
# of any model, so not in the catalogue).
DEFAULT_MODELS: dict[Endpoint, str] = {
    "generations": "gpt-image-2",
    "edits": "gpt-image-2",
    "variations": "dall-e-2",
}

_SIZE_RE = re.compile(r"^(\d{1,6})x(\d{1,6})$")
# Parameters that are files, not fields of the body.
FILE_PARAMS = frozenset({"image", "mask", "markup"})


@record(frozen=True)
class ModelCapabilities:
    """The rules of one model. `None` in a field means "no rule beyond the generic one"."""

    name: str
    family: Literal["dall-e", "gpt-image", "generic"] = "generic"
    endpoints: frozenset[Endpoint] = frozenset({"generations", "edits", "variations"})
    max_prompt: int | None = 32000
    max_n: int = 10
    # Allowed sizes per endpoint; an endpoint missing here accepts any WxH (or `auto`).
    sizes: Mapping[Endpoint, tuple[str, ...]] = field(default_factory=dict)
    flexible_sizes: bool = False  # the catalogue's [any_size] rules
    qualities: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
    # Narrower values than the generic ones for a parameter (gpt-image-1-mini's input_fidelity).
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Parameters that exist on the endpoint but not for this model.
    unsupported: frozenset[str] = frozenset()
    max_images: int = 16
    max_image_bytes: int = 50 * MB
    max_mask_bytes: int = 50 * MB
    input_formats: tuple[str, ...] = ("png", "jpeg", "webp")
    square_inputs: bool = False
    url_results: bool = True  # response_format=url is allowed
    revised_prompt: bool = False
    # The size a request that names none gets, per endpoint, when it differs from the family's
    # (a local engine that edits at the input's size declares {"edits": "auto", ...}).
    default_sizes: Mapping[Endpoint, str] = field(default_factory=dict)
    # The date (YYYY-MM-DD) OpenAI stopped serving the model, and the models to use instead.
    retired: str | None = None
    replacement: tuple[str, ...] = ()

    @property
    def is_gpt_image(self) -> bool:
        return self.family == "gpt-image"

    def default_size(self, endpoint: Endpoint) -> str:
        """The size OpenAI uses when the request names none (edits and DALL·E: 1024x1024)."""
        if endpoint in self.default_sizes:
            return self.default_sizes[endpoint]
        if self.family == "gpt-image" or (self.family == "generic" and endpoint == "generations"):
            return "auto"
        return "1024x1024"


@record(frozen=True)
class GifRules:
    """output_format=gif: how many frames, and how long each is shown."""

    min_frames: int
    max_frames: int
    default_frames: int
    default_duration_ms: int
    duration_step_ms: int
    max_duration_ms: int

    def duration(self, requested: int | None) -> int:
        """The delay a frame gets, in ms: rounded to the step (halves up), then capped."""
        if requested is None:
            return self.default_duration_ms
        step = self.duration_step_ms
        return min((requested + step // 2) // step * step, self.max_duration_ms)


# -- the catalogue -------------------------------------------------------------------------------

_MODEL_FIELDS = frozenset(
    "family endpoints sizes qualities styles choices unsupported max_prompt max_n max_images "
    "max_image_mb max_mask_mb input_formats square_inputs url_results revised_prompt retired "
    "replacement".split()
)
_LIFE = ("retired", "replacement")  # facts of one model, never copied by `like`


_CATALOGUE_PATH = os.path.join(os.path.dirname(__file__), "catalogue.toml")


class CatalogueError(RuntimeError):
    """`catalogue.toml` does not read as the catalogue: a bug in the package, not in a call."""


def _read_catalogue(path: str = _CATALOGUE_PATH) -> dict[str, Any]:
    # Read beside this module: importing importlib.resources (zipfile, tempfile, pathlib...)
    # costs more than a whole `imagegen --help`. It is the way in from a zipped install only.
    try:
        stat = os.stat(path)
    except OSError:  # pragma: no cover - a zipped install
        from importlib import resources

        package = resources.files(__package__ or "imagegen")
        return _parse(package.joinpath("catalogue.toml").read_text())
    key = (stat.st_mtime_ns, stat.st_size)
    cache = _cache_path(path)
    try:
        with open(cache, "rb") as f:
            cached_key, cached = marshal.load(f)
        if cached_key == list(key) and isinstance(cached, dict):
            return cached
    except (OSError, ValueError, EOFError, TypeError):
        pass  # none yet, or not ours: parse
    with open(path, encoding="utf-8") as f:
        parsed = _parse(f.read())
    if not sys.dont_write_bytecode:
        _write_cache(cache, [list(key), parsed])
    return parsed


def _parse(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    parsed: dict[str, Any] = tomllib.loads(text)
    return parsed


def _cache_path(path: str) -> str:
    """Where the parsed catalogue is kept, as Python keeps a module's bytecode: parsing the
    TOML (and importing tomllib) is about 3 ms of every start, loading the parse 0.1 ms."""
    from importlib.util import cache_from_source

    return os.path.splitext(cache_from_source(path))[0] + ".toml.marshal"


def _write_cache(cache: str, data: list[Any]) -> None:
    """Write `data` to `cache` atomically; a folder that cannot be written to is left alone,
    as Python leaves it without bytecode."""
    temp = f"{cache}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(temp, "wb") as f:
            marshal.dump(data, f)
        os.replace(temp, cache)
    except (OSError, ValueError):  # ValueError: a value marshal cannot hold
        with contextlib.suppress(OSError):
            os.unlink(temp)


def _resolve(raw: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each model's own fields over those of the model it is `like` (recursively)."""
    resolved: dict[str, dict[str, Any]] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> dict[str, Any]:
        if name in resolved:
            return resolved[name]
        entry = dict(raw[name])
        base = entry.pop("like", None)
        unknown = set(entry) - _MODEL_FIELDS
        if unknown:
            raise CatalogueError(f"catalogue.toml: {name}: unknown fields {sorted(unknown)}")
        if base is not None:
            if base not in raw or base in chain:
                raise CatalogueError(
                    f"catalogue.toml: {name} is like {base!r}, which is not usable"
                )
            inherited = resolve(base, (*chain, name))
            entry = {**{k: v for k, v in inherited.items() if k not in _LIFE}, **entry}
        resolved[name] = entry
        return entry

    for name in raw:
        resolve(name, ())
    return resolved


def _capabilities(name: str, entry: Mapping[str, Any]) -> ModelCapabilities:
    endpoints: tuple[Endpoint, ...] = tuple(entry.get("endpoints", _ENDPOINTS))
    sizes = entry.get("sizes")
    options: dict[str, Any] = {
        key: entry[key]
        for key in ("family", "max_prompt", "max_n", "max_images", "square_inputs")
        if key in entry
    }
    options.update({key: entry[key] for key in ("url_results", "revised_prompt") if key in entry})
    for key in ("qualities", "styles", "input_formats", "replacement"):
        if key in entry:
            options[key] = tuple(entry[key])
    for key in ("max_image_mb", "max_mask_mb"):
        if key in entry:
            options[key.replace("_mb", "_bytes")] = entry[key] * MB
    return ModelCapabilities(
        name=name,
        endpoints=frozenset(endpoints),
        sizes={} if sizes in (None, "any") else {endpoint: tuple(sizes) for endpoint in endpoints},
        flexible_sizes=sizes == "any",
        choices={param: tuple(values) for param, values in entry.get("choices", {}).items()},
        unsupported=frozenset(entry.get("unsupported", ())),
        retired=entry.get("retired"),
        **options,
    )


_CATALOGUE = _read_catalogue()

# Parameters each endpoint knows at all, whatever the model (OpenAI's request schemas).
ENDPOINT_PARAMS: dict[Endpoint, frozenset[str]] = {
    endpoint: frozenset(_CATALOGUE["endpoints"][endpoint]) for endpoint in _ENDPOINTS
}
# Values that hold for every model; nested fields by their dotted path (`svg.reasoning.effort`).
ENUMS: dict[str, tuple[str, ...]] = {
    name: tuple(values) for name, values in _CATALOGUE["values"].items()
}
_gif = _CATALOGUE["gif"]
GIF = GifRules(
    min_frames=_gif["frame_count"][0],
    max_frames=_gif["frame_count"][1],
    default_frames=_gif["default_frame_count"],
    default_duration_ms=_gif["default_duration_ms"],
    duration_step_ms=_gif["duration_step_ms"],
    max_duration_ms=_gif["max_duration_ms"],
)
_any_size = _CATALOGUE["any_size"]
FLEXIBLE_MULTIPLE: int = _any_size["multiple"]
FLEXIBLE_MAX_EDGE: int = _any_size["max_edge"]
FLEXIBLE_MAX_RATIO: int = _any_size["max_ratio"]
FLEXIBLE_MIN_PIXELS: int = _any_size["min_pixels"]
# The largest any-size output, 3840x2160, is also the default cap of what a local engine is
# asked for.
FLEXIBLE_MAX_PIXELS: int = _any_size["max_pixels"]

MODELS: dict[str, ModelCapabilities] = {
    name: _capabilities(name, entry) for name, entry in _resolve(_CATALOGUE["models"]).items()
}

GENERIC = ModelCapabilities(name="")

# Parameters of the GPT image models that the DALL·E models lack: a refusal says so.
GPT_ONLY = frozenset[str]().union(
    *(caps.unsupported for caps in MODELS.values() if caps.family == "dall-e")
) - {"style", "input_fidelity"}


def get_capabilities(
    model: str | None, extra: Mapping[str, ModelCapabilities] | None = None
) -> ModelCapabilities:
    """The rules for `model`: the engine's declaration, then OpenAI's table, else generic."""
    if model is None:
        return GENERIC
    if extra and model in extra:
        return extra[model]
    known = MODELS.get(model)
    if known is not None:
        return known
    return ModelCapabilities(name=model)


def retirement_hint(model: str | None) -> str | None:
    """`"gpt-image-1 was retired by OpenAI on 2026-10-23; use ... instead."`, or None for a
    model OpenAI still serves (or does not know)."""
    caps = MODELS.get(model or "")
    if caps is None or not caps.retired:
        return None
    instead = " or ".join(caps.replacement) if caps.replacement else "a current model"
    return f"{caps.name} was retired by OpenAI on {caps.retired}; use {instead} instead."


def check_retired(model: str | None, endpoint: Endpoint | None = None) -> None:
    """Refuse a model OpenAI has retired; for calls to OpenAI itself (other servers may still
    serve it). Raises `InvalidRequestError(param="model", code="model_retired")`."""
    hint = retirement_hint(model)
    if hint is None:
        return
    if endpoint == "variations":  # dall-e-2 was the only model that made variations
        hint += " OpenAI makes no variations any more: ask an edit of the image instead."
    raise InvalidRequestError(hint, param="model", code="model_retired")


def parse_size(size: str) -> tuple[int, int] | None:
    """`"1536x1024"` → `(1536, 1024)`; `"auto"` → `None`. Raises on anything else."""
    if size == "auto":
        return None
    match = _SIZE_RE.match(size)
    if not match or int(match[1]) == 0 or int(match[2]) == 0:
        raise InvalidRequestError(
            f"Invalid size {size!r}: use WIDTHxHEIGHT in pixels (for example 1024x1024) or 'auto'.",
            param="size",
        )
    return int(match[1]), int(match[2])


# A dated snapshot's suffix (gpt-image-2.5-flare-2026-09-08).
SNAPSHOT = r"-\d{4}-\d{2}-\d{2}$"


def without_snapshots(names: list[str]) -> list[str]:
    """`names` without the dated snapshots (gpt-image-2.5-flare-2026-09-08) of models that are
    in it too: a hint names a model once."""
    known = set(names)
    return [
        name for name in names if (base := re.sub(SNAPSHOT, "", name)) == name or base not in known
    ]
