"""Engine options on the command line: an option the engine does not declare is refused when
the engine is created, in one line naming the command's own flag, and nothing is made."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner, Result

from imagegen.cli import cli
from imagegen.engines.placeholder import PlaceholderEngine


class _BlockEngine(PlaceholderEngine):
    """A placeholder that declares one option, as a plugin would."""

    name: ClassVar[str] = "blocks"
    option_help: ClassVar[Mapping[str, str] | None] = {"block": "tile size in pixels"}


@pytest.fixture(autouse=True)
def _in_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, register_engine: Callable[[str, str], None]
) -> None:
    monkeypatch.chdir(tmp_path)
    register_engine("blocks", f"{__name__}:_BlockEngine")


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


NO_OPTIONS = "for the placeholder engine, which takes processes."


@pytest.mark.parametrize(
    ("option", "name"), [("foo=bar", "foo"), ("steps=abc", "steps"), ("seed=1", "seed")]
)
def test_generate_refuses_an_unknown_option_of_the_placeholder_engine(
    tmp_path: Path, option: str, name: str
) -> None:
    result = _invoke("generate", "x", "--engine", "placeholder", "-O", option, "-o", "a.png")
    assert result.exit_code == 2
    assert _error_line(result) == (
        f"Error: -O/--engine-option: Unknown option {name!r} {NO_OPTIONS}"
    )
    assert not (tmp_path / "a.png").exists()


def test_serve_refuses_an_unknown_option_of_the_placeholder_engine() -> None:
    # A real process, so that a server which wrongly starts is stopped by the timeout (a
    # failure) instead of blocking the run; port 0: nothing can be in use.
    done = subprocess.run(
        [sys.executable, "-m", "imagegen", "serve", "--engine", "placeholder", "--port", "0"]
        + ["-o", "foo=bar"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"Error: -o/--option: Unknown option 'foo' {NO_OPTIONS}"


def test_a_declared_option_passes_and_another_is_refused_with_the_list(tmp_path: Path) -> None:
    made = _invoke("generate", "x", "--engine", "blocks", "-O", "block=8", "-o", "a.png")
    assert made.exit_code == 0, made.output
    assert (tmp_path / "a.png").exists()
    refused = _invoke("generate", "x", "--engine", "blocks", "-O", "blok=8", "-o", "b.png")
    assert refused.exit_code == 2
    assert _error_line(refused) == (
        "Error: -O/--engine-option: Unknown option 'blok' for the blocks engine, which takes block."
    )
    assert not (tmp_path / "b.png").exists()
