"""`--engine`: images made in this process, with no server and no key."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_engine import RecordingEngine
from cli_helpers import error_line, invoke, run_process
from cli_recorder import Recorder
from PIL import Image


def _text(path: Path) -> dict[str, str]:
    with Image.open(path) as picture:
        return dict(getattr(picture, "text", {}))


def test_readme_main_command(tmp_path: Path) -> None:
    """The README's first command, in a real process, exactly as written there."""
    done = run_process("generate", "A cute baby lion", "--engine", "placeholder", "-o", "lion.png")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"lion.png\n"
    assert done.stderr == b""
    lion = Path.cwd() / "lion.png"
    with Image.open(lion) as picture:
        assert picture.format == "PNG"
        assert picture.size == (1024, 1024)
    assert _text(lion)["prompt"] == "A cute baby lion"


def test_engine_generates_in_every_output_form(api: Recorder) -> None:
    result = invoke("generate", "A fox", "--engine", "placeholder", "-s", "1024x640", "-f", "url")
    assert result.exit_code == 0, result.output
    prefix, _, payload = result.stdout.strip().partition(",")
    assert prefix == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as picture:
        assert picture.size == (1024, 640)

    result = invoke(
        "generate", "A fox", "--engine", "placeholder", "-s", "1024x640", "-o", "fox.webp"
    )
    assert result.exit_code == 0, result.output
    with Image.open("fox.webp") as picture:
        assert picture.format == "WEBP"
    assert api.requests == []  # nothing went over the network


def test_engine_streams_partial_images(tmp_path: Path) -> None:
    result = invoke(
        "generate",
        "A fox",
        "--engine",
        "placeholder",
        "-s",
        "1024x640",
        "--partial-images",
        "2",
        "-o",
        "fox.png",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["fox.partial-0.png", "fox.partial-1.png", "fox.png"]


def test_engine_edit_and_variation(tmp_path: Path) -> None:
    Image.new("RGBA", (256, 256), (20, 120, 220, 255)).save("photo.png")
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (64, 64, 192, 192))
    mask.save("mask.png")
    result = invoke(
        "edit",
        "-i",
        "photo.png",
        "--mask",
        "mask.png",
        "-p",
        "A window",
        "--engine",
        "placeholder",
        "-s",
        "256x256",
        "-o",
        "edited.png",
    )
    assert result.exit_code == 0, result.output
    with Image.open("edited.png") as edited:
        assert edited.size == (256, 256)
        assert edited.convert("RGBA").getpixel((5, 5)) == (20, 120, 220, 255)  # outside: kept

    result = invoke("variation", "photo.png", "--engine", "placeholder", "-n", "2", "-o", "v.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["v.png", "v-1.png"]
    assert Path("v.png").read_bytes() != Path("v-1.png").read_bytes()


def test_engine_validation_error_is_exit_2(api: Recorder) -> None:
    result = invoke("generate", "x", "--engine", "placeholder", "-n", "11")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -n/--number-of-images: ")


def test_unknown_model_is_exit_2_and_nothing_is_made(api: Recorder, tmp_path: Path) -> None:
    """Refused in process as the server refuses it (there a 404, exit 1)."""
    result = invoke("generate", "x", "--engine", "placeholder", "-m", "nope", "-o", "x.png")
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line == (
        "Error: -m/--model: The model `nope` does not exist or you do not have access to it. "
        "Leave -m out for the engine's own model."
    )
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []
    assert api.requests == []


def test_unknown_engine(api: Recorder) -> None:
    result = invoke("generate", "x", "--engine", "nope")
    assert result.exit_code == 2
    line = error_line(result)
    assert "nope" in line
    assert "placeholder" in line


@pytest.fixture
def recording_engine(
    register_engine: Callable[[str, str], None],
) -> Iterator[type[RecordingEngine]]:
    """Register the test engine the way a built-in one is found, by name."""
    register_engine("recording", "cli_engine:RecordingEngine")
    RecordingEngine.built.clear()
    yield RecordingEngine
    RecordingEngine.built.clear()


def test_engine_model_and_options_reach_the_engine(
    recording_engine: type[RecordingEngine], tmp_path: Path
) -> None:
    result = invoke(
        "generate",
        "A fox",
        "--engine",
        "recording",
        "--engine-model",
        "fox-v2",
        "-O",
        "steps=4",
        "-O",
        "scheduler=euler a",
        "-o",
        "fox.png",
    )
    assert result.exit_code == 0, result.output
    assert recording_engine.built == [("fox-v2", {"steps": "4", "scheduler": "euler a"})]
    assert _text(tmp_path / "fox.png")["model"] == "fox-v2"
