"""The capability table and `validate_params`: every rule, and the parameter each error names."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from imagegen._capabilities import (
    ENDPOINT_PARAMS,
    GENERIC,
    MODELS,
    Endpoint,
    ModelCapabilities,
    get_capabilities,
    parse_size,
)
from imagegen._errors import InvalidRequestError
from imagegen._validation import validate_params

GPT_IMAGE = ["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2"]


def check(endpoint: Endpoint, model: str | None, **params: Any) -> None:
    if endpoint != "variations":
        params.setdefault("prompt", "A cute baby lion")
    if model is not None:
        params["model"] = model
    validate_params(endpoint, params, get_capabilities(model))


def refused(endpoint: Endpoint, model: str | None, **params: Any) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        check(endpoint, model, **params)
    return caught.value


# --- the table ---------------------------------------------------------------------------------


def test_the_table_knows_openais_models() -> None:
    assert {
        "dall-e-2",
        "dall-e-3",
        "gpt-image-1",
        "gpt-image-1-mini",
        "gpt-image-1.5",
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "chatgpt-image-latest",
    } <= set(MODELS)
    assert all(name == caps.name for name, caps in MODELS.items())
    assert MODELS["dall-e-2"].endpoints == {"generations", "edits", "variations"}
    assert MODELS["dall-e-3"].endpoints == {"generations"}
    assert all(MODELS[name].endpoints == {"generations", "edits"} for name in GPT_IMAGE)


def test_get_capabilities_prefers_the_engines_declaration_then_the_table() -> None:
    assert get_capabilities(None) is GENERIC
    assert get_capabilities("dall-e-3") is MODELS["dall-e-3"]
    unknown = get_capabilities("my-local-model")
    assert unknown.name == "my-local-model" and unknown.family == "generic"
    declared = ModelCapabilities(name="dall-e-3", max_n=4)
    assert get_capabilities("dall-e-3", {"dall-e-3": declared}) is declared


def test_default_sizes_follow_openai() -> None:
    assert MODELS["gpt-image-2"].default_size("edits") == "auto"
    assert MODELS["dall-e-2"].default_size("generations") == "1024x1024"
    assert MODELS["dall-e-3"].default_size("generations") == "1024x1024"
    assert GENERIC.default_size("generations") == "auto"
    assert GENERIC.default_size("edits") == "1024x1024"
    own = ModelCapabilities(name="local", default_sizes={"edits": "auto"})
    assert own.default_size("edits") == "auto" and own.default_size("variations") == "1024x1024"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("1024x1024", (1024, 1024)), ("1x1", (1, 1)), ("auto", None), ("3840x2160", (3840, 2160))],
)
def test_parse_size(text: str, parsed: tuple[int, int] | None) -> None:
    assert parse_size(text) == parsed


@pytest.mark.parametrize(
    "text", ["", "1024", "0x512", "512x0", "1024X1024", "-1x5", "1e3x10", " 1x1"]
)
def test_parse_size_refuses_anything_else(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_size(text)
    assert caught.value.param == "size" and "WIDTHxHEIGHT" in caught.value.message


# --- which parameters apply to which model -----------------------------------------------------


@pytest.mark.parametrize(
    ("model", "endpoint"),
    [("dall-e-3", "edits"), ("dall-e-3", "variations")]
    + [(name, "variations") for name in GPT_IMAGE],
)
def test_endpoints_a_model_lacks(model: str, endpoint: Endpoint) -> None:
    error = refused(endpoint, model)
    assert error.param == "model" and "does not support" in error.message


def test_an_engine_model_without_an_endpoint_is_refused_there() -> None:
    caps = ModelCapabilities(name="upscaler", endpoints=frozenset({"variations"}))
    with pytest.raises(InvalidRequestError) as caught:
        validate_params("generations", {"prompt": "x"}, caps)
    assert caught.value.param == "model"


@pytest.mark.parametrize(
    ("model", "param", "value"),
    [
        ("dall-e-2", "background", "transparent"),
        ("dall-e-2", "moderation", "low"),
        ("dall-e-2", "output_format", "png"),
        ("dall-e-2", "output_compression", 50),
        ("dall-e-2", "stream", True),
        ("dall-e-2", "partial_images", 1),
        ("dall-e-2", "style", "vivid"),
        ("dall-e-3", "background", "opaque"),
        ("dall-e-3", "stream", False),
        ("gpt-image-1", "style", "natural"),
        ("gpt-image-1", "response_format", "url"),
        ("gpt-image-2", "response_format", "b64_json"),
    ],
)
def test_parameters_a_model_does_not_take(model: str, param: str, value: Any) -> None:
    error = refused("generations", model, **{param: value})
    assert error.param == param and f"not supported by {model}" in error.message


@pytest.mark.parametrize("model", ["gpt-image-1-mini", "gpt-image-2", "dall-e-2"])
def test_input_fidelity_only_where_supported(model: str) -> None:
    assert refused("edits", model, input_fidelity="high").param == "input_fidelity"


def test_input_fidelity_allowed_for_gpt_image_1() -> None:
    check("edits", "gpt-image-1", input_fidelity="high")
    check("edits", "gpt-image-1.5", input_fidelity="low")
    assert refused("edits", "gpt-image-1", input_fidelity="max").param == "input_fidelity"


def test_parameters_outside_the_endpoint_are_left_to_the_engine() -> None:
    # style on an edit, seed anywhere: not OpenAI's edit schema, so not judged here.
    check("edits", "gpt-image-1", style="anything", seed=3)
    check("variations", "dall-e-2", prompt="ignored", quality="whatever")


def test_none_values_count_as_not_set() -> None:
    check("generations", "dall-e-2", background=None, style=None, n=None, size=None)


# --- prompt, n ---------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt", [None, "", "   ", 5])
def test_prompt_is_required_for_generations_and_edits(prompt: Any) -> None:
    for endpoint in ("generations", "edits"):
        error = refused(endpoint, "gpt-image-1", prompt=prompt)
        assert error.param == "prompt"


def test_variations_need_no_prompt() -> None:
    check("variations", "dall-e-2")


@pytest.mark.parametrize(
    ("model", "limit"),
    [("dall-e-2", 1000), ("dall-e-3", 4000), ("gpt-image-1", 32000), ("unknown-model", 32000)],
)
def test_prompt_length_limits(model: str, limit: int) -> None:
    check("generations", model, prompt="x" * limit)
    error = refused("generations", model, prompt="x" * (limit + 1))
    assert error.param == "prompt" and f"{limit:,}" in error.message


@pytest.mark.parametrize("n", [1, 10])
def test_n_range(n: int) -> None:
    check("generations", "gpt-image-1", n=n)
    check("variations", "dall-e-2", n=n)


@pytest.mark.parametrize("n", [0, 11, -1, 2.0, "2", True])
def test_n_out_of_range_or_not_a_whole_number(n: Any) -> None:
    error = refused("generations", "gpt-image-1", n=n)
    assert error.param == "n" and "1 to 10" in error.message


def test_dall_e_3_makes_one_image_at_a_time() -> None:
    check("generations", "dall-e-3", n=1)
    error = refused("generations", "dall-e-3", n=2)
    assert error.param == "n"
    assert error.message == "Invalid n 2: dall-e-3 makes one image per request, so n must be 1."


def test_a_declared_one_image_model_is_worded_the_same() -> None:
    """The wording follows `max_n` in the table, not dall-e-3's name."""
    single = ModelCapabilities(name="local-one", max_n=1)
    with pytest.raises(InvalidRequestError, match="local-one makes one image per request"):
        validate_params("generations", {"prompt": "a", "n": 3}, single)
    with pytest.raises(InvalidRequestError, match="this model makes one image per request"):
        validate_params("generations", {"prompt": "a", "n": 0}, replace(single, name=""))


