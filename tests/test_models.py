"""Wire models: requests hold only what was set, bodies parse as the official SDK sends them,
responses and stream events parse leniently."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from imagegen._errors import InvalidRequestError
from imagegen._models import (
    CompletedEvent,
    EditRequest,
    ErrorBody,
    GenerateRequest,
    ImageData,
    ImagesResponse,
    ImagesUsage,
    PartialImageEvent,
    SvgOptions,
    SvgReasoning,
    VariationRequest,
    parse_request,
    parse_stream_event,
    request_class,
)


def test_request_classes_per_endpoint() -> None:
    assert request_class("generations") is GenerateRequest
    assert request_class("edits") is EditRequest
    assert request_class("variations") is VariationRequest


def test_only_set_parameters_go_on_the_wire() -> None:
    request = GenerateRequest(prompt="A fox", model="gpt-image-2", n=2)
    assert request.wire_params() == {"prompt": "A fox", "model": "gpt-image-2", "n": 2}
    assert VariationRequest().wire_params() == {}


def test_extra_fields_are_kept_as_engine_options() -> None:
    request = parse_request(
        "generations", {"prompt": "A fox", "seed": 7, "num_inference_steps": "4"}
    )
    assert request.extra_params() == {"seed": 7, "num_inference_steps": "4"}
    assert request.wire_params()["seed"] == 7
    assert GenerateRequest(prompt="x").extra_params() == {}


def test_multipart_strings_are_read_as_the_sdk_sends_them() -> None:
    request = parse_request(
        "edits",
        {
            "prompt": "a window",
            "n": "3",
            "stream": "true",
            "partial_images": "2",
            "output_compression": "80",
        },
    )
    assert isinstance(request, EditRequest)
    assert (request.n, request.stream, request.partial_images, request.output_compression) == (
        3,
        True,
        2,
        80,
    )
    assert (
        parse_request("edits", {"prompt": "x", "stream": "false"}).wire_params()["stream"] is False
    )


@pytest.mark.parametrize(
    ("endpoint", "body", "param", "text"),
    [
        ("generations", {}, "prompt", "Missing required parameter: prompt."),
        ("edits", {"n": 1}, "prompt", "Missing required parameter"),
        (
            "generations",
            {"prompt": 5},
            "prompt",
            "Invalid type for 'prompt': expected a string, but got an integer instead.",
        ),
        ("generations", {"prompt": "x", "n": "three"}, "n", "'three' is not an integer."),
        ("generations", {"prompt": "x", "n": 2.5}, "n", "expected an integer, but got a decimal"),
        ("generations", {"prompt": "x", "size": ["1024x1024"]}, "size", "but got an array"),
        ("edits", {"prompt": "x", "stream": "maybe"}, "stream", "'maybe' is not a boolean."),
        ("variations", {"n": {"a": 1}}, "n", "expected an integer, but got an object instead."),
        ("generations", {"prompt": "x", "output_compression": "high"}, "output_compression", ""),
    ],
)
def test_type_errors_name_the_parameter(
    endpoint: Any, body: dict[str, Any], param: str, text: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request(endpoint, body)
    assert caught.value.param == param and text in caught.value.message


@pytest.mark.parametrize(
    ("body", "param", "expected", "got"),
    [
        ({"prompt": "x", "n": True}, "n", "an integer", "a boolean"),
        ({"prompt": "x", "n": "2"}, "n", "an integer", "a string"),
        ({"prompt": "x", "n": 2.0}, "n", "an integer", "a decimal number"),
        ({"prompt": "x", "stream": "true"}, "stream", "a boolean", "a string"),
        ({"prompt": "x", "stream": 1}, "stream", "a boolean", "an integer"),
        (
            {"prompt": "x", "output_compression": "80"},
            "output_compression",
            "an integer",
            "a string",
        ),
        ({"prompt": None}, "prompt", "a string", "null"),
    ],
)
def test_strict_parsing_refuses_json_values_of_the_wrong_type(
    body: dict[str, Any], param: str, expected: str, got: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request("generations", body, strict=True)
    error = caught.value
    assert (error.param, error.code) == (param, "invalid_type")
    assert error.message == (
        f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    )


def test_strict_parsing_takes_values_of_the_right_type() -> None:
    body = {"prompt": "x", "n": 2, "stream": False, "size": None, "seed": "7"}
    request = parse_request("generations", body, strict=True)
    assert request.wire_params() == {"prompt": "x", "n": 2, "stream": False, "seed": "7"}


def test_lax_parsing_stays_the_default() -> None:
    # Multipart fields are strings: the default must keep converting them.
    body = {"prompt": "x", "n": "2", "stream": "true"}
    assert parse_request("generations", body).wire_params() == {
        "prompt": "x",
        "n": 2,
        "stream": True,
    }


@pytest.mark.parametrize("body", [[], "prompt", None, 3])
def test_the_body_must_be_an_object(body: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_request("generations", body)
    assert caught.value.param is None and "JSON object" in caught.value.message


def test_a_full_openai_response_parses() -> None:
    body = {
        "created": 1713833628,
        "data": [{"b64_json": base64.b64encode(b"png bytes").decode(), "revised_prompt": None}],
        "background": "transparent",
        "output_format": "png",
        "size": "1024x1024",
        "quality": "high",
        "usage": {
            "total_tokens": 100,
            "input_tokens": 50,
            "output_tokens": 50,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
            "output_tokens_details": {"image_tokens": 50, "text_tokens": 0},
        },
    }
    response = ImagesResponse.model_validate(body)
    assert response.data[0].decoded() == b"png bytes"
    assert response.usage is not None and response.usage.input_tokens_details.image_tokens == 40
    assert response.usage.output_tokens_details is not None
    assert response.model_dump(exclude_none=True) == {
        **body,
        "data": [{"b64_json": body["data"][0]["b64_json"]}],  # type: ignore[index]
    }


def test_responses_parse_leniently() -> None:
    minimal = ImagesResponse.model_validate({"created": 1})
    assert minimal.data == [] and minimal.usage is None and minimal.size is None
    newer = ImagesResponse.model_validate(
        {"created": 1, "data": [{"url": "https://x/1.png", "new_field": 1}], "moderation": "x"}
    )
    assert newer.data[0].url == "https://x/1.png"
    assert newer.model_extra == {"moderation": "x"}
    usage = ImagesUsage.model_validate({"total_tokens": 3})
    assert usage.total_tokens == 3 and usage.input_tokens_details.text_tokens == 0


def test_a_url_image_has_no_bytes_to_decode() -> None:
    with pytest.raises(ValueError, match="URL"):
        ImageData(url="https://example.test/image.png").decoded()


@pytest.mark.parametrize(
    ("kind", "cls", "is_edit"),
    [
        ("image_generation.partial_image", PartialImageEvent, False),
        ("image_edit.partial_image", PartialImageEvent, True),
        ("image_generation.completed", CompletedEvent, False),
        ("image_edit.completed", CompletedEvent, True),
    ],
)
def test_stream_events(kind: str, cls: type, is_edit: bool) -> None:
    event = parse_stream_event(
        {
            "type": kind,
            "b64_json": "aGk=",
            "created_at": 5,
            "size": "1024x1024",
            "partial_image_index": 1,
            "usage": {"total_tokens": 9},
        }
    )
    assert isinstance(event, cls) and event.is_edit is is_edit
    assert event.b64_json == "aGk=" and event.size == "1024x1024"
    if isinstance(event, PartialImageEvent):
        assert event.partial_image_index == 1
    else:
        assert event.usage is not None and event.usage.total_tokens == 9


@pytest.mark.parametrize(
    "data", [{"type": "image_generation.progress", "b64_json": "x"}, {"type": 3}, [], "done", None]
)
def test_unknown_stream_events_are_skipped(data: Any) -> None:
    assert parse_stream_event(data) is None


def test_error_body_has_openais_shape() -> None:
    body = ErrorBody.model_validate(
        {"error": {"message": "Invalid size", "type": "invalid_request_error", "param": "size"}}
    )
    assert body.error.param == "size" and body.error.code is None
    assert body.model_dump() == {
        "error": {
            "message": "Invalid size",
            "type": "invalid_request_error",
            "param": "size",
            "code": None,
        }
    }


@pytest.mark.parametrize(
    ("params", "sent"),
    [
        ({"prompt": "A fox", "n": 2, "size": "1024x1024", "stream": False}, None),
        ({"prompt": "A fox", "seed": 7, "steps": [1, 2], "nested": {"a": None}}, None),
        ({"prompt": "A fox", "n": "2", "stream": 1}, None),  # wrong types: for validate_params
        ({"prompt": "A fox", "n": True, "output_compression": 1.5}, None),
        ({"prompt": "A fox", "svg": {"model": "m", "reasoning": {"effort": "low"}}}, None),
        ({"prompt": "A fox", "svg": {"model": 3}}, None),
        ({"prompt": "A fox", "size": None, "user": None}, {"prompt": "A fox"}),
        ({"n": 1}, None),  # no prompt: refused later, by validate_params
    ],
)
def test_a_request_holds_its_arguments_as_given(
    params: dict[str, Any], sent: dict[str, Any] | None
) -> None:
    # No value is converted or refused by `build`: validate_params names every mistake.
    built = GenerateRequest.build(params)
    assert built.wire_params() == (params if sent is None else sent)
    assert built.extra_params() == {
        k: v for k, v in params.items() if k in ("seed", "steps", "nested")
    }
    for name, value in params.items():
        held = getattr(built, name)
        if name == "svg":  # nested objects become their models, their values as given
            assert isinstance(held, SvgOptions) and held.model_dump(exclude_none=True) == value
            assert ("reasoning" in value) == isinstance(held.reasoning, SvgReasoning)
        else:
            assert held == value and type(held) is type(value)


def test_of_holds_values_and_builds_nested_models() -> None:
    usage = ImagesUsage(input_tokens=1)
    made = ImagesResponse.of(created=1, data=[ImageData.of(b64_json="eA==")], usage=usage)
    assert made == ImagesResponse(created=1, data=[ImageData(b64_json="eA==")], usage=usage)
    converted = ImagesResponse.of(created=1, usage={"input_tokens": 2})
    assert isinstance(converted.usage, ImagesUsage) and converted.usage.input_tokens == 2
    # Values from outside go through pydantic, which converts or refuses them.
    assert ImagesResponse.model_validate({"created": "5"}).created == 5
    with pytest.raises(ValueError, match="created"):
        ImagesResponse.model_validate({"created": "soon"})
    with pytest.raises(ValueError, match="created"):
        ImagesResponse.model_validate({"data": []})


def test_dumps_keep_extra_fields_and_drop_only_what_is_asked() -> None:
    response = ImagesResponse.model_validate(
        {"created": 1, "data": [{"b64_json": "eA==", "new": [1]}], "moderation": "low"}
    )
    assert response.model_dump(exclude_none=True) == {
        "created": 1,
        "data": [{"b64_json": "eA==", "new": [1]}],
        "moderation": "low",
    }
    assert json.loads(response.model_dump_json()) == response.model_dump()
    assert response.model_dump()["usage"] is None
    # An error body drops what OpenAI's error shape does not have.
    body = ErrorBody.model_validate({"error": {"message": "m", "x": 1}, "y": 2})
    assert body.model_dump() == {
        "error": {"message": "m", "type": "invalid_request_error", "param": None, "code": None}
    }
