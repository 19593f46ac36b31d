"""The `imagegen` command line: generate, edit, variation, serve, engines.

Loading this package imports click and a few light modules only; each command imports the
client (httpx2, pydantic, Pillow) or the server (starlette, uvicorn) when it runs, so
`imagegen --help` starts fast. `main()` is the console script and `python -m imagegen`.

Exit codes: 0 success, 2 usage or validation error, 1 API, network, engine or file error,
130 interrupted. Every error is one line on stderr; `--debug` (or `IMAGEGEN_DEBUG=1`) adds
the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .._version import __version__
from ._edit import edit
from ._errors import EXIT_FAILURE, EXIT_INTERRUPTED, Failure, debug_enabled, one_line, usage_hint
from ._generate import generate
from ._serve import engines_command, serve_command
from ._variation import variation

__all__ = ["cli", "main"]


class ImagegenGroup(click.Group):
    """A click group whose errors are one line each, with the exit codes above."""

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
            click.echo(f"Error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {one_line(exc.format_message())}{usage_hint(exc)}", err=True)
            sys.exit(exc.exit_code)
        except BrokenPipeError:
            # The reader went away (`| head -1`): stop quietly, as other Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_FAILURE)
        except Exception as exc:
            # A bug, not an expected error: still one line, with the way to see more.
            if debug_enabled():
                import traceback

                traceback.print_exc()
                hint = ""
            else:
                hint = " (run with --debug for the traceback)"
            click.echo(f"Error: unexpected {type(exc).__name__}: {exc}{hint}", err=True)
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


cli.add_command(generate)
cli.add_command(edit)
cli.add_command(variation)
cli.add_command(serve_command, "serve")
cli.add_command(engines_command, "engines")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the `imagegen` console script, `python -m imagegen`)."""
    cli.main(args=argv, prog_name="imagegen")
