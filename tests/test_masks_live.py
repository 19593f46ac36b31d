"""Masks and input names over real HTTP: the official SDK and our client against our server.

The rules themselves are tested in test_imaging.py; here, that the server reads a mask as the
client does (an RGBA mask with no transparent pixel is black and white, white = edit), and that
its messages are the ones an SDK user can act on (no CLI flags, no invented file names).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import openai
import pytest
from PIL import Image

import imagegen
from imagegen.engines import Engine, EngineResult, Job, PartialCallback
from imagegen.server import ServerSettings, create_app
from live import live_server

KEY = "sk-test-masks"


class RecordingEngine(Engine):
    """Returns its inputs untouched and keeps each job, to look at the edit region it got."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[Job] = []

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        raise AssertionError("the mask tests only edit")

    def edit(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        self.jobs.append(job)
        return EngineResult([job.images[0].resize((job.width, job.height))] * job.n)

    def vary(self, job: Job) -> EngineResult:
        raise AssertionError("the mask tests only edit")


@pytest.fixture
def engine() -> RecordingEngine:
    return RecordingEngine()


@pytest.fixture
def server(engine: RecordingEngine) -> Iterator[str]:
    with live_server(create_app(engine, ServerSettings(api_keys=[KEY]))) as url:
        yield url + "/v1"


@pytest.fixture
def sdk(server: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server, api_key=KEY, max_retries=0) as client:
        yield client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def photo(size: tuple[int, int] = (64, 64)) -> bytes:
    return png(Image.new("RGB", size, (200, 40, 40)))


def opaque_bw_mask() -> bytes:
    """Black and white saved as RGBA, alpha 255 everywhere, as editors do: left half white."""
    drawing = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    drawing.paste((255, 255, 255, 255), (0, 0, 32, 64))
    return png(drawing)


def region(engine: RecordingEngine) -> np.ndarray:
    mask = engine.jobs[-1].mask
    assert mask is not None
    return np.asarray(mask)


def test_the_server_reads_an_opaque_rgba_mask_as_black_and_white(
    sdk: openai.OpenAI, engine: RecordingEngine
) -> None:
    sdk.images.edit(
        model="gpt-image-2",
        image=("in.png", photo(), "image/png"),
        mask=("mask.png", opaque_bw_mask(), "image/png"),
        prompt="the sea",
    )
    edited = region(engine)
    assert edited[:, :32].min() == 255 and edited[:, 32:].max() == 0


def test_our_client_sends_the_same_mask_the_server_reads(
    server: str, engine: RecordingEngine
) -> None:
    with imagegen.Client(base_url=server, api_key=KEY, max_retries=0) as client:
        client.edit([photo()], "the sea", mask=opaque_bw_mask(), model="gpt-image-2")
    edited = region(engine)
    assert edited[:, :32].min() == 255 and edited[:, 32:].max() == 0


def test_a_real_alpha_mask_is_still_read_by_its_alpha(
    sdk: openai.OpenAI, engine: RecordingEngine
) -> None:
    drawing = Image.new("RGBA", (64, 64), (255, 255, 255, 255))  # white, but opaque: kept
    drawing.paste((0, 0, 0, 0), (32, 0, 64, 64))
    sdk.images.edit(
        model="gpt-image-2",
        image=("in.png", photo(), "image/png"),
        mask=("mask.png", png(drawing), "image/png"),
        prompt="the sea",
    )
    edited = region(engine)
    assert edited[:, 32:].min() == 255 and edited[:, :32].max() == 0


def test_a_mask_that_marks_nothing_is_a_400_naming_the_mask(
    sdk: openai.OpenAI, engine: RecordingEngine
) -> None:
    black = png(Image.new("RGBA", (64, 64), (0, 0, 0, 255)))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="gpt-image-2",
            image=("in.png", photo(), "image/png"),
            mask=("mask.png", black, "image/png"),
            prompt="the sea",
        )
    error = caught.value
    assert error.param == "mask" and "The mask marks nothing to edit" in error.message
    assert engine.jobs == []


def test_server_messages_name_no_cli_flag_and_no_invented_file_name(
    sdk: openai.OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(model="dall-e-2", image=("in.png", photo(), "image/png"), prompt="x")
    assert caught.value.param == "mask" and "--" not in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.images.edit(
            model="dall-e-2", image=("rect.png", photo((64, 32)), "image/png"), prompt="x"
        )
    assert "64x32" in caught.value.message and "image.png" not in caught.value.message
