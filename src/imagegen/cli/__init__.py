"""The `imagegen` command line: generate, edit, variation, batch, serve, engines.

Loading this package imports click and nothing else of weight: the commands' modules load when
a command is looked up (`COMMANDS` holds what `imagegen --help` lists), and each command imports
the client (httpx2, pydantic, Pillow) or the server (starlette, uvicorn) only when it runs, so
`imagegen --help` starts fast. `main()` is the console script and `python -m imagegen`.

Exit codes: 0 success, 2 usage or validation error, 1 API, network, engine or file error,
130 interrupted. Every error is one line on stderr; `--debug` (or `IMAGEGEN_DEBUG=1`) adds
the traceback.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

from .._errors import redact
from .._version import __version__
from ._errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    Failure,
    debug_enabled,
    known_secrets,
    one_line,
    print_traceback,
    usage_hint,
)

__all__ = ["COMMANDS", "cli", "main"]

# name: (module, attribute, the line `imagegen --help` shows). The modules load on first use.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("._generate", "generate", "Create images from a text prompt."),
    "edit": ("._edit", "edit", "Edit or extend images, with a prompt and an optional mask."),
    "variation": ("._variation", "variation", "Make variations of an image (dall-e-2)."),
    "batch": ("._batch", "batch", "Make the images of many prompts, paced, resumable."),
    "serve": ("._serve", "serve_command", "Serve the OpenAI Images API over a local engine."),
    "engines": ("._serve", "engines_command", "List the installed engines."),
}


# Click wraps help text at hyphens, which splits model names (gpt-\nimage-2.5-flare) and flags;
# help is wrapped with each hyphen as a non-breaking one, then given back as typed.
_NO_BREAK_HYPHEN = "\u2011"


class HelpFormatter(click.HelpFormatter):
    """Click's help formatter, but lines never break at a hyphen."""

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        kept = [(term, text.replace("-", _NO_BREAK_HYPHEN)) for term, text in rows]
        super().write_dl(kept, col_max, col_spacing)

    def write_text(self, text: str) -> None:
        super().write_text(text.replace("-", _NO_BREAK_HYPHEN))

    def getvalue(self) -> str:
        return super().getvalue().replace(_NO_BREAK_HYPHEN, "-")


class Context(click.Context):
    formatter_class = HelpFormatter


class ImagegenGroup(click.Group):
    """A click group that loads its commands lazily and reports every error in one line,
    with the exit codes above."""

    context_class = Context

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = getattr(importlib.import_module(entry[0], __name__), entry[1])
        command.context_class = Context
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From the table, so listing the commands imports none of them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, line) for name, (_, _, line) in COMMANDS.items()])

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Failure as exc:
            for line in exc.message.splitlines():  # one line per problem of a request
                click.echo(f"Error: {line}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `imagegen` alone: the help, as is
                exc.show()
                sys.exit(exc.exit_code)
            hint = usage_hint(exc, sys.argv[1:] if args is None else args)
            click.echo(f"Error: {one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`| head -1`): stop quietly, as other Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILURE)
        except Exception as exc:
            # A bug, not an expected error: still one line, with the way to see more.
            if debug_enabled():
                print_traceback(known_secrets())
                hint = ""
            else:
                hint = " (run with --debug for the traceback)"
            message = redact(f"{exc}", *known_secrets())
            click.echo(f"Error: unexpected {type(exc).__name__}: {message}{hint}", err=True)
            sys.exit(EXIT_FAILURE)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    "imagegen",
    cls=ImagegenGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="imagegen")
def cli() -> None:
    """Create, edit and vary images through any OpenAI-compatible Images API (OpenAI, Azure
    OpenAI, local servers) or a local engine, and serve that API yourself.

    Keys and endpoints come from the flags, else the environment (OPENAI_API_KEY,
    OPENAI_BASE_URL, OPENAI_ORG_ID, OPENAI_PROJECT_ID, AZURE_OPENAI_*, HTTPS_PROXY).
    Exit codes: 0 success, 2 usage or validation error (nothing sent), 1 API or network error.

    \b
    Examples:
      imagegen generate "A cute baby lion" -o lion.png
      imagegen generate "A cute baby lion" --engine placeholder -o lion.png
      imagegen edit --image room.png --mask window.png --prompt "A window onto the sea"
      imagegen variation lion.png -n 2 --base-url http://127.0.0.1:8000/v1
      imagegen serve --engine placeholder --port 8000

    Run 'imagegen COMMAND --help' for every flag of a command.
    """


_one_shot = False  # set by a command that makes its images and ends


def start_up_done(*, long_running: bool) -> None:
    """Resume the garbage collector that the console script paused for the start-up (see
    `imagegen.__main__`): called by each command once it has loaded what it needs, before its
    work. What was loaded is frozen first, so that no collection walks it again. A command
    that is not `long_running` (it makes its images and ends) may end without the
    interpreter's teardown (`ends_at_once`)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    if not long_running:
        global _one_shot
        _one_shot = True


def ends_at_once() -> bool:
    """Whether the command that ran makes its images and ends (see `start_up_done`)."""
    return _one_shot


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the `imagegen` console script, `python -m imagegen`)."""
    try:
        cli.main(args=argv, prog_name="imagegen")
    finally:
        if argv is None:  # the process ends with the command (a caller's argv: it may not)
            # The interpreter's last garbage collection walks every object the run made,
            # about 20 ms of a one-image command, to free memory the process is about to give
            # back whole. Frozen objects are skipped; every file is closed by now.
            gc.freeze()
