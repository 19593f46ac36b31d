"""From a method call to a checked request, the same for HTTP and in-process engines.

`prepare_call` turns a method's arguments into a `Call`: the endpoint's request model
(`ImageRequest.build`, only the parameters the caller set), the input images read once, and
the per-call options. On the way it applies the defaults that are always sent (`model`), turns
`response_format=url` into base64 where the target cannot answer with URLs (GPT image models,
in-process engines), and checks everything `_validation` and `_imaging` know before anything
is sent, reporting every problem in one `InvalidRequestError`. Where the call goes decides what
it is checked against (`Target`): a server's calls by the named model's rules in the
catalogue; an in-process engine's by the engine itself (`ImageService.prepare`, with its own
model declarations), when it makes the job. A model OpenAI has retired is refused before a
call to OpenAI itself, naming its replacement; other servers may still serve it.

`extra_body` may not set a parameter of the method (it would skip those checks and differ from
what results record), and extra header names and values must be sendable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import field
from typing import Any

from ._capabilities import (
    DEFAULT_MODELS,
    ENDPOINT_PARAMS,
    ENUMS,
    MAX_DATA_URL_CHARS,
    Endpoint,
    ModelCapabilities,
    check_retired,
    get_capabilities,
)
from ._errors import EXTRA_BODY_PARAMETER, InvalidRequestError
from ._headers import header_problem
from ._imaging import (
    ImageInput,
    InputImage,
    check_edit_inputs,
    check_variation_input,
    load_input,
)
from ._models import ImageRequest, request_class
from ._params import EditAnyParams, GenerateAnyParams, VariationParams
from ._records import record
from ._types import NOT_GIVEN, NotGiven
from ._validation import Problems, validate_params

__all__ = ["METHODS", "Call", "Target", "prepare_call"]

logger = logging.getLogger("imagegen.client")
# A library prints nothing unless the application configures logging (the CLI does): without
# this, Python's last-resort handler would write retry warnings to the user's stderr.
logger.addHandler(logging.NullHandler())

METHODS: dict[Endpoint, str] = {
    "generations": "generate",
    "edits": "edit",
    "variations": "create_variation",
}
# Every argument each method takes, by name.
_ARGUMENTS: dict[Endpoint, frozenset[str]] = {
    "generations": frozenset({"prompt", *GenerateAnyParams.__optional_keys__}),
    "edits": frozenset({"image", "prompt", *EditAnyParams.__optional_keys__}),
    "variations": frozenset({"image", *VariationParams.__optional_keys__}),
}
_NOT_PARAMS = frozenset({"image", "mask", "markup", "extra_headers", "extra_query", "extra_body"})


@record(frozen=True)
class Target:
    """What a call needs to know of where it goes."""

    in_process: bool = False  # an engine in this process, which checks calls itself
    default_model: str | None = None  # instead of the endpoint's (an Azure deployment's name)
    to_openai: bool = False  # OpenAI's own API, which refuses retired models

    def capabilities(self, model: str | None) -> ModelCapabilities | None:
        """The rules a call is checked by before it is sent; None: the engine checks it."""
        return None if self.in_process else get_capabilities(model)


@record()
class Call:
    """One checked call: the request model, its input images, and the per-call options."""

    endpoint: Endpoint
    request: ImageRequest
    images: list[InputImage] = field(default_factory=list)
    mask: InputImage | None = None
    markup: InputImage | None = None
    extra_headers: dict[str, str | None] = field(default_factory=dict)
    extra_query: dict[str, str] = field(default_factory=dict)
    timeout: Any = NOT_GIVEN

    @property
    def model(self) -> str | None:
        model = self.request.model
        return model if isinstance(model, str) else None

    @property
    def prompt(self) -> str | None:
        prompt = getattr(self.request, "prompt", None)
        return prompt if isinstance(prompt, str) else None

    @property
    def size(self) -> str | None:
        size = self.request.size
        return size if isinstance(size, str) else None

    @property
    def stream(self) -> bool:
        return getattr(self.request, "stream", None) is True

    @property
    def json_edit(self) -> bool:
        """An edit sent as JSON, images as data URLs: OpenAI's multipart edit has no
        `moderation`, its JSON edit does."""
        return self.endpoint == "edits" and getattr(self.request, "moderation", None) is not None

    def body(self) -> dict[str, Any]:
        """The parameters set, `extra_body` fields included, ready to send."""
        return self.request.wire_params()


def _check_names(endpoint: Endpoint, arguments: Mapping[str, Any]) -> None:
    for name in arguments:
        if name not in _ARGUMENTS[endpoint]:
            raise TypeError(f"{METHODS[endpoint]}() got an unexpected keyword argument {name!r}")


def _check_extra_headers(headers: Mapping[str, str | None]) -> None:
    for name, value in headers.items():
        problem = header_problem(name, "" if value is None else value)  # None removes it
        if problem is not None:
            raise InvalidRequestError(
                f"Invalid header {name!r} in extra_headers: {problem}.", param="extra_headers"
            )


def _check_extra_body(endpoint: Endpoint, body: Mapping[str, Any]) -> None:
    # A core parameter set through extra_body would skip the model's checks, and the result's
    # metadata would record the other value, so only options the method lacks pass (`seed`).
    for key in body:
        if key in ENDPOINT_PARAMS[endpoint]:
            method = METHODS[endpoint]
            raise InvalidRequestError(
                f"{key} is a parameter of {method}() itself: pass {key}=... instead of putting "
                f"it in extra_body (--extra), which is for options {method}() does not have, "
                "such as seed.",
                param=key,
                code=EXTRA_BODY_PARAMETER,
            )


def _drops_url(model: str) -> bool:
    # GPT image models always answer base64 (`*gpt-image-*` also covers newer names the
    # catalogue does not know yet).
    caps = get_capabilities(model)
    return caps.is_gpt_image or "gpt-image" in model


def _mapping(value: Mapping[str, Any] | None, param: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{param} must be a mapping (a dict).", param=param)
    return dict(value)


def _as_list(image: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(image, (list, tuple)):
        return list(image)
    return [image]  # type: ignore[list-item]  # bytes are a Sequence but one image


def _set_params(arguments: Mapping[str, Any], problems: Problems) -> dict[str, Any]:
    """The request parameters the caller set; `stream` set whenever partial images are asked
    for (they only come in a stream)."""
    wire = {
        name: value
        for name, value in arguments.items()
        if name not in _NOT_PARAMS
        and name != "timeout"
        and value is not None
        and not isinstance(value, NotGiven)
    }
    partial = wire.get("partial_images")
    wants_partials = isinstance(partial, int) and not isinstance(partial, bool) and partial > 0
    stream = wire.pop("stream", False)
    if stream is True or wants_partials:
        wire["stream"] = True
    elif stream is not False:
        problems.add(f"Invalid stream {stream!r}: must be True or False.", "stream")
    return wire


def _model(endpoint: Endpoint, wire: dict[str, Any], target: Target) -> str | None:
    """The model the call names, the target's default filled in where one is always sent."""
    model = wire.get("model")
    if model is None and not target.in_process:
        model = wire["model"] = target.default_model or DEFAULT_MODELS[endpoint]
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidRequestError(f"Invalid model {model!r}: must be a model name.", param="model")
    if target.to_openai and not target.in_process:
        check_retired(model, endpoint)  # nothing else matters: OpenAI would refuse the model
    return model


