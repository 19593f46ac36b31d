"""The rules of today's parameters (complexity, GIF, SVG, markup, safety_identifier, the 2.5 and
2.6 models), and every problem of a request reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from imagegen._capabilities import GIF, Endpoint, get_capabilities
from imagegen._errors import InvalidRequestError, Problem
from imagegen._models import parse_request
from imagegen._validation import Problems, validate_params


def check(
    endpoint: Endpoint, model: str | None, files: tuple[str, ...] = (), **params: Any
) -> None:
    params.setdefault("prompt", "A cute baby lion")
    if model is not None:
        params["model"] = model
    validate_params(endpoint, params, get_capabilities(model), files=files)


def refused(
    endpoint: Endpoint, model: str | None, files: tuple[str, ...] = (), **params: Any
) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as caught:
        check(endpoint, model, files, **params)
    return caught.value


# --- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
    ],
)
def test_the_2_5_and_2_6_models(model: str) -> None:
    for quality in ("xhigh", "max", "low", "auto"):
        check("generations", model, quality=quality)
    for size in ("3840x2160", "2160x3840", "1536x864", "auto"):
        check("edits", model, size=size)
    for background in ("transparent", "opaque"):
        check("generations", model, background=background, output_format="webp")
    check("edits", model, ("markup",))
    assert refused("generations", model, size="3856x2160").param == "size"  # longest edge
    assert refused("generations", model, size="3840x1200").param == "size"  # ratio over 3:1
    assert refused("generations", model, size="1000x1000").param == "size"  # not /16
    assert refused("generations", model, quality="hd").param == "quality"


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1.5", "chatgpt-image-latest"])
def test_older_models_take_neither_xhigh_nor_markup(model: str) -> None:
    error = refused("generations", model, quality="xhigh")
    assert error.param == "quality" and "low, medium, high, auto" in error.message
    error = refused("edits", model, ("markup",))
    assert error.param == "markup" and f"not supported by {model}" in error.message


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1.5"])
def test_a_gpt_image_model_refusing_markup_is_not_told_it_needs_a_gpt_image_model(
    model: str,
) -> None:
    error = refused("edits", model, ("markup",))
    assert "GPT image model parameter" not in error.message
    assert "Models that take it: gpt-image-2.5" in error.message


def test_gpt_image_1_mini_takes_only_low_input_fidelity() -> None:
    check("edits", "gpt-image-1-mini", input_fidelity="low")
    error = refused("edits", "gpt-image-1-mini", input_fidelity="high")
    assert error.param == "input_fidelity" and "use one of low." in error.message


def test_unknown_models_take_every_format() -> None:
    for fmt in ("gif", "svg"):
        check("generations", "my-local-model", output_format=fmt)
    check("edits", "my-local-model", ("markup",))


@pytest.mark.parametrize(
    ("model", "param", "value"),
    [
        ("dall-e-3", "complexity", "low"),
        ("dall-e-3", "svg", {"model": "x"}),
        ("dall-e-2", "frame_count", 3),
        ("dall-e-2", "frame_duration_ms", 100),
    ],
)
def test_dall_e_takes_none_of_the_new_parameters(model: str, param: str, value: Any) -> None:
    error = refused("generations", model, **{param: value})
    assert error.param == param and "GPT image model parameter" in error.message


def test_safety_identifier_and_user_are_both_taken_as_strings() -> None:
    check("generations", "gpt-image-2", safety_identifier="hash-1", user="alice")
    check("generations", "dall-e-3", safety_identifier="hash-1")
    assert refused("generations", None, safety_identifier=5).param == "safety_identifier"


def test_complexity_values() -> None:
    for value in ("low", "medium", "high"):
        check("generations", "gpt-image-2.5-flare", complexity=value)
    error = refused("edits", "gpt-image-2", complexity="extreme")
    assert error.param == "complexity" and "low, medium, high" in error.message


# --- GIF ---------------------------------------------------------------------------------------


def test_gif_frames_and_durations() -> None:
    check("generations", "gpt-image-2", output_format="gif", frame_count=2)
    check("generations", "gpt-image-2", output_format="gif", frame_count=16)
    check("generations", "gpt-image-2", output_format="gif", frame_duration_ms=1_000_000)
    for bad in (1, 17, "9", True):
        error = refused("generations", "gpt-image-2", output_format="gif", frame_count=bad)
        assert error.param == "frame_count" and "from 2 to 16" in error.message
    error = refused("generations", "gpt-image-2", output_format="gif", frame_duration_ms=-10)
    assert error.param == "frame_duration_ms" and "0 or more" in error.message


@pytest.mark.parametrize("name", ["frame_count", "frame_duration_ms"])
def test_frame_settings_only_with_gif(name: str) -> None:
    error = refused("generations", "gpt-image-2", output_format="png", **{name: 4})
    assert error.param == name and "only applies to GIF output" in error.message
    assert refused("generations", "gpt-image-2", **{name: 4}).param == name


@pytest.mark.parametrize(
    ("params", "files", "param"),
    [
        ({"stream": True}, (), "stream"),
        ({"stream": True, "partial_images": 2}, (), "partial_images"),
        ({"output_compression": 80}, (), "output_compression"),
        ({}, ("mask",), "mask"),
    ],
)
def test_what_gif_output_does_not_take(
    params: dict[str, Any], files: tuple[str, ...], param: str
) -> None:
    error = refused("edits", "gpt-image-2", files, output_format="gif", **params)
    assert error.param == param and len(error.problems) == 1


def test_the_frame_duration_is_rounded_to_10_ms_and_capped() -> None:
    assert GIF.duration(None) == 200
    assert [GIF.duration(ms) for ms in (0, 4, 5, 123, 125, 655_345)] == [
        0,
        0,
        10,
        120,
        130,
        655_350,
    ]
    assert GIF.duration(10_000_000) == 655_350


# --- SVG ---------------------------------------------------------------------------------------


def test_svg_output_with_its_author() -> None:
    check("generations", "gpt-image-2.5-sunburst", output_format="svg")
    check(
        "edits",
        "gpt-image-2.5-sunburst",
        output_format="svg",
        svg={"model": "gpt-5", "reasoning": {"effort": "max"}},
        n=1,
    )


@pytest.mark.parametrize(
    ("params", "param", "words"),
    [
        ({"n": 2}, "n", "one image per request"),
        ({"stream": True}, "stream", "cannot be streamed"),
        ({"partial_images": 1, "stream": True}, "partial_images", "no partial images"),
        ({"output_compression": 50}, "output_compression", "jpeg and webp"),
        ({"svg": "gpt-5"}, "svg", "must be an object"),
        ({"svg": {"model": ""}}, "svg.model", "model name"),
        ({"svg": {"reasoning": "high"}}, "svg.reasoning", "must be an object"),
        ({"svg": {"reasoning": {"effort": "huge"}}}, "svg.reasoning.effort", "minimal"),
    ],
)
def test_svg_rules(params: dict[str, Any], param: str, words: str) -> None:
    error = refused("generations", "gpt-image-2", output_format="svg", **params)
    assert error.param == param and words in error.message


def test_the_svg_object_only_with_svg_output() -> None:
    error = refused("generations", "gpt-image-2", svg={"model": "gpt-5"})
    assert error.param == "svg" and "only applies to SVG output" in error.message


def test_transparency_is_refused_only_with_jpeg() -> None:
    for fmt in ("png", "webp", "gif", "svg"):
        check("generations", "gpt-image-2", background="transparent", output_format=fmt)
    error = refused("generations", "gpt-image-2", background="transparent", output_format="jpeg")
    assert error.param == "background" and "jpeg has no alpha" in error.message


# --- markup ------------------------------------------------------------------------------------


def test_markup_is_not_given_with_a_mask() -> None:
    error = refused("edits", "gpt-image-2.5-flare", ("mask", "markup"))
    assert error.param == "markup" and "cannot be combined with mask" in error.message


# --- every problem at once ---------------------------------------------------------------------


def test_every_problem_of_a_request_is_reported_at_once() -> None:
    error = refused(
        "generations",
        "gpt-image-2",
        prompt=" ",
        size="1000x1000",
        quality="ultra",
        output_format="svg",
        n=3,
        frame_count=40,
    )
    assert [problem.param for problem in error.problems] == [
        "prompt",
        "size",
        "quality",
        "frame_count",
        "n",  # SVG's rule, checked with the other SVG rules
    ]
    assert error.param == "prompt" and error.code is None
    assert error.message.splitlines() == [problem.message for problem in error.problems]
    assert "multiples of 16" in error.message and "from 2 to 16" in error.message


def test_one_problem_reads_as_before() -> None:
    error = refused("generations", "gpt-image-2", size="1000x1000")
    assert error.problems == (Problem("size", error.message),)
    assert error.message == (
        "Invalid size '1000x1000': width and height must both be multiples of 16."
    )


def test_a_parameter_is_reported_once() -> None:
    # Not supported by dall-e-2, and not a value any model takes: one problem, the first.
    error = refused("generations", "dall-e-2", output_format="tiff", background="pink")
    assert [problem.param for problem in error.problems] == ["output_format", "background"]
    assert all("not supported by dall-e-2" in problem.message for problem in error.problems)


def test_a_model_without_the_endpoint_says_only_that() -> None:
    error = refused("edits", "dall-e-3", size="9x9", quality="ultra")
    assert [problem.param for problem in error.problems] == ["model"]


def test_combined_errors_keep_each_code() -> None:
    problems = Problems()
    problems.add("first", "n", code="invalid_type")
    with problems.collect():
        raise InvalidRequestError("second", param="size")
    problems.add("again", "n")  # one problem per parameter
    with pytest.raises(InvalidRequestError) as caught:
        problems.raise_any()
    error = caught.value
    assert error.problems == (Problem("n", "first", "invalid_type"), Problem("size", "second"))
    assert (error.param, error.code, error.message) == ("n", "invalid_type", "first\nsecond")
    Problems().raise_any()  # nothing found: nothing raised


def test_the_wire_models_report_every_bad_field() -> None:
    body = {"prompt": "x", "n": "two", "svg": {"model": 5, "reasoning": {"effort": 1}}}
    with pytest.raises(InvalidRequestError) as caught:
        parse_request("generations", body, strict=True)
    assert [problem.param for problem in caught.value.problems] == [
        "n",
        "svg.model",
        "svg.reasoning.effort",
    ]
    assert all(problem.code == "invalid_type" for problem in caught.value.problems)
    request = parse_request(
        "edits",
        {"prompt": "x", "svg": {"model": "gpt-5", "reasoning": {"effort": "low"}}, "user": "u"},
    )
    assert request.wire_params()["svg"] == {"model": "gpt-5", "reasoning": {"effort": "low"}}
    assert getattr(request, "effective_safety_identifier", None) == "u"
