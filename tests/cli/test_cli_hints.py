"""Errors point at the flag the user can change, even when the user did not give it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder
from PIL import Image

import imagegen.engines


def test_a_404_without_a_param_points_at_the_base_url(api: Recorder) -> None:
    # The recorder serves the API under /v1: a base URL without it reaches no route.
    result = invoke("generate", "x", "--base-url", api.base_url, "-o", "x.png")
    assert result.exit_code == 1
    line = error_line(result)
    assert "404" in line
    assert "Check the base URL (--base-url)" in line
    assert not Path("x.png").exists()


def test_a_model_the_engine_chose_is_blamed_on_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(imagegen.engines._BUILTIN, "generate-only", "cli_engine:GenerateOnlyEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")
    result = invoke("variation", "in.png", "--engine", "generate-only", "-o", "v.png")
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: --engine generate-only: "), line
    assert "-m/--model" not in line


def test_a_model_given_with_m_is_still_blamed_on_m(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(imagegen.engines._BUILTIN, "generate-only", "cli_engine:GenerateOnlyEngine")
    Image.new("RGB", (256, 256), "red").save("in.png")
    result = invoke("variation", "in.png", "--engine", "generate-only", "-m", "gen-only")
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: -m/--model: ")
