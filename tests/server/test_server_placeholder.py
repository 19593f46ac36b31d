"""End to end with the built-in placeholder engine, loaded by name in the app's lifespan:
the official SDK, our own `Client` and our CLI against one server."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops
from srvkit import KEY, decode, make_settings, mask_png

import imagegen
from imagegen.cli import cli
from imagegen.server import create_app
from live import live_server


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = create_app("placeholder", make_settings(api_keys=[KEY], max_queue=32))
    with live_server(app) as base:
        yield base


@pytest.fixture
def sdk(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def photo(size: tuple[int, int] = (64, 64)) -> bytes:
    """A textured opaque image, so an inpainted area differs from its surroundings."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.merge(
        "RGB", (image.getchannel(0), image.getchannel(0).rotate(90), image.getchannel(0))
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def b64(item: object) -> bytes:
    data = getattr(item, "b64_json", None)
    assert isinstance(data, str)
    return base64.b64decode(data)


def test_sdk_generation_is_deterministic_per_seed(sdk: openai.OpenAI) -> None:
    def make(seed: int) -> bytes:
        result = sdk.images.generate(
            model="placeholder",
            prompt="A cute baby lion",
            size="320x200",
            extra_body={"seed": seed},
        )
        return b64(result.data[0])

    first, again, other = make(1), make(1), make(2)
    assert first == again and first != other
    assert decode(first).size == (320, 200)


