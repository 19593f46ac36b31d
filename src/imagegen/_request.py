"""From a method call to a checked request, the same for HTTP and in-process engines.

`prepare_call` keeps only the parameters the caller set, applies the defaults that are always
sent (`model`), turns `response_format=url` into base64 for GPT image models (as PSOpenAI does),
reads the input images once and, for HTTP, runs every check of `_capabilities` and `_imaging`
before anything is sent, reporting every problem found in one `InvalidRequestError`. The
in-process engine path leaves the checks to `ImageService.prepare`, which applies the same
functions with the engine's own model declarations. A model OpenAI has retired is refused
before a call to OpenAI itself, naming its replacement; other servers may still serve it.

On both paths `extra_body` may not set a parameter of the method (it would skip those checks
and differ from what results record), and extra header names and values must be sendable.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._capabilities import (
    DEFAULT_MODELS,
    ENDPOINT_PARAMS,
    ENUMS,
    MAX_DATA_URL_CHARS,
    Endpoint,
    check_retired,
    get_capabilities,
    retirement_hint,
)
from ._errors import EXTRA_BODY_PARAMETER, APIStatusError, InvalidRequestError
from ._headers import header_problem
from ._imaging import (
    ImageInput,
    InputImage,
    check_edit_inputs,
    check_variation_input,
    load_input,
)
from ._types import NOT_GIVEN, NotGiven
from ._validation import Problems, validate_params

__all__ = [
    "PATHS",
    "Call",
    "form_fields",
    "hint_retired",
    "multipart_files",
    "prepare_call",
]

logger = logging.getLogger("imagegen.client")
# A library prints nothing unless the application configures logging (the CLI does): without
# this, Python's last-resort handler would write retry warnings to the user's stderr.
logger.addHandler(logging.NullHandler())

PATHS: dict[Endpoint, str] = {
    "generations": "/images/generations",
    "edits": "/images/edits",
    "variations": "/images/variations",
}


@dataclass
class Call:
    """One checked request: wire parameters (only those set), input images, extras."""

    endpoint: Endpoint
    params: dict[str, Any]
    images: list[InputImage] = field(default_factory=list)
    mask: InputImage | None = None
    markup: InputImage | None = None
    extra_headers: dict[str, str | None] = field(default_factory=dict)
    extra_query: dict[str, str] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    timeout: Any = NOT_GIVEN

    @property
    def model(self) -> str | None:
        model = self.params.get("model")
        return model if isinstance(model, str) else None

    @property
    def prompt(self) -> str | None:
        prompt = self.params.get("prompt")
        return prompt if isinstance(prompt, str) else None

    @property
    def stream(self) -> bool:
        return self.params.get("stream") is True

    @property
    def json_edit(self) -> bool:
        """An edit sent as JSON, images as data URLs: OpenAI's multipart edit has no
        `moderation`, its JSON edit does."""
        return self.endpoint == "edits" and "moderation" in self.params

    def body(self) -> dict[str, Any]:
        """The JSON body (generations) or the non-file multipart fields (edits, variations)."""
        return {**self.params, **self.extra_body}

    def json_body(self, *, inline_images: bool = False) -> dict[str, Any]:
        """The JSON body of a generation, or of an edit with its images as data URLs (any edit
        with `inline_images`: a Batch API request has no multipart form)."""
        body = self.body()
        if self.json_edit or (inline_images and self.endpoint == "edits"):
            body["images"] = [{"image_url": _data_url(image)} for image in self.images]
            for name, image in (("mask", self.mask), ("markup", self.markup)):
                if image is not None:
                    body[name] = {"image_url": _data_url(image)}
        return body


def _data_url(image: InputImage) -> str:
    return f"data:{image.content_type};base64," + base64.b64encode(image.data).decode("ascii")


_METHODS: dict[Endpoint, str] = {
    "generations": "generate",
    "edits": "edit",
    "variations": "create_variation",
}


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
            method = _METHODS[endpoint]
            raise InvalidRequestError(
                f"{key} is a parameter of {method}() itself: pass {key}=... instead of putting "
                f"it in extra_body (--extra), which is for options {method}() does not have, "
                "such as seed.",
                param=key,
                code=EXTRA_BODY_PARAMETER,
            )


def _drops_url(model: str) -> bool:
    # GPT image models always answer base64 (PSOpenAI matches `*gpt-image-*` the same way,
    # which also covers newer names the table does not know yet).
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


def prepare_call(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    *,
    image: ImageInput | Sequence[ImageInput] | None = None,
    mask: ImageInput | None = None,
    markup: ImageInput | None = None,
    extra_headers: Mapping[str, str | None] | None = None,
    extra_query: Mapping[str, str] | None = None,
    extra_body: Mapping[str, Any] | None = None,
    timeout: Any = NOT_GIVEN,
    in_process: bool = False,
    default_model: str | None = None,
    to_openai: bool = False,
) -> Call:
    """Build one call and, for HTTP, check it; raises one `InvalidRequestError` naming every
    problem found (its `param` the first one's).

    `params` holds the method's arguments; `NOT_GIVEN` and `None` mean "not set". With
    `in_process`, an unset model stays unset (the engine's own model applies), the checks are
    left to `ImageService.prepare`, and results are always base64 (there is no server to host a
    URL). `default_model` replaces the endpoint's default model: an Azure deployment decides
    the model, so its name (checked by that model's rules when it is one of OpenAI's, by the
    generic ones otherwise) is a better guess than gpt-image-2, whose rules would refuse a
    dall-e-3 deployment's `style`. `to_openai` (the call goes to OpenAI's own API) refuses a
    model OpenAI has retired.
    """
    wire = {k: v for k, v in params.items() if v is not None and not isinstance(v, NotGiven)}
    problems = Problems()

    partial = wire.get("partial_images")
    wants_partials = isinstance(partial, int) and not isinstance(partial, bool) and partial > 0
    stream = wire.pop("stream", False)
    if stream is True or wants_partials:
        wire["stream"] = True  # partial images only come in a stream (as PSOpenAI sets it)
    elif stream is not False:
        problems.add(f"Invalid stream {stream!r}: must be True or False.", "stream")

    model = wire.get("model")
    if model is None and not in_process:
        model = wire["model"] = default_model or DEFAULT_MODELS[endpoint]
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidRequestError(f"Invalid model {model!r}: must be a model name.", param="model")
    if to_openai and not in_process:
        check_retired(model, endpoint)  # nothing else matters: OpenAI would refuse the model

    dropped_url = False
    if "response_format" in wire and (in_process or _drops_url(str(model))):
        asked = wire.pop("response_format")
        if asked not in ENUMS["response_format"]:  # a typo is an error even where it is dropped
            problems.add(
                f"Invalid response_format {asked!r}: use one of url, b64_json.", "response_format"
            )
        dropped_url = asked == "url"

    call = Call(
        endpoint=endpoint,
        params=wire,
        extra_headers=_mapping(extra_headers, "extra_headers"),
        extra_query=_mapping(extra_query, "extra_query"),
        extra_body=_mapping(extra_body, "extra_body"),
        timeout=timeout,
    )
    with problems.collect():
        _check_extra_body(endpoint, call.extra_body)
    with problems.collect():
        _check_extra_headers(call.extra_headers)
    caps = None if in_process else get_capabilities(model)
    if caps is not None:
        given = [name for name, value in (("mask", mask), ("markup", markup)) if value is not None]
        with problems.collect():
            validate_params(endpoint, wire, caps, files=given)

    if endpoint == "edits":
        _load_edit_inputs(call, image, mask, markup, problems)
        if caps is not None and not problems.has("image"):
            with problems.collect():
                call.mask = check_edit_inputs(call.images, call.mask, caps, call.markup)
        if call.json_edit and not in_process:
            with problems.collect():
                _check_data_urls(call)
    elif endpoint == "variations":
        if image is None or isinstance(image, (list, tuple)):
            problems.add("A variation needs exactly one image.", "image")
        else:
            with problems.collect():
                call.images = [load_input(image, param="image")]  # type: ignore[arg-type]
                if caps is not None:
                    check_variation_input(call.images[0], caps)
    problems.raise_any()
    if dropped_url:  # said only of a request that passed the checks, not before its error
        target = "an in-process engine" if in_process else f"model {model}"
        logger.warning(
            "response_format=url is not supported by %s; returning base64 (b64_json) instead.",
            target,
        )
    return call


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


def form_fields(body: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Multipart text fields as OpenAI's SDK writes them: `true`/`false`, numbers via `str`,
    objects as one field per member, `svg[reasoning][effort]`; `None` leaves a field out."""
    fields: dict[str, str] = {}
    for name, value in body.items():
        key = f"{prefix}[{name}]" if prefix else name
        if value is None:
            continue
        if isinstance(value, Mapping):
            fields.update(form_fields(value, key))
        elif isinstance(value, bool):
            fields[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            fields[key] = str(value)
        else:
            fields[key] = json.dumps(value)
    return fields


def multipart_files(call: Call) -> list[tuple[str, tuple[str, bytes, str]]]:
    """File parts: `image` for one image, repeated `image[]` for several, then `markup` and
    `mask` (the SDK's order)."""
    name = "image" if len(call.images) == 1 else "image[]"
    files = [(name, image.multipart()) for image in call.images]
    for part, image in (("markup", call.markup), ("mask", call.mask)):
        if image is not None:
            files.append((part, image.multipart()))
    return files


@contextlib.contextmanager
def hint_retired(model: str | None) -> Iterator[None]:
    """A server's `model_not_found` for a model OpenAI has retired gets the date and the
    replacement added to its message (a gateway that forwards to OpenAI answers so)."""
    try:
        yield
    except APIStatusError as exc:
        hint = retirement_hint(model)
        if hint and exc.code == "model_not_found" and hint not in exc.message:
            exc.message = f"{exc.message} {hint}"
            exc.args = (exc.message,)
        raise
