"""Streams: SSE parsing, partial and completed events, errors, saving and closing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from scripted import API_KEY, TINY_B64, Reply, ScriptedServer, image_bytes

import imagegen
from imagegen._streaming import SSEDecoder, StreamContext, iter_events

PARTIAL = "image_generation.partial_image"
COMPLETED = "image_generation.completed"


def _partial(index: int, kind: str = PARTIAL) -> dict[str, Any]:
    return {
        "type": kind,
        "b64_json": TINY_B64,
        "created_at": 1_790_000_000,
        "size": "1024x1024",
        "quality": "low",
        "background": "opaque",
        "output_format": "png",
        "partial_image_index": index,
    }


def _completed(kind: str = COMPLETED, tokens: int = 0) -> dict[str, Any]:
    event = {k: v for k, v in _partial(0, kind).items() if k != "partial_image_index"}
    if tokens:
        event["usage"] = {
            "input_tokens": tokens,
            "output_tokens": tokens,
            "total_tokens": 2 * tokens,
            "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0},
        }
    return event


def test_partial_and_completed_events(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(Reply(sse=[_partial(0), _partial(1), _completed(tokens=5), "data: [DONE]\n\n"]))
    with client.generate("a fox", partial_images=2) as stream:
        assert isinstance(stream, imagegen.ImageStream)
        events = list(stream)
    assert [e.type for e in events] == [PARTIAL, PARTIAL, COMPLETED]
    assert [e.is_partial for e in events] == [True, True, False]
    assert [e.partial_image_index for e in events] == [0, 1, None]
    assert events[2].usage is not None and events[2].usage.total_tokens == 10
    assert events[0].bytes() == image_bytes(size=(8, 8), color=(200, 30, 30))
    assert events[1].to_pil().size == (8, 8)
    assert server.last.json() == {
        "prompt": "a fox",
        "model": "gpt-image-2",
        "partial_images": 2,
        "stream": True,
    }


def test_result_collects_completed_images(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(Reply(sse=[_partial(0), _completed(tokens=3), _completed(tokens=4)]))
    stream = client.generate("a fox", n=2, stream=True)
    assert isinstance(stream, imagegen.ImageStream)
    first = next(iter(stream))
    assert first.is_partial
    result = stream.result()
    assert len(result) == 2
    assert (result.size, result.quality, result.output_format) == ("1024x1024", "low", "png")
    assert result.usage is not None and result.usage.total_tokens == 14
    assert (result.request_id, result.prompt) == ("req_1", "a fox")


def test_edit_events(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(
        Reply(sse=[_partial(0, "image_edit.partial_image"), _completed("image_edit.completed")])
    )
    stream = client.edit(image_bytes(), "a hat", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    assert [e.type for e in stream] == ["image_edit.partial_image", "image_edit.completed"]


def test_save_names_partials_and_finals(
    client: imagegen.Client, server: ScriptedServer, tmp_path: Path
) -> None:
    server.script(Reply(sse=[_partial(0), _partial(1), _completed(), _completed()]))
    stream = client.generate("a fox", n=2, partial_images=2)
    assert isinstance(stream, imagegen.ImageStream)
    paths = stream.save(tmp_path / "fox.png")
    assert [p.name for p in paths] == [
        "fox.partial-0.png",
        "fox.partial-1.png",
        "fox.png",
        "fox-1.png",
    ]
    assert Image.open(paths[2]).text["prompt"] == "a fox"


def test_unknown_events_and_comments_are_skipped(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(
        Reply(
            sse=[
                ": keep-alive\n\n",
                {"type": "image_generation.progress", "percent": 50},
                'event: image_generation.completed\ndata: {"type": "image_generation.completed",\n'
                f'data: "b64_json": "{TINY_B64}"}}\n\n',
            ]
        )
    )
    stream = client.generate("a fox", stream=True)
    assert isinstance(stream, imagegen.ImageStream)
    assert [e.type for e in stream] == [COMPLETED]


@pytest.mark.parametrize(
    ("error", "error_class"),
    [
        ({"code": "moderation_blocked", "message": "rejected"}, imagegen.ContentPolicyError),
        ({"type": "server_error", "message": "engine crashed"}, imagegen.InternalServerError),
        ("plain text failure", imagegen.InternalServerError),
    ],
)
def test_an_error_event_raises(
    client: imagegen.Client,
    server: ScriptedServer,
    error: Any,
    error_class: type[imagegen.APIStatusError],
) -> None:
    server.script(Reply(sse=[_partial(0), {"error": error}]))
    stream = client.generate("a fox", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    events = iter(stream)
    assert next(events).is_partial
    with pytest.raises(error_class) as info:
        next(events)
    assert info.value.request_id == "req_1"


def test_error_event_messages_are_redacted() -> None:
    lines = [f'data: {{"error": {{"message": "bad key {API_KEY}"}}}}', ""]
    with pytest.raises(imagegen.APIStatusError) as info:
        list(iter_events(lines, StreamContext(secrets=(API_KEY,))))
    assert API_KEY not in str(info.value)


def test_malformed_event_data(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(Reply(sse=["data: {not json\n\n"]))
    stream = client.generate("a fox", stream=True)
    assert isinstance(stream, imagegen.ImageStream)
    with pytest.raises(imagegen.APIResponseError, match="not JSON"):
        list(stream)


def test_sse_decoder_follows_the_format() -> None:
    decoder = SSEDecoder()
    lines = ["event: x", "data: a", "data:b", "id: 7", ": comment", "", "", "data: c"]
    messages = [m for line in lines if (m := decoder.feed(line)) is not None]
    assert [(m.event, m.data) for m in messages] == [("x", "a\nb")]
    last = decoder.flush()
    assert last is not None and (last.event, last.data) == (None, "c")


def test_done_ends_the_stream_even_if_more_follows() -> None:
    lines = ["data: [DONE]", "", f'data: {{"type": "{COMPLETED}", "b64_json": "x"}}', ""]
    assert list(iter_events(lines, StreamContext())) == []


def test_closing_a_stream_closes_the_connection(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(sse=[_partial(0)], sse_forever=True))
    stream = client.generate("a fox", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    with stream:
        assert next(iter(stream)).is_partial
    assert server.disconnected.wait(5)
    assert list(stream) == []


def test_a_closed_unread_stream_closes_the_connection(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    server.script(Reply(sse=[_partial(0)], sse_forever=True))
    stream = client.generate("a fox", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    stream.close()
    assert server.disconnected.wait(5)


def test_a_server_that_cannot_stream_answers_json(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    stream = client.generate("a fox", stream=True)
    assert isinstance(stream, imagegen.ImageStream)
    [event] = list(stream)
    assert event.type == COMPLETED and not event.is_partial


def test_events_arrive_as_they_are_sent(client: imagegen.Client, server: ScriptedServer) -> None:
    server.script(Reply(sse=[_partial(0), _completed()], sse_delay=0.5))
    start = time.monotonic()
    stream = client.generate("a fox", partial_images=1)
    assert isinstance(stream, imagegen.ImageStream)
    events = iter(stream)
    next(events)
    first = time.monotonic() - start
    list(events)
    assert first < time.monotonic() - start  # the first event did not wait for the last


def test_async_stream(server: ScriptedServer, tmp_path: Path) -> None:
    server.script(
        Reply(sse=[_partial(0), _completed(tokens=2)]),
        Reply(sse=[_partial(0), _completed()]),
        Reply(sse=[_partial(0)], sse_forever=True),
    )

    async def main() -> None:
        async with imagegen.AsyncClient(base_url=server.base_url, api_key=API_KEY) as client:
            stream = await client.generate("a fox", partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            async with stream:
                kinds = [event.type async for event in stream]
            assert kinds == [PARTIAL, COMPLETED]
            assert stream.completed[0].usage is not None

            stream = await client.generate("a fox", partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            paths = await stream.save(tmp_path / "fox.png")
            assert [p.name for p in paths] == ["fox.partial-0.png", "fox.png"]

            stream = await client.generate("a fox", partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            assert (await stream.__anext__()).is_partial
            await stream.aclose()

    asyncio.run(main())
    assert server.disconnected.wait(5)


def test_an_async_stream_left_with_break_is_closed_with_its_client(
    server: ScriptedServer,
) -> None:
    """`break` out of `async for` leaves the stream's generators suspended; closing the client
    closes the stream first, in order, so asyncio does not close the chain all at once at exit
    ("an error occurred during closing of asynchronous generator ... already running")."""
    server.script(Reply(sse=[_partial(0)], sse_forever=True))
    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx))
        async with imagegen.AsyncClient(base_url=server.base_url, api_key=API_KEY) as client:
            stream = await client.generate("a fox", partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            async for event in stream:
                assert event.is_partial
                break
        assert stream.closed

    asyncio.run(main())
    assert [ctx["message"] for ctx in reported] == []
    assert server.disconnected.wait(5)


def test_async_result_and_error(server: ScriptedServer) -> None:
    server.script(
        Reply(sse=[_partial(0), _completed(), _completed()]),
        Reply(sse=[{"error": {"code": "moderation_blocked", "message": "no"}}]),
    )

    async def main() -> None:
        async with imagegen.AsyncClient(base_url=server.base_url) as client:
            stream = await client.generate("a fox", n=2, partial_images=1)
            assert isinstance(stream, imagegen.AsyncImageStream)
            assert len(await stream.result()) == 2
            stream = await client.generate("a fox", stream=True)
            assert isinstance(stream, imagegen.AsyncImageStream)
            with pytest.raises(imagegen.ContentPolicyError):
                await stream.result()

    asyncio.run(main())
