from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Variables that would point the code under test at a real service or a proxy.
_ENV_PREFIXES = ("OPENAI_", "AZURE_OPENAI_", "IMAGEGEN_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts with no key, base URL or proxy from the machine it runs on."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name.upper() in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("IMAGEGEN_USER_DIR", str(tmp_path / "user-dir"))
    yield


@pytest.fixture
def register_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str, str], None]:
    """`register_engine(name, "module:Class")`: an engine registered as a plugin registers, in
    the `imagegen.engines` entry-point group of an installed distribution (put on `sys.path`
    for this test only)."""
    site = tmp_path_factory.mktemp("site")
    info = site / "imagegen_test_engines-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: imagegen-test-engines\nVersion: 1.0\n", encoding="utf-8"
    )
    registered: dict[str, str] = {}

    def register(name: str, target: str) -> None:
        registered[name] = target
        lines = "".join(f"{key} = {value}\n" for key, value in registered.items())
        (info / "entry_points.txt").write_text(f"[imagegen.engines]\n{lines}", encoding="utf-8")

    monkeypatch.syspath_prepend(str(site))
    return register
