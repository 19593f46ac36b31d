"""Proxies: the `proxy` argument and HTTP(S)_PROXY / NO_PROXY reach httpx2.

The scripted server records requests in absolute form (`POST http://host/path`), which is what
a client sends to a forward proxy, and then answers them itself: a recording proxy.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from scripted import API_KEY, ScriptedServer

import imagegen

TARGET = "http://images.invalid/v1"


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_proxy_argument(server: ScriptedServer) -> None:
    with imagegen.Client(base_url=TARGET, api_key=API_KEY, proxy=server.url) as client:
        result = client.generate("a fox")
    sent = server.last
    assert sent.target == TARGET + "/images/generations"
    assert sent.headers["host"] == "images.invalid"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert len(result) == 1


def test_proxy_from_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", server.url)
    with imagegen.Client(base_url=TARGET, max_retries=0) as client:
        client.generate("a fox")
    assert server.last.target == TARGET + "/images/generations"


def test_no_proxy_is_honoured(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with imagegen.Client(base_url=server.base_url, max_retries=0) as client:
        client.generate("a fox")
    assert server.last.target == "/v1/images/generations"


def test_a_dead_proxy_is_blamed_not_the_server(server: ScriptedServer) -> None:
    port = _dead_port()
    proxy = f"http://user:proxy-pass-31@127.0.0.1:{port}"
    client = imagegen.Client(base_url=server.base_url, proxy=proxy, max_retries=0)
    with client, pytest.raises(imagegen.APIConnectionError) as info:
        client.generate("a fox")
    message = str(info.value)
    assert message.startswith(
        f"Could not reach the proxy http://user:***@127.0.0.1:{port} (--proxy)"
    )
    assert f"on the way to {server.base_url}/images/generations" in message
    assert "proxy-pass-31" not in message
    assert server.requests == []


def test_a_dead_proxy_from_the_environment_is_named(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _dead_port()
    monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{port}")  # httpx2 reads a bare host as http://

    async def main() -> BaseException:
        async with imagegen.AsyncClient(base_url=TARGET, max_retries=0) as client:
            with pytest.raises(imagegen.APIConnectionError) as info:
                await client.generate("a fox")
            return info.value

    error = asyncio.run(main())
    assert f"the proxy http://127.0.0.1:{port} (HTTP_PROXY)" in str(error)


def test_a_server_bypassing_the_proxy_is_blamed_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    target = f"http://127.0.0.1:{_dead_port()}/v1"
    client = imagegen.Client(base_url=target, max_retries=0)
    with client, pytest.raises(imagegen.APIConnectionError, match=f"^Could not talk to {target}"):
        client.generate("a fox")


def test_a_proxy_refusing_the_tunnel_says_so(server: ScriptedServer) -> None:
    # The scripted server has no CONNECT route: it answers 405 to the tunnel request.
    client = imagegen.Client(base_url="https://images.invalid/v1", proxy=server.url, max_retries=0)
    with client, pytest.raises(imagegen.APIConnectionError) as info:
        client.generate("a fox")
    assert str(info.value).startswith(
        f"The proxy {server.url} (--proxy) could not connect to "
        "https://images.invalid/v1/images/generations: ProxyError"
    )
