"""One run of generate / edit / variation: flags → `Client` calls → files or stdout.

The library does the validating, sending and saving; this module checks only what belongs to
the command line (which flags go together, `-f byte` never to a terminal), builds the client
from the flags (`None` for a flag not given, so the client's environment fallbacks apply) and
hands each result to the `Writer`. The client (httpx2, pydantic, Pillow) is imported here, when
a command runs, never when `imagegen --help` loads the command line.

Several requests (prompts from stdin, several variation images) run one after the other; the
first failure stops the run, keeping (and having printed) what was already saved.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import field
from typing import Any

import click

from .._capabilities import (
    DEFAULT_MODELS,
    ENDPOINT_PARAMS,
    FILE_PARAMS,
    Endpoint,
    ModelCapabilities,
    get_capabilities,
)
from .._config import redacted_url
from .._errors import APIResponseError, InvalidRequestError
from .._records import record
from .._validation import validate_params
from . import start_up_done
from ._errors import ENDPOINT_AND_MODEL, debug_enabled, flag_for, handle_errors, known_secrets
from ._log import log_to, logger
from ._options import canonical_values, svg_param
from ._output import Writer, check_out_file, output_format_for
from ._progress import Console, isatty

__all__ = ["Inputs", "read_stdin_image", "read_stdin_lines", "run"]

_VERBS: dict[Endpoint, str] = {
    "generations": "Generating",
    "edits": "Editing",
    "variations": "Making variations",
}

# Flags that choose or reach a server, as the client's keyword arguments.
_SERVER_FLAGS = {
    "base_url": "--base-url",
    "api_key": "--api-key",
    "organization": "--organization",
    "project": "--project",
    "proxy": "--proxy",
    "azure_endpoint": "--azure-endpoint",
    "azure_deployment": "--azure-deployment",
    "api_version": "--api-version",
    "azure_ad_token": "--azure-ad-token",
}
_EXTRAS = ("extra_body", "extra_headers", "extra_query")


@record()
class Inputs:
    """What differs between the requests of one run: a prompt (generate, edit) and images
    (edit, variation); the flags give the rest."""

    prompt: str | None = None
    images: list[Any] = field(default_factory=list)
    mask: Any = None
    markup: Any = None
    where: str = ""  # "line 3 of standard input", for messages about this request


def read_stdin_lines(what: str, *, quiet: bool) -> list[tuple[int, str]]:
    """Non-blank lines of stdin with their line numbers (the seeds' pipeline input).

    Read as UTF-8 whatever the locale says, with a byte order mark (Windows editors write one)
    dropped; other bytes are refused, naming the line, rather than sent as mojibake.
    """
    if isatty(sys.stdin) and not quiet:
        click.echo(f"Reading {what} from standard input, one per line; end with Ctrl-D.", err=True)
    found = []
    for number, raw in enumerate(sys.stdin.buffer.read().splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError as exc:
            raise click.UsageError(
                f"Line {number} of standard input is not UTF-8 text (byte "
                f"0x{raw[exc.start]:02X}); save the {what} as UTF-8."
            ) from None
        if line:
            found.append((number, line))
    if not found:
        raise click.UsageError(f"No {what} on standard input (every line was empty).")
    return found


def read_stdin_image() -> Any:
    """An input image given as `-`: its bytes from stdin, named `stdin` so that messages about
    it say where it came from (`The image 'stdin.jpg' is JPEG ...`)."""
    import io

    data = sys.stdin.buffer.read()
    if not data:
        raise click.UsageError("An image was to be read from standard input ('-'), which is empty.")
    named = io.BytesIO(data)
    named.name = "stdin"
    return named


def run(ctx: click.Context, endpoint: Endpoint, requests: list[Inputs]) -> None:
    """Send `requests` with the command's flags; save or print every image."""
    p = ctx.params
    console = Console(quiet=bool(p.get("quiet")))
    canonical_values(p)
    with handle_errors(ctx):
        _check_text(ctx, requests)
        params = _request_params(p, endpoint, len(requests))
        _check_connection_flags(p)
        model = params.get("model") or _default_model(endpoint)
        caps = get_capabilities(model)
        ctx.meta[ENDPOINT_AND_MODEL] = (endpoint, model)  # for the hints of error messages
        if _wants_b64(p, params, caps):
            params["response_format"] = "b64_json"
        output_format = output_format_for(p.get("out_file"), p.get("output_format"), caps, endpoint)
        if output_format is not None:
            params["output_format"] = output_format
        if not p.get("format_"):
            n = params["n"] if isinstance(params.get("n"), int) else 1
            check_out_file(
                p.get("out_file"),
                images=n * len(requests),
                partials=n * (params.get("partial_images") or 0),
                output_format=output_format,
                metadata=bool(p.get("metadata", True)),
            )
        if len(requests) > 1:
            # The other parameters are the same for every request, so the first request checks
            # them; only the prompts differ, and a bad one must stop the run before any is sent.
            for inputs in requests:
                _check_prompt(endpoint, inputs, caps)
        extras = {name: dict(p[name]) for name in _EXTRAS if p.get(name)}
        writer = Writer(
            console,
            format_=p.get("format_"),
            out_file=p.get("out_file"),
            metadata=bool(p.get("metadata", True)),
            show=bool(p.get("show")),
        )

        from .. import Client

        if p.get("engine") and not debug_enabled(ctx):
            _quiet_model_libraries()
        with log_to(console, debug=bool(p.get("debug")), secrets=known_secrets(ctx)):
            # An in-process engine loads its model here, which can take a while.
            loading = console.spinner(f"Loading engine {p['engine']}") if p.get("engine") else None
            with loading or contextlib.nullcontext():
                client = Client(**_client_options(p))
            start_up_done(long_running=False)
            with client:
                _send_all(client, p, endpoint, requests, params, extras, model, writer)


def _send_all(
    client: Any,
    p: dict[str, Any],
    endpoint: Endpoint,
    requests: list[Inputs],
    params: dict[str, Any],
    extras: dict[str, Any],
    model: str,
    writer: Writer,
) -> None:
    # A base URL may carry a password (https://user:pass@gateway/v1); logs show it masked.
    target = redacted_url(client.base_url) if client.base_url else f"engine {p.get('engine')}"
    # Without -m an in-process engine answers as its own model, not the API default.
    shown = params.get("model") or p.get("engine_model") or p.get("engine") or model
    for number, inputs in enumerate(requests, start=1):
        label = _label(endpoint, shown, params.get("n"), number, len(requests))
        logger.debug("%s to %s: %s", endpoint, target, _describe(inputs, params))
        with writer.console.spinner(label):
            _one(client, endpoint, inputs, {**params, **extras}, writer, label)


def _one(
    client: Any,
    endpoint: Endpoint,
    inputs: Inputs,
    params: dict[str, Any],
    writer: Writer,
    label: str,
) -> None:
    started = time.monotonic()
    if endpoint == "generations":
        answer = client.generate(inputs.prompt, **params)
    elif endpoint == "edits":
        images = inputs.images if len(inputs.images) > 1 else inputs.images[0]
        answer = client.edit(
            images, inputs.prompt, mask=inputs.mask, markup=inputs.markup, **params
        )
    else:
        answer = client.create_variation(inputs.images[0], **params)

    if not (params.get("stream") or params.get("partial_images")):
        if not len(answer):
            raise APIResponseError(
                "The server answered without any image.", request_id=answer.request_id
            )
        request_id = f", request id {answer.request_id}" if answer.request_id else ""
        logger.debug("%d image(s) in %.2f s%s", len(answer), time.monotonic() - started, request_id)
        writer.result(answer)
        return
    with answer as stream:
        done = 0
        for event in stream:
            if event.is_partial:
                writer.console.status(f"{label}: partial image {(event.index or 0) + 1} received")
                writer.partial(event)
            else:
                done += 1
                writer.console.status(f"{label}: {done} done")
                writer.completed(event)
        logger.debug("stream of %d image(s) ended after %.2f s", done, time.monotonic() - started)
        if not done:
            raise APIResponseError(
                "The stream ended without a completed image.", request_id=stream.request_id
            )


def _wants_b64(p: dict[str, Any], params: dict[str, Any], caps: ModelCapabilities) -> bool:
    """Whether to ask for `response_format=b64_json` where the user did not choose: DALL-E
    models answer with URLs by default, which the run would only download (a second request,
    to a link that may have expired by then) to save or print the bytes. `-f url` and
    `-f json` keep the server's own answer."""
    return (
        caps.family == "dall-e"
        and "response_format" not in params
        and not p.get("engine")  # an in-process engine always answers base64
        and p.get("format_") in (None, "base64", "byte")
    )


def _quiet_model_libraries() -> None:
    """Keep the progress bars and advice of Hugging Face libraries (which an engine such as
    diffusers loads) off stderr, which carries only our errors and warnings. Set in the
    environment before they are imported; a value the user set wins."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _default_model(endpoint: Endpoint) -> str:
    # An in-process engine without -m answers under the default model's rules too, so the
    # default decides what `-o x.jpg` asks for and how long a stdin prompt may be.
    return DEFAULT_MODELS[endpoint]


def _request_params(p: dict[str, Any], endpoint: Endpoint, count: int) -> dict[str, Any]:
    """The wire parameters the user set (prompt and files excepted), after the flag checks."""
    params = {
        name: p[name]
        for name in sorted(ENDPOINT_PARAMS[endpoint])
        if name not in FILE_PARAMS and name != "prompt" and p.get(name) is not None
    }
    svg = svg_param(p)
    if svg is not None:
        params["svg"] = svg
    format_, out_file = p.get("format_"), p.get("out_file")
    if format_ and out_file is not None:
        raise click.UsageError(
            "-f/--format prints the images and -o/--out-file saves them; use one of the two."
        )
    if format_ == "byte":
        if isatty(sys.stdout):
            raise click.UsageError(
                "-f byte writes raw image bytes to stdout, which is a terminal; redirect it "
                "(> image.png, | viewer) or save with -o FILE."
            )
        if params.get("n", 1) != 1:
            raise click.UsageError(
                f"-f byte writes one image; -n/--number-of-images is {params['n']}. Save several "
                "with -o NAME.png, or print them with -f base64."
            )
        if count > 1:
            raise click.UsageError(
                f"-f byte writes one image; {count} requests were given. Save several with "
                "-o NAME.png, or print them with -f base64."
            )
    return params


def _check_connection_flags(p: dict[str, Any]) -> None:
    if p.get("engine"):
        clashing = [flag for name, flag in _SERVER_FLAGS.items() if p.get(name)]
        if clashing:
            raise click.UsageError(
                f"--engine makes images in this process, without a server; "
                f"{', '.join(clashing)} cannot be used with it."
            )
    else:
        for name, flag in (("engine_model", "--engine-model"), ("engine_options", "-O")):
            if p.get(name):
                raise click.UsageError(f"{flag} only applies with --engine NAME.")


def _client_options(p: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {name: p.get(name) for name in _SERVER_FLAGS}
    options["engine"] = p.get("engine")
    options["engine_model"] = p.get("engine_model")
    options["engine_options"] = dict(p["engine_options"]) if p.get("engine_options") else None
    # Passed only when given: to the client `None` means "no limit", while a flag left out must
    # keep the client's default.
    if p.get("timeout") is not None:
        options["timeout"] = p["timeout"] or None  # --timeout 0 = no limit, as in the seeds
    if p.get("max_retries") is not None:
        options["max_retries"] = p["max_retries"]
    if p.get("max_retry_wait") is not None:
        options["max_retry_wait"] = p["max_retry_wait"]
    for flag, option in (
        ("max_response_mb", "max_response_size"),
        ("max_image_mb", "max_image_size"),
    ):
        if p.get(flag) is not None:
            options[option] = p[flag] * 2**20 or None  # 0 = no limit
    options["allow_private_downloads"] = p.get("private_downloads")
    return options


def _check_text(ctx: click.Context, requests: list[Inputs]) -> None:
    """A prompt from the command line that is not UTF-8 (the shell passed other bytes, which
    Python keeps as surrogates) is refused here, not met as an encoding crash when sending."""
    for inputs in requests:
        try:
            (inputs.prompt or "").encode("utf-8")
        except UnicodeEncodeError as exc:
            flag = flag_for(ctx, "prompt") or "PROMPT"
            byte = ord(str(exc.object)[exc.start]) - 0xDC00
            raise click.UsageError(
                f"{flag}: the prompt is not UTF-8 text (byte 0x{byte:02X} at character "
                f"{exc.start + 1}); set the terminal to UTF-8 or retype it."
            ) from None


def _check_prompt(endpoint: Endpoint, inputs: Inputs, caps: ModelCapabilities) -> None:
    if inputs.prompt is None:
        return
    try:
        validate_params(endpoint, {"prompt": inputs.prompt}, caps)
    except InvalidRequestError as exc:
        raise InvalidRequestError(f"{inputs.where}: {exc.message}", param=exc.param) from None


def _label(endpoint: Endpoint, model: str, n: Any, number: int, total: int) -> str:
    count = n if isinstance(n, int) else 1
    text = f"{_VERBS[endpoint]} {count} {'image' if count == 1 else 'images'} with {model}"
    return f"{text} [{number}/{total}]" if total > 1 else text


def _describe(inputs: Inputs, params: dict[str, Any]) -> str:
    shown = dict(params)
    if inputs.prompt is not None:
        shown["prompt"] = inputs.prompt
    if inputs.images:
        shown["images"] = len(inputs.images)
    for name in ("mask", "markup"):
        if getattr(inputs, name) is not None:
            shown[name] = True
    return ", ".join(f"{key}={value!r}" for key, value in shown.items())
