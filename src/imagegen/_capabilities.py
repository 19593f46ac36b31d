"""What each model accepts, and the checks that follow from it.

One table, shared by the client (checks before sending), the command line (help texts) and the
server (checks before an engine runs). Facts come from OpenAI's API reference as of late 2026
(`shared/reference/openai-images-api.md` §3-§6). A model that is not in the table (a compatible
server's own names, a newer OpenAI model) gets only the generic checks: the wire-level enums and
ranges that hold for every model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ._errors import InvalidRequestError

__all__ = [
    "DEFAULT_MODELS",
    "ENDPOINT_PARAMS",
    "FLEXIBLE_MAX_PIXELS",
    "GENERIC",
    "MB",
    "MODELS",
    "Endpoint",
    "ModelCapabilities",
    "get_capabilities",
    "parse_size",
    "validate_params",
]

Endpoint = Literal["generations", "edits", "variations"]

MB = 1024 * 1024
# OpenAI's cap on one JSON edit `image_url` (a 15 MB image as base64).
MAX_DATA_URL_CHARS = 20_971_520

# gpt-image-2's rules for any WxH (reference section 6); its largest output, 3840x2160, is
# also the default cap of what a local engine is asked for.
FLEXIBLE_MULTIPLE = 16
FLEXIBLE_MAX_EDGE = 3840
FLEXIBLE_MAX_RATIO = 3
FLEXIBLE_MIN_PIXELS = 655_360
FLEXIBLE_MAX_PIXELS = 8_294_400

# The model a request that names none is sent with (OpenAI's defaults).
DEFAULT_MODELS: dict[Endpoint, str] = {
    "generations": "gpt-image-2",
    "edits": "gpt-image-2",
    "variations": "dall-e-2",
}

# Parameters each endpoint knows at all, whatever the model (OpenAI's request schemas).
ENDPOINT_PARAMS: dict[Endpoint, frozenset[str]] = {
    "generations": frozenset(
        "prompt model n quality response_format output_format output_compression stream "
        "partial_images size moderation background style user".split()
    ),
    "edits": frozenset(
        "image prompt mask background model n size response_format output_format "
        "output_compression user input_fidelity stream partial_images quality moderation".split()
    ),
    "variations": frozenset("image model n response_format size user".split()),
}

# Wire-level enums that hold for every model (OpenAI's schemas); quality is deliberately open
# for unknown models, since newer models add values (`xhigh`, `max`) before SDKs know them.
ENUMS: dict[str, tuple[str, ...]] = {
    "response_format": ("url", "b64_json"),
    "output_format": ("png", "jpeg", "webp"),
    "background": ("transparent", "opaque", "auto"),
    "moderation": ("low", "auto"),
    "style": ("vivid", "natural"),
    "input_fidelity": ("high", "low"),
}

_GPT_ONLY = frozenset(
    "background moderation output_format output_compression stream partial_images".split()
)
_SIZE_RE = re.compile(r"^(\d{1,6})x(\d{1,6})$")


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
    flexible_sizes: bool = False  # gpt-image-2's WxH rules
    qualities: tuple[str, ...] | None = None
    styles: tuple[str, ...] | None = None
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


_DALLE2_SIZES = ("256x256", "512x512", "1024x1024")
_GPT_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")

GENERIC = ModelCapabilities(name="")

_DALL_E_2 = ModelCapabilities(
    name="dall-e-2",
    family="dall-e",
    max_prompt=1000,
    sizes={"generations": _DALLE2_SIZES, "edits": _DALLE2_SIZES, "variations": _DALLE2_SIZES},
    qualities=("standard", "auto"),
    unsupported=_GPT_ONLY | {"style", "input_fidelity"},
    max_images=1,
    max_image_bytes=4 * MB,
    max_mask_bytes=4 * MB,
    input_formats=("png",),
    square_inputs=True,
)
_DALL_E_3 = ModelCapabilities(
    name="dall-e-3",
    family="dall-e",
    endpoints=frozenset({"generations"}),
    max_prompt=4000,
    max_n=1,
    sizes={"generations": ("1024x1024", "1792x1024", "1024x1792")},
    qualities=("standard", "hd", "auto"),
    styles=("vivid", "natural"),
    unsupported=_GPT_ONLY | {"input_fidelity"},
    revised_prompt=True,
)
_GPT_IMAGE_1 = ModelCapabilities(
    name="gpt-image-1",
    family="gpt-image",
    endpoints=frozenset({"generations", "edits"}),
    sizes={"generations": _GPT_SIZES, "edits": _GPT_SIZES},
    qualities=("low", "medium", "high", "auto"),
    unsupported=frozenset({"style", "response_format"}),
    url_results=False,
)
_GPT_IMAGE_2 = replace(
    _GPT_IMAGE_1,
    name="gpt-image-2",
    sizes={},
    flexible_sizes=True,
    # "omit this parameter; the model processes every image input at high fidelity"
    unsupported=_GPT_IMAGE_1.unsupported | {"input_fidelity"},
)

MODELS: dict[str, ModelCapabilities] = {
    caps.name: caps
    for caps in (
        _DALL_E_2,
        _DALL_E_3,
        _GPT_IMAGE_1,
        replace(
            _GPT_IMAGE_1,
            name="gpt-image-1-mini",
            unsupported=_GPT_IMAGE_1.unsupported | {"input_fidelity"},
        ),
        replace(_GPT_IMAGE_1, name="gpt-image-1.5"),
        replace(_GPT_IMAGE_1, name="chatgpt-image-latest"),
        _GPT_IMAGE_2,
        replace(_GPT_IMAGE_2, name="gpt-image-2-2026-04-21"),
    )
}


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
    return replace(GENERIC, name=model)


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


def _check_flexible_size(size: str, width: int, height: int) -> None:
    def fail(rule: str) -> None:
        raise InvalidRequestError(f"Invalid size {size!r}: {rule}", param="size")

    if width % FLEXIBLE_MULTIPLE or height % FLEXIBLE_MULTIPLE:
        fail(f"width and height must both be multiples of {FLEXIBLE_MULTIPLE}.")
    if max(width, height) > FLEXIBLE_MAX_EDGE:
        fail(f"the longest edge may be at most {FLEXIBLE_MAX_EDGE} pixels.")
    if max(width, height) > FLEXIBLE_MAX_RATIO * min(width, height):
        fail(f"the ratio of the long edge to the short edge may be at most {FLEXIBLE_MAX_RATIO}:1.")
    pixels = width * height
    if not FLEXIBLE_MIN_PIXELS <= pixels <= FLEXIBLE_MAX_PIXELS:
        fail(
            f"total pixels must be between {FLEXIBLE_MIN_PIXELS:,} and "
            f"{FLEXIBLE_MAX_PIXELS:,} (this is {pixels:,})."
        )


def _check_enum(param: str, value: Any, allowed: tuple[str, ...], what: str = "") -> None:
    if value not in allowed:
        choices = ", ".join(allowed)
        raise InvalidRequestError(
            f"Invalid {param} {value!r}{what}: use one of {choices}.", param=param
        )


def _check_int(
    param: str, value: Any, low: int, high: int, what: str = "", *, rule: str = ""
) -> None:
    """`value` must be a whole number from `low` to `high`; `rule` words that for the user
    when a plain range would read oddly ("from 1 to 1")."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        rule = rule or f"must be a whole number from {low} to {high}"
        raise InvalidRequestError(f"Invalid {param} {value!r}{what}: {rule}.", param=param)


