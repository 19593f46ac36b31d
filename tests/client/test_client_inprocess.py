"""In-process engines: the same checks and results as over HTTP, without a server."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from scripted import image_bytes

import imagegen
from imagegen import Engine, EngineResult, Job
from imagegen._capabilities import ModelCapabilities


class SolidEngine(Engine):
    """Paints each image one flat color; reports partial images on the way."""

    name: ClassVar[str] = "solid"
    jobs: list[Job]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.jobs = []
        self.closed = False

    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="solid-1", max_n=4)]

    def _paint(self, job: Job, on_partial: object = None) -> EngineResult:
        self.jobs.append(job)
        images = []
        for index in range(job.n):
            image = Image.new("RGB", (job.width, job.height), (index * 40, 100, 200))
            for step in range(job.partial_images):
                if callable(on_partial):
                    on_partial(index, step, image)
            images.append(image)
        return EngineResult(images=images)

    def generate(self, job: Job, on_partial: object = None) -> EngineResult:  # type: ignore[override]
        return self._paint(job, on_partial)

    def edit(self, job: Job, on_partial: object = None) -> EngineResult:  # type: ignore[override]
        return self._paint(job, on_partial)

    def vary(self, job: Job) -> EngineResult:
        return self._paint(job)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engine() -> SolidEngine:
    return SolidEngine()


def test_generate_uses_the_engine_model_and_returns_a_result(
    engine: SolidEngine, tmp_path: Path
) -> None:
    client = imagegen.Client(engine=engine)
    result = client.generate("a fox", n=2, size="64x32")
    assert isinstance(result, imagegen.ImagesResult)
    assert (result.model, result.prompt, len(result)) == ("solid-1", "a fox", 2)
    assert result[1].to_pil().getpixel((0, 0)) == (40, 100, 200)
    assert [p.name for p in result.save(tmp_path / "fox.png")] == ["fox.png", "fox-1.png"]
    assert engine.jobs[0].prompt == "a fox"
    assert repr(client) == "Client(engine='solid')"
    client.close()
    assert not engine.closed  # an engine passed in belongs to the caller


def test_checks_come_from_the_engine_declaration(engine: SolidEngine) -> None:
    client = imagegen.Client(engine=engine)
    with pytest.raises(imagegen.InvalidRequestError) as info:
        client.generate("a fox", n=5)
    assert info.value.param == "n"
    with pytest.raises(imagegen.InvalidRequestError) as info:
        client.generate("a fox", model="dall-e-3", size="64x64")
    assert info.value.param == "size"
    assert engine.jobs == []


def test_an_unknown_model_is_refused_before_the_engine_runs(engine: SolidEngine) -> None:
    """As the server refuses it (404 model_not_found), with OpenAI's words."""
    client = imagegen.Client(engine=engine)
    calls = [
        lambda: client.generate("a fox", model="nope", size="32x32"),
        lambda: client.edit(image_bytes(size=(32, 32)), "a hat", model="nope"),
        lambda: client.create_variation(image_bytes(size=(32, 32)), model="nope"),
    ]
    for call in calls:
        with pytest.raises(imagegen.InvalidRequestError) as info:
            call()
        assert (info.value.param, info.value.code) == ("model", "model_not_found")
        assert "The model `nope` does not exist" in info.value.message
    assert engine.jobs == []
    # The engine's own model and OpenAI's names are known.
    client.generate("a fox", model="solid-1", size="32x32")
    client.generate("a fox", model="gpt-image-2", size="1024x1024")
    assert [job.model for job in engine.jobs] == ["solid-1", "gpt-image-2"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_unknown_model_with_an_engine_by_name(stream: bool) -> None:
    with imagegen.Client(engine="placeholder") as client:
        with pytest.raises(imagegen.InvalidRequestError) as info:
            client.generate("a fox", model="nope", size="32x32", stream=stream)
        assert info.value.code == "model_not_found"


def test_edit_with_mask_and_variation(engine: SolidEngine) -> None:
    client = imagegen.Client(engine=engine)
    mask = Image.new("L", (48, 48), 0)
    mask.paste(255, (0, 0, 24, 48))
    client.edit(
        image_bytes(size=(48, 48)), "a hat", mask=mask, size="48x48", extra_body={"seed": 3}
    )
    job = engine.jobs[-1]
    assert (job.width, job.height, job.seed) == (48, 48, 3)
    assert job.mask is not None and job.mask.getpixel((5, 5)) == 255
    assert job.mask.getpixel((40, 5)) == 0
    client.create_variation(image_bytes(size=(48, 48)), n=2)
    assert engine.jobs[-1].endpoint == "variations"


def test_url_format_returns_base64_with_a_warning(
    engine: SolidEngine, caplog: pytest.LogCaptureFixture
) -> None:
    client = imagegen.Client(engine=engine)
    with caplog.at_level(logging.WARNING, logger="imagegen"):
        result = client.generate("a fox", model="dall-e-2", response_format="url", size="256x256")
    assert result[0].b64_json is not None and result[0].url is None
    assert "in-process engine" in caplog.text


def test_stream_yields_partials_then_completed(engine: SolidEngine, tmp_path: Path) -> None:
    client = imagegen.Client(engine=engine)
    stream = client.generate("a fox", size="32x32", partial_images=2)
    assert isinstance(stream, imagegen.ImageStream)
    paths = stream.save(tmp_path / "fox.png")
    assert [p.name for p in paths] == ["fox.partial-0.png", "fox.partial-1.png", "fox.png"]


def test_async_client_in_process(engine: SolidEngine) -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(engine=engine) as client:
            result = await client.generate("a fox", size="32x32")
            assert isinstance(result, imagegen.ImagesResult) and len(result) == 1
            stream = await client.generate("a fox", size="32x32", partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            kinds = [event.is_partial async for event in stream]
            assert kinds == [True, False]
            variation = await client.create_variation(image_bytes(size=(32, 32)))
            assert len(variation) == 1

    asyncio.run(main())


def test_an_engine_failure_is_an_engine_error(engine: SolidEngine) -> None:
    def broken(job: Job, on_partial: object = None) -> EngineResult:
        raise RuntimeError("out of paint")

    engine.generate = broken  # type: ignore[method-assign]
    with pytest.raises(imagegen.EngineError, match="out of paint"):
        imagegen.Client(engine=engine).generate("a fox", size="32x32")


def test_placeholder_engine_by_name(tmp_path: Path) -> None:
    with imagegen.Client(engine="placeholder") as client:
        result = client.generate("a lighthouse", size="256x256")
        [path] = result.save(tmp_path / "lighthouse.png")
    with Image.open(path) as saved:
        assert saved.size == (256, 256)
        assert saved.text["prompt"] == "a lighthouse"


def test_engine_options_need_an_engine_name(engine: SolidEngine) -> None:
    with pytest.raises(imagegen.ConfigurationError, match="engine_model"):
        imagegen.Client(engine=engine, engine_model="x")


def test_in_process_images_stay_the_bytes_the_engine_encoded(tmp_path: Path) -> None:
    """No base64 on the way: the result holds the engine's bytes, and makes base64 only when
    `b64_json` or the wire body is asked for."""
    with imagegen.Client(engine="placeholder") as client:
        result = client.generate("a fox", size="256x256", n=2)
    image = result[0]
    assert image.data.b64_json is None  # nothing encoded yet
    data = image.bytes()
    assert data.startswith(b"\x89PNG") and Image.open(io.BytesIO(data)).size == (256, 256)
    assert image.data.b64_json is None
    assert result[1].save(tmp_path / "fox.png", metadata=False).read_bytes() == result[1].bytes()
    body = result.response  # the wire body, as a server would have sent it
    assert all(item.b64_json for item in body.data)
    assert base64.b64decode(body.data[0].b64_json or "") == data
    assert image.b64_json == body.data[0].b64_json


def test_in_process_calls_are_checked_as_over_http() -> None:
    """The request model reaches the engine as the caller built it: a value of the wrong type
    is refused with the words an HTTP client uses, not converted."""
    with (
        imagegen.Client(engine="placeholder") as client,
        pytest.raises(imagegen.InvalidRequestError) as caught,
    ):
        client.generate("a fox", n="2")  # type: ignore[call-overload]
    assert caught.value.param == "n"
    assert caught.value.message.startswith("Invalid n '2': must be a whole number from 1 to")
