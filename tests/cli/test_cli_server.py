"""The command line against imagegen's own server (`create_app`) over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import invoke
from PIL import Image

from imagegen.server import create_app
from live import live_server


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with live_server(create_app("placeholder")) as url:
        yield f"{url}/v1"


def _text(path: str) -> dict[str, str]:
    with Image.open(path) as picture:
        return dict(getattr(picture, "text", {}))


def test_generate_saves_the_requested_size(server_url: str) -> None:
    result = invoke(
        "generate", "A lighthouse", "--base-url", server_url, "-s", "1024x640", "-o", "l.png"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "l.png\n"
    with Image.open("l.png") as picture:
        assert picture.size == (1024, 640)
    assert _text("l.png")["prompt"] == "A lighthouse"


def test_url_results_are_downloaded(server_url: str) -> None:
    result = invoke(
        "generate", "A cat", "-m", "dall-e-2", "-s", "256", "--response-format", "url",
        "--base-url", server_url, "-f", "url",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("http://127.0.0.1:")

    Image.new("RGBA", (256, 256), (200, 30, 30, 255)).save("in.png")
    result = invoke(
        "variation", "in.png", "-n", "2", "-s", "256", "--response-format", "url",
        "--base-url", server_url, "-o", "var.png",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["var.png", "var-1.png"]
    for name in ("var.png", "var-1.png"):
        with Image.open(name) as picture:
            assert picture.size == (256, 256)


def test_edit_with_a_black_and_white_mask(server_url: str) -> None:
    Image.new("RGB", (256, 256), (30, 90, 200)).save("photo.png")
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (0, 0, 128, 256))
    mask.save("mask.png")
    result = invoke(
        "edit", "-i", "photo.png", "--mask", "mask.png", "-p", "A red door", "-m", "dall-e-2",
        "-s", "256", "-n", "2", "--base-url", server_url, "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert len(body["data"]) == 2
    # dall-e models answer with URLs unless told otherwise, as OpenAI does.
    assert all(item["url"].startswith(server_url.removesuffix("/v1")) for item in body["data"])


def test_streamed_partial_images(server_url: str, tmp_path: Path) -> None:
    result = invoke(
        "generate", "A fox", "-s", "1024x640", "--partial-images", "2", "--base-url", server_url,
        "-o", "fox.webp",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["fox.partial-0.webp", "fox.partial-1.webp", "fox.webp"]
    with Image.open(tmp_path / "fox.webp") as picture:
        assert picture.format == "WEBP"
    assert json.loads((tmp_path / "fox.webp.json").read_text())["prompt"] == "A fox"


def test_server_side_refusal_is_exit_1(server_url: str) -> None:
    # The client lets unknown model names through (compatible servers have their own); this
    # server does not know the name and says so, naming the parameter.
    result = invoke("generate", "x", "-m", "my-model", "--base-url", server_url)
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("Error: -m/--model: Server answered 404 model_not_found:"), line
