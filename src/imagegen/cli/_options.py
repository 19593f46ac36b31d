"""The flags the commands share, declared once.

Request flags carry OpenAI's wire names as their Python names (`n`, `size`, `output_format`), so
an `InvalidRequestError(param="size")` from the library maps back to `-s/--size` by looking the
parameter up on the command (see `_errors.flag_for`). Which request flags a command has follows
`ENDPOINT_PARAMS`, the same table the library and the server check against.

Values are not checked here beyond their type: the capability table is the one place that knows
which sizes, qualities and formats a model takes, and the library applies it before sending.
Help texts that list models, sizes or qualities are written per command from that table too, so
`imagegen variation --help` names only what variations take.
This module imports only click and the (light) capability table, so `imagegen --help` stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import click

from .._capabilities import (
    DEFAULT_MODELS,
    ENDPOINT_PARAMS,
    ENUMS,
    FLEXIBLE_MAX_EDGE,
    FLEXIBLE_MAX_RATIO,
    FLEXIBLE_MULTIPLE,
    GIF,
    MODELS,
    SNAPSHOT,
    Endpoint,
    ModelCapabilities,
)

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ("url", "base64", "byte", "json")
# An input image: a file, or - for stdin.
IMAGE_PATH = click.Path(exists=True, dir_okay=False, allow_dash=True)


class SizeType(click.ParamType[str]):
    """`WIDTHxHEIGHT` or `auto`; PSOpenAI's `256` / `512` / `1024` shorthand means `NxN`."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip().lower()
        if text.isdigit():
            return f"{int(text)}x{int(text)}"
        return text


class KeyValueType(click.ParamType[tuple[str, Any]]):
    """`key=value`. With `json_values`, the value is read as JSON when it is valid JSON
    (`seed=42` gives the number 42, `flag=true` a boolean), else kept as a string."""

    name = "key=value"

    def __init__(self, *, json_values: bool = False, header: bool = False) -> None:
        self.json_values = json_values
        self.header = header
        if header:
            self.name = "name=value"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, Any]:
        if isinstance(value, tuple):
            return value
        text = str(value)
        # Header values may hold '=' (base64 tokens) and are also written curl-style
        # ("Name: value"), so a header splits at whichever separator comes first.
        seps = [i for i in (text.find("="), text.find(":") if self.header else -1) if i >= 0]
        if not seps or min(seps) == 0:
            self.fail(f"{text!r} is not of the form {self.name}.", param, ctx)
        cut = min(seps)
        key, raw = text[:cut].strip(), text[cut + 1 :]
        if self.header:
            return key, raw.strip()
        if not self.json_values:
            return key, raw
        import json

        try:
            return key, json.loads(raw)
        except ValueError:
            return key, raw


def _choices(name: str) -> str:
    return "[" + "|".join(ENUMS[name]) + "]"


def enum_values(name: str) -> tuple[str, ...]:
    """The values wire parameter `name` takes, as OpenAI spells them (quality: any model's;
    a flag for a nested field by its path, `svg_reasoning_effort` for `svg.reasoning.effort`)."""
    if name == "quality":
        return tuple(dict.fromkeys(q for caps in MODELS.values() for q in caps.qualities or ()))
    return ENUMS.get(name) or ENUMS.get(name.replace("_", "."), ())


def canonical_values(params: dict[str, Any]) -> None:
    """Spell enum values as OpenAI does (`HD` -> `hd`, `Vivid` -> `vivid`): PowerShell users type
    them in any case. A value no model knows is left as typed, for the library to refuse (naming
    the values it takes) or for a compatible server's own model."""
    for name, value in params.items():
        if isinstance(value, str):
            for known in enum_values(name):
                if value.casefold() == known.casefold():
                    params[name] = known


def _models_of(endpoint: Endpoint) -> list[ModelCapabilities]:
    return [caps for caps in MODELS.values() if endpoint in caps.endpoints]


