"""Proxies: the `proxy` argument and HTTP(S)_PROXY / NO_PROXY reach httpx2.

The scripted server records requests in absolute form (`POST http://host/path`), which is what
a client sends to a forward proxy, and then answers them itself: a recording proxy.
"""

from __future__ import annotations

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


def test_a_dead_proxy_is_a_connection_error(server: ScriptedServer) -> None:
    proxy = f"http://127.0.0.1:{_dead_port()}"
    client = imagegen.Client(base_url=server.base_url, proxy=proxy, max_retries=0)
    with client, pytest.raises(imagegen.APIConnectionError):
        client.generate("a fox")
    assert server.requests == []
