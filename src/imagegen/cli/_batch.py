"""`imagegen batch FILE`: many prompts to many images (see `imagegen.batch`, docs/batch.md).

The flags set defaults for every row; a row's own values win. What the user sees: a rich
progress bar on a terminal, a plain line every few seconds elsewhere (stderr), a summary at the
end, and the gallery's path on stdout. Exit codes: 0 only if every row is done; 1 if a row
failed or the batch stopped early; 2 if the file (or a flag) is wrong, nothing sent; 130 on
Ctrl-C (the first lets requests in flight finish, a second cancels them).
"""

from __future__ import annotations

import signal
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from .._capabilities import ENDPOINT_PARAMS, FILE_PARAMS
from ._errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Failure
from ._options import canonical_values, connection_options, request_options, svg_param
from ._progress import Console

# `imagegen.batch`'s default retries, written here too: importing the package for it would load
# the client and anyio for `--help` (a test keeps the two equal).
DEFAULT_BATCH_RETRIES = 6

if TYPE_CHECKING:
    from ..batch import BatchProgress, BatchReport

__all__ = ["batch"]

# The request flags of every endpoint (as defaults for the rows), less files and streaming.
_NOT_IN_BATCH = ("stream", "partial_images")
_PARAMS = sorted(set().union(*ENDPOINT_PARAMS.values()) - FILE_PARAMS - {"prompt", *_NOT_IN_BATCH})
_PLAIN_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


def _defaults(p: dict[str, Any]) -> dict[str, Any]:
    """What the flags set for every row."""
    canonical_values(p)
    defaults: dict[str, Any] = {name: p[name] for name in _PARAMS if p.get(name) is not None}
    svg = svg_param(p)
    if svg is not None:
        defaults["svg"] = svg
    if p.get("image"):
        defaults["images"] = list(p["image"])
    for name in ("mask", "markup"):
        if p.get(name):
            defaults[name] = p[name]
    if p.get("extra_body"):
        defaults["extra_body"] = dict(p["extra_body"])
    return defaults


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _stats(progress: BatchProgress) -> str:
    parts = [f"{progress.skipped + progress.done}/{progress.total} done"]
    for count, word in ((progress.failed, "failed"), (progress.invalid, "invalid")):
        if count:
            parts.append(f"{count} {word}")
    if progress.retrying:
        parts.append(f"{progress.retrying} retrying")
    rate = progress.images_per_minute
    parts.append(f"{rate:.1f} images/min" if rate is not None else "- images/min")
    parts.append(f"ETA {_duration(progress.eta)}")
    return ", ".join(parts)


class _Display:
    """Renders `BatchProgress`: a rich bar on a terminal, plain lines otherwise."""

    def __init__(self, console: Console) -> None:
        self.quiet = console.quiet
        self.rich = console.spinner_enabled
        self._progress: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._last_phase = ""
        self._last_message: str | None = None

    def __enter__(self) -> _Display:
        if self.rich:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[stats]}"),
                console=RichConsole(file=sys.stderr),
                redirect_stdout=False,
                redirect_stderr=True,  # warnings print above the bar
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("batch", total=None, stats="")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, progress: BatchProgress) -> None:
        if self.quiet or progress.finished:
            return
        if self._progress is not None:
            message = progress.message if progress.phase != "sending" else None
            self._progress.update(
                self._task,
                description=message or progress.phase,
                total=progress.total,
                completed=progress.total - progress.pending,
                stats=_stats(progress),
            )
            fresh = progress.message and progress.message != self._last_message
            if fresh and progress.phase == "sending":
                self._progress.console.print(progress.message)
            self._last_message = progress.message
            return
        now = time.monotonic()
        changed = progress.phase != self._last_phase
        if changed or now - self._last_line >= _PLAIN_EVERY:
            self._last_line, self._last_phase = now, progress.phase
            detail = f" ({progress.message})" if progress.message else ""
            click.echo(f"batch {progress.phase}: {_stats(progress)}{detail}", err=True)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(report: BatchReport) -> str:
    parts = [f"{report.done} done"]
    if report.skipped:
        parts[0] += f" (+{report.skipped} done before)"
    for count, word in ((report.failed, "failed"), (report.invalid, "invalid")):
        if count:
            parts.append(f"{count} {word}")
    if report.pending:
        parts.append(f"{report.pending} pending")
    rate = report.images_per_minute
    speed = f" ({rate:.1f} images/min)" if rate else ""
    return (
        f"{_plural(report.total, 'row')}: {', '.join(parts)}; {_plural(report.images, 'image')} "
        f"in {_duration(report.elapsed)}{speed}. Gallery: {report.gallery}"
    )


