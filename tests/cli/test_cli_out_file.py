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


@pytest.mark.parametrize("name", ["x.heic", "x.BMP", "out/x.tiff"])
def test_an_extension_no_api_returns_is_refused(api: Recorder, base_url: str, name: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 2
    assert "use a .png, .jpg, .webp, .gif or .svg name" in error_line(result)
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


def test_the_longest_name_a_folder_takes_is_saved(api: Recorder, base_url: str) -> None:
    name = "c" * 251 + ".png"  # 255 bytes: the temporary file's name must not grow from it
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 0, result.output
    assert result.stdout == name + "\n"
    assert sorted(p.name for p in Path().iterdir()) == [name]


@pytest.mark.parametrize(
    ("args", "longest"),
    [
        (["-o", "c" * 300 + ".png"], 304),
        (["-o", "c" * 251 + ".png", "-n", "2"], 257),  # the second image: NAME-1.png
        (["-o", "c" * 244 + ".png", "--partial-images", "2"], 258),  # NAME.partial-1.png
        (["-o", "d" * 256 + "/x.png"], 256),  # a folder to create
    ],
)
def test_a_name_too_long_for_the_folder_is_refused_before_sending(
    api: Recorder, base_url: str, args: list[str], longest: int
) -> None:
    result = invoke("generate", "x", "--base-url", base_url, *args)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: -o/--out-file '"), line
    assert f"would be {longest} bytes long, and this folder takes names of at most 255" in line
    assert "c" * 40 not in line  # the name is shortened in the message
    assert api.requests == []
    assert list(Path().iterdir()) == []


def test_a_sidecar_too_long_suggests_no_metadata(api: Recorder, base_url: str) -> None:
    name = "c" * 248 + ".jpg"  # fits, but its metadata file NAME.jpg.json would not
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 2
    assert "(or --no-metadata, which drops the .json metadata file)" in error_line(result)
    assert api.requests == []
    result = invoke("generate", "x", "--base-url", base_url, "-o", name, "--no-metadata")
    assert result.exit_code == 0, result.output
    assert result.stdout == name + "\n"


@pytest.mark.parametrize(
    ("name", "saved"),
    [
        ("x.txt", "x.txt.png"),
        ("shot.2024", "shot.2024.png"),
        ("2024.01.05-cat", "2024.01.05-cat.png"),
        ("out/x.PDF", "out/x.PDF.png"),
    ],
)
def test_a_dot_that_is_not_an_image_extension_is_part_of_the_name(
    api: Recorder, base_url: str, name: str, saved: str
) -> None:
    # The image's own extension is added, so no file is named for a format it does not hold.
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 0, result.output
    assert result.stdout == saved + "\n"
    assert Path(saved).read_bytes().startswith(b"\x89PNG")
    assert "output_format" not in api.api_requests[0].json


@pytest.mark.parametrize(
    ("name", "saved"), [("x.JPEG", "x.JPEG"), ("x.webp", "x.webp"), ("x", "x.png")]
)
def test_image_extensions_in_any_case_or_none_are_taken(
    api: Recorder, base_url: str, name: str, saved: str
) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", name)
    assert result.exit_code == 0, result.output
    assert result.stdout == saved + "\n"


def test_an_empty_out_file_is_refused(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", "")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -o/--out-file is empty; give a file name")
    result = invoke("generate", "x", "--base-url", base_url, "-o", "", "-f", "json")
    assert result.exit_code == 2
    assert "use one of the two" in error_line(result)
    assert api.requests == []
    assert list(Path().iterdir()) == []


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_a_device_is_refused_rather_than_saved_beside(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "-o", "/dev/null")
    assert result.exit_code == 2
    assert error_line(result).startswith(
        "Error: -o/--out-file '/dev/null' exists and is not a regular file"
    )
    assert api.requests == []  # refused before sending, so nothing went to /dev/null.png


def test_a_folder_where_an_image_would_go_is_refused(api: Recorder, base_url: str) -> None:
    Path("out-1.png").mkdir()
    result = invoke("generate", "x", "--base-url", base_url, "-o", "out.png", "-n", "2")
    assert result.exit_code == 2
    assert error_line(result).startswith(
        "Error: -o/--out-file 'out.png': 'out-1.png' exists and is not a file"
    )
    assert api.requests == []
