"""Running the command line in tests: in-process (click's runner) or as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from imagegen.cli import cli


def invoke(*args: str, input: str | bytes | None = None) -> Result:
    """Run the command line in-process (click's runner), stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def run_process(
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m imagegen` in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "imagegen", *args],
        input=input,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def error_line(result: Result | subprocess.CompletedProcess[bytes]) -> str:
    """The one line on stderr; fails if stderr holds more (or a traceback)."""
    raw = result.stderr
    text = raw.decode() if isinstance(raw, bytes) else raw
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {text!r}"
    assert "Traceback" not in text
    assert lines[0].startswith("Error: ")
    return lines[0]


class FakeViewer:
    """An `xdg-open` first on PATH that records each file it is asked to open, after running
    `before` (shell lines: a viewer that chatters on stderr, or outlives the command)."""

    def __init__(self, folder: Path, before: str = "") -> None:
        self.opened = folder / "opened.txt"
        bin_dir = folder / "bin"
        bin_dir.mkdir()
        viewer = bin_dir / "xdg-open"
        viewer.write_text(f'#!/bin/sh\n{before}\necho "$1" >> "{self.opened}"\n')
        viewer.chmod(0o755)
        self.path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"

    def wait_opened(self, count: int, timeout: float = 20) -> list[str]:
        """The files opened, once there are `count` (or the deadline passed, for a hang)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.opened.exists() and len(self.opened.read_text().splitlines()) >= count:
                break
            time.sleep(0.05)
        return self.opened.read_text().splitlines() if self.opened.exists() else []
