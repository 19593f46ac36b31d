"""`validate_params`: every rule a request breaks, found by a table of small checks.

`CHECKS` lists, per parameter, the checks that apply to it, in the order their problems are
reported. A check is a function of the parameter's value (`None` when it is not set) and of
the request being checked (its other parameters, the model's capabilities, the files given);
it returns what is wrong, in one sentence naming the rule, or `None`. At most one problem is
kept per parameter (the first found, see `Problems`), and a parameter the model does not take
at all is refused before its value is looked at.

The model's facts come from `_capabilities` (the catalogue); the input images are checked by
`_imaging`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from ._capabilities import (
    ENDPOINT_PARAMS,
    ENUMS,
    FLEXIBLE_MAX_EDGE,
    FLEXIBLE_MAX_PIXELS,
    FLEXIBLE_MAX_RATIO,
    FLEXIBLE_MIN_PIXELS,
    FLEXIBLE_MULTIPLE,
    GIF,
    GPT_ONLY,
    MODELS,
    Endpoint,
    ModelCapabilities,
    parse_size,
    without_snapshots,
)
from ._errors import InvalidRequestError
from ._records import record

__all__ = ["CHECKS", "TAKERS_NOTE", "Problems", "Subject", "validate_params"]

# Leads the list of models that take a parameter the request's model refuses (the command
# line then names no models of its own again).
TAKERS_NOTE = " Models that take it: "


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


@record(frozen=True)
class Subject:
    """The request a check looks at: its endpoint, set parameters, model and files."""

    endpoint: Endpoint
    params: Mapping[str, Any]
    caps: ModelCapabilities
    files: Collection[str]

    @property
    def model_label(self) -> str:
        """` for dall-e-3` after a value a known model refuses; nothing for other models."""
        known = self.caps.name and self.caps.family != "generic"
        return f" for {self.caps.name}" if known else ""

    @property
    def output_format(self) -> Any:
        return self.params.get("output_format")

    def value(self, path: str) -> Any:
        """A parameter's value by its dotted path (`svg.reasoning.effort`); None if unset."""
        if "." not in path:
            return self.params.get(path)
        value: Any = self.params
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value


Check = Callable[[Any, Subject], "str | None"]


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


# -- one parameter's value -----------------------------------------------------------------------


def _prompt(prompt: Any, subject: Subject) -> str | None:
    caps = subject.caps
    if not isinstance(prompt, str) or not prompt.strip():
        return "A prompt is required and may not be empty."
    if caps.max_prompt is not None and len(prompt) > caps.max_prompt:
        return (
            f"The prompt is {len(prompt):,} characters; {caps.name or 'this model'} allows "
            f"at most {caps.max_prompt:,}."
        )
    return None


def _n(n: Any, subject: Subject) -> str | None:
    caps = subject.caps
    if n is None:
        return None
    if caps.max_n == 1:
        rule = f"{caps.name or 'this model'} makes one image per request, so n must be 1"
        return _int_problem("n", n, 1, 1, rule=rule)
    return _int_problem("n", n, 1, caps.max_n, subject.model_label)


def _size(size: Any, subject: Subject) -> str | None:
    allowed = subject.caps.sizes.get(subject.endpoint)
    if size is None:
        return None
    if not isinstance(size, str):
        return f"Invalid size {size!r}: must be a string."
    if allowed is not None and size not in allowed:
        return _enum_problem("size", size, allowed, subject.model_label)
    try:
        parsed = parse_size(size)
    except InvalidRequestError as exc:
        return exc.message
    if parsed and subject.caps.flexible_sizes:
        return _flexible_size_problem(size, *parsed)
    return None


def _quality(quality: Any, subject: Subject) -> str | None:
    allowed = subject.caps.qualities
    if quality is None:
        return None
    if allowed is None:
        return None if isinstance(quality, str) and quality else f"Invalid quality {quality!r}."
    if subject.endpoint == "edits":
        allowed = tuple(q for q in allowed if q != "hd")
    return _enum_problem("quality", quality, allowed, subject.model_label)


def _one_of(name: str) -> Check:
    """The values of `ENUMS[name]`, or the model's narrower choices."""

    def check(value: Any, subject: Subject) -> str | None:
        if value is None:
            return None
        caps = subject.caps
        narrowed = caps.choices.get(name) or (caps.styles if name == "style" else None)
        what = subject.model_label if "." not in name else ""
        return _enum_problem(name, value, narrowed or ENUMS[name], what)

    return check


