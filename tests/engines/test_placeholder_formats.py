"""The placeholder engine's GIFs, SVG documents, markup edits and complexity, through the same
service the server and the in-process client use."""

from __future__ import annotations

import base64
import hashlib
import io
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagegen._errors import InvalidRequestError
from imagegen._imaging import load_input
from imagegen._models import EditRequest, GenerateRequest
from imagegen._service import ImageService
from imagegen.engines import Engine, EngineResult, Job
from imagegen.engines.placeholder import PlaceholderEngine

SERVICE = ImageService(PlaceholderEngine())
SVG_NS = "{http://www.w3.org/2000/svg}"


def generate(**params: Any) -> tuple[list[bytes], dict[str, Any]]:
    params.setdefault("prompt", "A cute baby lion")
    job = SERVICE.prepare("generations", GenerateRequest.build(params))
    response = SERVICE.run(job).to_response()
    return [base64.b64decode(item.b64_json or "") for item in response.data], response.model_dump()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def frames_of(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF"
        found = []
        for index in range(gif.n_frames):
            gif.seek(index)
            found.append(gif.convert("RGBA"))
        return found


def test_a_gif_is_an_animation_whose_frames_all_differ() -> None:
    images, answer = generate(
        model="gpt-image-2.5-sunburst", output_format="gif", size="1024x1024", frame_duration_ms=125
    )
    frames = frames_of(images[0])
    assert len(frames) == 9 and all(frame.size == (1024, 1024) for frame in frames)
    assert len({hashlib.sha256(frame.tobytes()).hexdigest() for frame in frames}) == 9
    with Image.open(io.BytesIO(images[0])) as gif:
        assert gif.info["duration"] == 130 and gif.info["loop"] == 0
    assert (answer["output_format"], answer["size"], answer["background"]) == (
        "gif",
        "1024x1024",
        "opaque",
    )


def test_gif_frames_follow_the_still_image() -> None:
    still = Image.open(io.BytesIO(generate(size="256x256", extra_body=None)[0][0]))
    gif = frames_of(generate(size="256x256", output_format="gif", frame_count=4)[0][0])
    still_rgb = np.asarray(still.convert("RGB"), np.int16)
    for frame in gif:  # a band of light over the same picture: close on average
        assert np.abs(np.asarray(frame.convert("RGB"), np.int16) - still_rgb).mean() < 40


def test_a_transparent_gif_keeps_its_clear_corners_in_every_frame() -> None:
    images, answer = generate(
        output_format="gif", background="transparent", frame_count=3, size="256x256", n=2
    )
    assert len(images) == 2 and answer["background"] == "transparent"
    for frame in frames_of(images[0]):
        assert frame.getpixel((2, 2))[3] == 0 and frame.getpixel((128, 128))[3] == 255


def test_an_svg_is_a_vector_card_of_the_requested_size() -> None:
    images, answer = generate(
        model="gpt-image-2.5-sunburst",
        output_format="svg",
        size="1536x1024",
        prompt="A lion & a <mouse>",
        svg={"model": "gpt-5", "reasoning": {"effort": "high"}},
    )
    root = ET.fromstring(images[0])
    assert root.tag == SVG_NS + "svg"
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        "1536",
        "1024",
        "0 0 1536 1024",
    )
    assert root.find(f"{SVG_NS}defs/{SVG_NS}linearGradient") is not None
    words = " ".join("".join(text.itertext()) for text in root.iter(SVG_NS + "text"))
    assert "A lion & a <mouse>" in words and "1536 x 1024" in words
    assert root.findtext(SVG_NS + "title") == "A lion & a <mouse>"
    assert answer["output_format"] == "svg" and answer.get("svg_usage") is None


def test_a_transparent_svg_has_no_background_and_complexity_adds_glows() -> None:
    clear = ET.fromstring(generate(output_format="svg", background="transparent")[0][0])
    full = [rect for rect in clear.iter(SVG_NS + "rect") if rect.get("x") is None]
    assert full == [] and not list(clear.iter(SVG_NS + "circle"))
    counts = {
        level: len(list(ET.fromstring(generate(output_format="svg", complexity=level)[0][0])
                        .iter(SVG_NS + "circle")))
        for level in ("low", "medium", "high")
    }  # fmt: skip
    assert counts == {"low": 2, "medium": 4, "high": 7}


