"""A server that trickles its answer a byte at a time meets the client's deadline, not its own.

`timeout` bounds each attempt as a whole (connect, send, every byte of the answer or stream)
and a call with its retries within `(max_retries + 1) x timeout`. Each server here would keep
the client busy for a minute; `finishes_within` fails the test only if the client waits that
long (a hang), never on how fast it gave up.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from hostile import HostileServer, Request, Send, finishes_within, head, trickle
from scripted import API_KEY, TINY_B64, TINY_PNG

import imagegen
from imagegen._network import install
from imagegen.cli import cli

ANSWER = json.dumps({"created": 1, "data": [{"b64_json": TINY_B64}]}).encode()
HANG = 60.0  # how long each hostile server keeps trickling; the tests allow half of it


def body_trickler(request: Request, send: Send) -> None:
    send(head(length=len(ANSWER)))
    trickle(send, ANSWER, interval=0.2, limit=HANG)


def head_trickler(request: Request, send: Send) -> None:
    trickle(send, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000, interval=0.2, limit=HANG)


def sse_trickler(request: Request, send: Send) -> None:
    send(head(content_type="text/event-stream", length=10_000))
    trickle(send, b":" * 10_000, interval=0.2, limit=HANG)


def image_trickler(request: Request, send: Send) -> None:
    if request.method == "POST":
        url = f"http://{request.headers['host']}/files/slow.png"
        body = json.dumps({"created": 1, "data": [{"url": url}]}).encode()
        send(head(length=len(body)) + body)
        return
    send(head(content_type="image/png", length=len(TINY_PNG)))
    trickle(send, TINY_PNG, interval=0.2, limit=HANG)


@pytest.mark.parametrize("handler", [body_trickler, head_trickler], ids=["body", "head"])
def test_a_trickled_answer_times_out_at_the_deadline(handler: object) -> None:
    with HostileServer(handler) as server:  # type: ignore[arg-type]
        client = imagegen.Client(base_url=server.base_url, timeout=1, max_retries=0)
        with client, pytest.raises(imagegen.APITimeoutError, match="--timeout") as info:
            finishes_within(HANG / 2, lambda: client.generate("a fox"))
    assert API_KEY not in str(info.value)
    assert len(server.requests) == 1


def test_retries_share_one_deadline_for_the_call() -> None:
    """Three attempts of 1 s each at most: the third never starts after the call's 3 s."""
    with HostileServer(body_trickler) as server:
        client = imagegen.Client(base_url=server.base_url, timeout=1, max_retries=2)
        with client, pytest.raises(imagegen.APITimeoutError):
            finishes_within(HANG / 2, lambda: client.generate("a fox"))
    assert 1 <= len(server.requests) <= 3


def test_an_async_client_times_out_at_the_deadline() -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(
            base_url=server.base_url, timeout=1, max_retries=0
        ) as client:
            await client.generate("a fox")

    with HostileServer(body_trickler) as server, pytest.raises(imagegen.APITimeoutError) as info:
        finishes_within(HANG / 2, lambda: asyncio.run(main()))
    # httpx2's async timeouts carry no text: the name is said once ("(ReadTimeout)"), not as
    # "(ReadTimeout: ReadTimeout)".
    assert not re.search(r"\b(\w+): \1\b", str(info.value)), str(info.value)


def test_a_stream_of_keep_alive_comments_ends_at_the_deadline() -> None:
    with HostileServer(sse_trickler) as server:
        client = imagegen.Client(base_url=server.base_url, timeout=1, max_retries=0)
        with client, pytest.raises(imagegen.APITimeoutError):
            finishes_within(HANG / 2, lambda: client.generate("a fox", stream=True).result())


def test_an_async_stream_ends_at_the_deadline() -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(
            base_url=server.base_url, timeout=1, max_retries=0
        ) as client:
            stream = await client.generate("a fox", stream=True)
            await stream.result()

    with HostileServer(sse_trickler) as server, pytest.raises(imagegen.APITimeoutError):
        finishes_within(HANG / 2, lambda: asyncio.run(main()))


def test_a_trickled_download_times_out_and_leaves_no_file(tmp_path: Path) -> None:
    with HostileServer(image_trickler) as server:
        client = imagegen.Client(base_url=server.base_url, timeout=1, max_retries=1)
        with client:
            result = client.generate("a fox", model="dall-e-2", response_format="url")
            with pytest.raises(imagegen.APITimeoutError, match="/files/slow.png"):
                finishes_within(HANG / 2, lambda: result.save(tmp_path / "fox.png"))
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_gives_up_at_its_timeout() -> None:
    with HostileServer(body_trickler) as server:
        args = ["generate", "a fox", "--base-url", server.base_url, "--timeout", "1"]
        result = finishes_within(
            HANG / 2, lambda: CliRunner().invoke(cli, [*args, "--max-retries", "0"])
        )
    assert result.exit_code == 1
    assert "No complete answer" in result.stderr and "--timeout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_timeout_waits_for_a_slow_but_steady_answer() -> None:
    def steady(request: Request, send: Send) -> None:
        send(head(length=len(ANSWER)))
        trickle(send, ANSWER, interval=0.002, limit=HANG)

    with HostileServer(steady) as server:
        client = imagegen.Client(base_url=server.base_url, timeout=None, max_retries=0)
        with client:
            result = finishes_within(HANG / 2, lambda: client.generate("a fox"))
    assert result[0].bytes() == TINY_PNG


def test_every_pool_of_the_clients_own_httpx2_client_gets_the_deadline() -> None:
    """`install` reaches into httpx2's pools: an httpx2 release that moves them fails here."""
    with httpx2.Client(proxy="http://127.0.0.1:9") as proxied, httpx2.Client() as direct:
        assert install(proxied) and install(direct)
