from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from batchkit import Faults, serve, settings

from imagegen.server import create_app


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "server-data"


@pytest.fixture
def server(data_dir: Path) -> Iterator[str]:
    """The placeholder engine behind our server, no faults."""
    with serve(create_app("placeholder", settings(data_dir))) as url:
        yield url


@pytest.fixture
def faulty(data_dir: Path) -> Iterator[tuple[str, Faults]]:
    """The placeholder engine behind our server, behind a layer that breaks ~25 % of the
    image requests in every way it knows."""
    faults = Faults(
        create_app("placeholder", settings(data_dir)),
        seed=20261203,
        rate_limited=0.08,
        server_error=0.04,
        unavailable=0.04,
        dropped=0.03,
        dropped_after=0.03,
        slow=0.05,
    )
    with serve(faults) as url:
        yield url, faults


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