def test_complexity_changes_the_picture_and_nothing_else() -> None:
    seeds = {"extra_body": None}
    low = generate(complexity="low", size="256x256", **seeds)[0][0]
    again = generate(complexity="low", size="256x256", **seeds)[0][0]
    high = generate(complexity="high", size="256x256", **seeds)[0][0]
    default = generate(size="256x256", **seeds)[0][0]
    medium = generate(complexity="medium", size="256x256", **seeds)[0][0]
    assert low == again and low != high and default == medium


def edit(source: Image.Image, **params: Any) -> list[bytes]:
    markup = params.pop("markup", None)
    params.setdefault("prompt", "A red hat")
    params.setdefault("model", "gpt-image-2.5-flare")
    job = SERVICE.prepare(
        "edits",
        EditRequest(**params),
        [load_input(png(source))],
        None,
        load_input(png(markup), param="markup") if markup is not None else None,
    )
    return [base64.b64decode(item.b64_json or "") for item in SERVICE.run(job).to_response().data]


def test_a_markup_edit_changes_the_drawn_area_and_keeps_the_rest() -> None:
    source = Image.new("RGB", (200, 160), (30, 140, 90))
    markup = Image.new("RGBA", source.size, (0, 0, 0, 0))
    ImageDraw.Draw(markup).ellipse((120, 20, 180, 80), outline=(255, 0, 0, 255), width=4)
    out = Image.open(io.BytesIO(edit(source, markup=markup)[0])).convert("RGB")
    assert out.getpixel((10, 150)) == (30, 140, 90)  # far from the drawing: as it was
    assert out.getpixel((150, 50)) != (30, 140, 90)  # inside the circle: edited
    assert out.getpixel((150, 21)) != (255, 0, 0)  # the strokes guide; they are not pasted


def test_edits_come_as_gif_and_svg_too() -> None:
    source = Image.new("RGB", (96, 64), (200, 120, 40))
    frames = frames_of(edit(source, output_format="gif", frame_count=5)[0])
    assert len(frames) == 5 and frames[0].size == (96, 64)
    root = ET.fromstring(edit(source, output_format="svg")[0])
    image = root.find(SVG_NS + "image")
    assert image is not None and (root.get("width"), root.get("height")) == ("96", "64")
    embedded = base64.b64decode((image.get("href") or "").split(",", 1)[1])
    assert Image.open(io.BytesIO(embedded)).size == (96, 64)


class _StillsOnly(Engine):
    """An engine written before GIF, SVG and markups: it declares none of them."""

    name = "stills"

    def generate(self, job: Job, on_partial: Any = None) -> EngineResult:
        return EngineResult([Image.new("RGB", (job.width, job.height))] * job.n)

    edit = generate

    def vary(self, job: Job) -> EngineResult:
        return self.generate(job)


@pytest.mark.parametrize(
    ("fmt", "markup", "param", "words"),
    [
        ("gif", False, "output_format", "does not make gif images"),
        ("svg", False, "output_format", "use output_format jpeg, png, webp"),
        ("png", True, "markup", "does not read a markup"),
    ],
)
def test_an_engine_is_never_asked_for_what_it_does_not_declare(
    fmt: str, markup: bool, param: str, words: str
) -> None:
    service = ImageService(_StillsOnly())
    drawn = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    drawn.putpixel((3, 3), (255, 0, 0, 255))
    with pytest.raises(InvalidRequestError) as caught:
        service.prepare(
            "edits",
            EditRequest(prompt="x", model="gpt-image-2.5-flare", output_format=fmt),
            [load_input(png(Image.new("RGB", (32, 32))))],
            None,
            load_input(png(drawn), param="markup") if markup else None,
        )
    assert caught.value.param == param and words in caught.value.message
