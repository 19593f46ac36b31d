"""Prompts that are not plain UTF-8 text: a byte order mark, other encodings, unicode."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import error_line, invoke
from cli_recorder import Recorder


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(api: Recorder, base_url: str) -> None:
    data = "\ufeffa lion\r\n\r\na fox\r\n".encode()
    result = invoke("generate", "-", "--base-url", base_url, "-o", "p.png", input=data)
    assert result.exit_code == 0, result.output
    assert [r.json["prompt"] for r in api.requests] == ["a lion", "a fox"]


def test_unicode_prompts_from_stdin_are_sent_as_written(api: Recorder, base_url: str) -> None:
    prompts = ["Café au lait ☕", "梨の花", "Ünïcödé 🍐"]
    data = "\n".join(prompts).encode()
    result = invoke("generate", "-", "--base-url", base_url, "-o", "p.png", input=data)
    assert result.exit_code == 0, result.output
    assert [r.json["prompt"] for r in api.requests] == prompts


def test_stdin_that_is_not_utf8_is_refused_naming_the_line(api: Recorder, base_url: str) -> None:
    data = b"a lion\ncaf\xe9 au lait\n"
    result = invoke("generate", "-", "--base-url", base_url, "-o", "p.png", input=data)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith("Error: Line 2 of standard input is not UTF-8 text (byte 0xE9)")
    assert api.requests == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX argv carries raw bytes")
@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (["generate", b"caf\xe9"], "PROMPT"),
        (["edit", "-i", "in.png", "-p", b"caf\xe9"], "-p/--prompt"),
    ],
)
def test_a_prompt_argument_that_is_not_utf8_is_refused(
    api: Recorder, base_url: str, command: list[str | bytes], flag: str
) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64), "red").save("in.png")
    args: list[str | bytes] = [sys.executable, "-m", "imagegen", *command, "--base-url", base_url]
    done = subprocess.run(args, capture_output=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    line = error_line(done)
    assert line.startswith(f"Error: {flag}: the prompt is not UTF-8 text (byte 0xE9")
    assert api.requests == []
    assert not list(Path().glob("imagegen-*"))