def _drop_url(wire: dict[str, Any], model: str | None, target: Target, problems: Problems) -> bool:
    """Leave `response_format` out where the answer is always base64; whether `url` was
    asked for (a typo is an error even where the parameter is dropped)."""
    if "response_format" not in wire or not (target.in_process or _drops_url(str(model))):
        return False
    asked = wire.pop("response_format")
    if asked not in ENUMS["response_format"]:
        problems.add(
            f"Invalid response_format {asked!r}: use one of url, b64_json.", "response_format"
        )
    return bool(asked == "url")


def prepare_call(endpoint: Endpoint, arguments: Mapping[str, Any], target: Target) -> Call:
    """Build one call from a method's `arguments` (`NOT_GIVEN` and `None` mean "not set") and
    check it for `target`; raises one `InvalidRequestError` naming every problem found (its
    `param` the first one's).

    `target.default_model` replaces the endpoint's default model: an Azure deployment decides
    the model, so its name (checked by that model's rules when it is one of OpenAI's, by the
    generic ones otherwise) is a better guess than gpt-image-2, whose rules would refuse a
    dall-e-3 deployment's `style`.
    """
    _check_names(endpoint, arguments)
    problems = Problems()
    wire = _set_params(arguments, problems)
    model = _model(endpoint, wire, target)
    dropped_url = _drop_url(wire, model, target, problems)
    extra_body = _mapping(arguments.get("extra_body"), "extra_body")
    # A parameter of the method's own in extra_body is refused below, not sent.
    options = {k: v for k, v in extra_body.items() if k not in ENDPOINT_PARAMS[endpoint]}
    call = Call(
        endpoint=endpoint,
        request=request_class(endpoint).build({**options, **wire}),
        extra_headers=_mapping(arguments.get("extra_headers"), "extra_headers"),
        extra_query=_mapping(arguments.get("extra_query"), "extra_query"),
        timeout=arguments.get("timeout", NOT_GIVEN),
    )
    with problems.collect():
        _check_extra_body(endpoint, extra_body)
    with problems.collect():
        _check_extra_headers(call.extra_headers)
    caps = target.capabilities(model)
    if caps is not None:
        files = [name for name in ("mask", "markup") if arguments.get(name) is not None]
        with problems.collect():
            validate_params(endpoint, call.request, caps, files=files)
    _load_inputs(call, arguments, caps, problems)
    problems.raise_any()
    if dropped_url:  # said only of a request that passed the checks, not before its error
        shown = "an in-process engine" if target.in_process else f"model {model}"
        logger.warning(
            "response_format=url is not supported by %s; returning base64 (b64_json) instead.",
            shown,
        )
    return call


