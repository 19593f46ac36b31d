"""Answers, stream lines and downloads larger than their limits are cut off while being read.

Each hostile server offers far more than the limit (hundreds of MB, sent only as far as the
client reads); the client stops at the limit with an `APIResponseError` naming the setting
that raises it. `bench/client_limits.py` measures the memory this saves.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile import HostileServer, Request, Send, finishes_within, head, repeated, send_chunked
from scripted import TINY_PNG, Reply, ScriptedServer

import imagegen
from imagegen._config import DEFAULT_MAX_IMAGE_SIZE, DEFAULT_MAX_RESPONSE_SIZE, MiB
from imagegen._streaming import iter_lines
from imagegen.cli import cli

HUGE = 300 * MiB  # offered, never sent whole: the client stops reading at its limit


def huge_json(request: Request, send: Send) -> None:
    """An Images API answer whose base64 goes on for 300 MB, chunked (no length declared)."""
    if not send(head()):
        return
    parts = [b'{"created": 1, "data": [{"b64_json": "', *repeated(b"QUFB", HUGE), b'"}]}']
    send_chunked(send, parts)


def huge_declared(request: Request, send: Send) -> None:
    """A Content-Length of 600 MB: refused before a byte of the body is read."""
    send(head(length=600 * MiB) + b'{"created": 1, "data": [')


def huge_sse_line(request: Request, send: Send) -> None:
    if not send(head(content_type="text/event-stream")):
        return
    send_chunked(send, [b"data: ", *repeated(b"A", HUGE), b"\n\n"])


def test_the_default_limits_fit_ten_4k_images() -> None:
    """gpt-image-2's largest PNG, 3840x2160 RGBA noise (which PNG cannot compress), fits the
    image limit; ten of them in base64 fit the answer limit."""
    four_k_png = 3840 * 2160 * 4
    assert four_k_png < DEFAULT_MAX_IMAGE_SIZE
    assert 10 * four_k_png * 4 // 3 < DEFAULT_MAX_RESPONSE_SIZE


@pytest.mark.parametrize("handler", [huge_json, huge_declared], ids=["chunked", "declared"])
def test_an_answer_over_the_limit_is_refused(handler: object) -> None:
    with HostileServer(handler) as server:  # type: ignore[arg-type]
        client = imagegen.Client(base_url=server.base_url, max_response_size=4 * MiB)
        with client, pytest.raises(imagegen.APIResponseError) as info:
            finishes_within(60, lambda: client.generate("a fox"))
    message = str(info.value)
    assert "larger than 4 MiB" in message and "max_response_size" in message
    assert len(server.requests) == 1  # not retried: it would be as large again


def test_an_async_answer_over_the_limit_is_refused() -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(
            base_url=server.base_url, max_response_size=4 * MiB
        ) as client:
            await client.generate("a fox")

    with HostileServer(huge_json) as server, pytest.raises(imagegen.APIResponseError):
        finishes_within(60, lambda: asyncio.run(main()))


def test_a_stream_line_over_one_image_is_refused() -> None:
    with HostileServer(huge_sse_line) as server:
        client = imagegen.Client(base_url=server.base_url, max_image_size=2 * MiB)
        with client, pytest.raises(imagegen.APIResponseError) as info:
            finishes_within(60, lambda: client.generate("a fox", stream=True).result())
    assert "max_image_size" in str(info.value) and "--max-image-mb" in str(info.value)


def test_an_async_stream_line_over_one_image_is_refused() -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(base_url=server.base_url, max_image_size=2 * MiB) as client:
            stream = await client.generate("a fox", stream=True)
            await stream.result()

    with HostileServer(huge_sse_line) as server, pytest.raises(imagegen.APIResponseError):
        finishes_within(60, lambda: asyncio.run(main()))


def test_an_event_of_many_data_lines_is_held_to_the_same_limit() -> None:
    def many_lines(request: Request, send: Send) -> None:
        if send(head(content_type="text/event-stream")):
            send_chunked(send, [*repeated(b"data: " + b"A" * 1000 + b"\n", HUGE), b"\n"])

    with HostileServer(many_lines) as server:
        client = imagegen.Client(base_url=server.base_url, max_image_size=1 * MiB)
        with client, pytest.raises(imagegen.APIResponseError, match="max_image_size"):
            finishes_within(60, lambda: client.generate("a fox", stream=True).result())


def test_a_download_over_the_image_limit_is_refused_and_leaves_no_file(
    make_client: object, server: ScriptedServer, tmp_path: Path
) -> None:
    picture = TINY_PNG + b"\0" * (3 * MiB)
    server.script(
        Reply(json={"created": 1, "data": [{"url": f"{server.url}/files/big.png"}]}),
        Reply(body=picture, content_type="image/png"),
    )
    client = make_client(max_image_size=2 * MiB)  # type: ignore[operator]
    result = client.generate("a fox", model="dall-e-2", response_format="url")
    with pytest.raises(imagegen.APIResponseError, match=r"image at .*/files/big.png"):
        result.save(tmp_path / "fox.png")
    assert list(tmp_path.iterdir()) == []


def test_a_large_answer_within_the_limit_is_read_whole(
    client: imagegen.Client, server: ScriptedServer
) -> None:
    picture = TINY_PNG + b"\0" * (12 * MiB)  # a PNG with 12 MB of trailing bytes
    server.script(
        Reply(json={"created": 1, "data": [{"b64_json": base64.b64encode(picture).decode()}]})
    )
    assert client.generate("a fox")[0].bytes() == picture


def test_no_limit_reads_past_the_default(server: ScriptedServer, make_client: object) -> None:
    body = {"created": 1, "data": [{"b64_json": base64.b64encode(TINY_PNG).decode()}]}
    padded = json.dumps(body).encode()[:-1] + b" " * (2 * MiB) + b"}"
    server.script(Reply(body=padded, content_type="application/json"))
    client = make_client(max_response_size=None)  # type: ignore[operator]
    assert client.generate("a fox")[0].bytes() == TINY_PNG


@pytest.mark.parametrize("value", [0, -1, 1.5, "big", True])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(value: object) -> None:
    with pytest.raises(imagegen.ConfigurationError, match="max_image_size"):
        imagegen.Client(base_url="http://127.0.0.1:9/v1", max_image_size=value)  # type: ignore[arg-type]


def test_the_command_line_names_its_flag() -> None:
    with HostileServer(huge_json) as server:
        args = ["generate", "a fox", "--base-url", server.base_url, "--max-response-mb", "2"]
        result = finishes_within(60, lambda: CliRunner().invoke(cli, args))
    assert result.exit_code == 1
    assert "--max-response-mb" in result.stderr and "larger than 2 MiB" in result.stderr
    assert "max_response_size" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_lines_are_split_the_same_wherever_the_chunks_break() -> None:
    """`\r\n`, `\n` and `\r` end lines (as SSE says), even with a `\r\n` split between two
    chunks or a chunk holding nothing but a line ending."""
    body = b"event: a\r\ndata: 1\r\n\r\ndata: 2\n\ndata: 3\r\rdata: \xc3\xa9\r\n"
    expected = ["event: a", "data: 1", "", "data: 2", "", "data: 3", "", "data: é"]
    for first in range(len(body) + 1):
        for second in range(first, len(body) + 1):
            chunks = [body[:first], body[first:second], body[second:]]
            assert list(iter_lines(chunks)) == expected, (first, second)
    assert list(iter_lines([b"a\r", b"\n", b"\n", b"b"])) == ["a", "", "b"]


def test_a_line_is_held_to_its_limit_across_chunks() -> None:
    with pytest.raises(imagegen.APIResponseError, match="more than one image takes"):
        list(iter_lines([b"data: " + b"A" * 600, b"A" * 600, b"\n"], limit=1000))
    assert list(iter_lines([b"A" * 500, b"A" * 500, b"\n"], limit=1000)) == ["A" * 1000]
