"""Fixtures of the client tests: one scripted server for the session, reset for each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from scripted import API_KEY, ScriptedServer, image_bytes

import imagegen
import imagegen._retry
from live import live_server


@pytest.fixture(scope="session")
def _session_server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    with live_server(scripted.app, interface="asgi3") as url:
        scripted.url = url
        yield scripted


@pytest.fixture
def server(_session_server: ScriptedServer) -> Iterator[ScriptedServer]:
    _session_server.reset()
    yield _session_server
    _session_server.reset()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the retry loop asked for (recorded instead of slept)."""
    waits: list[float] = []
    monkeypatch.setattr(imagegen._retry, "pause", waits.append)
    return waits


@pytest.fixture
def make_client(
    server: ScriptedServer, sleeps: list[float]
) -> Iterator[Callable[..., imagegen.Client]]:
    """`make_client(**options)`: a Client for the scripted server whose waits are recorded."""
    made: list[imagegen.Client] = []

    def make(**options: Any) -> imagegen.Client:
        options.setdefault("base_url", server.base_url)
        options.setdefault("api_key", API_KEY)
        client = imagegen.Client(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., imagegen.Client]) -> imagegen.Client:
    return make_client()


@pytest.fixture
def png_file(tmp_path: Any) -> Any:
    path = tmp_path / "input.png"
    path.write_bytes(image_bytes())
    return path