def _load_inputs(
    call: Call, arguments: Mapping[str, Any], caps: ModelCapabilities | None, problems: Problems
) -> None:
    """Read the call's images, mask and markup once and, given `caps`, check them."""
    image = arguments.get("image")
    if call.endpoint == "edits":
        _load_edit_inputs(call, image, arguments.get("mask"), arguments.get("markup"), problems)
        if caps is not None and not problems.has("image"):
            with problems.collect():
                call.mask = check_edit_inputs(call.images, call.mask, caps, call.markup)
        if call.json_edit and caps is not None:
            with problems.collect():
                _check_data_urls(call)
    elif call.endpoint == "variations":
        if image is None or isinstance(image, (list, tuple)):
            problems.add("A variation needs exactly one image.", "image")
            return
        with problems.collect():
            call.images = [load_input(image, param="image")]
            if caps is not None:
                check_variation_input(call.images[0], caps)


def _load_edit_inputs(
    call: Call,
    image: ImageInput | Sequence[ImageInput] | None,
    mask: ImageInput | None,
    markup: ImageInput | None,
    problems: Problems,
) -> None:
    """Read an edit's images, mask and markup once, each problem recorded in `problems`."""
    if image is None:
        problems.add("An edit needs at least one image.", "image")
    else:
        with problems.collect():
            call.images = [load_input(item, param="image") for item in _as_list(image)]
    for name, source in (("mask", mask), ("markup", markup)):
        if source is not None:
            with problems.collect():
                setattr(call, name, load_input(source, param=name))


def _check_data_urls(call: Call) -> None:
    # base64 is 4/3 of the bytes; the `data:image/png;base64,` prefix is a few dozen more.
    files = [(call.mask, "mask"), (call.markup, "markup")]
    for image, param in [*((image, "image") for image in call.images), *files]:
        if image is not None and len(image.data) * 4 // 3 + 64 > MAX_DATA_URL_CHARS:
            raise InvalidRequestError(
                f"The {param} is too large for an edit with moderation: such edits are sent as "
                f"JSON, whose images are data URLs of at most {MAX_DATA_URL_CHARS:,} characters "
                "(about 15 MB of image); leave moderation out, or send a smaller image.",
                param=param,
            )
