"""What each model accepts, and the checks that follow from it.

The facts live in one data file beside this module, `catalogue.toml`: the parameters of each
endpoint, the values they take and OpenAI's models with their rules, from the official SDK it
names. It is read once, at import, into the objects below, shared by the client (checks before
sending), the command line (help texts) and the server (checks before an engine runs). A model
that is not in the catalogue (a compatible server's own names, a newer OpenAI model) gets only
the generic checks: the wire-level values and ranges that hold for every model.

`validate_params` reports every problem of a request at once: one `InvalidRequestError` whose
`problems` list them all, each naming its parameter.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._errors import InvalidRequestError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "DEFAULT_MODELS",
    "ENDPOINT_PARAMS",
    "ENUMS",
    "FLEXIBLE_MAX_PIXELS",
    "GENERIC",
    "GIF",
    "MB",
    "MODELS",
    "Endpoint",
    "GifRules",
    "ModelCapabilities",
    "Problems",
    "check_retired",
    "get_capabilities",
    "parse_size",
    "retirement_hint",
    "validate_params",
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


class CatalogueError(RuntimeError):
    """`catalogue.toml` does not read as the catalogue: a bug in the package, not in a call."""


def _read_catalogue() -> dict[str, Any]:
    # Read beside this module: importing importlib.resources (zipfile, tempfile, pathlib...)
    # costs more than a whole `imagegen --help`. It is the way in from a zipped install only.
    try:
        with open(os.path.join(os.path.dirname(__file__), "catalogue.toml"), encoding="utf-8") as f:
            text = f.read()
    except OSError:  # pragma: no cover - a zipped install
        from importlib import resources

        text = resources.files(__package__ or "imagegen").joinpath("catalogue.toml").read_text()
    catalogue: dict[str, Any] = tomllib.loads(text)
    return catalogue


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
_GPT_ONLY = frozenset[str]().union(
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


class Problems:
    """The problems found in one request, so that all of them are reported together.

    At most one problem per parameter (the first found): a value that is wrong in two ways is
    reported once. `raise_any()` raises one `InvalidRequestError` holding them all.
    """

    def __init__(self) -> None:
        self.errors: list[InvalidRequestError] = []

    def __bool__(self) -> bool:
        return bool(self.errors)

    def has(self, param: str) -> bool:
        return any(problem.param == param for e in self.errors for problem in e.problems)

    def add(self, message: str, param: str | None, code: str | None = None) -> None:
        if param is None or not self.has(param):
            self.errors.append(InvalidRequestError(message, param=param, code=code))

    @contextlib.contextmanager
    def collect(self) -> Iterator[None]:
        """Record an `InvalidRequestError` raised in the block (its own problems included)."""
        try:
            yield
        except InvalidRequestError as exc:
            self.errors.append(exc)

    def raise_any(self) -> None:
        if self.errors:
            raise InvalidRequestError.combine(self.errors)


def _flexible_size_problem(size: str, width: int, height: int) -> str | None:
    def fail(rule: str) -> str:
        return f"Invalid size {size!r}: {rule}"

    if width % FLEXIBLE_MULTIPLE or height % FLEXIBLE_MULTIPLE:
        return fail(f"width and height must both be multiples of {FLEXIBLE_MULTIPLE}.")
    if max(width, height) > FLEXIBLE_MAX_EDGE:
        return fail(f"the longest edge may be at most {FLEXIBLE_MAX_EDGE} pixels.")
    if max(width, height) > FLEXIBLE_MAX_RATIO * min(width, height):
        return fail(
            f"the ratio of the long edge to the short edge may be at most {FLEXIBLE_MAX_RATIO}:1."
        )
    pixels = width * height
    if not FLEXIBLE_MIN_PIXELS <= pixels <= FLEXIBLE_MAX_PIXELS:
        return fail(
            f"total pixels must be between {FLEXIBLE_MIN_PIXELS:,} and "
            f"{FLEXIBLE_MAX_PIXELS:,} (this is {pixels:,})."
        )
    return None


def _enum_problem(param: str, value: Any, allowed: Sequence[str], what: str = "") -> str | None:
    if value in allowed:
        return None
    return f"Invalid {param} {value!r}{what}: use one of {', '.join(allowed)}."


def _int_problem(
    param: str, value: Any, low: int, high: int | None, what: str = "", *, rule: str = ""
) -> str | None:
    """`value` must be a whole number from `low` to `high` (no upper bound: None); `rule` words
    that for the user when a plain range would read oddly ("from 1 to 1")."""
    if (
        not isinstance(value, bool)
        and isinstance(value, int)
        and low <= value
        and (high is None or value <= high)
    ):
        return None
    if not rule:
        rule = f"must be a whole number from {low} to {high}"
        if high is None:
            rule = f"must be a whole number of {low} or more"
    return f"Invalid {param} {value!r}{what}: {rule}."


def _unsupported_hint(name: str) -> str:
    if name in _GPT_ONLY:
        return " It is a GPT image model parameter."
    if name == "response_format":
        return " GPT image models always return b64_json."
    if name == "style":
        return " Only dall-e-3 has styles."
    return ""


def validate_params(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    caps: ModelCapabilities,
    *,
    files: Collection[str] = (),
) -> None:
    """Check the set, non-file parameters of one request against `caps`.

    `params` holds only what the caller set, in wire names; `files` names the optional file
    parameters given (`mask`, `markup`), for the rules about which go together. Raises one
    `InvalidRequestError` for every rule broken (its `param` the first one's, `problems` all of
    them). The input images themselves are checked by `_imaging`.
    """
    problems = Problems()
    _check_params(endpoint, params, caps, problems, files)
    problems.raise_any()


def _check_params(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    caps: ModelCapabilities,
    problems: Problems,
    files: Collection[str],
) -> None:
    known = caps.name and caps.family != "generic"
    model_label = f" for {caps.name}" if known else ""

    # Generic models are checked too: an engine may declare a model that lacks an endpoint.
    # Nothing else is worth saying about a request its model cannot serve at all.
    if caps.name and endpoint not in caps.endpoints:
        supported = ", ".join(sorted(caps.endpoints))
        problems.add(
            f"Model {caps.name} does not support the {endpoint} endpoint (it supports: "
            f"{supported}).",
            "model",
        )
        return
    given = [name for name, value in params.items() if value is not None] + list(files)
    for name in given:
        if name not in ENDPOINT_PARAMS[endpoint]:
            continue
        if known and name in caps.unsupported:
            problems.add(
                f"Parameter {name} is not supported by {caps.name}.{_unsupported_hint(name)}",
                name,
            )
    # Fields outside the endpoint's schema (engine options from `extra_body`) are the engine's;
    # a parameter already refused for this model is not checked further.
    params = {
        name: value
        for name, value in params.items()
        if name in ENDPOINT_PARAMS[endpoint] and not problems.has(name)
    }

    def add(param: str, message: str | None) -> None:
        if message is not None:
            problems.add(message, param)

    prompt = params.get("prompt")
    if endpoint != "variations":
        if not isinstance(prompt, str) or not prompt.strip():
            add("prompt", "A prompt is required and may not be empty.")
        elif caps.max_prompt is not None and len(prompt) > caps.max_prompt:
            add(
                "prompt",
                f"The prompt is {len(prompt):,} characters; {caps.name or 'this model'} allows "
                f"at most {caps.max_prompt:,}.",
            )

    n = params.get("n")
    if n is not None:
        one = caps.max_n == 1
        rule = f"{caps.name or 'this model'} makes one image per request, so n must be 1"
        add(
            "n",
            _int_problem(
                "n", n, 1, caps.max_n, "" if one else model_label, rule=rule if one else ""
            ),
        )

    size = params.get("size")
    if size is not None:
        allowed_sizes = caps.sizes.get(endpoint)
        if not isinstance(size, str):
            add("size", f"Invalid size {size!r}: must be a string.")
        elif allowed_sizes is not None and size not in allowed_sizes:
            add("size", _enum_problem("size", size, allowed_sizes, model_label))
        else:
            with problems.collect():
                parsed = parse_size(size)
                if parsed and caps.flexible_sizes:
                    add("size", _flexible_size_problem(size, *parsed))

    quality = params.get("quality")
    if quality is not None:
        if caps.qualities is not None:
            allowed_q = caps.qualities
            if endpoint == "edits":
                allowed_q = tuple(q for q in allowed_q if q != "hd")
            add("quality", _enum_problem("quality", quality, allowed_q, model_label))
        elif not isinstance(quality, str) or not quality:
            add("quality", f"Invalid quality {quality!r}.")

    for name, allowed in ENUMS.items():
        value = params.get(name)
        if value is not None and name in ENDPOINT_PARAMS[endpoint]:
            narrowed = caps.choices.get(name) or (caps.styles if name == "style" else None)
            add(name, _enum_problem(name, value, narrowed or allowed, model_label))

    output_format = params.get("output_format")
    compression = params.get("output_compression")
    if compression is not None:
        problem = _int_problem("output_compression", compression, 0, 100)
        if problem is None and output_format not in ("jpeg", "webp"):
            problem = (
                "output_compression only applies to jpeg and webp output; set output_format to "
                "jpeg or webp, or leave output_compression out."
            )
        add("output_compression", problem)

    # jpeg has no alpha; png, webp, gif (one transparent colour) and svg have.
    if params.get("background") == "transparent" and output_format == "jpeg":
        add(
            "background",
            "A transparent background needs output_format png or webp (jpeg has no alpha).",
        )

    partial = params.get("partial_images")
    if partial is not None:
        add("partial_images", _int_problem("partial_images", partial, 0, 3))

    stream = params.get("stream")
    if stream is not None and not isinstance(stream, bool):
        add("stream", f"Invalid stream {stream!r}: must be true or false.")

    for name in ("user", "safety_identifier"):
        value = params.get(name)
        if value is not None and not isinstance(value, str):
            add(name, f"Invalid {name} {value!r}: must be a string.")

    _check_gif(params, problems)
    _check_svg(params, problems)
    if "markup" in files and "mask" in files and not problems.has("markup"):
        problems.add(
            "markup cannot be combined with mask: give the drawing that guides the edit, or "
            "the mask that limits it, not both.",
            "markup",
        )
    if "mask" in files and params.get("output_format") == "gif":
        problems.add("GIF output does not take a mask; leave mask out.", "mask")


def _unstreamed(fmt: str, params: Mapping[str, Any], problems: Problems) -> None:
    """GIF and SVG answers come whole: no stream, no partial images."""
    partial = params.get("partial_images")
    if isinstance(partial, int) and partial > 0:
        problems.add(
            f"{fmt} output has no partial images; leave partial_images out.", "partial_images"
        )
    elif params.get("stream") is True:
        problems.add(f"{fmt} output cannot be streamed; leave stream out.", "stream")


def _check_gif(params: Mapping[str, Any], problems: Problems) -> None:
    gif = params.get("output_format") == "gif"
    for name in ("frame_count", "frame_duration_ms"):
        value = params.get(name)
        if value is None:
            continue
        if name == "frame_count":
            problem = _int_problem(name, value, GIF.min_frames, GIF.max_frames)
        else:
            problem = _int_problem(name, value, 0, None)
        if problem is None and not gif:
            problem = (
                f"{name} only applies to GIF output; set output_format to gif, or leave {name} out."
            )
        if problem is not None:
            problems.add(problem, name)
    if gif:
        _unstreamed("GIF", params, problems)


def _check_svg(params: Mapping[str, Any], problems: Problems) -> None:
    svg_output = params.get("output_format") == "svg"
    options = params.get("svg")
    if svg_output:
        n = params.get("n")
        if isinstance(n, int) and n > 1:
            problems.add("SVG output makes one image per request, so n must be 1.", "n")
        _unstreamed("SVG", params, problems)
    if options is None:
        return
    if not isinstance(options, Mapping):
        problems.add(
            f"Invalid svg {options!r}: must be an object such as "
            '{"model": "...", "reasoning": {"effort": "high"}}.',
            "svg",
        )
        return
    if not svg_output:
        problems.add(
            "svg (the SVG author's settings) only applies to SVG output; set output_format to "
            "svg, or leave svg out.",
            "svg",
        )
    model = options.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        problems.add(f"Invalid svg.model {model!r}: must be a model name.", "svg.model")
    reasoning = options.get("reasoning")
    if reasoning is None:
        return
    if not isinstance(reasoning, Mapping):
        problems.add(
            f'Invalid svg.reasoning {reasoning!r}: must be an object such as {{"effort": "high"}}.',
            "svg.reasoning",
        )
        return
    effort = reasoning.get("effort")
    if effort is not None:
        param = "svg.reasoning.effort"
        problem = _enum_problem(param, effort, ENUMS[param])
        if problem is not None:
            problems.add(problem, param)