def validate_params(endpoint: Endpoint, params: Mapping[str, Any], caps: ModelCapabilities) -> None:
    """Check the set, non-file parameters of one request against `caps`.

    `params` holds only what the caller set, in wire names. Raises `InvalidRequestError` naming
    the first parameter that breaks a rule. Input images are checked by `_imaging`.
    """
    known = caps.name and caps.family != "generic"
    model_label = f" for {caps.name}" if known else ""

    # Generic models are checked too: an engine may declare a model that lacks an endpoint.
    if caps.name and endpoint not in caps.endpoints:
        supported = ", ".join(sorted(caps.endpoints))
        raise InvalidRequestError(
            f"Model {caps.name} does not support the {endpoint} endpoint (it supports: "
            f"{supported}).",
            param="model",
        )
    for name, value in params.items():
        if value is None or name not in ENDPOINT_PARAMS[endpoint]:
            continue
        if known and name in caps.unsupported:
            hint = ""
            if name in _GPT_ONLY:
                hint = " It is a GPT image model parameter."
            elif name == "response_format":
                hint = " GPT image models always return b64_json."
            elif name == "style":
                hint = " Only dall-e-3 has styles."
            raise InvalidRequestError(
                f"Parameter {name} is not supported by {caps.name}.{hint}", param=name
            )
    # Fields outside the endpoint's schema (engine options from `extra_body`) are the engine's.
    params = {name: value for name, value in params.items() if name in ENDPOINT_PARAMS[endpoint]}

    prompt = params.get("prompt")
    if endpoint != "variations":
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError("A prompt is required and may not be empty.", param="prompt")
        if caps.max_prompt is not None and len(prompt) > caps.max_prompt:
            raise InvalidRequestError(
                f"The prompt is {len(prompt):,} characters; {caps.name or 'this model'} allows at "
                f"most {caps.max_prompt:,}.",
                param="prompt",
            )

    n = params.get("n")
    if n is not None:
        one = caps.max_n == 1
        rule = f"{caps.name or 'this model'} makes one image per request, so n must be 1"
        _check_int("n", n, 1, caps.max_n, "" if one else model_label, rule=rule if one else "")

    size = params.get("size")
    if size is not None:
        if not isinstance(size, str):
            raise InvalidRequestError(f"Invalid size {size!r}: must be a string.", param="size")
        allowed_sizes = caps.sizes.get(endpoint)
        if allowed_sizes is not None and size not in allowed_sizes:
            _check_enum("size", size, allowed_sizes, model_label)
        parsed = parse_size(size)
        if parsed and caps.flexible_sizes:
            _check_flexible_size(size, *parsed)

    quality = params.get("quality")
    if quality is not None:
        if caps.qualities is not None:
            allowed_q = caps.qualities
            if endpoint == "edits":
                allowed_q = tuple(q for q in allowed_q if q != "hd")
            _check_enum("quality", quality, allowed_q, model_label)
        elif not isinstance(quality, str) or not quality:
            raise InvalidRequestError(f"Invalid quality {quality!r}.", param="quality")

    for name, allowed in ENUMS.items():
        value = params.get(name)
        if value is not None and name in ENDPOINT_PARAMS[endpoint]:
            choices = caps.styles if name == "style" and caps.styles else allowed
            _check_enum(name, value, choices, model_label)

    compression = params.get("output_compression")
    if compression is not None:
        _check_int("output_compression", compression, 0, 100)
        if params.get("output_format") not in ("jpeg", "webp"):
            raise InvalidRequestError(
                "output_compression only applies to jpeg and webp output; set output_format to "
                "jpeg or webp, or leave output_compression out.",
                param="output_compression",
            )

    if params.get("background") == "transparent" and params.get("output_format") not in (
        None,
        "png",
        "webp",
    ):
        raise InvalidRequestError(
            "A transparent background needs output_format png or webp (jpeg has no alpha).",
            param="background",
        )

    partial = params.get("partial_images")
    if partial is not None:
        _check_int("partial_images", partial, 0, 3)

    stream = params.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError(
            f"Invalid stream {stream!r}: must be true or false.", param="stream"
        )

    user = params.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequestError(f"Invalid user {user!r}: must be a string.", param="user")
