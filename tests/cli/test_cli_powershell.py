"""What users of the PowerShell seeds type: their aliases, values in any case, PSOpenAI's -Format
values, PowerShell-style flags, DALL-E sizes under a GPT image model; each runs, or is refused
before anything is sent with an error that names the fix."""

from __future__ import annotations

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder, image_bytes
from PIL import Image


@pytest.fixture(autouse=True)
def _server(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command goes to the recording server (refused ones reach nothing)."""
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)


def _square(name: str = "in.png") -> str:
    with open(name, "wb") as file:
        file.write(image_bytes("png", size=(64, 64)))
    return name


def test_enum_values_are_taken_in_any_case(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate", "x", "--base-url", base_url, "-m", "dall-e-3", "-q", "HD", "--style", "Vivid",
        "--response-format", "B64_JSON", "-f", "Base64",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = api.api_requests[0].json
    assert body is not None
    assert (body["quality"], body["style"], body["response_format"]) == ("hd", "vivid", "b64_json")

    gpt = invoke(
        "generate", "x", "--base-url", base_url, "--background", "Transparent", "--moderation",
        "LOW", "--output-format", "WebP", "-q", "High", "-f", "JSON",
    )  # fmt: skip
    assert gpt.exit_code == 0, gpt.output
    sent = api.api_requests[1].json
    assert sent is not None
    assert [sent[k] for k in ("background", "moderation", "output_format", "quality")] == [
        "transparent", "low", "webp", "high",
    ]  # fmt: skip


def test_a_value_no_model_knows_is_sent_as_typed(api: Recorder, base_url: str) -> None:
    """A compatible server's own quality is its business."""
    result = invoke(
        "generate", "x", "--base-url", base_url, "-m", "house", "-q", "Ultra", "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {"prompt": "x", "model": "house", "quality": "Ultra"}


def test_a_wrong_value_in_capitals_is_still_refused_by_its_rule(api: Recorder) -> None:
    result = invoke("generate", "x", "-m", "dall-e-3", "--style", "Dramatic")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: --style: Invalid style 'Dramatic' for dall-e-3")
    assert not api.requests


def test_token_is_the_api_key(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate", "x", "--base-url", base_url, "--token", "sk-seed-1234", "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].headers["authorization"] == "Bearer sk-seed-1234"


def test_edit_takes_file_for_image(api: Recorder, base_url: str) -> None:
    result = invoke(
        "edit", "--file", _square(), "--prompt", "x", "--base-url", base_url, "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert [name for name, *_ in api.api_requests[0].files] == ["image"]


@pytest.mark.parametrize("flag", ["--image", "-i", "--file"])
def test_variation_takes_the_image_as_a_flag(api: Recorder, base_url: str, flag: str) -> None:
    result = invoke("variation", flag, _square(), "--base-url", base_url, "-o", "v.png")
    assert result.exit_code == 0, result.output
    assert result.stdout == "v.png\n"
    assert api.api_requests[0].files[0][3] == image_bytes("png", size=(64, 64))


def test_variation_images_as_arguments_and_flags_are_one_list(api: Recorder, base_url: str) -> None:
    result = invoke(
        "variation", _square("a.png"), "--image", _square("b.png"), "--base-url", base_url,
        "-o", "v.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["v.png", "v-1.png"]
    assert len(api.api_requests) == 2


def test_variation_without_an_image_names_both_ways(api: Recorder) -> None:
    result = invoke("variation", "-o", "v.png")
    assert result.exit_code == 2
    assert "Missing argument 'IMAGE' (or give it with -i/--image)" in error_line(result)


@pytest.mark.parametrize("flag", ["--prompt", "-p"])
def test_generate_takes_the_prompt_as_a_flag(api: Recorder, base_url: str, flag: str) -> None:
    result = invoke("generate", flag, "A cute baby lion", "--base-url", base_url, "-f", "json")
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {"prompt": "A cute baby lion", "model": "gpt-image-2"}


def test_generate_refuses_two_prompts_and_none(api: Recorder) -> None:
    twice = invoke("generate", "a", "--prompt", "b")
    assert twice.exit_code == 2
    assert "The prompt was given twice" in error_line(twice)
    missing = invoke("generate", "-o", "x.png")
    assert missing.exit_code == 2
    assert "Missing argument 'PROMPT' (or give it with -p/--prompt)" in error_line(missing)
    assert not api.requests


@pytest.mark.parametrize(
    ("value", "fix"),
    [("base64", "-f base64"), ("byte", "-f byte"), ("object", "-f json"), ("json", "-f json")],
)
def test_a_psopenai_format_as_response_format_points_to_f(
    api: Recorder, value: str, fix: str
) -> None:
    for command in (
        ["generate", "x"],
        ["generate", "x", "-m", "dall-e-2"],
        ["variation", _square()],
    ):
        result = invoke(*command, "--response-format", value)
        assert result.exit_code == 2
        line = error_line(result)
        assert line.startswith(f"Error: --response-format: Invalid response_format '{value}'")
        assert f"use {fix} (PSOpenAI's -Format {value})" in line
    assert not api.requests


@pytest.mark.parametrize(
    ("command", "size", "model"),
    [
        (["generate", "x"], "256x256", "dall-e-2"),
        (["generate", "x"], "512", "dall-e-2"),
        (["generate", "x", "-m", "dall-e-3"], "512x512", "dall-e-2"),
        (["edit", "-i", "in.png", "-p", "x"], "256x256", "dall-e-2"),
    ],
)
def test_a_dall_e_size_names_the_dall_e_model(
    api: Recorder, command: list[str], size: str, model: str
) -> None:
    _square()
    result = invoke(*command, "-s", size)
    assert result.exit_code == 2
    line = error_line(result)
    wanted = f"{size}x{size}" if size.isdigit() else size
    assert line.startswith("Error: -s/--size: Invalid size")
    assert line.endswith(
        f" {model} takes -s {wanted}: use -m {model} (on a server that still has it), "
        "or leave -s out."
    )
    assert not api.requests


def test_a_size_the_default_model_takes_names_the_default(api: Recorder) -> None:
    """dall-e-3's sizes are gpt-image-2's too; under gpt-image-1 the default is the fix."""
    result = invoke("generate", "x", "-m", "gpt-image-1", "-s", "1792x1024")
    assert error_line(result).endswith(
        " gpt-image-2 takes -s 1792x1024: use -m gpt-image-2, or leave -s out."
    )


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--style", "vivid"], "dall-e-3 takes --style vivid: use -m dall-e-3"),
        (["-q", "hd"], "dall-e-3 takes -q hd: use -m dall-e-3"),
        (
            ["-q", "standard"],
            "dall-e-2 and dall-e-3 take -q standard: use -m dall-e-2 or -m dall-e-3",
        ),
        (["-m", "dall-e-3", "-q", "high"], "gpt-image-2 takes -q high: use -m gpt-image-2,"),
        (["-m", "dall-e-3", "--stream"], "gpt-image-2 takes --stream: use -m gpt-image-2,"),
        (  # dated snapshots are left out where their model is named
            ["-q", "xhigh"],
            "gpt-image-2.5-sunburst, gpt-image-2.5-flare and gpt-image-2.6-sunburst take "
            "-q xhigh: use -m gpt-image-2.5-sunburst, -m gpt-image-2.5-flare or "
            "-m gpt-image-2.6-sunburst, or leave -q out.",
        ),
    ],
)
def test_a_value_of_another_model_names_it(api: Recorder, args: list[str], hint: str) -> None:
    result = invoke("generate", "x", *args)
    assert result.exit_code == 2
    assert hint in error_line(result)


def test_a_retired_model_is_named_only_when_no_current_one_takes_the_value(
    api: Recorder,
) -> None:
    _square()
    result = invoke("edit", "-i", "in.png", "-p", "x", "--input-fidelity", "high")
    assert result.exit_code == 2
    line = error_line(result)
    # gpt-image-2 takes no input_fidelity: the message names the models that take it, and the
    # hint the ones that take "high", without naming them a second time.
    assert line.endswith(
        " Use -m gpt-image-1.5, -m chatgpt-image-latest or -m gpt-image-2.5-sunburst, or "
        "leave --input-fidelity out."
    )
    assert "gpt-image-1 " not in line and "gpt-image-1," not in line  # retired


def _markup(name: str = "m.png") -> str:
    picture = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    picture.putpixel((3, 3), (255, 0, 0, 255))
    picture.save(name)
    return name


def test_models_the_message_names_are_not_named_again_by_the_hint(api: Recorder) -> None:
    _square()
    result = invoke("edit", "-i", "in.png", "-p", "x", "--markup", _markup())
    assert result.exit_code == 2
    line = error_line(result)
    assert line == (
        "Error: --markup: Parameter markup is not supported by gpt-image-2. Models that take "
        "it: gpt-image-2.5-sunburst, gpt-image-2.5-flare, gpt-image-2.6-sunburst, "
        "gpt-image-2.6-flare."
    )


def test_a_markup_every_model_refuses_gets_no_model_hint(api: Recorder) -> None:
    """A markup without transparent pixels is wrong for every model: the line saying so does
    not add "gpt-image-2.5-sunburst ... take --markup opaque.png: use -m ..."."""
    _square()
    result = invoke("edit", "-i", "in.png", "-p", "x", "--markup", _square("opaque.png"))
    assert result.exit_code == 2
    [line] = [line for line in result.stderr.splitlines() if "has no transparent pixels" in line]
    assert " take " not in line and " takes " not in line and "-m " not in line, line
    assert not api.requests


def test_no_model_hint_where_no_model_takes_the_value(api: Recorder) -> None:
    for args in (["-n", "56"], ["-s", "100x100"], ["variation", "-s", "1792x1024"]):
        command = (
            ["variation", _square(), *args[1:]]
            if args[0] == "variation"
            else ["generate", "x", *args]
        )
        line = error_line(invoke(*command))
        assert " takes " not in line and " take " not in line, line


def test_a_model_refused_by_the_endpoint_is_not_suggested_as_its_own_fix(api: Recorder) -> None:
    """`-m` names the model, not a value another model takes: no "dall-e-2 takes -m gpt-image-2"."""
    for command in (
        ["variation", _square(), "-m", "gpt-image-2"],
        ["edit", "-i", _square(), "-p", "x", "-m", "dall-e-3"],
    ):
        result = invoke(*command)
        assert result.exit_code == 2
        line = error_line(result)
        assert line.startswith("Error: -m/--model: Model "), line
        assert " takes -m " not in line and " take -m " not in line, line
    assert not api.requests


def test_a_refused_request_gets_no_warning_before_its_error(api: Recorder) -> None:
    """`response_format=url` is dropped with a warning for GPT image models, but only for a
    request that is sent: a refused one shows its error alone."""
    result = invoke("generate", "x", "--response-format", "url", "-s", "7x7")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -s/--size:")


def test_a_model_the_server_lacks_says_what_to_do(api: Recorder, base_url: str) -> None:
    body = {
        "error": {
            "message": "The model `cat-v1` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    api.fail_next(404, body)
    given = invoke("generate", "x", "-m", "cat-v1", "--base-url", base_url)
    assert given.exit_code == 1
    assert error_line(given).endswith(
        " Choose a model the server has (most servers list theirs at GET /v1/models), or "
        "leave -m out for the default."
    )
    api.fail_next(404, body)
    default = invoke("generate", "x", "--base-url", base_url)
    assert error_line(default).endswith(
        " Choose a model the server has with -m (most servers list theirs at GET /v1/models)."
    )


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        (["-OutFile", "a.png"], "PowerShell's -OutFile is -o/--out-file here."),
        (["-Size", "256x256"], "PowerShell's -Size is -s/--size here."),
        (["-NumberOfImages", "3"], "PowerShell's -NumberOfImages is -n/--number-of-images here."),
        (["-N", "3"], "PowerShell's -N is -n/--number-of-images here."),
        (["-Token", "k"], "PowerShell's -Token is --api-key here."),
        (["-TimeoutSec", "5"], "PowerShell's -TimeoutSec is --timeout here."),
        (["-MaxRetryCount", "3"], "PowerShell's -MaxRetryCount is --max-retries here."),
        (["-OutputRawResponse"], "PowerShell's -OutputRawResponse is -f json here."),
    ],
)
def test_powershell_style_flags_are_translated(api: Recorder, typed: list[str], hint: str) -> None:
    result = invoke("generate", "x", *typed)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.endswith(f"{hint} (see 'imagegen generate --help')"), line
    assert not api.requests


def test_a_powershell_style_image_flag_is_translated_per_command(api: Recorder) -> None:
    line = error_line(invoke("variation", "-Image", _square()))
    assert "PowerShell's -Image is -i/--image here." in line
    line = error_line(invoke("edit", "-File", _square(), "-p", "x"))
    assert "PowerShell's -File is -i/--image here." in line


def test_a_real_short_flag_is_not_taken_for_powershell(api: Recorder) -> None:
    # -O is --engine-option: a bad value for it gets no PowerShell hint.
    line = error_line(invoke("generate", "x", "-O", "nokey", "--engine", "placeholder"))
    assert "PowerShell" not in line