def _names(names: list[str]) -> str:
    """`gpt-image-1.5, gpt-image-2.5-{sunburst,flare}`: dated snapshots left out (they follow
    their model), and siblings that differ only in their last word written once."""
    entries: dict[str, list[str]] = {}  # a stem (or a whole name) -> last words
    for name in names:
        stem, _, last = name.rpartition("-")
        if re.search(SNAPSHOT, name):
            continue
        if stem and last.isalpha():
            entries.setdefault(stem + "-", []).append(last)
        else:
            entries[name] = []
    return ", ".join(
        key + (lasts[0] if len(lasts) == 1 else "{" + ",".join(lasts) + "}" if lasts else "")
        for key, lasts in entries.items()
    )


def _by_model(endpoint: Endpoint, rule: Callable[[ModelCapabilities], str | None]) -> str:
    """`dall-e-2: a|b; GPT image models: c|d`: the models of `endpoint` grouped by `rule`'s
    text (`None`: no rule to show). A group of every GPT image model is named as one."""
    groups: dict[str, list[str]] = {}
    for caps in _models_of(endpoint):
        text = rule(caps)
        if text is not None:
            groups.setdefault(text, []).append(caps.name)
    gpt = [caps.name for caps in _models_of(endpoint) if caps.is_gpt_image]
    return "; ".join(
        f"{'GPT image models' if names == gpt else _names(names)}: {text}"
        for text, names in groups.items()
    )


def _model_help(endpoint: Endpoint, also: Sequence[Endpoint] = ()) -> str:
    models = _models_of(endpoint)
    known = ", ".join(sorted(caps.name for caps in models))
    retired = ", ".join(caps.name for caps in models if caps.retired)
    default = DEFAULT_MODELS[endpoint]
    # batch: rows of other endpoints default to their own model (variations: dall-e-2)
    default += "".join(
        f"; {name}: {DEFAULT_MODELS[name]}" for name in also if DEFAULT_MODELS[name] != default
    )
    return (
        f"Model name [default {default}]. Known: {known}. Retired by OpenAI "
        f"(refused there, sent to other servers): {retired}. Other names go to the server "
        "unchecked (compatible servers have their own)."
    )


def _n_help(endpoint: Endpoint) -> str:
    fewer = _by_model(endpoint, lambda caps: str(caps.max_n) if caps.max_n < 10 else None)
    return f"How many images to make: 1-10{f' ({fewer})' if fewer else ''} [default 1]."


def _size_rule(endpoint: Endpoint) -> Callable[[ModelCapabilities], str | None]:
    def rule(caps: ModelCapabilities) -> str | None:
        if caps.flexible_sizes:
            return (
                f"any WxH with both edges multiples of {FLEXIBLE_MULTIPLE}, the long edge at "
                f"most {FLEXIBLE_MAX_EDGE} and at most {FLEXIBLE_MAX_RATIO}x the short one"
            )
        sizes = caps.sizes.get(endpoint)
        return "|".join(sizes) if sizes else None

    return rule


def _size_help(endpoint: Endpoint) -> str:
    rules = _by_model(endpoint, _size_rule(endpoint))
    return f"WIDTHxHEIGHT or auto; 256, 512 and 1024 mean NxN. {rules}."


def _quality_help(endpoint: Endpoint) -> str:
    def rule(caps: ModelCapabilities) -> str | None:
        return "|".join(caps.qualities) if caps.qualities else None

    return _by_model(endpoint, rule) + "."


def _response_format_help(endpoint: Endpoint) -> str:
    text = (
        "DALL-E models: what the server returns, links (URLs last 60 minutes) or base64. "
        "Without it, images saved or printed as base64 or bytes come as b64_json (one request, "
        "no download)."
    )
    if any(caps.is_gpt_image for caps in _models_of(endpoint)):
        text += " GPT image models always return b64_json; url is turned into it with a warning."
    return text


