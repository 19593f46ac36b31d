"""`Client(engine="NAME")`: the engine is created at once but loaded by the first request,
once that request has passed every check that needs no weights."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from loading_engine import LoadingEngine
from PIL import Image

import imagegen
import imagegen.engines


@pytest.fixture(autouse=True)
def registered(register_engine: Callable[[str, str], None]) -> Iterator[list[str]]:
    """The test engine, found by name as a built-in one is; yields what it recorded."""
    register_engine("loading", "loading_engine:LoadingEngine")
    LoadingEngine.events.clear()
    yield LoadingEngine.events
    LoadingEngine.events.clear()


def test_a_refused_request_never_loads_the_engine(registered: list[str]) -> None:
    client = imagegen.Client(engine="loading")
    with pytest.raises(imagegen.InvalidRequestError) as caught:
        client.generate("a fox", background="transparent")
    assert caught.value.param == "background"
    client.close()
    assert registered == []  # neither loaded nor closed


def test_the_first_valid_request_loads_once_and_close_releases(registered: list[str]) -> None:
    client = imagegen.Client(engine="loading")
    assert registered == []  # creating the client loads nothing
    first = client.generate("a fox")
    second = client.generate("a cat", size="32x32")
    assert registered == ["load"]
    # `auto` means the loaded model's size, not the one declared before loading.
    assert first[0].to_pil().size == (64, 48)
    assert second[0].to_pil().size == (32, 32)
    client.close()
    assert registered == ["load", "close"]


def test_what_the_loaded_engine_declares_is_checked_after_the_load(
    registered: list[str],
) -> None:
    with (
        imagegen.Client(engine="loading") as client,
        pytest.raises(imagegen.InvalidRequestError) as caught,
    ):
        client.create_variation(Image.new("RGB", (16, 16), "red"))
    assert caught.value.param == "model"
    assert registered == ["load", "close"]


def test_the_async_client_loads_on_its_first_request(registered: list[str]) -> None:
    async def main() -> imagegen.ImagesResult:
        async with imagegen.AsyncClient(engine="loading") as client:
            with pytest.raises(imagegen.InvalidRequestError):
                await client.generate("a fox", background="transparent")
            assert registered == []
            return await client.generate("a fox")

    result = asyncio.run(main())
    assert result[0].to_pil().size == (64, 48)
    assert registered == ["load", "close"]
