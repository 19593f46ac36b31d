"""Errors point at the flag the user can change, even when the user did not give it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder
from PIL import Image


def test_a_404_without_a_param_points_at_the_base_url(api: Recorder) -> None:
    # The recorder serves the API under /v1: a base URL without it reaches no route.
    result = invoke("generate", "x", "--base-url", api.base_url, "-o", "x.png")
    assert result.exit_code == 1
    line = error_line(result)
    assert "404" in line
    assert "Check the base URL (--base-url)" in line
    assert not Path("x.png").exists()


def test_a_model_the_engine_chose_is_blamed_on_the_engine(
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("generate-only", "cli_engine:GenerateOnlyEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")
    result = invoke("variation", "in.png", "--engine", "generate-only", "-o", "v.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --engine generate-only: "), line
    assert "-m/--model" not in line


def test_a_model_given_with_m_is_still_blamed_on_m(
    register_engine: Callable[[str, str], None],
) -> None:
    register_engine("generate-only", "cli_engine:GenerateOnlyEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")
    result = invoke("variation", "in.png", "--engine", "generate-only", "-m", "gen-only")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -m/--model: ")


def test_an_engine_run_keeps_hugging_face_chatter_off_stderr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRANSFORMERS_NO_ADVISORY_WARNINGS", "0")  # the user's own value wins
    result = invoke("generate", "x", "--engine", "placeholder", "-s", "64x64", "-o", "x.png")
    assert result.exit_code == 0, result.output
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] == "0"


def test_debug_leaves_hugging_face_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    result = invoke("generate", "x", "--engine", "placeholder", "-s", "64x64", "--debug")
    assert result.exit_code == 0, result.output
    assert "TRANSFORMERS_VERBOSITY" not in os.environ


def test_no_key_for_openai_names_the_flags_only(api: Recorder) -> None:
    # No key and OpenAI's own URL (the default): refused before any network use.
    result = invoke("generate", "x", "-o", "x.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: No API key for https://api.openai.com/v1: pass --api-key or ")
    assert "set --base-url or OPENAI_BASE_URL" in line
    assert "api_key" not in line and "base_url" not in line
    assert not Path("x.png").exists()


def test_azure_without_an_api_version_names_the_flag(api: Recorder) -> None:
    result = invoke("generate", "x", "--azure-endpoint", "https://x.openai.azure.com")
    assert result.exit_code == 2
    line = error_line(result)
    assert "pass --api-version or set OPENAI_API_VERSION" in line
    assert "api_version" not in line


def test_an_image_from_stdin_is_called_stdin(api: Recorder, base_url: str) -> None:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), "red").save(buffer, format="JPEG")
    result = invoke("variation", "-", "--base-url", base_url, input=buffer.getvalue())
    assert result.exit_code == 2
    assert error_line(result) == "Error: IMAGE: The image 'stdin' is JPEG; dall-e-2 accepts PNG."
    assert api.requests == []


def test_a_parameter_set_with_extra_is_blamed_on_extra(api: Recorder, base_url: str) -> None:
    error = {"message": "Invalid seed.", "type": "invalid_request_error", "param": "seed"}
    api.fail_next(400, {"error": error})
    result = invoke("generate", "x", "--base-url", base_url, "--extra", "seed=-1")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: --extra seed: Server answered 400")


@pytest.mark.parametrize(
    ("command", "key", "flag"),
    [
        (["generate", "x"], "size", "own flag, so give it with -s/--size"),
        (["generate", "x"], "prompt", "own argument, so give it with PROMPT"),
        (["variation", "in.png"], "n", "own flag, so give it with -n/--number-of-images"),
    ],
)
def test_a_parameter_with_its_own_flag_is_refused_in_extra(
    api: Recorder, base_url: str, command: list[str], key: str, flag: str
) -> None:
    Image.new("RGBA", (256, 256)).save("in.png")
    result = invoke(*command, "--base-url", base_url, "--extra", f"{key}=1")
    assert result.exit_code == 2
    assert error_line(result).startswith(
        f"Error: --extra {key}: {key} has its {flag}; --extra is for parameters the command has "
        "no flag for, such as seed."
    )
    assert api.requests == []


def test_a_parameter_set_with_its_own_flag_is_blamed_on_the_flag(
    api: Recorder, base_url: str
) -> None:
    error = {"message": "Invalid size.", "type": "invalid_request_error", "param": "size"}
    api.fail_next(400, {"error": error})
    result = invoke("generate", "x", "--base-url", base_url, "-s", "1024x1024")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: -s/--size: Server answered 400")


@pytest.fixture
def needs_model(register_engine: Callable[[str, str], None]) -> None:
    register_engine("needs-model", "cli_engine:NeedsModelEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")


_ENGINE_RUNS = {
    "generate": ["generate", "x"],
    "edit": ["edit", "-i", "in.png", "-p", "x"],
    "variation": ["variation", "in.png"],
}


@pytest.mark.parametrize("command", sorted(_ENGINE_RUNS))
@pytest.mark.usefixtures("needs_model")
def test_an_engine_without_its_model_names_engine_model(command: str) -> None:
    result = invoke(*_ENGINE_RUNS[command], "--engine", "needs-model", "-o", "out.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line == "Error: --engine-model: The needs-model engine needs a model folder.", line
    assert not Path("out.png").exists()


@pytest.mark.parametrize("command", sorted(_ENGINE_RUNS))
@pytest.mark.usefixtures("needs_model")
def test_a_missing_model_folder_names_engine_model(command: str) -> None:
    args = [*_ENGINE_RUNS[command], "--engine", "needs-model", "--engine-model", "./nowhere"]
    result = invoke(*args, "-o", "out.png")
    assert result.exit_code == 2
    assert error_line(result) == "Error: --engine-model: Model folder ./nowhere does not exist."


@pytest.mark.usefixtures("needs_model")
def test_a_bad_engine_option_names_engine_option() -> None:
    result = invoke("generate", "x", "--engine", "needs-model", "--engine-model", ".", "-O", "a=1")
    assert result.exit_code == 2
    assert error_line(result) == "Error: -O/--engine-option: Unknown option 'a'."


@pytest.mark.usefixtures("needs_model")
def test_serve_names_its_own_model_and_option_flags() -> None:
    # Port 0: nothing can be in use; the engine fails to load before anything listens.
    result = invoke("serve", "--engine", "needs-model", "--port", "0")
    assert result.exit_code == 2
    assert error_line(result) == "Error: -m/--model: The needs-model engine needs a model folder."
    result = invoke("serve", "--engine", "needs-model", "-m", "./nowhere", "--port", "0")
    assert error_line(result) == "Error: -m/--model: Model folder ./nowhere does not exist."
    result = invoke("serve", "--engine", "needs-model", "-m", ".", "-o", "a=1", "--port", "0")
    assert error_line(result) == "Error: -o/--option: Unknown option 'a'."


def test_a_configuration_error_about_the_request_model_is_not_blamed_on_m() -> None:
    """`model` in a `ConfigurationError` is the engine's model, never the request's -m."""
    from imagegen._errors import ConfigurationError
    from imagegen.cli import cli
    from imagegen.cli._errors import describe

    command = cli.get_command(click.Context(cli), "generate")
    assert command is not None
    ctx = click.Context(command)
    ctx.params = {"model": "dall-e-2", "engine": "x"}
    error = ConfigurationError("No model.", param="model")
    assert describe(error, ctx) == "--engine-model: No model."
    assert describe(ConfigurationError("Plain."), ctx) == "Plain."


_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_AZURE = ("--azure-endpoint", "--api-version", "2025-04-01-preview")


def test_a_401_says_where_the_key_goes(api: Recorder, base_url: str) -> None:
    api.fail_next(401, {"error": {"message": _NO_KEY, "type": "invalid_request_error"}})
    result = invoke("generate", "x", "--base-url", base_url)
    assert result.exit_code == 1
    line = error_line(result)
    assert "Authorization: Bearer YOUR_KEY)." in line  # a placeholder, not a key to mask
    assert line.endswith(" Check the key: pass --api-key or set OPENAI_API_KEY.")


def test_a_401_from_azure_names_azures_credentials(api: Recorder) -> None:
    api.fail_next(401, {"error": {"code": "401", "message": "Access denied due to invalid key."}})
    endpoint, version_flag, version = _AZURE
    args = [endpoint, api.base_url, version_flag, version, "--api-key", "azure-key-0123456789"]
    result = invoke("generate", "x", *args)
    assert result.exit_code == 1
    assert error_line(result).endswith(
        " Check the credential: pass --api-key or set AZURE_OPENAI_API_KEY, or pass an Entra ID "
        "token with --azure-ad-token or AZURE_OPENAI_AD_TOKEN."
    )


def test_a_404_from_azure_points_at_the_endpoint_and_deployment(
    api: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"error": {"code": "DeploymentNotFound", "message": "The deployment does not exist."}}
    api.fail_next(404, body)
    # Azure chosen by the environment, as the client chose it: the hint follows the client.
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", api.base_url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-key-0123456789")
    result = invoke("generate", "x", "--api-version", "2025-04-01-preview")
    assert result.exit_code == 1
    line = error_line(result)
    assert line.endswith(
        " Check the Azure endpoint (--azure-endpoint) and the deployment (--azure-deployment; "
        "by default the model name)."
    )
    assert "--base-url" not in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--base-url", "http://[::1"],
            "Error: Invalid base URL 'http://[::1' (invalid ipv6 url) from --base-url: use an "
            "http:// or https:// URL such as 'http://127.0.0.1:8000/v1'.",
        ),
        (
            ["--base-url", "http://127.0.0.1:99999/v1"],
            "Error: Invalid base URL 'http://127.0.0.1:99999/v1' (port out of range 0-65535) "
            "from --base-url: use an http:// or https:// URL such as 'http://127.0.0.1:8000/v1'.",
        ),
        (
            [*_AZURE[:1], "not-a-url", *_AZURE[1:], "--api-key", "k"],
            "Error: Invalid Azure endpoint 'not-a-url' from --azure-endpoint: use an http:// or "
            "https:// URL such as 'https://NAME.openai.azure.com'.",
        ),
        (
            [*_AZURE[:1], "https://r.openai.azure.com", *_AZURE[1:], "--api-key", "k"]
            + ["--azure-ad-token", "t"],
            "Error: Give either an Azure API key with --api-key or an Entra ID token with "
            "--azure-ad-token, not both.",
        ),
        (
            ["--base-url", "http://127.0.0.1:8000/v1", "--api-key", "sk-abc\u2010def0123"],
            "Error: The API key from --api-key has the non-ASCII character U+2010 at position 7, "
            "which cannot be sent in an HTTP header; copy the API key again.",
        ),
        (
            ["--base-url", "http://127.0.0.1:8000/v1", "--organization", "org 1"],
            "Error: The organization ID from --organization has a space at position 4, which "
            "cannot be sent in an HTTP header; copy the organization ID again.",
        ),
    ],
)
def test_configuration_mistakes_are_usage_errors_naming_the_flag(
    args: list[str], expected: str
) -> None:
    result = invoke("generate", "x", *args)
    assert result.exit_code == 2
    assert error_line(result) == expected


def test_a_bad_key_in_the_environment_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc def0123456")
    result = invoke("generate", "x", "--base-url", "http://127.0.0.1:8000/v1")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: The API key from OPENAI_API_KEY has a space at position 7,")
    assert "def0123456" not in result.output
