"""Wire models of the OpenAI Images API, shared by the client and the server.

A request model is the one form a request takes from the caller to the engine: `Client` builds
it from a method's arguments (`ImageRequest.build`), sends its set fields as JSON or a form,
the server parses it back (`parse_request`), and `ImageService` makes an engine `Job` of it.
It holds only the non-file parameters, in OpenAI's wire names; every field defaults to `None`,
meaning "not set, not sent". Unknown fields are kept, as attributes beside the fields
(`model_extra`): they are the `extra_body` options that compatible servers understand (`seed`,
`num_inference_steps`, ...). Input images travel beside the request as `_imaging.InputImage`
objects.

The models are standard dataclasses, so that a call that never parses foreign data (an
in-process `Client(engine=...)`, whose values come typed from the caller and the engine) never
imports pydantic, about 100 ms of start-up. pydantic validates them where data comes from
outside, on first use: the responses of a server (`model_validate`, lenient: OpenAI adds fields,
compatible servers omit some, so a newer server never breaks an older client) and multipart
forms (`parse_request`). JSON bodies are checked strictly by `_strict_problems`, since pydantic
has no strict mode that takes a dict for a dataclass. The names `model_validate`, `model_dump`,
`model_dump_json` and `model_extra` are pydantic's, so code written against them keeps working.
"""

from __future__ import annotations

import base64
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from ._capabilities import Endpoint
from ._errors import InvalidRequestError
from ._records import per_class, record
from ._types import dataclass_transform

if TYPE_CHECKING:
    from pydantic import TypeAdapter
    from typing_extensions import Self

__all__ = [
    "CompletedEvent",
    "EditRequest",
    "ErrorBody",
    "ErrorDetail",
    "GenerateRequest",
    "ImageData",
    "ImageRequest",
    "ImagesResponse",
    "ImagesUsage",
    "InputTokensDetails",
    "OutputTokensDetails",
    "PartialImageEvent",
    "SvgOptions",
    "SvgReasoning",
    "SvgUsage",
    "VariationRequest",
    "WireEvent",
    "WireModel",
    "json_type",
    "parse_request",
    "parse_stream_event",
    "request_class",
]


_R = TypeVar("_R", bound="ImageRequest")
_SCALARS = (str, int, float, bool)


def _options(annotation: Any) -> tuple[Any, ...]:
    """The types a field annotation allows (`str | None`: str and NoneType)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _model_of(annotation: Any) -> type[WireModel] | None:
    """The wire model a field holds (`svg: SvgOptions | None`: SvgOptions), if any."""
    for option in _options(annotation):
        if isinstance(option, type) and issubclass(option, WireModel):
            return option
    return None


def _fits(annotation: Any, value: Any) -> bool:
    """Whether `value` is already what a field of type `annotation` holds: None where None is
    allowed, a str, int, float or bool of exactly the field's type (so never True for an int),
    an instance of the field's model, a list of such, one of a `Literal`'s values."""
    options = _options(annotation)
    if (value is None or type(value) in _SCALARS) and type(value) in options:
        return True
    for option in options:
        if isinstance(option, type) and issubclass(option, WireModel):
            if isinstance(value, option):
                return True
        elif typing.get_origin(option) is list and type(value) is list:
            (item,) = typing.get_args(option)
            return all(_fits(item, each) for each in value)
        elif typing.get_origin(option) is Literal and value in typing.get_args(option):
            return type(value) is str
    return False


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class WireModel:
    """Base of the wire models: a dataclass whose unknown fields are kept or dropped
    (`extra`), validated and dumped as pydantic's models are (see the module docstring)."""

    # "allow": unknown names are kept (`model_extra`) and sent on; "ignore": dropped.
    extra: ClassVar[str] = "allow"
    if TYPE_CHECKING:
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    # Every subclass is made a record (a dataclass whose `__init__` is shared, see `_records`)
    # with the `__eq__` and `__repr__` below, which count the extra fields too.
    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        record(kw_only=True, repr=False, eq=False)(cls)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"{type(self).__name__}({shown})"

    @classmethod
    def field_types(cls) -> Mapping[str, Any]:
        """`{name: annotation}` of the model's fields, in their order."""
        return _field_types(cls)

    @classmethod
    def of(cls, **values: Any) -> Self:
        """The model holding `values` as they are, unknown names kept (`extra="allow"`) or
        dropped; nested models given as mappings are built the same way. No value is
        checked: see `build` and `model_validate` for values from outside."""
        known = _field_types(cls)
        given: dict[str, Any] = {}
        unknown: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                unknown[name] = value
                continue
            nested = _model_of(known[name])
            if nested is not None and isinstance(value, Mapping):
                value = nested.of(**value)
            given[name] = value
        made = cls(**given)
        if cls.extra == "allow":
            made.__dict__.update(unknown)
        return made

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """`data` validated by pydantic into the model, leniently: text converted as forms
        send it ("3", "true"). Raises pydantic's `ValidationError`."""
        result: Self = _adapter(cls).validate_python(data)
        return result

    @property
    def model_extra(self) -> dict[str, Any]:
        """The fields outside the model's schema, as they were given."""
        known = _field_types(type(self))
        return {name: value for name, value in self.__dict__.items() if name not in known}

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """The fields and extra fields as plain data, nested models as dicts: JSON's types
        already (values of another type, which only `build` lets in, are given as held)."""
        return _dump(self, exclude_none)

    def model_dump_json(self, *, exclude_none: bool = False) -> str:
        import json  # here: an in-process call never writes JSON

        return json.dumps(_dump(self, exclude_none), ensure_ascii=False, separators=(",", ":"))


