"""The command line with today's API: the new flags on the wire, `-o x.gif` / `x.svg`, every
problem on its own line, and retired models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder
from PIL import Image, ImageDraw


def _markup(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    sheet = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(sheet).ellipse((10, 10, 40, 40), outline=(255, 0, 0, 255), width=3)
    sheet.save(path)
    return path


def test_the_new_generate_flags_reach_the_json_body(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A logo",
        "--base-url",
        base_url,
        "-m",
        "gpt-image-2.5-sunburst",
        "-q",
        "max",
        "--complexity",
        "medium",
        "--svg-model",
        "gpt-5",
        "--svg-reasoning-effort",
        "high",
        "--safety-identifier",
        "hash-1",
        "-o",
        "logo.svg",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert request.json == {
        "prompt": "A logo",
        "model": "gpt-image-2.5-sunburst",
        "quality": "max",
        "complexity": "medium",
        "output_format": "svg",  # from -o logo.svg
        "svg": {"model": "gpt-5", "reasoning": {"effort": "high"}},
        "safety_identifier": "hash-1",
    }
    assert result.stdout.strip() == "logo.svg"
    assert Path("logo.svg").read_bytes().startswith(b"<svg")
    assert json.loads(Path("logo.svg.json").read_text())["prompt"] == "A logo"


def test_gif_flags_and_the_extension(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "A fox",
        "--base-url",
        base_url,
        "-m",
        "gpt-image-2.5-flare",
        "--frame-count",
        "4",
        "--frame-duration-ms",
        "150",
        "-o",
        "fox.gif",
    )
    assert result.exit_code == 0, result.output
    params = api.api_requests[0].params
    assert (params["output_format"], params["frame_count"], params["frame_duration_ms"]) == (
        "gif",
        4,
        150,
    )
    with Image.open("fox.gif") as saved:
        assert saved.format == "GIF"
    assert Path("fox.gif.json").exists()


def test_edit_sends_the_markup_part(api: Recorder, base_url: str) -> None:
    Image.new("RGB", (64, 64), "white").save("photo.png")
    result = invoke(
        "edit",
        "-i",
        "photo.png",
        "--markup",
        str(_markup(Path("circle.png"))),
        "-p",
        "A hat here",
        "-m",
        "gpt-image-2.5-flare",
        "--svg-model",
        "gpt-5",
        "--output-format",
        "svg",
        "--base-url",
        base_url,
        "-o",
        "hat.svg",
    )
    assert result.exit_code == 0, result.output
    [request] = api.api_requests
    assert [(name, kind) for name, _, kind, _ in request.files] == [
        ("image", "image/png"),
        ("markup", "image/png"),
    ]
    assert request.params["svg[model]"] == "gpt-5"


def test_every_problem_is_its_own_line_led_by_its_flag(api: Recorder, base_url: str) -> None:
    result = invoke(
        "generate",
        "x",
        "--base-url",
        base_url,
        "-s",
        "1000x1000",
        "--output-format",
        "svg",
        "-n",
        "3",
        "--frame-count",
        "40",
        "--svg-reasoning-effort",
        "ultra",
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: -s/--size: Invalid size '1000x1000': width and height must both be multiples "
        "of 16.",
        "Error: --frame-count: Invalid frame_count 40: must be a whole number from 2 to 16.",
        "Error: -n/--number-of-images: SVG output makes one image per request, so n must be 1.",
        "Error: --svg-reasoning-effort: Invalid svg.reasoning.effort 'ultra': use one of none, "
        "minimal, low, medium, high, xhigh, max.",
    ]
    assert api.requests == []


def test_svg_settings_without_svg_output_name_the_flag_given(api: Recorder, base_url: str) -> None:
    result = invoke("generate", "x", "--base-url", base_url, "--svg-reasoning-effort", "low")
    assert error_line(result).startswith("Error: --svg-reasoning-effort: svg (the SVG author's")
    assert api.requests == []


def test_a_markup_of_the_wrong_size_names_the_flag(api: Recorder, base_url: str) -> None:
    Image.new("RGB", (64, 64), "white").save("photo.png")
    result = invoke(
        "edit",
        "-i",
        "photo.png",
        "--markup",
        str(_markup(Path("small.png"), (32, 32))),
        "-p",
        "x",
        "-m",
        "gpt-image-2.5-flare",
        "--base-url",
        base_url,
    )
    assert error_line(result).startswith("Error: --markup: The markup 'small.png' is 32x32")
    assert api.requests == []


@pytest.mark.parametrize(
    ("args", "date"),
    [
        (["generate", "x", "-m", "gpt-image-1"], "2026-10-23"),
        (["generate", "x", "-m", "dall-e-3"], "2026-05-12"),
    ],
)
def test_a_retired_model_is_refused_for_openai_with_its_replacement(
    args: list[str], date: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_BASE", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    result = invoke(*args, "--api-key", "sk-test", "--max-retries", "0", "--timeout", "5")
    line = error_line(result)
    assert line.startswith("Error: -m/--model: ") and date in line
    assert "use gpt-image-2.5-" in line and result.exit_code == 2


def test_help_knows_the_catalogue() -> None:
    from imagegen.cli._options import _model_help, _quality_help, _size_help

    assert (
        "gpt-image-2.5-{sunburst,flare}, gpt-image-2.6-{sunburst,flare}: low|medium|high|"
        "xhigh|max|auto." in _quality_help("generations")
    )
    assert (
        "gpt-image-2, gpt-image-2.5-{sunburst,flare}, gpt-image-2.6-{sunburst,flare}: any "
        "WxH" in _size_help("edits")
    )
    assert "sent to other servers): dall-e-2, dall-e-3, gpt-image-1." in _model_help("generations")
    assert "[png|jpeg|webp|gif|svg]" in invoke("generate", "--help").stdout