def _compression(compression: Any, subject: Subject) -> str | None:
    if compression is None:
        return None
    problem = _int_problem("output_compression", compression, 0, 100)
    if problem is None and subject.output_format not in ("jpeg", "webp"):
        return (
            "output_compression only applies to jpeg and webp output; set output_format to "
            "jpeg or webp, or leave output_compression out."
        )
    return problem


def _partial_images(partial: Any, subject: Subject) -> str | None:
    return None if partial is None else _int_problem("partial_images", partial, 0, 3)


def _stream(stream: Any, subject: Subject) -> str | None:
    if stream is None or isinstance(stream, bool):
        return None
    return f"Invalid stream {stream!r}: must be true or false."


def _text(name: str) -> Check:
    def check(value: Any, subject: Subject) -> str | None:
        if value is None or isinstance(value, str):
            return None
        return f"Invalid {name} {value!r}: must be a string."

    return check


def _gif_only(name: str, low: int, high: int | None) -> Check:
    """`frame_count` and `frame_duration_ms`: a whole number in range, for GIF output."""

    def check(value: Any, subject: Subject) -> str | None:
        if value is None:
            return None
        problem = _int_problem(name, value, low, high)
        if problem is None and subject.output_format != "gif":
            return (
                f"{name} only applies to GIF output; set output_format to gif, or leave {name} out."
            )
        return problem

    return check


# -- rules across parameters ---------------------------------------------------------------------


def _transparent_needs_alpha(background: Any, subject: Subject) -> str | None:
    # jpeg has no alpha; png, webp, gif (one transparent colour) and svg have.
    if background == "transparent" and subject.output_format == "jpeg":
        return "A transparent background needs output_format png or webp (jpeg has no alpha)."
    return None


def _whole(fmt: str) -> tuple[Check, Check]:
    """GIF and SVG answers come whole: no partial images, no stream (one problem at most)."""
    name = fmt.lower()

    def no_partials(partial: Any, subject: Subject) -> str | None:
        if subject.output_format == name and isinstance(partial, int) and partial > 0:
            return f"{fmt} output has no partial images; leave partial_images out."
        return None

    def no_stream(stream: Any, subject: Subject) -> str | None:
        wants_partials = no_partials(subject.params.get("partial_images"), subject) is not None
        if subject.output_format == name and stream is True and not wants_partials:
            return f"{fmt} output cannot be streamed; leave stream out."
        return None

    return no_partials, no_stream


def _svg_one_image(n: Any, subject: Subject) -> str | None:
    if subject.output_format == "svg" and isinstance(n, int) and n > 1:
        return "SVG output makes one image per request, so n must be 1."
    return None


def _svg(options: Any, subject: Subject) -> str | None:
    if options is None:
        return None
    if not isinstance(options, Mapping):
        return (
            f"Invalid svg {options!r}: must be an object such as "
            '{"model": "...", "reasoning": {"effort": "high"}}.'
        )
    if subject.output_format != "svg":
        return (
            "svg (the SVG author's settings) only applies to SVG output; set output_format to "
            "svg, or leave svg out."
        )
    return None


def _svg_model(model: Any, subject: Subject) -> str | None:
    if model is None or (isinstance(model, str) and model.strip()):
        return None
    return f"Invalid svg.model {model!r}: must be a model name."


def _svg_reasoning(reasoning: Any, subject: Subject) -> str | None:
    if reasoning is None or isinstance(reasoning, Mapping):
        return None
    return f'Invalid svg.reasoning {reasoning!r}: must be an object such as {{"effort": "high"}}.'


def _markup_or_mask(markup: Any, subject: Subject) -> str | None:
    if "markup" in subject.files and "mask" in subject.files:
        return (
            "markup cannot be combined with mask: give the drawing that guides the edit, or "
            "the mask that limits it, not both."
        )
    return None


def _gif_has_no_mask(mask: Any, subject: Subject) -> str | None:
    if "mask" in subject.files and subject.output_format == "gif":
        return "GIF output does not take a mask; leave mask out."
    return None


_GIF_PARTIALS, _GIF_STREAM = _whole("GIF")
_SVG_PARTIALS, _SVG_STREAM = _whole("SVG")

# Checked even when not given.
_REQUIRED = frozenset({"prompt"})