def _svg_options(func: F) -> F:
    """`svg`, an object on the wire, is set by two flags (see `svg_param`)."""
    func = click.option(
        "--svg-reasoning-effort",
        metavar=_choices("svg.reasoning.effort"),
        help="--output-format svg: how hard the SVG author reasons.",
    )(func)
    return click.option(
        "--svg-model", metavar="NAME", help="--output-format svg: the model that writes the SVG."
    )(func)


def svg_param(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The wire `svg` object from --svg-model and --svg-reasoning-effort; None if neither."""
    model, effort = params.get("svg_model"), params.get("svg_reasoning_effort")
    if model is None and effort is None:
        return None
    svg: dict[str, Any] = {} if model is None else {"model": model}
    if effort is not None:
        svg["reasoning"] = {"effort": effort}
    return svg


# Help texts that depend on the command (which models, sizes and qualities its endpoint has);
# `request_options` gives them to the declarations below.
_ENDPOINT_HELP: dict[str, Callable[[Endpoint], str]] = {
    "model": _model_help,
    "n": _n_help,
    "size": _size_help,
    "quality": _quality_help,
    "response_format": _response_format_help,
}

# One declaration per wire parameter, applied in this order (the order of `--help`).
_REQUEST_OPTIONS: dict[str, Callable[[F], F]] = {
    "model": click.option("-m", "--model", metavar="NAME"),
    "n": click.option("-n", "--number-of-images", "n", type=int, metavar="N"),
    "size": click.option("-s", "--size", type=SizeType(), metavar="WxH"),
    "quality": click.option("-q", "--quality", metavar="QUALITY"),
    "style": click.option(
        "--style", metavar=_choices("style"), help="dall-e-3 only: hyper-real or natural look."
    ),
    "background": click.option(
        "--background",
        metavar=_choices("background"),
        help="GPT image models: transparent needs an --output-format with alpha (not jpeg).",
    ),
    "moderation": click.option(
        "--moderation", metavar=_choices("moderation"), help="GPT image models: filter level."
    ),
    "output_format": click.option(
        "--output-format",
        metavar=_choices("output_format"),
        help="GPT image models: format of the returned images (gif: animated, svg: vector; "
        "neither streams). With -o it defaults to the file's extension (.jpg/.jpeg: jpeg, "
        ".webp: webp, .gif: gif, .svg: svg, .png: png).",
    ),
    "output_compression": click.option(
        "--output-compression",
        type=int,
        metavar="0-100",
        help="GPT image models, jpeg or webp only: compression level in percent.",
    ),
    "input_fidelity": click.option(
        "--input-fidelity",
        metavar=_choices("input_fidelity"),
        help=(
            "GPT image models but gpt-image-2: how closely to keep the input's features "
            "(faces, logos); gpt-image-1-mini takes low only."
        ),
    ),
    "response_format": click.option("--response-format", metavar=_choices("response_format")),
    "user": click.option(
        "--user", metavar="ID", help="End-user ID, for abuse monitoring (deprecated by OpenAI)."
    ),
    "safety_identifier": click.option(
        "--safety-identifier",
        metavar="ID",
        help="Stable end-user ID for safety monitoring (a hash of a username); preferred over "
        "--user.",
    ),
    "complexity": click.option(
        "--complexity",
        metavar=_choices("complexity"),
        help="GPT image models: how much planning goes into the image, apart from --quality.",
    ),
    "frame_count": click.option(
        "--frame-count",
        type=int,
        metavar=f"{GIF.min_frames}-{GIF.max_frames}",
        help=f"--output-format gif: frames of the animation [default {GIF.default_frames}].",
    ),
    "frame_duration_ms": click.option(
        "--frame-duration-ms",
        type=int,
        metavar="MS",
        help="--output-format gif: how long each frame shows, rounded to "
        f"{GIF.duration_step_ms} ms [default {GIF.default_duration_ms}].",
    ),
    "svg": _svg_options,
    "stream": click.option(
        "--stream",
        is_flag=True,
        default=None,
        help="GPT image models: stream the result (saved or printed as it completes).",
    ),
    "partial_images": click.option(
        "--partial-images",
        type=int,
        metavar="0-3",
        help="GPT image models: also receive up to N partial images while streaming "
        "(implies --stream); -o saves them as NAME.partial-0.png, ...",
    ),
}


def argument_flag(argument: str, *flags: str, **attrs: Any) -> Callable[[F], F]:
    """A flag that gives `argument` too, as PowerShell users write it (`-Prompt`, `-Image`):
    `argument_values` joins what was given either way."""
    return click.option(*flags, f"{argument}_flag", **attrs)


def argument_values(ctx: click.Context, argument: str) -> list[Any]:
    """The values of `argument` and of its `argument_flag`; one of the two is required."""
    values: list[Any] = []
    for name in (argument, f"{argument}_flag"):
        given = ctx.params.get(name)
        if isinstance(given, (list, tuple)):
            values += given
        elif given is not None:
            values.append(given)
    if not values:
        [param] = [p for p in ctx.command.params if p.name == argument]
        [flag] = [p for p in ctx.command.params if p.name == f"{argument}_flag"]
        raise click.UsageError(
            f"Missing argument '{param.human_readable_name}' (or give it with "
            f"{'/'.join(flag.opts[:2])}).",
            ctx,
        )
    return values


def request_options(
    endpoint: Endpoint, *, also: Sequence[Endpoint] = (), without: Collection[str] = ()
) -> Callable[[F], F]:
    """The request flags of `endpoint`'s parameters (prompt and images excepted), and of those
    of the endpoints `also` (help texts are `endpoint`'s), less the flags `without`."""
    params = set().union(*(ENDPOINT_PARAMS[name] for name in (endpoint, *also)))
    names = [name for name in _REQUEST_OPTIONS if name in params and name not in without]

    def decorate(func: F) -> F:
        func = click.option(
            "--extra",
            "extra_body",
            type=KeyValueType(json_values=True),
            multiple=True,
            help="Extra body field sent as is (repeatable), for parameters this version "
            "does not know or a server's own (seed=42); values are read as JSON when valid.",
        )(func)
        for name in reversed(names):
            func = _REQUEST_OPTIONS[name](func)
            if name in _ENDPOINT_HELP:
                declared: list[click.Option] = func.__click_params__  # type: ignore[attr-defined]
                # the option just declared
                declared[-1].help = (
                    _model_help(endpoint, also)
                    if name == "model"
                    else _ENDPOINT_HELP[name](endpoint)
                )
        return func

    return decorate


def output_options(func: F) -> F:
    """Where the images go: files (the default), or stdout in one of four forms."""
    for option in reversed(
        [
            click.option(
                "-o",
                "--out-file",
                metavar="PATH",
                help="Save to PATH (folders created; written atomically). n > 1: NAME.png, "
                "NAME-1.png, ...; several requests continue the numbering. A folder (PATH/) "
                "gets auto-named files. Prints the saved paths.",
            ),
            click.option(
                "-f",
                "--format",
                "format_",
                type=click.Choice(OUTPUT_FORMATS, case_sensitive=False),
                help="Print instead of saving: url (one per line; base64 results as data: "
                "URLs), base64 (one per line), byte (raw bytes of one image; not to a "
                "terminal), json (the whole response, one JSON document per line).",
            ),
            click.option(
                "--show", is_flag=True, help="Open each image in the system's image viewer."
            ),
            click.option(
                "--no-metadata",
                "metadata",
                flag_value=False,
                default=True,
                help="Do not store prompt, model and size in saved files (PNG text chunks; "
                "a NAME.json sidecar for other formats).",
            ),
        ]
    ):
        func = option(func)
    return func


def connection_options(func: F) -> F:
    """Where requests go, and how: server, credentials, timeouts, or an in-process engine."""
    options = [
        click.option(
            "--base-url",
            "--api-base",
            "base_url",
            metavar="URL",
            help="API base URL [env OPENAI_BASE_URL, OPENAI_API_BASE; default "
            "https://api.openai.com/v1].",
        ),
        click.option(
            "--api-key",
            "--token",
            "api_key",
            metavar="KEY",
            help="API key [env OPENAI_API_KEY, OPENAI_TOKEN; Azure: AZURE_OPENAI_API_KEY]. "
            "Prefer the environment: flags show up in process lists.",
        ),
        click.option(
            "--organization",
            "--org-id",
            "organization",
            metavar="ID",
            help="OpenAI organization [env OPENAI_ORG_ID, OPENAI_ORGANIZATION].",
        ),
        click.option("--project", metavar="ID", help="OpenAI project [env OPENAI_PROJECT_ID]."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Give up on an attempt after this long, however slowly the server answers; "
            "with its retries a request ends within (retries + 1) x this; 0 = no limit "
            "[default 600].",
        ),
        click.option(
            "--max-retries",
            type=click.IntRange(0, 100),
            metavar="0-100",
            help="Retries after 429, 5xx, timeouts and dropped connections, with backoff "
            "[default 2].",
        ),
        click.option(
            "--max-retry-wait",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Longest wait taken when the server asks for one (Retry-After); a longer one "
            "fails at once, saying when to try again [default 60].",
        ),
        click.option(
            "--max-response-mb",
            type=click.IntRange(min=0),
            metavar="MiB",
            help="Largest answer read, in MiB; 0 = no limit [default 512].",
        ),
        click.option(
            "--max-image-mb",
            type=click.IntRange(min=0),
            metavar="MiB",
            help="Largest image downloaded, or streamed in one event, in MiB; 0 = no limit "
            "[default 64].",
        ),
        click.option(
            "--private-downloads/--no-private-downloads",
            default=None,
            help="Whether image URLs may point at private, loopback or link-local addresses "
            "[default: only when the base URL does].",
        ),
        click.option("--proxy", metavar="URL", help="HTTP(S) proxy [env HTTPS_PROXY, NO_PROXY]."),
        click.option(
            "--extra-header",
            "extra_headers",
            type=KeyValueType(header=True),
            multiple=True,
            help="Extra HTTP header, 'Name: value' or Name=value (repeatable).",
        ),
        click.option(
            "--extra-query",
            "extra_query",
            type=KeyValueType(),
            multiple=True,
            help="Extra URL query parameter key=value (repeatable).",
        ),
        click.option(
            "--azure-endpoint",
            metavar="URL",
            help="Azure OpenAI resource, https://NAME.openai.azure.com "
            "[env AZURE_OPENAI_ENDPOINT].",
        ),
        click.option(
            "--azure-deployment",
            metavar="NAME",
            help="Azure deployment name [env AZURE_OPENAI_DEPLOYMENT].",
        ),
        click.option(
            "--api-version", metavar="VERSION", help="Azure api-version [env OPENAI_API_VERSION]."
        ),
        click.option(
            "--azure-ad-token",
            metavar="TOKEN",
            help="Microsoft Entra ID token, instead of a key [env AZURE_OPENAI_AD_TOKEN].",
        ),
        click.option(
            "--engine",
            metavar="NAME",
            help="Make the images in this process with a local engine (see 'imagegen "
            "engines'), no server: placeholder, diffusers, or a plugin.",
        ),
        click.option("--engine-model", metavar="MODEL", help="Model the --engine loads."),
        click.option(
            "-O",
            "--engine-option",
            "engine_options",
            type=KeyValueType(),
            multiple=True,
            help="Engine option key=value for --engine (repeatable).",
        ),
        click.option("--quiet", is_flag=True, help="No spinner and no warnings; only errors."),
        click.option(
            "--debug",
            is_flag=True,
            envvar="IMAGEGEN_DEBUG",
            help="Log requests and show tracebacks [env IMAGEGEN_DEBUG=1].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func
