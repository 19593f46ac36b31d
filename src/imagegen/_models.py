"""Wire models of the OpenAI Images API, shared by the client and the server.

A request model is the one form a request takes from the caller to the engine: `Client` builds
it from a method's arguments (`ImageRequest.build`), sends its set fields as JSON or a form,
the server parses it back (`parse_request`), and `ImageService` makes an engine `Job` of it.
It holds only the non-file parameters, in OpenAI's wire names; every field defaults to `None`,
meaning "not set, not sent". Unknown fields are kept (`extra="allow"`): they are the
`extra_body` options that compatible servers understand (`seed`, `num_inference_steps`, ...).
Input images travel beside the request as `_imaging.InputImage` objects.

Responses parse leniently (OpenAI adds fields; compatible servers omit some), so a newer server
never breaks an older client.

Each model's validator and serializer are built on first use, not at import (`defer_build`),
and values that already are what their fields hold are taken without either (`WireModel.of`,
`ImageRequest.build`, `plain_fields`): building the first one imports most of pydantic and
reads every installed package's entry points for pydantic plugins, about 40-60 ms, which an
in-process `Client(engine=...)` call, whose values come typed from the caller and the engine,
never pays.
"""

from __future__ import annotations

import base64
import functools
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import Self

from ._capabilities import Endpoint
from ._errors import InvalidRequestError

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


def _fits(annotation: Any, value: Any) -> bool:
    """Whether `value` is already what a field of type `annotation` holds, so that validating
    it would give it back unchanged: None where None is allowed, a str, int, float or bool of
    exactly the field's type, an instance of the field's model, a list of such."""
    options = _options(annotation)
    if value is None or type(value) in _SCALARS:
        return type(value) in options
    for option in options:
        if isinstance(option, type) and issubclass(option, BaseModel):
            if isinstance(value, option):
                return True
        elif typing.get_origin(option) is list and type(value) is list:
            (item,) = typing.get_args(option)
            return all(_fits(item, each) for each in value)
    return False


@functools.cache
def _required(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(name for name, info in cls.model_fields.items() if info.is_required())


def _fit(cls: type[BaseModel], values: Mapping[str, Any]) -> bool:
    """Whether `values` would validate into `cls` unchanged (see `_fits`); unknown names only
    where the model keeps them as they are (`extra="allow"`)."""
    fields = cls.model_fields
    if not _required(cls) <= values.keys():
        return False
    allow = cls.model_config.get("extra") == "allow"
    return all(
        _fits(fields[name].annotation, value) if name in fields else allow
        for name, value in values.items()
    )


def plain_fields(model: BaseModel) -> dict[str, Any] | None:
    """`model.model_dump(exclude_none=True)` without pydantic's serializer, when every value
    set (extra fields included) is a str, int, float, bool or such a model; None otherwise."""
    extra = model.__pydantic_extra__ or {}
    fields: dict[str, Any] = {}
    for name, value in (*model.__dict__.items(), *extra.items()):
        if value is None:
            continue
        if isinstance(value, BaseModel):
            value = plain_fields(value)
            if value is None:
                return None
        elif type(value) not in _SCALARS:
            return None
        fields[name] = value
    return fields


class WireModel(BaseModel):
    """Base of the wire models: built on first use (see the module docstring)."""

    model_config = ConfigDict(defer_build=True)

    @classmethod
    def of(cls, **values: Any) -> Self:
        """`cls(**values)`, without validating values that already are what their fields hold."""
        if _fit(cls, values):
            return cls.model_construct(**values)  # type: ignore[return-value]  # see `build`
        return cls(**values)


class ImageRequest(WireModel):
    """The fields every Images API request has; one subclass per endpoint."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

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
        n '2': must be a whole number ...`), as it does for every other mistake.
        """
        if _fit(cls, params):
            return cls.model_construct(**params)  # type: ignore[return-value]  # as below
        try:
            return cls.model_validate(params, strict=True)
        except ValidationError:
            return cls.model_construct(**params)  # type: ignore[return-value]  # pydantic types it as the base class

    def wire_params(self) -> dict[str, Any]:
        """The parameters that were set, extra fields included, ready to send (or to check:
        a request built from values of the wrong type dumps them as they are)."""
        fields = plain_fields(self)
        if fields is None:
            fields = self.model_dump(exclude_none=True, warnings=False)
        return fields

    def extra_params(self) -> dict[str, Any]:
        """Only the fields outside OpenAI's schema (engine options such as `seed`)."""
        return dict(self.model_extra or {})


class VariationRequest(ImageRequest):
    """`POST /images/variations` (multipart): image, model, n, response_format, size, user."""


class SvgReasoning(WireModel):
    """`svg.reasoning`: how much the SVG author reasons (`effort`)."""

    model_config = ConfigDict(extra="allow")
    effort: str | None = None


class SvgOptions(WireModel):
    """`svg`, with output_format=svg: the model that writes the SVG, and its reasoning."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    reasoning: SvgReasoning | None = None


class _PromptRequest(ImageRequest):
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
    model_config = ConfigDict(extra="allow")
    text_tokens: int = 0
    image_tokens: int = 0


class OutputTokensDetails(WireModel):
    model_config = ConfigDict(extra="allow")
    text_tokens: int = 0
    image_tokens: int = 0


class SvgUsage(WireModel):
    """Tokens spent writing an SVG, apart from the rendering's `usage`."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class ImagesUsage(WireModel):
    """Token usage, as GPT image models report it. Engines fill in only figures they have."""

    model_config = ConfigDict(extra="allow")
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails | None = None


class ImageData(WireModel):
    """One image of a response: base64 bytes or a URL, and DALL·E 3's revised prompt."""

    model_config = ConfigDict(extra="allow")
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None

    def decoded(self) -> bytes:
        if self.b64_json is None:
            raise ValueError("this image has no b64_json data (it was returned as a URL)")
        return base64.b64decode(self.b64_json)


class ImagesResponse(WireModel):
    """The body of a successful non-streaming answer."""

    model_config = ConfigDict(extra="allow")
    created: int
    data: list[ImageData] = Field(default_factory=list)
    background: str | None = None
    output_format: str | None = None
    size: str | None = None
    quality: str | None = None
    usage: ImagesUsage | None = None
    # The identifier used for safety monitoring: `safety_identifier`, else `user`.
    safety_identifier: str | None = None
    svg_usage: SvgUsage | None = None


class _ImageEvent(WireModel):
    model_config = ConfigDict(extra="allow")
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


@functools.cache
def _wire_event() -> TypeAdapter[WireEvent]:
    return TypeAdapter(Annotated[WireEvent, Field(discriminator="type")])


def parse_stream_event(data: Any) -> WireEvent | None:
    """Parse one SSE `data:` object; `None` for event types this version does not know."""
    if not isinstance(data, dict) or data.get("type") not in (
        "image_generation.partial_image",
        "image_edit.partial_image",
        "image_generation.completed",
        "image_edit.completed",
    ):
        return None
    return _wire_event().validate_python(data)


class ErrorDetail(WireModel):
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class ErrorBody(WireModel):
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

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
    try:
        return cls.model_validate(data, strict=strict)
    except ValidationError as exc:
        errors = [_request_error(error) for error in exc.errors()]
        raise InvalidRequestError.combine(errors) from None


# What each kind of field expects, by the prefix of pydantic's error type (`int_parsing`, ...).
_EXPECTED = {
    "int": "an integer",
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