# --- sizes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "endpoint", "good", "bad"),
    [
        ("dall-e-2", "generations", ["256x256", "512x512", "1024x1024"], ["auto", "1536x1024"]),
        ("dall-e-2", "variations", ["256x256"], ["1024x1536", "auto"]),
        ("dall-e-3", "generations", ["1024x1024", "1792x1024", "1024x1792"], ["512x512", "auto"]),
        (
            "gpt-image-1",
            "generations",
            ["auto", "1024x1024", "1536x1024", "1024x1536"],
            ["2048x2048"],
        ),
        ("gpt-image-1", "edits", ["auto", "1024x1536"], ["256x256"]),
    ],
)
def test_fixed_size_lists(model: str, endpoint: Endpoint, good: list[str], bad: list[str]) -> None:
    for size in good:
        check(endpoint, model, size=size)
    for size in bad:
        error = refused(endpoint, model, size=size)
        assert error.param == "size" and f"for {model}" in error.message


def test_size_must_be_a_string() -> None:
    assert refused("generations", "unknown-model", size=1024).param == "size"


@pytest.mark.parametrize(
    "size",
    [
        "auto",
        "1024x640",  # exactly the fewest pixels: 655,360
        "3840x2160",  # exactly the most: 8,294,400, and the longest edge
        "2160x3840",
        "3072x1024",  # exactly 3:1
        "1024x3072",
        "2048x2048",
        "1040x1024",
    ],
)
def test_gpt_image_2_sizes_at_the_boundaries(size: str) -> None:
    check("generations", "gpt-image-2", size=size)
    check("edits", "gpt-image-2-2026-04-21", size=size)


