from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_recorder import Recorder

from live import live_server


@pytest.fixture(scope="session")
def _recorder() -> Iterator[Recorder]:
    recorder = Recorder()
    with live_server(recorder.app()) as url:
        recorder.base_url = url
        yield recorder


@pytest.fixture
def api(_recorder: Recorder) -> Iterator[Recorder]:
    """The recording server, emptied for this test."""
    _recorder.reset()
    yield _recorder
    _recorder.reset()


@pytest.fixture
def base_url(api: Recorder) -> str:
    return f"{api.base_url}/v1"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own folder, so auto-named files land there."""
    monkeypatch.chdir(tmp_path)
