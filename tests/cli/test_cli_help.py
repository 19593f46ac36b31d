"""`--help` says the rules that matter, and docs/cli.md documents every flag."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from cli_helpers import invoke

from imagegen.cli import cli

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _command(name: str) -> click.Command:
    with click.Context(cli) as ctx:
        command = cli.get_command(ctx, name)
    assert command is not None
    return command


def test_edit_help_explains_the_mask() -> None:
    text = " ".join(invoke("edit", "--help").stdout.split())
    assert "alpha = 0" in text
    assert "white = edit" in text


def test_help_keeps_examples_as_written() -> None:
    result = invoke("generate", "--help")
    assert result.exit_code == 0
    assert '  imagegen generate "A cute baby lion" -o lion.png\n' in result.stdout
    assert "  cat prompts.txt | imagegen generate - -o out/picture.png\n" in result.stdout


def test_help_names_the_environment_variables() -> None:
    text = invoke("generate", "--help").stdout
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "AZURE_OPENAI_ENDPOINT"):
        assert name in text


@pytest.mark.parametrize("name", ["generate", "edit", "variation"])
def test_docs_cover_every_flag(name: str) -> None:
    docs = DOCS.read_text()
    section = docs.split(f"## imagegen {name}", 1)[1]
    for param in _command(name).params:
        if isinstance(param, click.Argument):
            assert f"`{param.human_readable_name}`" in section, param.name
            continue
        for opt in param.opts:
            assert f"`{opt}" in docs, opt
