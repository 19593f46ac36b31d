"""Errors point at the flag the user can change, even when the user did not give it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder
from PIL import Image

import imagegen.engines


def test_a_404_without_a_param_points_at_the_base_url(api: Recorder) -> None:
    # The recorder serves the API under /v1: a base URL without it reaches no route.
    result = invoke("generate", "x", "--base-url", api.base_url, "-o", "x.png")
    assert result.exit_code == 1
    line = error_line(result)
    assert "404" in line
    assert "Check the base URL (--base-url)" in line
    assert not Path("x.png").exists()


def test_a_model_the_engine_chose_is_blamed_on_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(imagegen.engines._BUILTIN, "generate-only", "cli_engine:GenerateOnlyEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")
    result = invoke("variation", "in.png", "--engine", "generate-only", "-o", "v.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --engine generate-only: "), line
    assert "-m/--model" not in line


def test_a_model_given_with_m_is_still_blamed_on_m(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(imagegen.engines._BUILTIN, "generate-only", "cli_engine:GenerateOnlyEngine")
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
    assert (
        error_line(result) == "Error: IMAGE: The image 'stdin.jpg' is JPEG; dall-e-2 accepts PNG."
    )
    assert api.requests == []


def test_a_parameter_set_with_extra_is_blamed_on_extra(api: Recorder, base_url: str) -> None:
    error = {"message": "Invalid size.", "type": "invalid_request_error", "param": "size"}
    api.fail_next(400, {"error": error})
    result = invoke("generate", "x", "--base-url", base_url, "--extra", "size=777x777")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: --extra size: Server answered 400")


def test_a_parameter_set_with_its_own_flag_is_blamed_on_the_flag(
    api: Recorder, base_url: str
) -> None:
    error = {"message": "Invalid size.", "type": "invalid_request_error", "param": "size"}
    api.fail_next(400, {"error": error})
    result = invoke("generate", "x", "--base-url", base_url, "-s", "1024x1024")
    assert result.exit_code == 1
    assert error_line(result).startswith("Error: -s/--size: Server answered 400")
