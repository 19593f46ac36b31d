"""AsyncClient does what Client does: same wire form, checks, retries, errors and results."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
from scripted import API_KEY, TINY_PNG, Reply, ScriptedServer, image_bytes, images_body

import imagegen
import imagegen._retry

T = TypeVar("T")


def run(
    server: ScriptedServer, body: Callable[[imagegen.AsyncClient], Awaitable[T]], **options: Any
) -> tuple[T, list[float]]:
    """Run `body` with an AsyncClient for the scripted server; return its value and the waits."""
    waits: list[float] = []

    async def main() -> T:
        options.setdefault("base_url", server.base_url)
        options.setdefault("api_key", API_KEY)

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        with mock.patch.object(imagegen._retry, "apause", sleep):
            async with imagegen.AsyncClient(**options) as client:
                return await body(client)

    return asyncio.run(main()), waits


def test_generate_sends_the_same_json(server: ScriptedServer) -> None:
    result, _ = run(server, lambda c: c.generate("a fox", n=2, size="1024x1536", quality="low"))
    assert isinstance(result, imagegen.ImagesResult)
    assert server.last.json() == {
        "prompt": "a fox",
        "model": "gpt-image-2",
        "n": 2,
        "size": "1024x1536",
        "quality": "low",
    }
    assert server.last.headers["authorization"] == f"Bearer {API_KEY}"
    assert result[0].bytes() == TINY_PNG


def test_input_images_are_read_off_the_event_loop(
    server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagegen import _request

    on_loop: list[bool] = []
    real = _request.load_input

    def recording(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(*args, **kwargs)

    monkeypatch.setattr(_request, "load_input", recording)
    picture = tmp_path / "in.png"
    picture.write_bytes(image_bytes(size=(256, 256)))

    async def body(client: imagegen.AsyncClient) -> None:
        await client.edit(picture, "a hat", mask=image_bytes(size=(256, 256), mode="L", color=255))
        await client.create_variation(picture)

    run(server, body)
    assert on_loop == [False, False, False]


def test_edit_and_variation_are_multipart(server: ScriptedServer) -> None:
    async def body(client: imagegen.AsyncClient) -> None:
        await client.edit([image_bytes("JPEG"), image_bytes("WEBP")], "merge", mask=None)
        await client.create_variation(image_bytes(), n=2)

    run(server, body)
    edit, variation = server.requests
    assert [p.name for p in edit.files()] == ["image[]", "image[]"]
    assert [p.content_type for p in edit.files()] == ["image/jpeg", "image/webp"]
    assert variation.path == "/v1/images/variations"
    assert variation.fields() == {"model": "dall-e-2", "n": "2"}


def test_validation_happens_before_sending(server: ScriptedServer) -> None:
    with pytest.raises(imagegen.InvalidRequestError) as info:
        run(server, lambda c: c.generate("a fox", size="1000x1000"))
    assert info.value.param == "size"
    assert server.requests == []


def test_retries_with_retry_after(server: ScriptedServer) -> None:
    error = {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    server.script(Reply(status=429, json=error, headers={"retry-after-ms": "30"}))
    result, waits = run(server, lambda c: c.generate("a fox"))
    assert len(result) == 1
    assert waits == [0.03]
    assert len(server.requests) == 2


def test_errors_and_timeouts(server: ScriptedServer) -> None:
    server.script(Reply(status=401, json={"error": {"message": "bad key"}}))
    with pytest.raises(imagegen.AuthenticationError):
        run(server, lambda c: c.generate("a fox"))
    server.script(Reply(delay=1.0))
    with pytest.raises(imagegen.APITimeoutError):
        run(server, lambda c: c.generate("a fox"), timeout=0.2, max_retries=0)


def test_url_results_download_with_the_client_settings(
    server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(
        Reply(json=images_body(data=[{"url": f"{server.url}/files/a.png"}])),
        Reply(body=TINY_PNG, content_type="image/png"),
    )
    result, _ = run(
        server,
        lambda c: c.generate("a fox", model="dall-e-2", response_format="url"),
        default_headers={"X-Team": "imaging"},
    )
    assert isinstance(result, imagegen.ImagesResult)
    [path] = result.save(tmp_path / "a.png")
    assert path.exists()
    assert server.last.path == "/files/a.png"
