"""Wire models: requests hold only what was set, bodies parse as the official SDK sends them,
responses and stream events parse leniently."""

from __future__ import annotations

import base64
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


def _validated(cls: type[Any], params: dict[str, Any]) -> Any:
    """What `build` gave before its shortcut: strict validation, else the values as given."""
    from pydantic import ValidationError

    try:
        return cls.model_validate(params, strict=True)
    except ValidationError:
        return cls.model_construct(**params)


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "A fox", "n": 2, "size": "1024x1024", "stream": False},
        {"prompt": "A fox", "seed": 7, "steps": [1, 2], "nested": {"a": None}},
        {"prompt": "A fox", "n": "2", "stream": 1},  # wrong types: kept for validate_params
        {"prompt": "A fox", "n": True, "output_compression": 1.5},
        {"prompt": "A fox", "svg": {"model": "m", "reasoning": {"effort": "low"}}},
        {"prompt": "A fox", "svg": {"model": 3}},
        {"prompt": "A fox", "size": None, "user": None},
        {"n": 1},  # no prompt: refused later, by validate_params
    ],
)
def test_building_a_request_without_validating_it_changes_nothing(params: dict[str, Any]) -> None:
    # Values that already have their fields' types skip pydantic's validator; the request and
    # what it sends are the same as validation gives.
    built, validated = GenerateRequest.build(params), _validated(GenerateRequest, params)
    assert built == validated
    assert built.model_extra == validated.model_extra
    assert built.wire_params() == validated.model_dump(exclude_none=True, warnings=False)
    assert {k: type(v) for k, v in vars(built).items()} == {
        k: type(v) for k, v in vars(validated).items()
    }


def test_of_validates_only_values_that_need_it() -> None:
    usage = ImagesUsage(input_tokens=1)
    made = ImagesResponse.of(created=1, data=[ImageData.of(b64_json="eA==")], usage=usage)
    assert made == ImagesResponse(created=1, data=[ImageData(b64_json="eA==")], usage=usage)
    assert made.model_fields_set == {"created", "data", "usage"}
    # A value of another type is validated (converted, or refused) as the constructor does.
    converted = ImagesResponse.of(created=1, usage={"input_tokens": 2})
    assert isinstance(converted.usage, ImagesUsage) and converted.usage.input_tokens == 2
    with pytest.raises(ValueError, match="created"):
        ImagesResponse.of(created="soon")
    with pytest.raises(ValueError, match="created"):
        ImagesResponse.of(data=[])