@pytest.mark.parametrize(
    ("size", "rule"),
    [
        ("1000x1000", "multiples of 16"),
        ("1024x1032", "multiples of 16"),
        ("3856x1296", "at most 3840"),
        ("1296x3856", "at most 3840"),
        ("3088x1024", "3:1"),
        ("1024x3088", "3:1"),
        ("1008x640", "between 655,360 and 8,294,400"),  # 645,120: one step too few
        ("3840x2176", "between 655,360 and 8,294,400"),  # one step too many
        ("512x512", "between 655,360 and 8,294,400"),
        ("10x10", "multiples of 16"),
    ],
)
def test_gpt_image_2_size_rules(size: str, rule: str) -> None:
    error = refused("generations", "gpt-image-2", size=size)
    assert error.param == "size" and rule in error.message and size in error.message


def test_unknown_models_take_any_size() -> None:
    for size in ("1x1", "1000x1000", "99999x3", "auto"):
        check("generations", "my-local-model", size=size)
    assert refused("generations", "my-local-model", size="big").param == "size"


# --- quality, style and the other enums --------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "endpoint", "good", "bad"),
    [
        ("dall-e-2", "generations", ["standard", "auto"], ["hd", "high"]),
        ("dall-e-3", "generations", ["standard", "hd", "auto"], ["low"]),
        ("gpt-image-1", "generations", ["low", "medium", "high", "auto"], ["hd", "standard"]),
        ("gpt-image-2", "edits", ["low", "high"], ["hd"]),
        ("dall-e-2", "edits", ["standard"], ["hd"]),
    ],
)
def test_quality_per_model(model: str, endpoint: Endpoint, good: list[str], bad: list[str]) -> None:
    for quality in good:
        check(endpoint, model, quality=quality)
    for quality in bad:
        assert refused(endpoint, model, quality=quality).param == "quality"


def test_unknown_models_take_new_quality_names() -> None:
    check("generations", "gpt-image-3", quality="xhigh")
    assert refused("generations", "gpt-image-3", quality="").param == "quality"
    assert refused("generations", "gpt-image-3", quality=3).param == "quality"


def test_style_only_vivid_or_natural_on_dall_e_3() -> None:
    check("generations", "dall-e-3", style="natural")
    error = refused("generations", "dall-e-3", style="cinematic")
    assert error.param == "style" and "vivid, natural" in error.message


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("response_format", "base64"),
        ("output_format", "tiff"),
        ("background", "white"),
        ("moderation", "high"),
        ("style", "bold"),
    ],
)
def test_generic_enums_hold_for_every_model(param: str, value: str) -> None:
    error = refused("generations", "my-local-model", **{param: value})
    assert error.param == param and "use one of" in error.message


