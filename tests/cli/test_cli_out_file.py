"""-o/--out-file places that cannot hold the images are refused before anything is sent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder


def test_a_file_where_the_folder_should_be_is_refused_before_sending(
    api: Recorder, base_url: str
) -> None:
    Path("lion.png").write_bytes(b"not a folder")
    result = invoke("generate", "x", "--base-url", base_url, "-o", "lion.png/out/x.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: -o/--out-file 'lion.png/out/x.png': 'lion.png' is a file")
    assert api.requests == []


@pytest.mark.parametrize("name", ["x.gif", "x.BMP", "out/x.tiff"])
def test_an_extension_no_api_returns_is_refused(api: Recorder, base_url: str, name: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 2
    assert "use a .png, .jpg or .webp name" in error_line(result)
    assert api.requests == []
    assert not Path(name).exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("out", ["ro/a.png", "ro/new/a.png", "ro/", None])
def test_a_read_only_folder_is_refused_before_sending(
    api: Recorder, base_url: str, out: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("ro").mkdir(mode=0o555)
    try:
        if out is None:
            monkeypatch.chdir("ro")
        result = invoke("generate", "x", "--base-url", base_url, *(["-o", out] if out else []))
    finally:
        Path(Path.cwd().parent / "ro" if out is None else "ro").chmod(0o755)
    assert result.exit_code == 2
    assert "cannot" in error_line(result).lower()
    assert api.requests == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("out", ["/proc/x.png", "/proc/imagegen-missing/x.png"])
def test_a_folder_nobody_can_write_is_refused_before_sending(
    api: Recorder, base_url: str, out: str
) -> None:
    # /proc takes no new files, even from root: the case of a read-only mount.
    result = invoke("generate", "x", "--base-url", base_url, "-o", out)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"Error: -o/--out-file '{out}': cannot write in folder")
    assert api.requests == []


def test_the_check_leaves_nothing_behind(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", "new/deeper/x.png")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path().iterdir()) == ["new"]
    assert sorted(p.name for p in Path("new/deeper").iterdir()) == ["x.png"]
