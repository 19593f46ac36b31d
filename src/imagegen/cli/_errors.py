"""Errors become one line on stderr and an exit code.

0 success; 2 a usage or validation error (`click.UsageError`, `InvalidRequestError`,
`ConfigurationError`): nothing was sent; 1 an API, network, engine or file error; 130 Ctrl-C.
A library error's `param` (a wire name such as `size`) is shown as the flag that sets it
(`-s/--size`), and followed by a hint that names the fix where one is known (`hints`): a value
another model takes (`-s 256x256` is dall-e-2's), a PSOpenAI `-Format` value given to
`--response-format`, a model the server does not have, a PowerShell-style `-OutFile`.
Tracebacks only with `--debug` or `IMAGEGEN_DEBUG=1`. Error lines and tracebacks
pass through `redact` with the run's secrets (`known_secrets`), as log lines do.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import click

from .._errors import (
    EXTRA_BODY_PARAMETER,
    AuthenticationError,
    ConfigurationError,
    ContentPolicyError,
    ImagegenError,
    InvalidRequestError,
    NotFoundError,
    redact,
)

if TYPE_CHECKING:
    from .._capabilities import Endpoint

# Environment variables whose values are secrets, masked wherever they might appear.
SECRET_ENV = ("OPENAI_API_KEY", "OPENAI_TOKEN", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_AD_TOKEN")
# Parameters of the commands whose values are secrets (serve's --api-key is `api_keys`).
_SECRET_PARAMS = ("api_key", "azure_ad_token", "api_keys")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# `ctx.meta` key: the endpoint and model of the run (`_run` sets it), for the hints.
ENDPOINT_AND_MODEL = "imagegen.endpoint_and_model"


class Failure(Exception):
    """An error already worded for the user; `main` prints it as one line and exits."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def known_secrets(ctx: click.Context | None = None) -> tuple[str, ...]:
    """The secrets of this run, to mask wherever they might appear: the key and token flags of
    the command, and the environment variables that hold keys. (A URL's password is masked by
    `redact` in any case.)"""
    found: list[str | None] = [os.environ.get(name) for name in SECRET_ENV]
    params = ctx.params if ctx is not None else {}
    for name in _SECRET_PARAMS:
        value = params.get(name)
        found.extend(value if isinstance(value, (list, tuple)) else [value])
    return tuple(secret for secret in found if secret)


