"""Settings of the diffusers engine: defaults per model family, server options, request fields.

Plain Python (no torch), so the rules can be read, tested and documented without the extra.

Three layers decide each denoising setting, later ones winning:

1. the model family's defaults (`detect_family`): turbo models want 1-4 steps and no guidance,
   SD 1.x/2.x/XL about 30 steps and guidance 7;
2. the server's options (`imagegen serve -o steps=4`, `DiffusersEngine(options={...})`), strings;
3. the request's extra body fields, named as diffusers names them (`num_inference_steps`,
   `guidance_scale`, `negative_prompt`, `strength`; `seed` is read by the service).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import ConfigurationError, InvalidRequestError
from . import unknown_option_error

__all__ = [
    "DEFAULT_BATCH_WAIT_MS",
    "DEFAULT_MAX_SIZE",
    "OPTION_HELP",
    "REQUEST_FIELDS",
    "EngineOptions",
    "Family",
    "detect_family",
    "parse_engine_options",
    "request_settings",
]

DEFAULT_MAX_SIZE = 2048
# Strength used when neither the server nor the request sets one. An edit without a region
# keeps the composition (0.75); a masked area is painted from noise (1.0); a variation keeps
# the subject but moves away from the input (0.7).
DEFAULT_STRENGTH = {"img2img": 0.75, "inpaint": 1.0, "variation": 0.7}


@dataclass(frozen=True)
class Family:
    """Defaults for one kind of model; `markers` are matched in the model id and class names."""

    name: str
    num_inference_steps: int
    guidance_scale: float
    markers: tuple[str, ...] = ()


# Checked in order; the first family with a marker in the model id, the pipeline's or the
# scheduler's class name (lower case) wins. Distilled models break with classifier-free guidance.
FAMILIES = (
    Family("turbo", 2, 0.0, ("turbo",)),
    Family("few-step", 4, 0.0, ("lcm", "lightning", "hyper-sd", "schnell")),
    Family("flux", 28, 3.5, ("flux",)),
)
STANDARD = Family("standard", 30, 7.0)


def detect_family(*names: str) -> Family:
    text = " ".join(names).lower()
    for family in FAMILIES:
        if any(marker in text for marker in family.markers):
            return family
    return STANDARD


@dataclass(frozen=True)
class _Field:
    kind: type
    low: float = 0.0
    high: float = 0.0

    def rule(self) -> str:
        if self.kind is str:
            return f"must be text of at most {int(self.high):,} characters"
        if self.kind is int:
            return f"must be a whole number from {int(self.low)} to {int(self.high)}"
        return f"must be a number from {self.low:g} to {self.high:g}"

    def parse(self, value: Any) -> Any:
        """The value as `kind`, or ValueError; numbers may come as strings (multipart, `-o`)."""
        if self.kind is str:
            if not isinstance(value, str) or len(value) > self.high:
                raise ValueError
            return value
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            text = value.strip()
            if self.kind is int and not re.fullmatch(r"[+-]?\d{1,9}", text):
                raise ValueError
            value = float(text)  # ValueError for anything not numeric
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError
        if self.kind is int:
            if value != int(value):
                raise ValueError
            value = int(value)
        if not self.low <= value <= self.high:
            raise ValueError
        return self.kind(value)


# The request fields this engine reads (besides `seed`), with diffusers' names and rules.
REQUEST_FIELDS: dict[str, _Field] = {
    "num_inference_steps": _Field(int, 1, 500),
    "guidance_scale": _Field(float, 0.0, 50.0),
    "negative_prompt": _Field(str, high=32000),
    # Below 0.01 an image-to-image call would need over 100 steps to run even one.
    "strength": _Field(float, 0.01, 1.0),
}
# Short names for the command line: `-o steps=4 -o guidance=0`.
_ALIASES = {"steps": "num_inference_steps", "guidance": "guidance_scale"}
_DTYPES = ("auto", "float16", "bfloat16", "float32")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")
_MAX_SIZE = _Field(int, 64, 16384)
_MAX_BATCH_SIZE = _Field(int, 1, 256)
_BATCH_WAIT_MS = _Field(int, 0, 10_000)
DEFAULT_BATCH_WAIT_MS = 10

# The engine's options (its `option_help`, shown to users), with a line of help each.
OPTION_HELP = {
    "device": "auto (every CUDA GPU, else mps, else cpu), cpu, mps, cuda or cuda:N; a "
    "comma-separated list runs one worker per device (cuda:0,cuda:1)",
    "dtype": "auto (float16 on a GPU, float32 on the CPU), float16, bfloat16 or float32",
    "variant": "weights variant to load, e.g. fp16 (files named *.fp16.safetensors)",
    "max_size": f"largest width or height served, in pixels (default {DEFAULT_MAX_SIZE})",
    "steps": "num_inference_steps for every request (default: per model family)",
    "guidance": "guidance_scale for every request (default: per model family)",
    "negative_prompt": "negative prompt for every request",
    "strength": "strength of image-to-image edits, masked edits and variations",
    "max_batch_size": "images one pipeline call may make for several requests together "
    "(default 1: no batching)",
    "batch_wait_ms": "how long a request may wait for others to share its pipeline call "
    f"(default {DEFAULT_BATCH_WAIT_MS})",
}


@dataclass(frozen=True)
class EngineOptions:
    """The server's options, parsed. `tuning` holds diffusers-named overrides."""

    device: str = "auto"  # `auto`, or devices separated by commas
    dtype: str = "auto"
    variant: str | None = None
    max_size: int = DEFAULT_MAX_SIZE
    tuning: dict[str, Any] = field(default_factory=dict)
    max_batch_size: int = 1
    batch_wait_ms: int = DEFAULT_BATCH_WAIT_MS

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self.device.split(","))