def test_sdk_gpt_image_2_rules_apply(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(
        model="gpt-image-2", prompt="A lion", size="1024x1536", quality="low"
    )
    assert decode(b64(result.data[0])).size == (1024, 1536)
    assert (result.size, result.quality) == ("1024x1536", "low")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(model="gpt-image-2", prompt="A lion", size="1000x1000")
    assert caught.value.param == "size"


def test_sdk_edit_changes_only_the_masked_area(sdk: openai.OpenAI) -> None:
    source = photo()
    result = sdk.images.edit(
        model="gpt-image-1",
        image=("room.png", source, "image/png"),
        mask=("mask.png", mask_png((64, 64), (16, 16, 48, 48)), "image/png"),
        prompt="a window",
        size="1024x1024",
    )
    out = decode(b64(result.data[0])).convert("RGB").resize((64, 64), Image.Resampling.NEAREST)
    original = decode(source).convert("RGB")
    difference = ImageChops.difference(out, original)
    inside = difference.crop((20, 20, 44, 44)).getbbox()
    assert inside is not None  # the masked area was repainted
    # Away from the mask's edge (resampling blurs the border) nothing else moved.
    for box in ((0, 0, 64, 12), (0, 52, 64, 64), (0, 0, 12, 64), (52, 0, 64, 64)):
        assert max(channel[1] for channel in difference.crop(box).getextrema()) <= 8


def test_sdk_edit_keeps_pixels_outside_the_mask_exactly(sdk: openai.OpenAI) -> None:
    source = photo((256, 256))
    result = sdk.images.edit(
        model="placeholder",
        image=("room.png", source, "image/png"),
        mask=("mask.png", mask_png((256, 256), (64, 64, 192, 192)), "image/png"),
        prompt="a window",
        size="auto",  # the input's size: no resampling, so untouched pixels are exact
    )
    out = decode(b64(result.data[0])).convert("RGB")
    assert out.size == (256, 256)
    difference = ImageChops.difference(out, decode(source).convert("RGB"))
    outside = Image.new("L", (256, 256), 255)
    outside.paste(0, (64, 64, 192, 192))
    assert ImageChops.multiply(difference.convert("L"), outside).getbbox() is None
    assert difference.crop((64, 64, 192, 192)).getbbox() is not None


def test_sdk_variations_differ(sdk: openai.OpenAI) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = sdk.images.create_variation(
            image=("lion.png", photo(), "image/png"),
            model="dall-e-2",
            n=2,
            size="256x256",
            response_format="b64_json",  # DALL·E answers URLs by default
        )
    first, second = (b64(item) for item in result.data)
    assert first != second and decode(first).size == (256, 256)


def test_sdk_stream_with_partials(sdk: openai.OpenAI) -> None:
    events = list(
        sdk.images.generate(
            model="gpt-image-1", prompt="A fox", stream=True, partial_images=2, size="1024x1024"
        )
    )
    assert events[-1].type == "image_generation.completed"
    assert 1 <= len(events) <= 3
    assert all(event.type == "image_generation.partial_image" for event in events[:-1])


def test_our_client_against_the_server(url: str, tmp_path: Path) -> None:
    with imagegen.Client(base_url=url + "/v1", api_key=KEY, max_retries=0) as client:
        result = client.generate("A cute baby lion", model="placeholder", size="128x96", n=2)
        paths = result.save(tmp_path / "lion.png")
        assert [path.name for path in paths] == ["lion.png", "lion-1.png"]
        assert decode(paths[0].read_bytes()).size == (128, 96)
        assert result.request_id
        edited = client.edit(
            [photo(), photo()],
            "a window",
            model="gpt-image-1",
            mask=mask_png((64, 64), (0, 0, 8, 8)),
        )
        assert len(edited) == 1
        # With moderation the edit goes as JSON (data URLs): the server reads it the same way.
        moderated = client.edit(
            photo((64, 64)), "a window", moderation="low", mask=mask_png((64, 64), (0, 0, 8, 8))
        )
        # JSON edits default to size=auto (multipart ones to 1024x1024), as OpenAI's schemas say.
        assert decode(moderated[0].bytes()).size == (64, 64)
        url_result = client.generate(
            "A fox", model="dall-e-2", size="256x256", response_format="url"
        )
        assert decode(url_result[0].bytes()).size == (256, 256)
        with pytest.raises(imagegen.BadRequestError) as caught:
            client.generate("A fox", model="placeholder", size="99999x99999")
        assert caught.value.param == "size"
        stream = client.generate("A fox", model="gpt-image-1", stream=True, partial_images=1)
        assert isinstance(stream, imagegen.ImageStream)
        assert stream.result().images


def test_our_cli_against_the_server(url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "lion.png"
    base = ["--base-url", url + "/v1", "--api-key", KEY]
    result = runner.invoke(
        cli,
        ["generate", "A cute baby lion", "-m", "placeholder", "-s", "96x64", "-o", str(out), *base],
    )
    assert result.exit_code == 0, result.output
    assert decode(out.read_bytes()).size == (96, 64)
    source = tmp_path / "room.png"
    source.write_bytes(photo())
    mask = tmp_path / "mask.png"
    mask.write_bytes(mask_png((64, 64), (0, 0, 32, 32)))
    edited = tmp_path / "edited.png"
    result = runner.invoke(
        cli,
        [
            "edit",
            "--image",
            str(source),
            "--mask",
            str(mask),
            "--prompt",
            "a window",
            "-m",
            "gpt-image-1",
            "-o",
            str(edited),
            *base,
        ],
    )
    assert result.exit_code == 0, result.output
    varied = tmp_path / "varied.png"
    result = runner.invoke(
        cli, ["variation", str(source), "-s", "256x256", "-o", str(varied), *base]
    )
    assert result.exit_code == 0, result.output
    assert decode(varied.read_bytes()).size == (256, 256)
    result = runner.invoke(
        cli,
        [
            "generate",
            "x",
            "-m",
            "placeholder",
            "-s",
            "96x64",
            "-o",
            str(out),
            "--base-url",
            url + "/v1",
            "--api-key",
            "wrong",
        ],
    )
    assert result.exit_code == 1 and "401" in result.output


def test_one_pixel_transparent_generation(url: str) -> None:
    """Found by the fuzzer: 1-pixel-wide transparent generations crashed the engine (a 500)."""
    response = httpx2.post(
        url + "/v1/images/generations",
        json={"model": "placeholder", "prompt": "x", "size": "1x64", "background": "transparent"},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200, response.text


def test_png_compress_level_setting_reaches_the_encoder(url: str) -> None:
    request = {"model": "placeholder", "prompt": "A lighthouse", "size": "256x256", "seed": 7}
    headers = {"authorization": f"Bearer {KEY}"}
    fast = httpx2.post(url + "/v1/images/generations", json=request, headers=headers)
    app = create_app("placeholder", make_settings(api_keys=[KEY], png_compress_level=9))
    with live_server(app) as tight_url:
        tight = httpx2.post(tight_url + "/v1/images/generations", json=request, headers=headers)
    assert fast.status_code == tight.status_code == 200, (fast.text, tight.text)
    fast_png, tight_png = (base64.b64decode(r.json()["data"][0]["b64_json"]) for r in (fast, tight))
    assert len(tight_png) < len(fast_png)  # the default level is the fast one, 9 the smallest
    assert decode(tight_png).tobytes() == decode(fast_png).tobytes()


def test_stream_events_are_serialized_off_the_event_loop(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event holds a whole base64 image (60 ms of JSON at 3840x2160): building its frame
    on the event loop would stall every other request meanwhile."""
    import asyncio

    from imagegen.server import _sse

    on_loop: list[bool] = []
    real = _sse.encode_event

    def recording(event: Any) -> bytes:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(event)

    monkeypatch.setattr(_sse, "encode_event", recording)
    body = {"model": "placeholder", "prompt": "x", "size": "64x64", "stream": True}
    body["partial_images"] = 2
    with httpx2.stream(
        "POST",
        url + "/v1/images/generations",
        json=body,
        headers={"authorization": f"Bearer {KEY}"},
        timeout=30,
    ) as response:
        text = response.read().decode()
    assert response.status_code == 200 and "image_generation.completed" in text
    assert on_loop and not any(on_loop), on_loop