# What each model class holds, worked out on first use.
@per_class
def _field_types(cls: type[WireModel]) -> Mapping[str, Any]:
    hints = typing.get_type_hints(cls)
    return {each.name: hints[each.name] for each in fields(cls)}


@per_class
def _required(cls: type[WireModel]) -> frozenset[str]:
    return frozenset(
        each.name
        for each in fields(cls)
        if each.default is MISSING and each.default_factory is MISSING
    )


def _plain(value: Any, exclude_none: bool) -> Any:
    if isinstance(value, WireModel):
        return _dump(value, exclude_none)
    if isinstance(value, list):
        return [_plain(each, exclude_none) for each in value]
    return value


def _dump(model: WireModel, exclude_none: bool) -> dict[str, Any]:
    return {
        name: _plain(value, exclude_none)
        for name, value in model.__dict__.items()
        if not (exclude_none and value is None)
    }


@per_class
def _adapter(cls: type[WireModel]) -> TypeAdapter[Any]:
    """pydantic's validator of `cls`, built on first use, unknown fields per `cls.extra`."""
    from pydantic import TypeAdapter

    _configure(cls)
    return TypeAdapter(cls)


def _configure(cls: type[WireModel]) -> None:
    """Tell pydantic how `cls` and the models its fields hold treat unknown fields."""
    if "__pydantic_config__" not in cls.__dict__:
        cls.__pydantic_config__ = {"extra": cls.extra}  # type: ignore[attr-defined]
    for annotation in _field_types(cls).values():
        for option in _options(annotation):
            if typing.get_origin(option) is list:
                option = typing.get_args(option)[0]
            if isinstance(option, type) and issubclass(option, WireModel):
                _configure(option)


def _strict_problems(
    cls: type[WireModel], data: Any, at: tuple[str | int, ...] = ()
) -> list[dict[str, Any]]:
    """pydantic's strict errors (`type`, `loc`, `input`) for `data` as a `cls`: a missing
    required field, or a value that is not exactly of its field's type. Nested models are
    checked in turn; unknown fields are not checked."""
    if not isinstance(data, Mapping):
        return [{"type": "dataclass_type", "loc": at, "input": data}]
    problems: list[dict[str, Any]] = []
    required = _required(cls)
    for name, annotation in _field_types(cls).items():
        loc = (*at, name)
        if name not in data:
            if name in required:
                problems.append({"type": "missing", "loc": loc, "input": dict(data)})
            continue
        value = data[name]
        nested = _model_of(annotation)
        if nested is not None and isinstance(value, Mapping):
            problems += _strict_problems(nested, value, loc)
        elif not _fits(annotation, value):
            problems.append({"type": _type_error(annotation), "loc": loc, "input": value})
    return problems


def _type_error(annotation: Any) -> str:
    """pydantic's error type for a value of the wrong type in a field of `annotation`."""
    for option in _options(annotation):
        if option is type(None):
            continue
        if isinstance(option, type) and issubclass(option, WireModel):
            return "dataclass_type"
        if typing.get_origin(option) is list:
            return "list_type"
        if typing.get_origin(option) is Literal:
            return "literal_error"
        return {str: "string_type", int: "int_type", float: "float_type", bool: "bool_type"}.get(
            option, "is_instance_of"
        )
    return "none_required"


