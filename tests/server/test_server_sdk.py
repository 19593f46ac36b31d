"""The official `openai` SDK against the server, over a real socket: every endpoint, both
response formats, several input images, masks, streaming, and its exception classes."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from PIL import Image
from srvkit import KEY, SolidEngine, colour_for, decode, mask_png, png

from imagegen.engines import Job


@pytest.fixture
def client(server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0) as sdk:
        yield sdk


def as_file(data: bytes, name: str = "in.png") -> tuple[str, bytes, str]:
    kind = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[name.rsplit(".", 1)[1]]
    return name, data, kind


def b64_image(item: object) -> Image.Image:
    data = getattr(item, "b64_json", None)
    assert isinstance(data, str)
    return decode(base64.b64decode(data))


def test_generate_b64_with_echo_fields(client: openai.OpenAI, solid_engine: SolidEngine) -> None:
    result = client.images.generate(
        model="gpt-image-1", prompt="a red fox", n=2, size="1536x1024", quality="low"
    )
    assert len(result.data) == 2
    images = [b64_image(item) for item in result.data]
    assert [image.size for image in images] == [(1536, 1024)] * 2
    job = solid_engine.jobs[-1]
    assert images[0].convert("RGB").getpixel((5, 5)) == colour_for(job, 0)
    assert images[1].convert("RGB").getpixel((5, 5)) == colour_for(job, 1)
    assert (result.size, result.quality, result.output_format, result.background) == (
        "1536x1024",
        "low",
        "png",
        "opaque",
    )
    assert result.usage is None  # the engine counts no tokens, so none are invented
    assert result._request_id and result._request_id.startswith("req_")
    assert all(item.url is None for item in result.data)


def test_generate_transparent_webp(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="gpt-image-1.5",
        prompt="a sticker",
        background="transparent",
        output_format="webp",
        output_compression=80,
    )
    image = b64_image(result.data[0])
    assert image.format == "WEBP" and image.mode == "RGBA"
    assert image.getpixel((3, 3))[3] == 128
    assert (result.background, result.output_format) == ("transparent", "webp")


def test_generate_url_then_download(client: openai.OpenAI, server: str) -> None:
    result = client.images.generate(
        model="dall-e-2", prompt="a red fox", size="256x256", response_format="url", n=2
    )
    urls = [item.url for item in result.data]
    assert all(url and url.startswith(server + "/files/") for url in urls)
    assert result.size is None and result.output_format is None  # DALL·E answers carry no echo
    assert all(item.b64_json is None for item in result.data)
    downloaded = httpx2.get(str(urls[0]))
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "image/png"
    assert decode(downloaded.content).size == (256, 256)


def test_engine_model_any_size_and_seed(client: openai.OpenAI, solid_engine: SolidEngine) -> None:
    result = client.images.generate(
        model="solid-1", prompt="x", size="96x40", extra_body={"seed": 7}
    )
    assert b64_image(result.data[0]).size == (96, 40)
    assert solid_engine.jobs[-1].seed == 7


def test_edit_several_images_and_mask(client: openai.OpenAI, solid_engine: SolidEngine) -> None:
    first = png((64, 64), (10, 200, 10, 255))
    second = png((64, 64), (10, 10, 200, 255))
    mask = mask_png((64, 64), (0, 0, 32, 32))  # transparent top-left quarter = edit there
    result = client.images.edit(
        model="gpt-image-1",
        image=[as_file(first, "a.png"), as_file(second, "b.png")],
        mask=as_file(mask, "mask.png"),
        prompt="paint the corner",
        size="1024x1024",
    )
    job: Job = solid_engine.jobs[-1]
    assert len(job.images) == 2
    out = b64_image(result.data[0]).convert("RGB")
    assert out.size == (1024, 1024)
    assert out.getpixel((100, 100)) == colour_for(job, 0)  # inside the transparent area
    assert out.getpixel((900, 900)) == (10, 200, 10)  # outside: the first image, untouched
    assert out.getpixel((900, 100)) == (10, 200, 10)


def test_edit_without_mask_uses_image_transparency(
    client: openai.OpenAI, solid_engine: SolidEngine
) -> None:
    image = Image.new("RGBA", (64, 64), (200, 0, 0, 255))
    image.paste((0, 0, 0, 0), (32, 0, 64, 64))  # right half transparent
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    result = client.images.edit(
        model="dall-e-2",
        image=as_file(buffer.getvalue()),
        prompt="fill",
        size="256x256",
        response_format="b64_json",  # DALL·E answers URLs by default
    )
    job = solid_engine.jobs[-1]
    out = b64_image(result.data[0]).convert("RGB")
    assert out.getpixel((250, 128)) == colour_for(job, 0)
    assert out.getpixel((5, 128)) == (200, 0, 0)


def test_edit_jpeg_and_webp_inputs(client: openai.OpenAI) -> None:
    jpeg = png((48, 48), (1, 2, 3), mode="RGB", fmt="JPEG")
    webp = png((48, 48), (1, 2, 3, 255), fmt="WEBP")
    result = client.images.edit(
        model="gpt-image-2",
        image=[as_file(jpeg, "a.jpg"), as_file(webp, "b.webp")],
        prompt="merge",
        size="1024x1024",
        output_format="jpeg",
    )
    assert b64_image(result.data[0]).format == "JPEG"


def test_mask_of_another_size_is_400_param_mask(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-1",
            image=as_file(png((64, 64))),
            mask=as_file(mask_png((32, 32), (0, 0, 8, 8)), "mask.png"),
            prompt="x",
        )
    assert caught.value.param == "mask"
    assert "same size" in caught.value.message


def test_mask_without_alpha_is_400_param_mask(client: openai.OpenAI) -> None:
    grey = png((64, 64), (255,), mode="L")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-1", image=as_file(png((64, 64))), mask=as_file(grey), prompt="x"
        )
    assert caught.value.param == "mask"
    assert caught.value.code == "invalid_mask_image_format"


def test_variation_multipart(client: openai.OpenAI, solid_engine: SolidEngine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks variations deprecated
        result = client.images.create_variation(
            image=as_file(png((64, 64), (100, 100, 100, 255))),
            n=3,
            size="256x256",
            response_format="b64_json",
        )
    images = [b64_image(item).convert("RGB") for item in result.data]
    assert [image.size for image in images] == [(256, 256)] * 3
    assert len({image.getpixel((10, 10)) for image in images}) == 3  # three distinct variations
    # No model sent: the engine's own model answers (its rules, not dall-e-2's).
    assert solid_engine.jobs[-1].model == "solid-1"


def test_variation_url(client: openai.OpenAI) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = client.images.create_variation(
            image=as_file(png((64, 64))), model="dall-e-2", size="256x256", response_format="url"
        )
    assert decode(httpx2.get(str(result.data[0].url)).content).size == (256, 256)


def test_stream_generation_partials_then_completed(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(
            model="gpt-image-1", prompt="a fox", stream=True, partial_images=2, size="1024x1024"
        )
    )
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [getattr(event, "partial_image_index", None) for event in events[:2]] == [0, 1]
    final = events[-1]
    assert decode(base64.b64decode(final.b64_json)).size == (1024, 1024)
    assert (final.size, final.output_format, final.quality) == ("1024x1024", "png", "high")


def test_stream_edit_uses_image_edit_events(client: openai.OpenAI) -> None:
    stream = client.images.edit(
        model="gpt-image-1",
        image=as_file(png((64, 64))),
        mask=as_file(mask_png((64, 64), (0, 0, 10, 10)), "m.png"),
        prompt="x",
        stream=True,
        partial_images=1,
    )
    types = [event.type for event in stream]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


def test_stream_without_partials_sends_one_completed_per_image(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(model="solid-1", prompt="x", size="32x32", n=2, stream=True)
    )
    assert [event.type for event in events] == ["image_generation.completed"] * 2


def test_bad_request_carries_param(client: openai.OpenAI) -> None:
    cases = [
        ({"model": "gpt-image-2", "size": "1000x1000"}, "size"),
        ({"model": "dall-e-3", "n": 2}, "n"),
        ({"model": "gpt-image-1", "response_format": "url"}, "response_format"),
        ({"model": "gpt-image-1", "quality": "hd"}, "quality"),
        ({"model": "dall-e-2", "background": "transparent"}, "background"),
        ({"model": "gpt-image-1", "partial_images": 9}, "partial_images"),
        ({"model": "gpt-image-1", "output_compression": 50}, "output_compression"),
    ]
    for params, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.generate(prompt="a fox", **params)  # type: ignore[arg-type]
        assert caught.value.param == param, params
        assert caught.value.type == "invalid_request_error"


def test_octet_stream_part_is_refused_as_openai_does(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="gpt-image-1", image=png(), prompt="x")  # bytes: no type
    assert caught.value.param == "image"
    assert "unsupported mimetype ('application/octet-stream')" in caught.value.message


def test_declared_type_right_but_bytes_wrong(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="gpt-image-1", image=("a.png", b"GIF89a" + b"\0" * 20, "image/png"), prompt="x"
        )
    assert caught.value.param == "image"


def test_dall_e_2_refuses_jpeg_by_declared_type(client: openai.OpenAI) -> None:
    jpeg = png((64, 64), (1, 2, 3), mode="RGB", fmt="JPEG")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="dall-e-2", image=as_file(jpeg, "a.jpg"), prompt="x")
    assert caught.value.param == "image"
    assert caught.value.message.endswith("Supported file formats are 'image/png'.")


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(model="no-such-model", prompt="x")
    assert (caught.value.code, caught.value.param) == ("model_not_found", "model")
    assert caught.value.type == "invalid_request_error"
    assert "The model `no-such-model` does not exist" in caught.value.message
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.edit(model="no-such-model", image=as_file(png((8, 8))), prompt="x")
    assert caught.value.code == "model_not_found"


def test_wrong_key_is_authentication_error(server: str) -> None:
    with (
        openai.OpenAI(base_url=server + "/v1", api_key="sk-wrong", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.images.generate(model="gpt-image-1", prompt="x")
    assert caught.value.code == "invalid_api_key"
    assert "sk-wrong" not in str(caught.value.body)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids[0] == "solid-1"
    assert {"gpt-image-2", "dall-e-2", "gpt-image-1.5"} <= set(ids)
    assert client.models.retrieve("gpt-image-2").id == "gpt-image-2"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_json_edit_images_are_decoded_off_the_event_loop(
    client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON edit may carry 16 data URLs of 20 MB each (~160 ms of JSON and base64 work per
    image): on the event loop that would stall every other request meanwhile."""
    import asyncio

    from imagegen.server import _inputs

    on_loop: list[bool] = []
    real = _inputs.load_input

    def recording(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(_inputs, "load_input", recording)
    image = base64.b64encode(png((64, 64), (0, 0, 255, 255))).decode()
    response = client.post(
        "/images/edits",
        cast_to=httpx2.Response,
        body={
            "model": "gpt-image-1",
            "prompt": "a hat",
            "images": [{"image_url": f"data:image/png;base64,{image}"}] * 2,
            "size": "1024x1024",
        },
    )
    assert response.status_code == 200
    assert on_loop == [False, False]


def test_json_edit_with_data_urls(client: openai.OpenAI, server: str) -> None:
    image = base64.b64encode(png((64, 64), (0, 0, 255, 255))).decode()
    mask = base64.b64encode(mask_png((64, 64), (0, 0, 64, 32))).decode()
    response = client.post(
        "/images/edits",
        cast_to=httpx2.Response,
        body={
            "model": "gpt-image-1",
            "prompt": "top half",
            "images": [{"image_url": f"data:image/png;base64,{image}"}],
            "mask": {"image_url": f"data:image/png;base64,{mask}"},
            "size": "1024x1024",
        },
    )
    body = response.json()
    out = decode(base64.b64decode(body["data"][0]["b64_json"])).convert("RGB")
    assert out.getpixel((500, 1000)) == (0, 0, 255)
    assert out.getpixel((500, 10)) != (0, 0, 255)
