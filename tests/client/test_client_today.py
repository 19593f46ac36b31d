"""Our client with today's API: the new parameters on the wire as the SDK sends them, retired
models, every problem reported at once, and GIF/SVG results; against the scripted server, a
placeholder server and the in-process engine."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from scripted import Reply, ScriptedServer, image_bytes, images_body

import imagegen
from imagegen.server import ServerSettings, create_app
from live import live_server

SVG_DOC = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="8" height="4"/>'


def markup_png(size: tuple[int, int] = (64, 64)) -> bytes:
    sheet = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(sheet).line((5, 5, 40, 40), fill=(255, 0, 0, 255), width=3)
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG")
    return buffer.getvalue()


# --- on the wire -------------------------------------------------------------------------------


def test_generation_sends_the_new_parameters_in_json(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate(
        "a logo",
        model="gpt-image-2.5-sunburst",
        quality="xhigh",
        complexity="high",
        output_format="svg",
        svg={"model": "gpt-5", "reasoning": {"effort": "max"}},
        safety_identifier="hash-1",
        user="alice",
    )
    assert server.last.json() == {
        "prompt": "a logo",
        "model": "gpt-image-2.5-sunburst",
        "quality": "xhigh",
        "complexity": "high",
        "output_format": "svg",
        "svg": {"model": "gpt-5", "reasoning": {"effort": "max"}},
        "safety_identifier": "hash-1",
        "user": "alice",
    }


def test_an_edit_sends_markup_and_svg_as_the_sdk_does(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.edit(
        image_bytes(),
        "circle the cat",
        markup=markup_png(),
        model="gpt-image-2.5-flare",
        output_format="svg",
        svg={"model": "gpt-5", "reasoning": {"effort": "low"}},
        frame_count=None,
        safety_identifier="hash-2",
    )
    sent = server.last
    assert sent.fields() == {
        "prompt": "circle the cat",
        "model": "gpt-image-2.5-flare",
        "output_format": "svg",
        "svg[model]": "gpt-5",
        "svg[reasoning][effort]": "low",
        "safety_identifier": "hash-2",
    }
    assert [(part.name, part.filename, part.content_type) for part in sent.files()] == [
        ("image", "image.png", "image/png"),
        ("markup", "markup.png", "image/png"),
    ]


def test_a_gif_edit_sends_its_frames_settings(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.edit(image_bytes(), "a hat", output_format="gif", frame_count=4, frame_duration_ms=90)
    fields = server.last.fields()
    assert (fields["output_format"], fields["frame_count"], fields["frame_duration_ms"]) == (
        "gif",
        "4",
        "90",
    )


def test_a_json_edit_carries_the_markup_as_a_data_url(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.edit(
        image_bytes(), "x", markup=markup_png(), model="gpt-image-2.5-flare", moderation="low"
    )
    body = server.last.json()
    assert body["markup"]["image_url"].startswith("data:image/png;base64,")


# --- retired models ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.generate("x", model="gpt-image-1"), "retired by OpenAI on 2026-10-23"),
        (lambda c: c.generate("x", model="dall-e-3"), "retired by OpenAI on 2026-05-12"),
        (lambda c: c.create_variation(image_bytes()), "no variations"),
    ],
)
def test_a_retired_model_is_refused_before_a_call_to_openai(
    call: Callable[[imagegen.Client], Any], words: str
) -> None:
    # Nothing may be sent: a request would fail here, where OpenAI cannot be reached.
    openai_client = imagegen.Client(
        base_url="https://api.openai.com/v1", api_key="sk-test", max_retries=0, timeout=5
    )
    with openai_client, pytest.raises(imagegen.InvalidRequestError) as caught:
        call(openai_client)
    error = caught.value
    assert (error.param, error.code) == ("model", "model_retired")
    assert words in error.message and "gpt-image-2.5-" in error.message


def test_a_retired_model_is_sent_to_other_servers(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate("x", model="gpt-image-1")
    assert server.last.json()["model"] == "gpt-image-1"


def test_model_not_found_for_a_retired_model_gets_the_hint(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    error_body = {
        "error": {
            "message": "The model `dall-e-3` has been deprecated.",
            "type": "invalid_request_error",
            "code": "model_not_found",
        }
    }
    server.script(Reply(status=404, json=error_body))
    with pytest.raises(imagegen.NotFoundError) as caught:
        client.generate("x", model="dall-e-3")
    assert "has been deprecated" in caught.value.message
    assert "retired by OpenAI on 2026-05-12; use gpt-image-2.5-flare" in caught.value.message
    server.script(Reply(status=404, json=error_body))
    with pytest.raises(imagegen.NotFoundError) as caught:
        client.generate("x", model="gpt-image-2")  # not retired: the server's words only
    assert "retired" not in caught.value.message


# --- every problem at once ---------------------------------------------------------------------


def test_every_problem_of_a_call_is_reported_before_sending(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    with pytest.raises(imagegen.InvalidRequestError) as caught:
        client.edit(
            tmp_path / "missing.png",
            "x",
            model="gpt-image-2.5-flare",
            output_format="gif",
            frame_count=1,
            stream="yes",  # type: ignore[call-overload]
            extra_body={"size": "big"},
        )
    error = caught.value
    assert [problem.param for problem in error.problems] == [
        "stream",
        "size",
        "frame_count",
        "image",
    ]
    assert error.param == "stream" and len(str(error).splitlines()) == 4
    assert server.requests == []


# --- results -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def placeholder_url() -> Iterator[str]:
    with live_server(create_app("placeholder", ServerSettings(max_queue=8))) as url:
        yield url + "/v1"


def test_a_gif_result_saves_as_an_animation_with_a_sidecar(
    placeholder_url: str, tmp_path: Path
) -> None:
    with imagegen.Client(base_url=placeholder_url) as client:
        result = client.generate(
            "a fox", model="gpt-image-2.5-flare", output_format="gif", frame_count=3, n=2
        )
    paths = result.save(tmp_path / "fox")
    assert paths == [tmp_path / "fox.gif", tmp_path / "fox-1.gif"]
    for path in paths:
        with Image.open(path) as gif:
            assert gif.n_frames == 3
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        assert (meta["model"], meta["size"]) == ("gpt-image-2.5-flare", "1024x1024")
    assert result[0].to_pil().format == "GIF"


def test_an_svg_result(placeholder_url: str, tmp_path: Path) -> None:
    with imagegen.Client(base_url=placeholder_url) as client:
        result = client.generate(
            "a logo",
            model="gpt-image-2.5-sunburst",
            output_format="svg",
            size="1024x1536",
            safety_identifier="hash-3",
        )
    assert (result.output_format, result.safety_identifier, result.svg_usage) == (
        "svg",
        "hash-3",
        None,
    )
    root = ET.fromstring(result[0].bytes())
    assert (root.get("width"), root.get("height")) == ("1024", "1536")
    path = result[0].save(tmp_path / "logo")
    assert path.name == "logo.svg" and path.with_name("logo.svg.json").exists()
    with pytest.raises(imagegen.ImagegenError, match="SVG document"):
        result[0].to_pil()


def test_answers_with_svg_usage_parse(client: imagegen.Client, server: ScriptedServer) -> None:
    b64 = base64.b64encode(SVG_DOC).decode()
    usage = {"model": "gpt-5", "input_tokens": 1, "output_tokens": 2, "reasoning_tokens": 5}
    server.script(
        Reply(
            json={
                **images_body(output_format="svg", safety_identifier="hash-4", svg_usage=usage),
                "data": [{"b64_json": b64}],
            }
        )
    )
    result = client.generate("x", output_format="svg")
    assert result.svg_usage is not None and result.svg_usage.reasoning_tokens == 5
    assert result.safety_identifier == "hash-4"


def test_the_in_process_engine_makes_gif_svg_and_markup_edits(tmp_path: Path) -> None:
    with imagegen.Client(engine="placeholder") as local:
        gif = local.generate("x", model="gpt-image-2.5-sunburst", output_format="gif")
        assert gif[0].to_pil().n_frames == 9  # type: ignore[attr-defined]
        svg = local.generate("x", output_format="svg", size="300x200")
        assert ET.fromstring(svg[0].bytes()).get("width") == "300"
        edited = local.edit(image_bytes(), "x", markup=markup_png(), model="gpt-image-2.6-flare")
        assert edited[0].to_pil().size == (64, 64)
        with pytest.raises(imagegen.InvalidRequestError) as caught:
            local.generate("x", output_format="svg", n=2, frame_count=3)
        assert [problem.param for problem in caught.value.problems] == ["frame_count", "n"]


def test_the_async_client_takes_the_new_parameters(placeholder_url: str, tmp_path: Path) -> None:
    async def main() -> imagegen.ImagesResult:
        async with imagegen.AsyncClient(base_url=placeholder_url) as client:
            return await client.edit(
                image_bytes(),
                "a hat",
                model="gpt-image-2.5-flare",
                markup=markup_png(),
                output_format="gif",
                frame_count=2,
                complexity="low",
                safety_identifier="hash-5",
            )

    result = asyncio.run(main())
    assert result.safety_identifier == "hash-5"
    assert result[0].save(tmp_path / "hat").name == "hat.gif"