# (parameter, check), in the order problems are reported; a check runs only for a parameter
# that was given (a file given, for `markup` and `mask`), or one of `_REQUIRED`.
CHECKS: list[tuple[str, Check]] = [
    ("prompt", _prompt),
    ("n", _n),
    ("size", _size),
    ("quality", _quality),
    *((name, _one_of(name)) for name in ENUMS if "." not in name),
    ("output_compression", _compression),
    ("background", _transparent_needs_alpha),
    ("partial_images", _partial_images),
    ("stream", _stream),
    ("user", _text("user")),
    ("safety_identifier", _text("safety_identifier")),
    ("frame_count", _gif_only("frame_count", GIF.min_frames, GIF.max_frames)),
    ("frame_duration_ms", _gif_only("frame_duration_ms", 0, None)),
    ("partial_images", _GIF_PARTIALS),
    ("stream", _GIF_STREAM),
    ("n", _svg_one_image),
    ("partial_images", _SVG_PARTIALS),
    ("stream", _SVG_STREAM),
    ("svg", _svg),
    ("svg.model", _svg_model),
    ("svg.reasoning", _svg_reasoning),
    ("svg.reasoning.effort", _one_of("svg.reasoning.effort")),
    ("markup", _markup_or_mask),
    ("mask", _gif_has_no_mask),
]


@functools.cache
def _checks(endpoint: Endpoint) -> list[tuple[str, str, Check]]:
    """The rows of `CHECKS` for the parameters `endpoint` has, each with its top-level name."""
    rows = [(param, param.split(".")[0], check) for param, check in CHECKS]
    return [row for row in rows if row[1] in ENDPOINT_PARAMS[endpoint]]


def _unsupported_hint(name: str, caps: ModelCapabilities) -> str:
    if name in GPT_ONLY and not caps.is_gpt_image:
        return " It is a GPT image model parameter."
    if caps.is_gpt_image:
        # A newer GPT image model takes it (markup came with 2.5): name the current ones.
        takers = without_snapshots(
            [
                model.name
                for model in MODELS.values()
                if model.is_gpt_image and not model.retired and name not in model.unsupported
            ]
        )
        if takers:
            return f"{TAKERS_NOTE}{', '.join(takers)}."
    if name == "response_format":
        return " GPT image models always return b64_json."
    if name == "style":
        return " Only dall-e-3 has styles."
    return ""


def _refused(endpoint: Endpoint, given: Collection[str], caps: ModelCapabilities) -> Problems:
    """What the model does not take at all: the endpoint, or parameters of it."""
    problems = Problems()
    # Generic models are checked too: an engine may declare a model that lacks an endpoint.
    if caps.name and endpoint not in caps.endpoints:
        supported = ", ".join(sorted(caps.endpoints))
        problems.add(
            f"Model {caps.name} does not support the {endpoint} endpoint (it supports: "
            f"{supported}).",
            "model",
        )
        return problems
    if caps.name and caps.family != "generic":
        for name in given:
            if name in ENDPOINT_PARAMS[endpoint] and name in caps.unsupported:
                hint = _unsupported_hint(name, caps)
                problems.add(f"Parameter {name} is not supported by {caps.name}.{hint}", name)
    return problems


def validate_params(
    endpoint: Endpoint,
    request: Any,
    caps: ModelCapabilities,
    *,
    files: Collection[str] = (),
) -> None:
    """Check the set, non-file parameters of one request against `caps`.

    `request` is the request model (`ImageRequest`) or its set parameters, in wire names;
    `files` names the optional file parameters given (`mask`, `markup`), for the rules about
    which go together. Raises one `InvalidRequestError` for every rule broken (its `param` the
    first one's, `problems` all of them). Fields outside the endpoint's schema (engine options
    from `extra_body`) are the engine's to check.
    """
    params = request if isinstance(request, Mapping) else request.wire_params()
    given = [name for name, value in params.items() if value is not None] + list(files)
    problems = _refused(endpoint, given, caps)
    if problems.has("model"):  # nothing else is worth saying about a model that cannot serve
        problems.raise_any()
    known = ENDPOINT_PARAMS[endpoint]
    subject = Subject(
        endpoint,
        {k: v for k, v in params.items() if k in known and not problems.has(k)},
        caps,
        files,
    )
    present = {name for name, value in subject.params.items() if value is not None}
    present |= _REQUIRED | set(files)
    for param, top, check in _checks(endpoint):
        if top not in present or (problems and problems.has(param)):
            continue  # every check but those of `_REQUIRED` is about a value that was given
        message = check(subject.value(param), subject)
        if message is not None:
            problems.add(message, param)
    problems.raise_any()