def _bad_option(name: str, value: str, rule: str) -> ConfigurationError:
    return ConfigurationError(
        f"Invalid option {name}={value!r} for the diffusers engine: {rule}.", param="options"
    )


def parse_engine_options(options: Mapping[str, str]) -> EngineOptions:
    """Parse `-o name=value` options (names as in `OPTION_HELP`, in any case, `-` for `_`);
    unknown names and bad values raise `ConfigurationError(param="options")`."""
    device, dtype, variant, max_size = "auto", "auto", None, DEFAULT_MAX_SIZE
    batch = {"max_batch_size": 1, "batch_wait_ms": DEFAULT_BATCH_WAIT_MS}
    tuning: dict[str, Any] = {}
    for raw_name, raw_value in options.items():
        name = raw_name.strip().lower().replace("-", "_")
        value = str(raw_value).strip()
        if name == "device":
            names = [part.strip() for part in value.lower().split(",")]
            single = len(names) == 1
            if not all(_DEVICE_RE.match(part) and (single or part != "auto") for part in names):
                raise _bad_option(raw_name, value, f"use {OPTION_HELP['device']}")
            device = ",".join(names)
        elif name == "dtype":
            if value.lower() not in _DTYPES:
                raise _bad_option(raw_name, value, f"use one of {', '.join(_DTYPES)}")
            dtype = value.lower()
        elif name == "variant":
            variant = value or None
        elif name == "max_size":
            try:
                max_size = _MAX_SIZE.parse(value)
            except ValueError:
                raise _bad_option(raw_name, value, _MAX_SIZE.rule()) from None
        elif name in batch:
            spec = _MAX_BATCH_SIZE if name == "max_batch_size" else _BATCH_WAIT_MS
            try:
                batch[name] = spec.parse(value)
            except ValueError:
                raise _bad_option(raw_name, value, spec.rule()) from None
        elif _ALIASES.get(name, name) in REQUEST_FIELDS:
            key = _ALIASES.get(name, name)
            spec = REQUEST_FIELDS[key]
            try:
                tuning[key] = spec.parse(str(raw_value) if spec.kind is str else value)
            except ValueError:
                raise _bad_option(raw_name, value, spec.rule()) from None
        else:
            raise unknown_option_error(
                "diffusers",
                raw_name,
                OPTION_HELP,
                "num_inference_steps and guidance_scale are accepted for steps and guidance",
            )
    return EngineOptions(
        device=device, dtype=dtype, variant=variant, max_size=max_size, tuning=tuning, **batch
    )


def request_settings(
    family: Family,
    server: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    applies: tuple[str, ...],
    operation: str,
    strength: str | None = None,
) -> dict[str, Any]:
    """The diffusers keyword arguments for one call.

    `applies` names the fields the operation takes; a request field outside it, or unknown,
    raises InvalidRequestError naming it (a silently ignored field would surprise). Server
    options that do not apply to the operation are left out. `strength` names the kind of
    image-to-image call (`img2img`, `inpaint`, `variation`) whose default strength to use.
    """
    for name in request:
        if name not in REQUEST_FIELDS:
            accepted = ", ".join(["seed", *REQUEST_FIELDS])
            raise InvalidRequestError(
                f"Unknown parameter {name!r}. Besides OpenAI's parameters, the diffusers engine "
                f"accepts these extra fields: {accepted}.",
                param=name,
            )
        if name not in applies:
            raise InvalidRequestError(
                f"Parameter {name} does not apply to {operation}, which take: "
                f"{', '.join(['seed', *applies])}.",
                param=name,
            )
    settings: dict[str, Any] = {
        "num_inference_steps": family.num_inference_steps,
        "guidance_scale": family.guidance_scale,
    }
    if strength is not None:
        settings["strength"] = DEFAULT_STRENGTH[strength]
    settings.update(server)
    for name, value in request.items():
        spec = REQUEST_FIELDS[name]
        try:
            settings[name] = spec.parse(value)
        except ValueError:
            raise InvalidRequestError(
                f"Invalid {name} {value!r}: {spec.rule()}.", param=name
            ) from None
    settings = {name: value for name, value in settings.items() if name in applies}
    if "strength" in settings:
        # Image-to-image runs int(steps * strength) steps; zero steps is an error in diffusers.
        steps = max(settings["num_inference_steps"], math.ceil(1 / settings["strength"]))
        while int(steps * settings["strength"]) < 1:  # float rounding: at most a step more
            steps += 1
        settings["num_inference_steps"] = steps
    return settings
