"""The official SDK (openai 3.57) against a real `imagegen serve --engine placeholder` process:
every model of the catalogue, and every parameter the SDK added (complexity, GIF, SVG, markup,
safety_identifier), multipart and JSON, with nothing faked between them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from PIL import Image, ImageDraw
from srvkit import KEY, make_settings
from test_server_cli import serving

from imagegen._capabilities import MODELS, ModelCapabilities
from imagegen._models import ImagesUsage, SvgUsage
from imagegen.engines import EngineResult, Job
from imagegen.engines.placeholder import PlaceholderEngine
from imagegen.server import create_app
from live import live_server

SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serving() as (base, _, _):
        yield base


@pytest.fixture
def sdk(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as client:
        yield client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def as_file(data: bytes, name: str = "in.png") -> tuple[str, bytes, str]:
    return name, data, "image/png"


def decoded(result: Any, index: int = 0) -> bytes:
    data = result.data[index].b64_json
    assert isinstance(data, str)
    return base64.b64decode(data)


def size_for(caps: ModelCapabilities) -> str:
    """A small size the model takes (the placeholder draws faster)."""
    sizes = caps.sizes.get("generations") or ()
    return "256x256" if "256x256" in sizes else "1024x1024"


# --- every model ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_of_the_catalogue_generates(sdk: openai.OpenAI, model: str) -> None:
    caps = MODELS[model]
    options: dict[str, Any] = {"response_format": "b64_json"} if caps.url_results else {}
    result = sdk.images.generate(model=model, prompt="a lion", size=size_for(caps), **options)
    with Image.open(io.BytesIO(decoded(result))) as image:
        assert image.size == tuple(int(v) for v in size_for(caps).split("x"))
    assert sdk.models.retrieve(model).id == model


@pytest.mark.parametrize(
    "model", sorted(name for name, caps in MODELS.items() if "edits" in caps.endpoints)
)
def test_every_edit_model_edits(sdk: openai.OpenAI, model: str) -> None:
    clear = Image.new("RGBA", (256, 256), (20, 90, 160, 255))
    clear.paste((0, 0, 0, 0), (64, 64, 192, 192))  # dall-e-2 edits the transparent pixels
    options: dict[str, Any] = {"response_format": "b64_json"} if MODELS[model].url_results else {}
    result = sdk.images.edit(
        model=model, image=as_file(png(clear)), prompt="a window", size="1024x1024"
        if MODELS[model].flexible_sizes or MODELS[model].is_gpt_image else "256x256", **options
    )  # fmt: skip
    assert Image.open(io.BytesIO(decoded(result))).format == "PNG"


def test_the_2_5_models_take_xhigh_max_and_the_largest_size(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(
        model="gpt-image-2.5-sunburst", prompt="a skyline", quality="max", size="3840x2160"
    )
    assert Image.open(io.BytesIO(decoded(result))).size == (3840, 2160)
    assert (result.quality, result.size) == ("max", "3840x2160")
    for background in ("transparent", "opaque"):
        result = sdk.images.generate(
            model="gpt-image-2.6-flare", prompt="a sticker", quality="xhigh", background=background
        )
        assert (result.quality, result.background) == ("xhigh", background)
        mode = Image.open(io.BytesIO(decoded(result))).mode
        assert mode == ("RGBA" if background == "transparent" else "RGB")


# --- GIF -----------------------------------------------------------------------------------


def frames_of(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF"
        found = []
        for index in range(gif.n_frames):
            gif.seek(index)
            found.append(gif.convert("RGBA").tobytes())
        return found


def test_gif_generation(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(
        model="gpt-image-2.5-flare",
        prompt="a fox running",
        output_format="gif",
        frame_count=5,
        frame_duration_ms=333,
        n=2,
        complexity="high",
    )
    assert result.output_format == "gif" and len(result.data) == 2
    for index in range(2):
        frames = frames_of(decoded(result, index))
        assert len(frames) == 5 and len({hashlib.sha256(f).digest() for f in frames}) == 5
    with Image.open(io.BytesIO(decoded(result))) as gif:
        assert gif.info["duration"] == 330


def test_gif_edit_in_multipart(sdk: openai.OpenAI) -> None:
    result = sdk.images.edit(
        model="gpt-image-2.5-sunburst",
        image=as_file(png(Image.new("RGB", (320, 240), "teal"))),
        prompt="a hat",
        output_format="gif",
        frame_count=2,
    )
    assert len(frames_of(decoded(result))) == 2 and result.size == "320x240"


def test_gif_refuses_streaming_and_masks(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.generate(
            model="gpt-image-2", prompt="x", output_format="gif", stream=True, partial_images=2
        )
    assert caught.value.param == "partial_images"
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 32))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="gpt-image-2",
            image=as_file(png(Image.new("RGB", (64, 64)))),
            mask=as_file(png(mask)),
            prompt="x",
            output_format="gif",
        )
    assert caught.value.param == "mask"


# --- SVG -----------------------------------------------------------------------------------


def svg_root(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == SVG_NS + "svg"
    return root


def test_svg_generation_with_the_svg_object_in_json(sdk: openai.OpenAI) -> None:
    result = sdk.images.generate(
        model="gpt-image-2.5-sunburst",
        prompt="a logo of a lion",
        output_format="svg",
        size="1536x1024",
        svg={"model": "gpt-5", "reasoning": {"effort": "minimal"}},
    )
    root = svg_root(decoded(result))
    assert (root.get("width"), root.get("height")) == ("1536", "1024")
    assert "a logo of a lion" in "".join(root.itertext())
    assert result.output_format == "svg" and result.svg_usage is None


def test_svg_edit_sends_svg_fields_as_the_sdk_writes_them(sdk: openai.OpenAI) -> None:
    result = sdk.images.edit(
        model="gpt-image-2.6-sunburst",
        image=as_file(png(Image.new("RGB", (200, 100), "orange"))),
        prompt="a sign",
        output_format="svg",
        svg={"model": "gpt-5", "reasoning": {"effort": "xhigh"}},
    )
    root = svg_root(decoded(result))
    assert (root.get("width"), root.get("height")) == ("200", "100")


def test_svg_rules_are_reported_together(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="gpt-image-2.5-flare",
            image=as_file(png(Image.new("RGB", (64, 64)))),
            prompt="x",
            output_format="svg",
            n=2,
            output_compression=50,
            svg={"model": "gpt-5", "reasoning": {"effort": "ludicrous"}},  # type: ignore[typeddict-item]
        )
    error = caught.value
    assert error.status_code == 400 and error.param == "output_compression"
    lines = str(error.body["message"]).splitlines()  # type: ignore[index]
    assert len(lines) == 3
    assert "n must be 1" in lines[1] and "svg.reasoning.effort" in lines[2]


# --- markup, complexity, safety_identifier ----------------------------------------------------


def test_markup_guides_an_edit(sdk: openai.OpenAI) -> None:
    photo = Image.new("RGB", (256, 192), (40, 120, 200))
    markup = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    ImageDraw.Draw(markup).rectangle((150, 30, 230, 110), outline=(255, 255, 0, 255), width=5)
    result = sdk.images.edit(
        model="gpt-image-2.5-flare",
        image=as_file(png(photo)),
        markup=as_file(png(markup), "markup.png"),
        prompt="a moon",
    )
    edited = Image.open(io.BytesIO(decoded(result))).convert("RGB")
    assert edited.getpixel((20, 170)) == (40, 120, 200)
    assert edited.getpixel((190, 70)) != (40, 120, 200)


@pytest.mark.parametrize(
    ("markup", "extra", "param", "words"),
    [
        (Image.new("RGBA", (64, 64), (255, 0, 0, 255)), {}, "markup", "transparent"),
        (Image.new("RGBA", (32, 32), (0, 0, 0, 0)), {}, "markup", "same size"),
        (Image.new("RGBA", (64, 64), (0, 0, 0, 0)), {"model": "gpt-image-2"}, "markup", "2"),
        (Image.new("RGBA", (64, 64), (0, 0, 0, 0)), {"mask": True}, "markup", "mask"),
    ],
)
def test_markup_rules(
    sdk: openai.OpenAI, markup: Image.Image, extra: dict[str, Any], param: str, words: str
) -> None:
    options: dict[str, Any] = {"model": extra.get("model", "gpt-image-2.5-flare")}
    if extra.get("mask"):
        options["mask"] = as_file(png(Image.new("RGBA", (64, 64), (0, 0, 0, 0))))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            image=as_file(png(Image.new("RGB", (64, 64)))),
            markup=as_file(png(markup)),
            prompt="x",
            **options,
        )
    assert caught.value.param == param and words in caught.value.message


def test_safety_identifier_is_echoed_and_user_is_its_fallback(sdk: openai.OpenAI) -> None:
    both = sdk.images.generate(
        model="gpt-image-2.5-flare", prompt="x", safety_identifier="hash-9", user="alice"
    )
    assert both.safety_identifier == "hash-9"
    fallback = sdk.images.generate(
        model="gpt-image-2", prompt="x", safety_identifier="", user="alice"
    )
    assert fallback.safety_identifier == "alice"
    assert sdk.images.generate(model="gpt-image-2", prompt="x").safety_identifier is None
    edited = sdk.images.edit(
        model="gpt-image-1.5",
        image=as_file(png(Image.new("RGB", (64, 64)))),
        prompt="x",
        safety_identifier="hash-edit",
    )
    assert edited.safety_identifier == "hash-edit"
    stream = sdk.images.generate(
        model="gpt-image-2", prompt="x", stream=True, safety_identifier="hash-stream"
    )
    completed = [event for event in stream if event.type == "image_generation.completed"]
    assert completed[-1].safety_identifier == "hash-stream"


def test_complexity_reaches_the_engine(sdk: openai.OpenAI) -> None:
    def picture(level: str) -> bytes:
        result = sdk.images.generate(
            model="gpt-image-2", prompt="a lion", complexity=level, extra_body={"seed": 3}
        )
        return decoded(result)

    assert picture("low") != picture("high")
    assert picture("low") == picture("low")


def test_json_edits_take_a_markup_too(url: str) -> None:
    photo = png(Image.new("RGB", (96, 64), "navy"))
    sheet = Image.new("RGBA", (96, 64), (0, 0, 0, 0))
    sheet.putpixel((50, 30), (255, 0, 0, 255))
    body = {
        "model": "gpt-image-2.5-flare",
        "prompt": "a star",
        "moderation": "low",
        "images": [{"image_url": "data:image/png;base64," + base64.b64encode(photo).decode()}],
        "markup": {"image_url": "data:image/png;base64," + base64.b64encode(png(sheet)).decode()},
        "svg": {"model": "gpt-5"},
        "output_format": "svg",
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = httpx2.post(url + "/v1/images/edits", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    root = svg_root(base64.b64decode(answer.json()["data"][0]["b64_json"]))
    assert root.get("width") == "96"
    body["svg"] = {"model": 5}
    answer = httpx2.post(url + "/v1/images/edits", json=body, headers=headers, timeout=60)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "svg.model"


def test_multipart_svg_fields_may_not_clash(url: str) -> None:
    files = [("image", as_file(png(Image.new("RGB", (64, 64)))))]
    data = {"prompt": "x", "output_format": "svg", "svg": "gpt-5", "svg[model]": "gpt-5"}
    answer = httpx2.post(
        url + "/v1/images/edits",
        data=data,
        files=files,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "svg"


# --- usage the SDK parses ------------------------------------------------------------------


class _CountingEngine(PlaceholderEngine):
    """The placeholder, reporting token counts as a real SVG author would."""

    def generate(self, job: Job, on_partial: Any = None) -> EngineResult:
        result = super().generate(job, on_partial)
        result.usage = ImagesUsage.model_validate(
            {
                "input_tokens": 10,
                "output_tokens": 20,
                "total_tokens": 30,
                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                "output_tokens_details": {"text_tokens": 4, "image_tokens": 16},
            }
        )
        if job.output_format == "svg":
            result.svg_usage = SvgUsage(
                model=job.svg_model,
                input_tokens=5,
                output_tokens=7,
                reasoning_tokens=3,
                total_tokens=12,
            )
        return result


def test_svg_usage_and_output_token_details_reach_the_sdk() -> None:
    app = create_app(_CountingEngine(), make_settings(api_keys=[KEY]))
    with (
        live_server(app) as base,
        openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0) as sdk,
    ):
        result = sdk.images.generate(
            model="gpt-image-2.5-flare",
            prompt="a logo",
            output_format="svg",
            svg={"model": "gpt-5", "reasoning": {"effort": "low"}},
        )
    assert result.svg_usage is not None
    assert (result.svg_usage.model, result.svg_usage.reasoning_tokens) == ("gpt-5", 3)
    assert result.usage is not None and result.usage.output_tokens_details is not None
    assert result.usage.output_tokens_details.image_tokens == 16


# --- the command line, as a process, against the served process ---------------------------------


def test_the_cli_writes_an_animated_gif_from_the_served_placeholder(
    url: str, tmp_path: Path
) -> None:
    """`imagegen generate "x" -m gpt-image-2.5-sunburst --output-format gif -o a.gif`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "IMAGEGEN_"))}
    env.update(OPENAI_BASE_URL=url + "/v1", OPENAI_API_KEY=KEY)
    done = subprocess.run(
        [sys.executable, "-m", "imagegen", "generate", "x", "-m", "gpt-image-2.5-sunburst"]
        + ["--output-format", "gif", "-o", "a.gif"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "a.gif" and done.stderr == ""
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.format == "GIF" and gif.n_frames == 9 and gif.is_animated
        frames = []
        for index in range(gif.n_frames):
            gif.seek(index)
            frames.append(hashlib.sha256(gif.convert("RGB").tobytes()).digest())
    assert len(set(frames)) == 9
    assert json.loads((tmp_path / "a.gif.json").read_text())["model"] == "gpt-image-2.5-sunburst"
