"""Bad input: exit code 2, one line naming the flag, and nothing sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder, image_bytes
from PIL import Image


@pytest.mark.parametrize(
    ("args", "flag", "words"),
    [
        (["-s", "13x13"], "-s/--size", "multiples of 16"),
        (["-s", "huge"], "-s/--size", "WIDTHxHEIGHT"),
        (["-m", "dall-e-2", "-s", "1536x1024"], "-s/--size", "256x256"),
        (["-n", "11"], "-n/--number-of-images", "1 to 10"),
        (
            ["-m", "dall-e-3", "-n", "2"],
            "-n/--number-of-images",
            "dall-e-3 makes one image per request",
        ),
        (["-m", "dall-e-3", "-q", "ultra"], "-q/--quality", "hd"),
        (["--style", "vivid"], "--style", "dall-e-3"),
        (["--background", "clear"], "--background", "transparent"),
        (["--moderation", "none"], "--moderation", "low"),
        (["--output-format", "tiff"], "--output-format", "webp"),
        (["--output-compression", "50"], "--output-compression", "jpeg"),
        (["--output-format", "jpeg", "--output-compression", "101"], "--output-compression", "100"),
        (["--partial-images", "4"], "--partial-images", "0 to 3"),
        (["-m", "dall-e-2", "--stream"], "--stream", "GPT image"),
        (["-m", "dall-e-2", "--background", "opaque"], "--background", "dall-e-2"),
        (["-m", "dall-e-2", "--response-format", "base64"], "--response-format", "b64_json"),
        (["-m", "dall-e-3", "--extra", "seed=1", "--user", "u"], None, None),
    ],
)
def test_generate_validation_errors(
    api: Recorder, base_url: str, args: list[str], flag: str | None, words: str | None
) -> None:
    result = invoke("generate", "A cat", "--base-url", base_url, *args, "-f", "json")
    if flag is None:  # the control: valid flags pass
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith(f"Error: {flag}: "), line
    assert words in line
    assert api.requests == []


def test_prompt_too_long_names_the_argument(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x" * 1001, "-m", "dall-e-2", "--base-url", base_url)
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: PROMPT: The prompt is 1,001 characters")
    assert api.requests == []


def test_click_usage_errors_are_one_line(api: Recorder) -> None:
    for args, words in [
        (["generate", "x", "--sise", "256"], "No such option '--sise'"),
        (["generate", "x", "-n", "two"], "'two' is not a valid integer"),
        (["generate"], "Missing argument 'PROMPT'"),
        (["edit", "--prompt", "x"], "Missing option '-i' / '--image'"),
        (["generate", "x", "-f", "png"], "'png' is not one of"),
        (["generate", "x", "--max-retries", "101"], "--max-retries"),
        (["generate", "x", "--extra", "novalue"], "key=value"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        line = error_line(result)
        assert words in line, line
        assert "--help" in line
    assert api.requests == []


def test_output_flag_conflicts(api: Recorder, base_url: str) -> None:
    cases = [
        (["-f", "json", "-o", "x.png"], "use one of the two"),
        (["-f", "byte", "-n", "2"], "-n/--number-of-images is 2"),
        (["--output-format", "png", "-o", "x.jpg"], "conflicts with the extension"),
        (["-m", "dall-e-3", "-o", "x.jpg"], "use a .png name"),
        (["--engine", "placeholder", "--base-url", "http://x"], "--base-url"),
        (["--engine-model", "m"], "--engine-model only applies with --engine"),
        (["-O", "a=b"], "-O only applies with --engine"),
    ]
    for args, words in cases:
        result = invoke(
            "generate",
            "A cat",
            *(["--base-url", base_url] if "--base-url" not in args else []),
            *args,
        )
        assert result.exit_code == 2, (args, result.output)
        assert words in error_line(result), args
    assert api.requests == []


def test_transparent_jpeg_from_the_file_name_is_explained(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A logo",
        "--background",
        "transparent",
        "-o",
        "logo.jpg",
        "--base-url",
        base_url,
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --background: ")
    assert "png or webp" in line
    assert api.requests == []


def test_missing_key_for_openai_is_a_configuration_error(api: Recorder) -> None:
    result = invoke("generate", "A cat")
    assert result.exit_code == 2
    line = error_line(result)
    assert "OPENAI_API_KEY" in line
    assert api.requests == []


def test_missing_and_bad_input_images(api: Recorder, base_url: str, tmp_path: Path) -> None:
    result = invoke("edit", "-i", "nope.png", "-p", "x", "--base-url", base_url)
    assert result.exit_code == 2
    assert "'-i' / '--image'" in error_line(result)
    assert "does not exist" in result.stderr

    result = invoke("variation", "nope.png", "--base-url", base_url)
    assert result.exit_code == 2
    assert "IMAGE" in error_line(result)

    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(image_bytes("jpeg", size=(64, 64)))
    result = invoke("edit", "-i", str(jpeg), "-p", "x", "-m", "dall-e-2", "--base-url", base_url)
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -i/--image: ")

    result = invoke("variation", str(jpeg), "--base-url", base_url)
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: IMAGE: ")

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = invoke("edit", "-i", str(text), "-p", "x", "--base-url", base_url)
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -i/--image: ")
    assert api.requests == []


def test_mask_of_the_wrong_size(api: Recorder, base_url: str, tmp_path: Path) -> None:
    Image.new("RGBA", (64, 64)).save(tmp_path / "image.png")
    Image.new("RGBA", (32, 32)).save(tmp_path / "mask.png")
    result = invoke(
        "edit", "-i", "image.png", "--mask", "mask.png", "-p", "x", "--base-url", base_url
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --mask: ")
    assert api.requests == []


def test_bad_prompt_on_a_later_stdin_line_stops_before_any_request(
    api: Recorder, base_url: str
) -> None:
    prompts = "A cat\n" + "y" * 1001 + "\nA dog\n"
    result = invoke(
        "generate", "-", "-m", "dall-e-2", "--base-url", base_url, "-o", "x.png", input=prompts
    )
    assert result.exit_code == 2
    line = error_line(result)
    assert "line 2 of standard input" in line
    assert api.requests == []


def test_empty_stdin_is_a_usage_error(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "-", "--base-url", base_url, input="\n  \n")
    assert result.exit_code == 2
    assert "No prompts on standard input" in error_line(result)