def debug_enabled(ctx: click.Context | None = None) -> bool:
    if ctx is not None and ctx.params.get("debug"):
        return True
    return os.environ.get("IMAGEGEN_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def flag_for(ctx: click.Context | None, param: str | None) -> str | None:
    """The flag (or argument) of the current command that sets wire parameter `param`."""
    if not param or ctx is None:
        return None
    name = re.sub(r"\[.*\]$", "", param).replace(".", "_")  # image[1] -> image, svg.model
    if name == "model" and ctx.params.get("engine") and not ctx.params.get("model"):
        return f"--engine {ctx.params['engine']}"  # no -m given: the engine chose the model
    extra = dict(ctx.params.get("extra_body") or ())
    if name in extra and ctx.params.get(name) is None:
        return f"--extra {name}"  # set through --extra, not through its own flag
    flag = option_flag(ctx, name)
    if flag is None and name in extra:
        return f"--extra {name}"
    if flag is None:  # an object set by several flags (svg: --svg-model, --svg-reasoning-effort)
        parts = [p.name for p in ctx.command.params if p.name and p.name.startswith(name + "_")]
        given = [part for part in parts if ctx.params.get(part) is not None]
        flag = option_flag(ctx, (given or parts or [name])[0])
    return flag


# An engine names its constructor's arguments, `model` and `options`; generate, edit and
# variation pass them with --engine-model and -O (serve's -m and -o carry the same names).
_ENGINE_ARGUMENTS = {"model": "engine_model", "options": "engine_options"}


def config_flag_for(ctx: click.Context | None, param: str | None) -> str | None:
    """The flag of the current command that sets the argument a `ConfigurationError` names."""
    if not param or ctx is None:
        return None
    return option_flag(ctx, _ENGINE_ARGUMENTS.get(param, param)) or option_flag(ctx, param)


def option_flag(ctx: click.Context, name: str) -> str | None:
    """The flag (or argument) of the current command whose parameter is called `name`."""
    for p in ctx.command.params:
        if p.name == name:
            if isinstance(p, click.Argument):
                return p.human_readable_name
            longs = [o for o in p.opts if o.startswith("--")]
            shorts = [o for o in p.opts if not o.startswith("--")]
            return "/".join(shorts[:1] + longs[:1])
    return None


def one_line(text: str) -> str:
    return " ".join(text.split())


# The library's own messages name both spellings, "pass api_key=... (--api-key)"; on the command
# line only the flag means anything. Compiled on first use, by `re`.
_PYTHON_AND_FLAG = r"\b(?:[a-z]+_[a-z_]+(?:=\.\.\.)?|[a-z]+=\.\.\.) \((--[a-z][a-z-]*)\)"


def describe(exc: ImagegenError, ctx: click.Context | None) -> str:
    """The message for `exc`, led by the flag it concerns; one line per problem when a request
    broke several rules."""
    if isinstance(exc, InvalidRequestError) and len(exc.problems) > 1:
        return "\n".join(
            describe(
                InvalidRequestError(problem.message, param=problem.param, code=problem.code), ctx
            )
            for problem in exc.problems
        )
    message = re.sub(_PYTHON_AND_FLAG, r"\1", one_line(exc.message))
    param = getattr(exc, "param", None)
    if isinstance(exc, ContentPolicyError):
        details = exc.moderation_details
        categories = details.get("categories") if details else None
        if isinstance(categories, list) and categories:
            message += f" (categories: {', '.join(map(str, categories))})"
    param = param if isinstance(param, str) else None
    if isinstance(exc, InvalidRequestError) and exc.code == EXTRA_BODY_PARAMETER and param:
        return _extra_body_parameter(ctx, param)
    flag = (
        config_flag_for(ctx, param) if isinstance(exc, ConfigurationError) else flag_for(ctx, param)
    )
    if isinstance(exc, NotFoundError) and not param:
        if _uses_azure(ctx):
            message += (
                " Check the Azure endpoint (--azure-endpoint) and the deployment "
                "(--azure-deployment; by default the model name)."
            )
        elif exc.code != "model_not_found":
            # The usual cause: a base URL without the server's /v1 (or with one too many).
            message += " Check the base URL (--base-url): OpenAI-compatible servers serve /v1."
    message += hints(exc, ctx)
    if isinstance(exc, AuthenticationError):
        if _uses_azure(ctx):
            message += (
                " Check the credential: pass --api-key or set AZURE_OPENAI_API_KEY, or pass an "
                "Entra ID token with --azure-ad-token or AZURE_OPENAI_AD_TOKEN."
            )
        else:
            message += " Check the key: pass --api-key or set OPENAI_API_KEY."
    return f"{flag}: {message}" if flag else message


# PSOpenAI's -Format values (how the images are printed) given to --response-format (what the
# server returns): the -f that does what was meant, and what it prints.
_PRINTED_AS = {
    "base64": ("base64", "the images as base64"),
    "byte": ("byte", "the image's bytes"),
    "object": ("json", "the whole response"),
    "json": ("json", "the whole response"),
}


def hints(exc: ImagegenError, ctx: click.Context | None) -> str:
    """What to do about `exc` (` Use -m dall-e-2, ...`), or "" when there is nothing to add."""
    if ctx is None or not exc.param:
        return ""
    value = ctx.params.get(exc.param)
    if exc.code == "model_not_found":
        if ctx.params.get("engine"):
            return " Leave -m out for the engine's own model."
        where = "(most servers list theirs at GET /v1/models)"
        if ctx.params.get("model"):
            return f" Choose a model the server has {where}, or leave -m out for the default."
        return f" Choose a model the server has with -m {where}."
    if exc.param == "response_format" and value in _PRINTED_AS:
        format_, what = _PRINTED_AS[value]
        return (
            f" To print {what}, use -f {format_} (PSOpenAI's -Format {value}); "
            "--response-format is what the server sends: url or b64_json."
        )
    return _model_taking(ctx, exc.param, value, exc.message)


def _model_taking(ctx: click.Context, param: str, value: object, message: str) -> str:
    """` dall-e-2 takes -s 256x256: use -m dall-e-2, or leave -s out.`: the models of OpenAI's
    table that accept the value the run's model refused (the default model first, alone);
    only ` Use -m ...` when `message` already lists the models that take the parameter."""
    from .._capabilities import ENDPOINT_PARAMS, MODELS
    from .._validation import TAKERS_NOTE

    endpoint, model = ctx.meta.get(ENDPOINT_AND_MODEL, (None, None))
    flag = option_flag(ctx, param)
    if (
        endpoint is None
        or model not in MODELS
        or value is None
        or flag is None
        # Files: what is wrong with one (its size, its pixels) is wrong for every model.
        or param not in ENDPOINT_PARAMS[endpoint] - {"prompt", "image", "mask", "markup", "model"}
    ):
        return ""
    names = _models_taking(endpoint, model, param, value)
    if not names:
        return ""
    short = flag.split("/")[0]
    shown = short if value is True else f"{short} {value}"
    uses = _either([f"-m {name}" for name in names], "or")
    if MODELS[names[0]].retired:
        uses += " (on a server that still has it)"
    if TAKERS_NOTE in message:
        return f" Use {uses}, or leave {short} out."
    who = f"{names[0]} takes" if len(names) == 1 else f"{_either(names, 'and')} take"
    return f" {who} {shown}: use {uses}, or leave {short} out."


def _models_taking(endpoint: Endpoint, model: str, param: str, value: object) -> list[str]:
    """The models to suggest for `param=value`, which `model` refused: the endpoint's default
    alone if it takes it, else up to three, current ones before retired ones (OpenAI refuses
    those), none if `model` takes the value alone (the rest of the request was the problem)."""
    from .._capabilities import DEFAULT_MODELS, MODELS, without_snapshots
    from .._validation import validate_params

    given = {param: value} if endpoint == "variations" else {param: value, "prompt": "x"}

    def takes(name: str) -> bool:
        try:
            validate_params(endpoint, given, MODELS[name])
        except InvalidRequestError:
            return False
        return True

    if takes(model):
        return []
    names = without_snapshots([name for name in MODELS if name != model and takes(name)])
    names = [name for name in names if not MODELS[name].retired] or names
    default = DEFAULT_MODELS[endpoint]
    return [default] if default in names else names[:3]


def _either(items: list[str], word: str) -> str:
    """`a`, `a or b`, `a, b or c`."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {word} {items[-1]}"


def _extra_body_parameter(ctx: click.Context | None, key: str) -> str:
    own = option_flag(ctx, key) if ctx is not None else None
    kind = "flag" if own is None or own.startswith("-") else "argument"
    use = f"give it with {own}" if own else "it cannot be set with --extra"
    return (
        f"--extra {key}: {key} has its own {kind}, so {use}; --extra is for parameters the "
        "command has no flag for, such as seed."
    )


# The arguments of `resolve_settings`, which the connection flags carry under the same names.
_SETTINGS = (
    "api_key",
    "base_url",
    "organization",
    "project",
    "azure_endpoint",
    "azure_deployment",
    "api_version",
    "azure_ad_token",
)


def _uses_azure(ctx: click.Context | None) -> bool:
    """Whether the run talked to Azure OpenAI, decided as the client decided it (the flags,
    then the environment)."""
    if ctx is None or ctx.params.get("engine"):
        return False
    from .._config import resolve_settings

    try:
        settings = resolve_settings(**{name: ctx.params.get(name) for name in _SETTINGS})
    except ImagegenError:
        return bool(ctx.params.get("azure_endpoint"))
    return settings.azure is not None


def exit_code_for(exc: ImagegenError) -> int:
    if isinstance(exc, (InvalidRequestError, ConfigurationError)):
        return EXIT_USAGE
    return EXIT_FAILURE


@contextlib.contextmanager
def handle_errors(ctx: click.Context) -> Iterator[None]:
    """Turn the library's errors, and file errors, into a `Failure` (one line, exit code)."""
    try:
        yield
    except ImagegenError as exc:
        _maybe_traceback(ctx)
        # The library scrubs the secrets it knows; an engine's own words are passed on as said.
        message = redact(describe(exc, ctx), *known_secrets(ctx))
        raise Failure(message, exit_code_for(exc)) from exc
    except BrokenPipeError:
        raise
    except OSError as exc:
        _maybe_traceback(ctx)
        where = f": {exc.filename}" if exc.filename else ""
        message = redact(f"{exc.strerror or exc}{where}", *known_secrets(ctx))
        raise Failure(message, EXIT_FAILURE) from exc


def _maybe_traceback(ctx: click.Context) -> None:
    if debug_enabled(ctx):
        print_traceback(known_secrets(ctx))


def print_traceback(secrets: Iterable[str]) -> None:
    """The traceback of the exception being handled, on stderr, with `secrets` masked: its
    messages (chained ones too) are not all ours."""
    import traceback

    sys.stderr.write(redact(traceback.format_exc(), *secrets))


def usage_hint(exc: click.ClickException, args: Sequence[str] = ()) -> str:
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        return f"{powershell_hint(ctx, args)} (see '{ctx.command_path} --help')"
    return ""


# A parameter written as in PowerShell: one dash, a capital (-OutFile, -Size, -N).
_POWERSHELL_PARAMETER = re.compile(r"-[A-Z][A-Za-z]*")
# The seeds' parameters whose flag is not their name in kebab case (-OutFile is --out-file).
_RENAMED = {
    "TimeoutSec": "--timeout",
    "MaxRetryCount": "--max-retries",
    "OutputRawResponse": "-f json",
    "AdditionalBody": "--extra",
    "AdditionalHeaders": "--extra-header",
    "AdditionalQuery": "--extra-query",
}


def powershell_hint(ctx: click.Context, args: Sequence[str]) -> str:
    """` PowerShell's -OutFile is -o/--out-file here.` for the first argument written as the
    seeds write parameters, which click reads as short flags (`-O utFile`)."""
    flags = {
        opt: param.name
        for param in ctx.command.params
        if isinstance(param, click.Option) and param.name
        for opt in param.opts
    }
    for arg in args:
        if arg == "--":
            break
        if not _POWERSHELL_PARAMETER.fullmatch(arg) or arg in flags:
            continue
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", arg[1:]).lower()
        wanted = f"-{words}" if len(words) == 1 else f"--{words}"
        if wanted in flags:
            return f" PowerShell's {arg} is {option_flag(ctx, flags[wanted])} here."
        if arg[1:] in _RENAMED:
            return f" PowerShell's {arg} is {_RENAMED[arg[1:]]} here."
    return ""
