"""What the user sees while waiting: a spinner with elapsed seconds on stderr.

Only on a terminal and without `--quiet`; elsewhere stderr carries nothing but errors (and
warnings, unless `--quiet`). rich is imported when a spinner is really shown. Every line the
command prints goes through `Console.out` / `Console.err`, which lift the spinner off the
terminal for the moment of writing so the two never tangle.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click


class Console:
    """stdout and stderr of one command run, and its spinner."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.spinner_enabled = not quiet and isatty(sys.stderr)
        self._progress: Any = None
        self._task: Any = None

    @contextlib.contextmanager
    def spinner(self, text: str) -> Iterator[None]:
        """Show `text`, a spinner and the seconds elapsed until the block ends."""
        if not self.spinner_enabled:
            yield
            return
        from rich.console import Console as RichConsole
        from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
        from rich.text import Text

        class Seconds(ProgressColumn):
            def render(self, task: Task) -> Text:
                return Text(f"{task.elapsed or 0:.0f}s", style="progress.elapsed")

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            Seconds(),
            console=RichConsole(file=sys.stderr),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._progress, self._task = progress, progress.add_task(text)
        try:
            with progress:
                yield
        finally:
            self._progress = self._task = None

    def status(self, text: str) -> None:
        """Change the spinner's text (streaming: which partial image arrived)."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    @contextlib.contextmanager
    def _lifted(self) -> Iterator[None]:
        progress = self._progress
        if progress is None or not progress.live.is_started:
            yield
            return
        progress.live.stop()
        try:
            yield
        finally:
            progress.live.start(refresh=True)

    def out(self, line: str) -> None:
        with self._lifted():
            click.echo(line)

    def out_bytes(self, data: bytes) -> None:
        sys.stdout.flush()
        stream = sys.stdout.buffer
        stream.write(data)
        stream.flush()

    def err(self, line: str) -> None:
        with self._lifted():
            click.echo(line, err=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err(f"Warning: {' '.join(message.split())}")


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
