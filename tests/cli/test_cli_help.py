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


def test_variation_help_lists_only_what_variations_take() -> None:
    text = " ".join(invoke("variation", "--help").stdout.split())
    assert "[default dall-e-2]. Known: dall-e-2." in text
    assert "dall-e-2: 256x256|512x512|1024x1024." in text
    for other in ("dall-e-3", "gpt-image", "--quality", "--style", "--background", "--stream"):
        assert other not in text, other


def test_each_command_names_its_own_models_and_sizes() -> None:
    generate = " ".join(invoke("generate", "--help").stdout.split())
    edit = " ".join(invoke("edit", "--help").stdout.split())
    assert "[default gpt-image-2]" in generate and "[default gpt-image-2]" in edit
    assert "dall-e-3: 1024x1024|1792x1024|1024x1792" in generate
    assert "(dall-e-3: 1)" in generate
    assert "dall-e-3" not in edit  # it makes no edits
    assert "dall-e-3: standard|hd|auto;" in generate
    assert ": low|medium|high|auto;" in generate and ": low|medium|high|xhigh|max|auto." in generate
    assert "GPT image models always return b64_json" in generate


@pytest.mark.parametrize("name", ["generate", "edit", "variation", "batch", "serve"])
def test_help_lines_never_break_inside_a_hyphenated_word(name: str) -> None:
    """Model names (gpt-image-2.5-sunburst-2026-09-08) and flags stay whole on one line, and
    the hyphens are printed as typed (not as the non-breaking ones used for wrapping)."""
    from click.testing import CliRunner

    text = CliRunner().invoke(cli, [name, "--help"], terminal_width=80).stdout
    lines = text.splitlines()
    assert not [line for line in lines if line.rstrip().endswith(("gpt-", "dall-", "image-"))]
    assert "\u2011" not in text
    if name in ("generate", "edit", "batch"):
        assert "gpt-image-2.5-sunburst-2026-09-08" in text


def test_batch_help_names_the_variation_rows_default_model() -> None:
    text = " ".join(invoke("batch", "--help").stdout.split())
    assert "[default gpt-image-2; variations: dall-e-2]" in text