def test_input_fidelity_enum_on_edits() -> None:
    assert refused("edits", "my-local-model", input_fidelity="max").param == "input_fidelity"


# --- background, output_compression, streaming, user -------------------------------------------


@pytest.mark.parametrize("output_format", [None, "png", "webp"])
def test_transparent_background_with_png_or_webp(output_format: str | None) -> None:
    check("generations", "gpt-image-1", background="transparent", output_format=output_format)
    check("edits", "my-local-model", background="transparent", output_format=output_format)


def test_transparent_background_refuses_jpeg() -> None:
    for model in ("gpt-image-1", "my-local-model"):
        error = refused("generations", model, background="transparent", output_format="jpeg")
        assert error.param == "background" and "png or webp" in error.message
    check("generations", "gpt-image-1", background="opaque", output_format="jpeg")


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
@pytest.mark.parametrize("compression", [0, 50, 100])
def test_output_compression_with_jpeg_or_webp(output_format: str, compression: int) -> None:
    check(
        "generations",
        "gpt-image-1",
        output_format=output_format,
        output_compression=compression,
    )


@pytest.mark.parametrize("output_format", [None, "png"])
def test_output_compression_refused_without_jpeg_or_webp(output_format: str | None) -> None:
    for model in ("gpt-image-1", "my-local-model"):
        error = refused("generations", model, output_format=output_format, output_compression=80)
        assert error.param == "output_compression" and "jpeg or webp" in error.message


@pytest.mark.parametrize("compression", [-1, 101, 50.5, "50", False])
def test_output_compression_range(compression: Any) -> None:
    error = refused(
        "generations", "gpt-image-1", output_format="jpeg", output_compression=compression
    )
    assert error.param == "output_compression" and "0 to 100" in error.message


def test_partial_images_and_stream() -> None:
    for partial in (0, 3):
        check("generations", "gpt-image-1", stream=True, partial_images=partial)
    for partial in (-1, 4, "2"):
        error = refused("edits", "gpt-image-1", stream=True, partial_images=partial)
        assert error.param == "partial_images"
    assert refused("generations", "gpt-image-1", stream="yes").param == "stream"


def test_user_must_be_text() -> None:
    check("generations", "dall-e-2", user="user-1234")
    assert refused("variations", "dall-e-2", user=1234).param == "user"


def test_every_endpoint_param_is_known_to_the_request_models() -> None:
    from imagegen._models import request_class

    for endpoint, names in ENDPOINT_PARAMS.items():
        fields = set(request_class(endpoint).field_types()) | {"image", "mask", "markup"}
        assert names <= fields, names - fields


def test_limits_written_once_and_shared() -> None:
    """gpt-image-2's ceiling, OpenAI's upload limits and the refusal codes each live in one
    place; the server's defaults and the stream parser read them from there."""
    from imagegen import _capabilities, _errors, _streaming
    from imagegen._service import DEFAULT_MAX_OUTPUT_PIXELS
    from imagegen.server import _limits, _settings

    largest = _capabilities.FLEXIBLE_MAX_PIXELS
    assert DEFAULT_MAX_OUTPUT_PIXELS == largest == 3840 * 2160
    validate_params("generations", {"prompt": "x", "size": "3840x2160"}, MODELS["gpt-image-2"])
    with pytest.raises(InvalidRequestError, match="8,294,400"):
        validate_params("generations", {"prompt": "x", "size": "3840x2176"}, MODELS["gpt-image-2"])
    assert _limits.MB is _settings.MB is _capabilities.MB
    fields = _settings.ServerSettings.model_fields
    assert fields["max_image_bytes"].default == _capabilities.GENERIC.max_image_bytes
    assert fields["max_images"].default == _capabilities.GENERIC.max_images
    for code in _errors.CONTENT_POLICY_CODES:
        refusal = _streaming.embedded_error({"error": {"code": code}}, _streaming.StreamContext())
        assert isinstance(refusal, _errors.ContentPolicyError)
