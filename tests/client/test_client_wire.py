"""The wire form of every parameter: JSON generations, multipart edits and variations."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import pytest
from PIL import Image
from scripted import API_KEY, TINY_PNG, Reply, ScriptedServer, image_bytes, images_body

import imagegen


def test_generation_sends_json_with_model_and_only_the_prompt(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate("a red fox")
    sent = server.last
    assert sent.method == "POST"
    assert sent.path == "/v1/images/generations"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json() == {"prompt": "a red fox", "model": "gpt-image-2"}


def test_generation_sends_every_set_parameter_in_wire_form(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate(
        "a red fox",
        model="gpt-image-1",
        n=3,
        size="1536x1024",
        quality="high",
        background="transparent",
        moderation="low",
        output_format="webp",
        output_compression=80,
        user="user-42",
    )
    assert server.last.json() == {
        "prompt": "a red fox",
        "model": "gpt-image-1",
        "n": 3,
        "size": "1536x1024",
        "quality": "high",
        "background": "transparent",
        "moderation": "low",
        "output_format": "webp",
        "output_compression": 80,
        "user": "user-42",
    }


def test_dall_e_3_parameters_style_and_response_format(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(json=images_body(data=[{"url": "https://x.invalid/a.png"}])))
    client.generate("a fox", model="dall-e-3", style="natural", quality="hd", response_format="url")
    assert server.last.json() == {
        "prompt": "a fox",
        "model": "dall-e-3",
        "style": "natural",
        "quality": "hd",
        "response_format": "url",
    }


def test_none_means_not_set(client: imagegen.Client, server: ScriptedServer) -> None:
    # The command line passes None for flags that were not given.
    client.generate("a fox", n=None, size=None, quality=None, user=None, partial_images=None)
    assert server.last.json() == {"prompt": "a fox", "model": "gpt-image-2"}


def test_url_response_format_with_gpt_image_is_dropped_with_a_warning(
    client: imagegen.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="imagegen"):
        result = client.generate("a fox", response_format="url")
    assert "response_format" not in server.last.json()
    assert "response_format=url is not supported by model gpt-image-2" in caplog.text
    assert result[0].b64_json is not None


def test_b64_response_format_with_gpt_image_is_dropped_silently(
    client: imagegen.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="imagegen"):
        client.generate("a fox", model="gpt-image-1.5", response_format="b64_json")
    assert "response_format" not in server.last.json()
    assert caplog.records == []


def test_unknown_model_is_sent_with_generic_checks_only(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.generate("a fox", model="flux-dev", size="1000x600", quality="xhigh")
    assert server.last.json() == {
        "prompt": "a fox",
        "model": "flux-dev",
        "size": "1000x600",
        "quality": "xhigh",
    }


def test_headers_default_and_extra(make_client, server: ScriptedServer) -> None:
    client = make_client(
        organization="org-1",
        project="proj-1",
        default_headers={"X-Team": "imaging", "X-Drop": "me"},
        default_query={"tenant": "t1"},
    )
    client.generate(
        "a fox",
        extra_headers={"X-Trace": "abc", "X-Drop": None},
        extra_query={"debug": "1"},
        extra_body={"seed": 7, "num_inference_steps": 4},
    )
    sent = server.last
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["openai-organization"] == "org-1"
    assert sent.headers["openai-project"] == "proj-1"
    assert sent.headers["x-team"] == "imaging"
    assert sent.headers["x-trace"] == "abc"
    assert "x-drop" not in sent.headers
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["user-agent"].startswith("imagegen/")
    assert sent.query == {"tenant": ["t1"], "debug": ["1"]}
    assert sent.json() == {
        "prompt": "a fox",
        "model": "gpt-image-2",
        "seed": 7,
        "num_inference_steps": 4,
    }


def test_a_newer_models_new_values_go_through_the_parameter_itself(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    # extra_body may not carry `quality` (test_client_checks); a model the table does not know
    # gets the generic checks only, which leave quality open.
    client.generate("a fox", model="gpt-image-3", quality="max")
    assert server.last.json()["quality"] == "max"


def test_no_key_sends_no_authorization(make_client, server: ScriptedServer) -> None:
    make_client(api_key=None).generate("a fox")
    assert "authorization" not in server.last.headers


def test_edit_with_one_image_uses_field_image(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(image_bytes("PNG"))
    client.edit(path, "add a hat", n=2, quality="low", output_format="jpeg", output_compression=50)
    sent = server.last
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.fields() == {
        "prompt": "add a hat",
        "model": "gpt-image-2",
        "n": "2",
        "quality": "low",
        "output_format": "jpeg",
        "output_compression": "50",
    }
    [part] = sent.files()
    assert (part.name, part.filename, part.content_type) == ("image", "photo.png", "image/png")
    assert part.data == path.read_bytes()


def test_an_edit_with_moderation_is_sent_as_json_with_data_urls(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    # OpenAI's multipart edit has no `moderation`; its JSON edit has.
    png = image_bytes("PNG")
    jpeg = image_bytes("JPEG")
    mask = image_bytes("PNG", mode="RGBA", color=(0, 0, 0, 0))
    client.edit([png, jpeg], "add a hat", mask=mask, moderation="low", n=2)
    sent = server.last
    assert sent.headers["content-type"] == "application/json"
    body = sent.json()
    assert body.pop("images") == [
        {"image_url": "data:image/png;base64," + base64.b64encode(png).decode()},
        {"image_url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()},
    ]
    assert body.pop("mask") == {
        "image_url": "data:image/png;base64," + base64.b64encode(mask).decode()
    }
    assert body == {"prompt": "add a hat", "model": "gpt-image-2", "moderation": "low", "n": 2}
    client.edit(png, "add a hat")  # without moderation: multipart, as the SDK sends it
    assert server.last.headers["content-type"].startswith("multipart/form-data")


def test_edit_with_several_images_uses_image_brackets_and_sniffed_types(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    # File names lie on purpose: content types come from the bytes.
    jpeg = tmp_path / "a.png"
    jpeg.write_bytes(image_bytes("JPEG"))
    webp = tmp_path / "b.dat"
    webp.write_bytes(image_bytes("WEBP"))
    png = image_bytes("PNG")
    client.edit([jpeg, webp, png], "combine them", input_fidelity="high", model="gpt-image-1")
    files = server.last.files()
    assert [p.name for p in files] == ["image[]", "image[]", "image[]"]
    assert [p.content_type for p in files] == ["image/jpeg", "image/webp", "image/png"]
    assert [p.filename for p in files] == ["a.jpg", "b.webp", "image.png"]
    assert files[2].data == png
    assert server.last.fields()["input_fidelity"] == "high"


def test_edit_accepts_file_objects_and_pil_images(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    data = image_bytes("PNG", mode="RGBA", color=(1, 2, 3, 0))
    handle = io.BytesIO(data)
    pil = Image.new("RGB", (64, 64), "white")
    client.edit([handle, pil], "merge")
    files = server.last.files()
    assert files[0].data == data
    decoded = Image.open(io.BytesIO(files[1].data))
    assert (decoded.format, decoded.size) == ("PNG", (64, 64))


def test_edit_stream_fields_are_strings(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(Reply(sse=[_completed("image_edit.completed")]))
    stream = client.edit(image_bytes(), "a hat", partial_images=2, background="opaque")
    assert isinstance(stream, imagegen.ImageStream)
    stream.close()
    fields = server.last.fields()
    assert fields["stream"] == "true"
    assert fields["partial_images"] == "2"
    assert fields["background"] == "opaque"
    assert server.last.headers["accept"] == "text/event-stream"


def test_black_and_white_mask_is_sent_as_alpha_mask(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # white left half = edit
    client.edit(image_bytes(), "sky", mask=mask)
    parts = {p.name: p for p in server.last.files()}
    assert parts["mask"].content_type == "image/png"
    sent = Image.open(io.BytesIO(parts["mask"].data))
    assert sent.mode == "RGBA"
    alpha = sent.getchannel("A")
    assert alpha.getpixel((10, 10)) == 0  # white -> transparent = edit
    assert alpha.getpixel((50, 10)) == 255  # black -> opaque = keep


def test_alpha_mask_is_sent_unchanged(client: imagegen.Client, server: ScriptedServer) -> None:
    mask = image_bytes("PNG", mode="RGBA", color=(0, 0, 0, 0))
    client.edit(image_bytes(), "sky", mask=mask)
    parts = {p.name: p for p in server.last.files()}
    assert parts["mask"].data == mask
    assert parts["image"].content_type == "image/png"


def test_dall_e_2_edit_with_transparent_image_and_url_format(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    image = image_bytes("PNG", mode="RGBA", color=(0, 0, 0, 0))
    client.edit(image, "a cat", model="dall-e-2", size="256x256", response_format="url")
    assert server.last.fields() == {
        "prompt": "a cat",
        "model": "dall-e-2",
        "size": "256x256",
        "response_format": "url",
    }


def test_variation_is_multipart_with_dall_e_2_default(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.create_variation(
        image_bytes(), n=2, size="512x512", response_format="b64_json", user="u"
    )
    sent = server.last
    assert sent.path == "/v1/images/variations"
    assert sent.fields() == {
        "model": "dall-e-2",
        "n": "2",
        "size": "512x512",
        "response_format": "b64_json",
        "user": "u",
    }
    [part] = sent.files()
    assert (part.name, part.content_type) == ("image", "image/png")


def test_multipart_extra_body_values_become_strings(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    client.create_variation(image_bytes(), extra_body={"seed": 3, "fast": True, "tags": ["a"]})
    fields = server.last.fields()
    assert (fields["seed"], fields["fast"], fields["tags"]) == ("3", "true", '["a"]')


def test_result_exposes_the_whole_response(client: imagegen.Client, server: ScriptedServer) -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 20,
        "total_tokens": 30,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
    }
    server.script(
        Reply(
            json=images_body(
                2,
                background="opaque",
                output_format="png",
                size="1024x1024",
                quality="high",
                usage=usage,
            ),
            headers={"x-request-id": "req_abc"},
        )
    )
    result = client.generate("a fox", n=2)
    assert isinstance(result, imagegen.ImagesResult)
    assert (result.created, result.background, result.output_format) == (
        1_790_000_000,
        "opaque",
        "png",
    )
    assert (result.size, result.quality, result.request_id) == ("1024x1024", "high", "req_abc")
    assert result.usage is not None and result.usage.total_tokens == 30
    assert (result.model, result.prompt) == ("gpt-image-2", "a fox")
    assert len(result) == 2 and [img.index for img in result] == [0, 1]
    assert result[1].bytes() == TINY_PNG
    assert result[0].to_pil().size == (8, 8)
    assert result.response.data[0].b64_json == result[0].b64_json


def test_revised_prompt_and_url_results(client: imagegen.Client, server: ScriptedServer) -> None:
    image_url = f"{server.url}/files/a.png"
    server.script(
        Reply(json=images_body(data=[{"url": image_url, "revised_prompt": "A red fox."}])),
        Reply(body=TINY_PNG, content_type="image/png"),
    )
    result = client.generate("fox", model="dall-e-3", response_format="url")
    image = result[0]
    assert (image.url, image.b64_json, image.revised_prompt) == (image_url, None, "A red fox.")
    assert image.bytes() == TINY_PNG
    download = server.last
    assert (download.method, download.path) == ("GET", "/files/a.png")


def _completed(kind: str = "image_generation.completed") -> dict[str, object]:
    return {"type": kind, "b64_json": images_body()["data"][0]["b64_json"], "created_at": 1}
