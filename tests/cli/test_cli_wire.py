"""Every flag reaches the wire as OpenAI's parameter, and flags not given are not sent."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder, image_bytes
from PIL import Image


def _png(path: Path, size: tuple[int, int] = (64, 64), mode: str = "RGBA") -> Path:
    Image.new(mode, size, (10, 200, 30, 255)[: len(mode)]).save(path)
    return path


def test_generate_sends_only_the_prompt_and_the_model(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "A cute baby lion", "--base-url", base_url, "-o", "lion.png")
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.path == "/v1/images/generations"
    assert request.json == {"prompt": "A cute baby lion", "model": "gpt-image-2"}
    assert request.query == {}
    assert "authorization" not in request.headers  # no key for a local server


def test_every_generate_flag_reaches_the_json_body(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A red fox",
        "--base-url",
        base_url,
        "-m",
        "gpt-image-1",
        "-n",
        "2",
        "-s",
        "1024x1536",
        "-q",
        "high",
        "--background",
        "transparent",
        "--moderation",
        "low",
        "--output-format",
        "webp",
        "--output-compression",
        "80",
        "--user",
        "user-1234",
        "--extra",
        "seed=42",
        "--extra",
        'tags=["a", "b"]',
        "--extra",
        "note=plain text",
        "-f",
        "json",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.json == {
        "prompt": "A red fox",
        "model": "gpt-image-1",
        "n": 2,
        "size": "1024x1536",
        "quality": "high",
        "background": "transparent",
        "moderation": "low",
        "output_format": "webp",
        "output_compression": 80,
        "user": "user-1234",
        "seed": 42,
        "tags": ["a", "b"],
        "note": "plain text",
    }


def test_dalle_flags_and_size_shorthand(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A lighthouse",
        "--base-url",
        base_url,
        "-m",
        "dall-e-3",
        "-s",
        "1024",
        "-q",
        "hd",
        "--style",
        "natural",
        "--response-format",
        "url",
        "-f",
        "url",
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {
        "prompt": "A lighthouse",
        "model": "dall-e-3",
        "size": "1024x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "url",
    }
    assert result.stdout == f"{api.base_url}/files/img-0.png\n"


def test_stream_and_partial_images_are_sent(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate", "A fox", "--base-url", base_url, "--partial-images", "2", "-o", "fox.png"
    )
    assert result.exit_code == 0, result.output
    body = api.api_requests[0].json
    assert body == {"prompt": "A fox", "model": "gpt-image-2", "stream": True, "partial_images": 2}

    api.reset()
    result = invoke("generate", "A fox", "--base-url", base_url, "--stream", "-o", "fox.png")
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].json == {"prompt": "A fox", "model": "gpt-image-2", "stream": True}


def test_credentials_organization_project_headers_and_query(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A cat",
        "--api-base",
        base_url,
        "--api-key",
        "sk-test-secret-0123456789",
        "--org-id",
        "org-abc",
        "--project",
        "proj-xyz",
        "--extra-header",
        "X-Trace: one=two",
        "--extra-header",
        "X-Other=three",
        "--extra-query",
        "tenant=blue",
        "-o",
        "cat.png",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.headers["authorization"] == "Bearer sk-test-secret-0123456789"
    assert request.headers["openai-organization"] == "org-abc"
    assert request.headers["openai-project"] == "proj-xyz"
    assert request.headers["x-trace"] == "one=two"
    assert request.headers["x-other"] == "three"
    assert request.query == {"tenant": "blue"}
    assert "sk-test-secret" not in result.output


def test_environment_fills_what_flags_leave_out(
    api: Recorder, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-0123456789")
    result = invoke("generate", "A cat", "-o", "cat.png")
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].headers["authorization"] == "Bearer sk-from-env-0123456789"

    api.reset()  # the flag wins over the environment
    result = invoke("generate", "A cat", "--api-key", "sk-flag-0123456789", "-o", "cat.png")
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].headers["authorization"] == "Bearer sk-flag-0123456789"


def test_azure_flags_build_the_deployment_url(api: Recorder) -> None:
    result = invoke(
        "generate",
        "A boat",
        "--azure-endpoint",
        api.base_url,
        "--azure-deployment",
        "my-images",
        "--api-version",
        "2025-04-01-preview",
        "--api-key",
        "azure-key-0123456789",
        "-o",
        "boat.png",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.path == "/openai/deployments/my-images/images/generations"
    assert request.query == {"api-version": "2025-04-01-preview"}
    assert request.headers["api-key"] == "azure-key-0123456789"
    assert "authorization" not in request.headers

    api.reset()
    result = invoke(
        "generate",
        "A boat",
        "--azure-endpoint",
        api.base_url,
        "--azure-deployment",
        "my-images",
        "--api-version",
        "2025-04-01-preview",
        "--azure-ad-token",
        "entra-token-0123456789",
        "-o",
        "boat.png",
    )
    assert result.exit_code == 0, result.output
    assert api.api_requests[0].headers["authorization"] == "Bearer entra-token-0123456789"


def test_edit_sends_multipart_with_typed_file_parts(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    first = _png(tmp_path / "room.png")
    second = tmp_path / "logo.jpg"
    second.write_bytes(image_bytes("jpeg", size=(64, 64)))
    mask = tmp_path / "mask.png"
    mask_image = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask_image.putpixel((3, 3), (0, 0, 0, 0))
    mask_image.save(mask)
    result = invoke(
        "edit",
        "--image",
        str(first),
        "-i",
        str(second),
        "--mask",
        str(mask),
        "--prompt",
        "Put the logo on the wall",
        "--base-url",
        base_url,
        "-m",
        "gpt-image-1",
        "--input-fidelity",
        "high",
        "-q",
        "low",
        "-n",
        "2",
        "-o",
        "edit.webp",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.path == "/v1/images/edits"
    assert request.json is None
    assert request.params == {
        "prompt": "Put the logo on the wall",
        "model": "gpt-image-1",
        "input_fidelity": "high",
        "quality": "low",
        "n": "2",
        "output_format": "webp",  # taken from -o edit.webp
    }
    parts = [(name, content_type) for name, _, content_type, _ in request.files]
    assert parts == [("image[]", "image/png"), ("image[]", "image/jpeg"), ("mask", "image/png")]
    assert request.files[0][3] == first.read_bytes()
    assert request.files[1][3] == second.read_bytes()


def test_edit_black_and_white_mask_is_sent_as_alpha_mask(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    image = _png(tmp_path / "photo.png")
    mask = tmp_path / "mask.png"
    bw = Image.new("L", (64, 64), 0)
    bw.paste(255, (0, 0, 32, 64))  # white = edit the left half
    bw.save(mask)
    result = invoke(
        "edit", "-i", str(image), "--mask", str(mask), "-p", "sea", "--base-url", base_url
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert [name for name, *_ in request.files] == ["image", "mask"]
    sent = Image.open(io.BytesIO(request.files[1][3]))
    assert sent.mode == "RGBA"
    assert sent.getpixel((10, 10))[3] == 0  # white became transparent: edit here
    assert sent.getpixel((50, 10))[3] == 255  # black stays opaque: keep


def test_variation_sends_multipart(api: Recorder, base_url: str, tmp_path: Path) -> None:
    image = _png(tmp_path / "cupcake.png")
    result = invoke(
        "variation",
        str(image),
        "--base-url",
        base_url,
        "-n",
        "3",
        "-s",
        "256",
        "--response-format",
        "b64_json",
        "--user",
        "u-1",
        "-f",
        "base64",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.path == "/v1/images/variations"
    assert request.params == {
        "model": "dall-e-2",
        "n": "3",
        "size": "256x256",
        "response_format": "b64_json",
        "user": "u-1",
    }
    assert [(name, kind) for name, _, kind, _ in request.files] == [("image", "image/png")]
    assert len(result.stdout.splitlines()) == 3


def test_timeout_flag_limits_the_wait(api: Recorder, base_url: str) -> None:
    api.delay = 3.0
    result = invoke(
        "generate", "x", "--base-url", base_url, "--timeout", "0.3", "--max-retries", "0"
    )
    assert result.exit_code == 1
    assert "time" in error_line(result).lower()
    assert len(api.api_requests) == 1


def test_timeout_zero_means_no_limit(api: Recorder, base_url: str) -> None:
    api.delay = 0.5
    result = invoke("generate", "x", "--base-url", base_url, "--timeout", "0", "-f", "json")
    assert result.exit_code == 0, result.output


def test_max_retries_flag(api: Recorder, base_url: str) -> None:
    error = {"error": {"message": "overloaded", "type": "server_error"}}
    for _ in range(3):
        api.fail_next(503, error, {"retry-after-ms": "10"})
    result = invoke("generate", "x", "--base-url", base_url, "--max-retries", "1", "--quiet")
    assert result.exit_code == 1
    assert "overloaded" in error_line(result)
    assert len(api.api_requests) == 2

    api.reset()
    api.fail_next(503, error, {"retry-after-ms": "10"})
    result = invoke("generate", "x", "--base-url", base_url, "--max-retries", "2", "-o", "x.png")
    assert result.exit_code == 0, result.output
    assert len(api.api_requests) == 2
    assert "Warning:" in result.stderr  # the wait before the retry is reported


def test_proxy_flag_routes_requests_through_the_proxy(api: Recorder, base_url: str) -> None:
    # Nothing listens on port 9 of the loopback: a request that really goes to the proxy fails
    # to connect, and the server never sees it.
    result = invoke(
        "generate",
        "x",
        "--base-url",
        base_url,
        "--proxy",
        "http://127.0.0.1:9",
        "--max-retries",
        "0",
    )
    assert result.exit_code == 1
    assert api.api_requests == []
    error_line(result)


def test_json_output_is_the_whole_response(api: Recorder, base_url: str) -> None:
    api.extra_fields = {"usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
    result = invoke("generate", "x", "--base-url", base_url, "-n", "2", "-f", "json")
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    body = json.loads(line)
    assert set(body) >= {"created", "data", "output_format", "size", "quality", "usage"}
    assert len(body["data"]) == 2
    assert body["usage"]["total_tokens"] == 3


@pytest.mark.parametrize(
    ("output", "sent"),
    [
        (["-o", "x.png"], "b64_json"),
        ([], "b64_json"),  # saved under an automatic name
        (["-f", "base64"], "b64_json"),
        (["-f", "byte"], "b64_json"),
        (["-f", "url"], None),  # the links are what was asked for
        (["-f", "json"], None),  # the server's own answer
        (["-o", "x.png", "--response-format", "url"], "url"),  # the user's choice wins
    ],
)
@pytest.mark.parametrize(
    "command",
    [["generate", "x", "-m", "dall-e-2"], ["generate", "x", "-m", "dall-e-3"], ["variation"]],
)
def test_dall_e_results_to_save_or_print_come_as_base64(
    api: Recorder, base_url: str, tmp_path: Path, command: list[str], output: list[str], sent: str
) -> None:
    """DALL-E models answer with links by default; to save or print the bytes, imagegen asks
    for b64_json (as PSOpenAI does): one request, no second download."""
    if command == ["variation"]:
        command = ["variation", str(_png(tmp_path / "in.png"))]
    result = invoke(*command, "--base-url", base_url, *output)
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.params.get("response_format") == sent
    downloads = [r.path for r in api.requests if r.path.startswith("/files/")]
    assert downloads == (["/files/img-0.png"] if sent == "url" else [])


def test_gpt_image_and_unknown_models_get_no_response_format(api: Recorder, base_url: str) -> None:
    for model in ("gpt-image-2", "house-model"):
        result = invoke("generate", "x", "-m", model, "--base-url", base_url, "-o", f"{model}.png")
        assert result.exit_code == 0, result.output
    assert [r.json for r in api.api_requests] == [
        {"prompt": "x", "model": "gpt-image-2"},
        {"prompt": "x", "model": "house-model"},
    ]