def _failure_lines(report: BatchReport, shown: int = 10) -> list[str]:
    """The first failures, in row order, one line each."""
    failures = sorted(report.failures.items())
    lines = [f"  row {number}: {' '.join(message.split())}" for number, message in failures[:shown]]
    if len(failures) > shown:
        lines.append(f"  ... and {len(failures) - shown} more: see the gallery")
    return lines


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-d",
    "--out-dir",
    metavar="DIR",
    help="Folder for the images, manifest.jsonl and index.html [default: beside FILE, named "
    "after it: prompts.csv -> prompts/]. Run again with the same folder to resume.",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight at most (one connection pool); fewer while the server answers "
    "429 or 503.",
)
@click.option("--force", is_flag=True, help="Do every row again, even those already done.")
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Record rows that break a rule as invalid and send the others, instead of sending "
    "nothing.",
)
@click.option(
    "--via",
    type=click.Choice(["api", "batch-api"]),
    default="api",
    show_default=True,
    help="api: a request per row, now. batch-api: submit the rows to the Batch API "
    "(/v1/batches: half the price at OpenAI, results within 24 h) and collect the results.",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="--via batch-api: longest wait between two looks at the batch.",
)
@click.option(
    "-i",
    "--image",
    multiple=True,
    metavar="PATH",
    help="Input image for every row that names none (repeatable): rows with a prompt become "
    "edits, rows without one variations.",
)
@click.option("--mask", metavar="PATH", help="Mask for every edit row that names none.")
@click.option("--markup", metavar="PATH", help="Markup drawing for every edit row that names none.")
@request_options("generations", also=("edits", "variations"), without=_NOT_IN_BATCH)
@click.option(
    "--no-metadata",
    "metadata",
    flag_value=False,
    default=True,
    help="Do not store prompt, model and size in the saved images.",
)
@connection_options
@click.pass_context
def batch(ctx: click.Context, /, **_: Any) -> None:
    """Make the images of every row of FILE: .txt (one prompt a line), .jsonl or .csv (a
    prompt and any request parameter per row: model, size, quality, n, image, mask, name,
    endpoint, extra.seed ...). Every row is checked before anything is sent.

    Images are saved as DIR/0001-a-red-fox.png (-1, -2 ... when n > 1), each finished row is
    recorded in DIR/manifest.jsonl, and DIR/index.html shows them all. Running the same
    command again skips the rows already done: a crash or Ctrl-C loses nothing. Rows are sent
    --concurrency at a time, slowing down when the server answers 429 or 503; 429s that say
    when to retry do not count against --max-retries.

    \b
    Examples:
      imagegen batch prompts.txt -m gpt-image-1-mini -s 1024x1024 -q low
      imagegen batch products.csv --out-dir catalogue --concurrency 8
      imagegen batch storyboard.jsonl --via batch-api
      imagegen batch captions.txt --image base.png --mask sky.png
      imagegen batch prompts.txt --engine placeholder -s 256x256
    """
    from .. import batch as batch_api
    from . import start_up_done
    from ._errors import debug_enabled, handle_errors, known_secrets
    from ._log import log_to
    from ._run import _check_connection_flags, _client_options, _quiet_model_libraries

    start_up_done(long_running=True)  # a batch may run for hours: collect its garbage
    p = ctx.params
    if p.get("engine") and not debug_enabled(ctx):
        _quiet_model_libraries()  # an engine such as diffusers loads them: no bars on stderr
    console = Console(quiet=bool(p.get("quiet")))
    defaults = _defaults(p)
    report: BatchReport | None = None
    interrupted = False
    with handle_errors(ctx):
        _check_connection_flags(p)
        options = _client_options(p)  # with --max-retries, the batch's own retries
        with log_to(console, debug=bool(p.get("debug")), secrets=known_secrets(ctx)):
            display = _Display(console)
            try:
                with display:
                    report = batch_api.run(
                        p["file"],
                        out_dir=p.get("out_dir"),
                        defaults=defaults,
                        concurrency=p["concurrency"],
                        force=bool(p.get("force")),
                        skip_invalid=bool(p.get("skip_invalid")),
                        via=p["via"],
                        poll_interval=p["poll_interval"],
                        metadata=bool(p.get("metadata", True)),
                        on_progress=display,
                        **options,
                    )
            except batch_api.BatchFileError as exc:
                # One line per problem, as for a single request.
                lines = exc.lines()
                shown = "\n".join(lines[:50])
                more = f"\n... and {len(lines) - 50} more" if len(lines) > 50 else ""
                raise Failure(f"{exc.head}:\n{shown}{more}", EXIT_USAGE) from None
            except batch_api.BatchInterrupted as exc:
                # Asked to stop, and stopped: a further Ctrl-C must not cut the summary short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                report, interrupted = exc.report, True
    if report is None:
        raise Failure("Interrupted before the batch started.", EXIT_INTERRUPTED)
    if not console.quiet:
        click.echo(_summary(report), err=True)
        for line in _failure_lines(report):
            click.echo(line, err=True)
    click.echo(str(report.gallery))
    if interrupted:
        raise Failure(
            "Interrupted; run the same command again to finish the batch.", EXIT_INTERRUPTED
        )
    if report.error is not None:
        from ._errors import describe

        raise Failure(f"The batch stopped early: {describe(report.error, ctx)}", EXIT_FAILURE)
    if not report.ok:
        sys.exit(EXIT_FAILURE)


# The connection flags are shared with the single-request commands, whose --max-retries
# defaults to 2; a batch's own default is larger (see `imagegen.batch`).
for _option in batch.params:
    if _option.name == "max_retries" and isinstance(_option, click.Option):
        _option.help = (
            "Retries per row after 429, 5xx, timeouts and dropped connections, with backoff "
            f"[default {DEFAULT_BATCH_RETRIES}]; 429s and 503s that say when to retry do not "
            "count."
        )
