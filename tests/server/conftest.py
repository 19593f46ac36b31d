from __future__ import annotations

from collections.abc import Iterator

import pytest
from srvkit import KEY, SolidEngine, make_settings

from imagegen.server import create_app
from live import live_server


@pytest.fixture(scope="module")
def solid_engine() -> SolidEngine:
    return SolidEngine()


@pytest.fixture(scope="module")
def server(solid_engine: SolidEngine) -> Iterator[str]:
    """One server per module, with a key, the solid engine and room for parallel tests."""
    settings = make_settings(api_keys=[KEY], max_concurrency=2, max_queue=8)
    with live_server(create_app(solid_engine, settings)) as url:
        yield url
