"""Errors from the server or the network: exit code 1, one line, no secret, traceback on demand."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder

KEY = "sk-proj-VerySecretKey0123456789abcdef"


def _error(message: str, *, code: str | None = None, param: str | None = None) -> dict[str, object]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "code": code, "param": param}
    }


def test_server_400_names_the_flag_of_its_param(api: Recorder, base_url: str) -> None:
    api.fail_next(400, _error("Size not supported here.", code="invalid_size", param="size"))
    result = invoke("generate", "x", "--base-url", base_url, "-s", "1024x1024", "-f", "json")
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith("Error: -s/--size: Server answered 400 invalid_size: Size not supported")
    assert result.stdout == ""


def test_authentication_error_never_shows_the_key(api: Recorder, base_url: str) -> None:
    api.fail_next(401, _error(f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    result = invoke("generate", "x", "--base-url", base_url, "--api-key", KEY)
    assert result.exit_code == 1
    line = error_line(result)
    assert "401" in line
    assert KEY not in result.output
    assert "VerySecret" not in result.output


def test_content_policy_refusal(api: Recorder, base_url: str) -> None:
    api.fail_next(
        400,
        {
            "error": {
                "message": "Your request was rejected by the safety system.",
                "type": "image_generation_user_error",
                "code": "moderation_blocked",
                "param": None,
                "moderation_details": {"stage": "input", "categories": ["violence"]},
            }
        },
    )
    result = invoke("generate", "x", "--base-url", base_url, "--max-retries", "3")
    assert result.exit_code == 1
    line = error_line(result)
    assert "safety system" in line
    assert "violence" in line
    assert len(api.api_requests) == 1  # never retried


def test_insufficient_quota_is_not_retried(api: Recorder, base_url: str) -> None:
    api.fail_next(429, _error("You exceeded your current quota.", code="insufficient_quota"))
    result = invoke("generate", "x", "--base-url", base_url, "--max-retries", "3")
    assert result.exit_code == 1
    assert "quota" in error_line(result)
    assert len(api.api_requests) == 1


def test_connection_refused(api: Recorder) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke(
        "generate", "x", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-retries", "0"
    )
    assert result.exit_code == 1
    error_line(result)


def test_a_failure_on_a_later_prompt_stops_and_keeps_what_was_saved(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    api.fail_request(1, 500, _error("The server had an error."))
    result = invoke(
        "generate",
        "-",
        "--base-url",
        base_url,
        "-o",
        "q.png",
        "--max-retries",
        "0",
        input="a\nb\nc\n",
    )
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == ["q.png"], result.output
    assert "The server had an error" in error_line(result)
    assert len(api.api_requests) == 2  # the third prompt was not sent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.png"]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_shows_the_traceback_but_not_the_key(
    api: Recorder, base_url: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.fail_next(401, _error(f"Incorrect API key provided: {KEY}.", code="invalid_api_key"))
    args = ["generate", "x", "--base-url", base_url, "--api-key", KEY]
    if how == "flag":
        args.append("--debug")
    else:
        monkeypatch.setenv("IMAGEGEN_DEBUG", "1")
    result = invoke(*args)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "AuthenticationError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Server answered 401")
    assert KEY not in result.output
    assert "VerySecret" not in result.output


def test_debug_logs_requests_without_the_key(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate", "x", "--base-url", base_url, "--api-key", KEY, "--debug", "-f", "json"
    )
    assert result.exit_code == 0, result.output
    assert "debug:" in result.stderr
    assert KEY not in result.output


@pytest.mark.parametrize("password", ["base-url-Secret9", "pw"])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_debug_never_shows_a_base_url_password(
    api: Recorder, base_url: str, how: str, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our request line and httpx2's both print the URL; neither may print its password
    (a short one included, which is too short to be scrubbed as a known secret)."""
    with_password = base_url.replace("http://", f"http://user:{password}@")
    args = ["generate", "x", "--debug", "-f", "json"]
    if how == "flag":
        args += ["--base-url", with_password]
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", with_password)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert f"generations to {base_url.replace('http://', 'http://user:***@')}" in result.stderr
    assert "debug: httpx2: HTTP Request: POST http://user:***@" in result.stderr
    assert f":{password}@" not in result.output
    assert api.api_requests  # the request went out, with the credentials in the URL


def test_debug_never_shows_a_base_url_password_on_failure() -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:Fail-Secret7@127.0.0.1:{port}/v1"
    result = invoke("generate", "x", "--base-url", url, "--debug", "--max-retries", "1")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "Warning: Could not talk" in result.stderr
    assert "Fail-Secret7" not in result.output


@pytest.mark.parametrize("debug", [False, True])
def test_a_key_quoted_by_an_engine_is_masked_in_the_error_and_traceback(
    monkeypatch: pytest.MonkeyPatch, debug: bool, register_engine: Callable[[str, str], None]
) -> None:

    secret = "env-Secret-Value-42"  # not shaped like an sk- key: only knowing it masks it
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    register_engine("leaky", "cli_engine:LeakyEngine")
    result = invoke("generate", "x", "--engine", "leaky", *(["--debug"] if debug else []))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: Engine 'leaky' failed: RuntimeError: upstream refused key ***"
    )
    assert ("Traceback" in result.stderr) is debug
    assert secret not in result.output


def test_an_answer_without_images_is_an_error(api: Recorder, base_url: str) -> None:
    api.extra_fields = {"data": []}
    result = invoke("generate", "x", "--base-url", base_url, "-o", "x.png")
    assert result.exit_code == 1
    assert "without any image" in error_line(result)
    assert result.stdout == ""


def test_a_stream_without_a_completed_image_is_an_error(api: Recorder, base_url: str) -> None:
    api.stream_completed = False
    result = invoke("generate", "x", "--base-url", base_url, "--partial-images", "1", "-o", "x.png")
    assert result.exit_code == 1
    assert "without a completed image" in error_line(result)
    assert result.stdout == "x.partial-0.png\n"  # the partial image that did arrive is kept