class ImageRequest(WireModel):
    """The fields every Images API request has; one subclass per endpoint."""

    model: str | None = None
    n: int | None = None
    size: str | None = None
    response_format: str | None = None
    user: str | None = None

    @classmethod
    def build(cls: type[_R], params: Mapping[str, Any]) -> _R:
        """The request of a method call's arguments (only those set), typed as they are given.

        Values of the wrong type are kept as given rather than converted or refused here:
        `validate_params` then names each one in the words of the parameter's rule (`Invalid
        n '2': must be a whole number ...`), as it does for every other mistake; so is a
        missing `prompt`, which is held as None (unset).
        """
        return cls.of(**{**dict.fromkeys(_required(cls)), **params})

    def wire_params(self) -> dict[str, Any]:
        """The parameters that were set, extra fields included, ready to send (or to check:
        a request built from values of the wrong type holds them as they are)."""
        return _dump(self, exclude_none=True)

    def extra_params(self) -> dict[str, Any]:
        """Only the fields outside OpenAI's schema (engine options such as `seed`)."""
        return self.model_extra


class VariationRequest(ImageRequest):
    """`POST /images/variations` (multipart): image, model, n, response_format, size, user."""


class SvgReasoning(WireModel):
    """`svg.reasoning`: how much the SVG author reasons (`effort`)."""

    effort: str | None = None


class SvgOptions(WireModel):
    """`svg`, with output_format=svg: the model that writes the SVG, and its reasoning."""

    model: str | None = None
    reasoning: SvgReasoning | None = None


class _PromptRequest(ImageRequest):
    """The fields of the endpoints that take a prompt (generations, edits)."""

    prompt: str
    quality: str | None = None
    background: str | None = None
    moderation: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    stream: bool | None = None
    partial_images: int | None = None
    # Preferred over `user` (which stays accepted); both are sent as given.
    safety_identifier: str | None = None
    complexity: str | None = None
    frame_count: int | None = None  # output_format=gif
    frame_duration_ms: int | None = None  # output_format=gif
    svg: SvgOptions | None = None  # output_format=svg

    @property
    def effective_safety_identifier(self) -> str | None:
        """What OpenAI uses for safety monitoring: a non-empty `safety_identifier`, else `user`."""
        return self.safety_identifier or self.user or None


class GenerateRequest(_PromptRequest):
    """`POST /images/generations` (JSON)."""

    style: str | None = None


class EditRequest(_PromptRequest):
    """`POST /images/edits` (multipart, or JSON with `images` references)."""

    input_fidelity: str | None = None


_REQUESTS: dict[Endpoint, type[ImageRequest]] = {
    "generations": GenerateRequest,
    "edits": EditRequest,
    "variations": VariationRequest,
}


def request_class(endpoint: Endpoint) -> type[ImageRequest]:
    return _REQUESTS[endpoint]


class InputTokensDetails(WireModel):
    """`usage.input_tokens_details`: the input tokens of text and of images."""

    text_tokens: int = 0
    image_tokens: int = 0


class OutputTokensDetails(WireModel):
    """`usage.output_tokens_details`: the output tokens of text and of images."""

    text_tokens: int = 0
    image_tokens: int = 0


class SvgUsage(WireModel):
    """Tokens spent writing an SVG, apart from the rendering's `usage`."""

    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class ImagesUsage(WireModel):
    """Token usage, as GPT image models report it. Engines fill in only figures they have."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails = field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails | None = None


class ImageData(WireModel):
    """One image of a response: base64 bytes or a URL, and DALL·E 3's revised prompt."""

    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None

    def decoded(self) -> bytes:
        if self.b64_json is None:
            raise ValueError("this image has no b64_json data (it was returned as a URL)")
        return base64.b64decode(self.b64_json)


class ImagesResponse(WireModel):
    """The body of a successful non-streaming answer."""

    created: int
    data: list[ImageData] = field(default_factory=list)
    background: str | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    usage: ImagesUsage | None = None
    # The identifier used for safety monitoring: `safety_identifier`, else `user`.
    safety_identifier: str | None = None
    svg_usage: SvgUsage | None = None


class _ImageEvent(WireModel):
    """The fields of every image event of a stream."""

    b64_json: str
    created_at: int = 0
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    safety_identifier: str | None = None

    @property
    def is_edit(self) -> bool:
        return str(getattr(self, "type", "")).startswith("image_edit.")


class PartialImageEvent(_ImageEvent):
    """`image_generation.partial_image` / `image_edit.partial_image`."""

    type: Literal["image_generation.partial_image", "image_edit.partial_image"]
    partial_image_index: int = 0


class CompletedEvent(_ImageEvent):
    """`image_generation.completed` / `image_edit.completed`: one final image."""

    type: Literal["image_generation.completed", "image_edit.completed"]
    usage: ImagesUsage | None = None


# One event of an image stream, as the wire carries it (the caller sees it as `StreamEvent`).
WireEvent = PartialImageEvent | CompletedEvent
_EVENTS: dict[str, type[WireEvent]] = {
    kind: cls
    for cls in (PartialImageEvent, CompletedEvent)
    for kind in typing.get_args(_field_types(cls)["type"])
}


def parse_stream_event(data: Any) -> WireEvent | None:
    """Parse one SSE `data:` object; `None` for event types this version does not know.
    Raises pydantic's `ValidationError` for a known type with bad fields."""
    cls = _EVENTS.get(str(data.get("type"))) if isinstance(data, dict) else None
    return None if cls is None else cls.model_validate(data)


class ErrorDetail(WireModel):
    """`error`: what went wrong, the parameter to blame, OpenAI's code for it."""

    extra: ClassVar[str] = "ignore"
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class ErrorBody(WireModel):
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

    extra: ClassVar[str] = "ignore"
    error: ErrorDetail


def parse_request(endpoint: Endpoint, data: Any, *, strict: bool = False) -> ImageRequest:
    """Validate a decoded body into the endpoint's request model.

    Lax by default, for multipart forms, whose fields are all strings: "3" and "true" are
    converted as the official SDK sends them. `strict=True` is for JSON bodies, whose values
    carry their own types: like OpenAI, it refuses `"n": true` or `"n": "2"` rather than guess.
    Either way an error is one `InvalidRequestError` for every bad field, naming the first as
    `param` (nested fields by their dotted path, `svg.model`).
    """
    cls = _REQUESTS[endpoint]
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.", param=None)
    if strict:
        problems = _strict_problems(cls, data)
        if problems:
            raise InvalidRequestError.combine([_request_error(each) for each in problems])
        return cls.of(**data)
    from pydantic import ValidationError

    try:
        request: ImageRequest = _adapter(cls).validate_python(data)
        return request
    except ValidationError as exc:
        errors = [_request_error(error) for error in exc.errors()]
        raise InvalidRequestError.combine(errors) from None


# What each kind of field expects, by the prefix of pydantic's error type (`int_parsing`, ...).
_EXPECTED = {
    "int": "an integer",
    "dataclass": "an object",
    "string": "a string",
    "bool": "a boolean",
    "model": "an object",
    "dict": "an object",
}


def json_type(value: Any) -> str:
    """A value's type in JSON's words, as OpenAI's messages give it."""
    if value is None:
        return "null"
    for kind, words in (
        (bool, "a boolean"),  # before int: a bool is an int in Python
        (int, "an integer"),
        (float, "a decimal number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "an object"),
    ):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _request_error(error: Any) -> InvalidRequestError:
    loc = error.get("loc") or ()
    param = ".".join(str(part) for part in loc) if loc else None
    kind = str(error.get("type", ""))
    value = error.get("input")
    if kind == "missing":
        return InvalidRequestError(f"Missing required parameter: {param}.", param=param)
    expected = _EXPECTED.get(kind.split("_", 1)[0])
    if expected is None:
        return InvalidRequestError(
            f"Invalid value for {param}: {value!r} ({error.get('msg', 'invalid')}).", param=param
        )
    if kind.endswith("_type") or not isinstance(value, str):
        # OpenAI's words and code for a JSON value of the wrong type.
        return InvalidRequestError(
            f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
            param=param,
            code="invalid_type",
        )
    # A string that does not read as the type (a multipart field such as n=three).
    shown = value if len(value) <= 80 else value[:77] + "..."
    return InvalidRequestError(
        f"Invalid value for '{param}': {shown!r} is not {expected}.", param=param
    )
