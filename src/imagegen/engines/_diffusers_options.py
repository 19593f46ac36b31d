"""Settings of the diffusers engine: defaults per model family, server options, request fields.

Plain Python (no torch), so the rules can be read, tested and documented without the extra.

Three layers decide each denoising setting, later ones winning:

1. the model family's defaults (`detect_family`): turbo models want 1-4 steps and no guidance,
   SD 1.x/2.x/XL about 30 steps and guidance 7;
2. the server's options (`imagegen serve -o steps=4`, `DiffusersEngine(options={...})`), strings
   parsed by `DiffusersOptions`;
3. the request's extra body fields, named as diffusers names them (`Tuning`:
   `num_inference_steps`, `guidance_scale`, `negative_prompt`, `strength`; `seed` is read by
   the service).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .._errors import InvalidRequestError
from ._options import EngineOptions, option, value_rule

__all__ = [
    "DEFAULT_BATCH_WAIT_MS",
    "DEFAULT_MAX_SIZE",
    "OPTION_HELP",
    "DiffusersOptions",
    "Family",
    "Tuning",
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


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True is an int to Python, not a number of steps
        raise ValueError("")
    return value


_Number = BeforeValidator(_not_bool)
Steps = Annotated[int, Field(ge=1, le=500), _Number]
Guidance = Annotated[float, Field(ge=0.0, le=50.0), _Number]
NegativePrompt = Annotated[str, Field(max_length=32000)]
# Below 0.01 an image-to-image call would need over 100 steps to run even one.
Strength = Annotated[float, Field(ge=0.01, le=1.0), _Number]


class Tuning(BaseModel):
    """The request fields this engine reads (besides `seed`), with diffusers' names and rules."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    num_inference_steps: Steps | None = None
    guidance_scale: Guidance | None = None
    negative_prompt: NegativePrompt | None = None
    strength: Strength | None = None


_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")
DEFAULT_BATCH_WAIT_MS = 10
_DEVICE_HELP = (
    "auto (every CUDA GPU, else mps, else cpu), cpu, mps, cuda or cuda:N; a comma-separated "
    "list runs one worker per device (cuda:0,cuda:1)"
)


def _device(value: str) -> str:
    names = [part.strip() for part in value.strip().lower().split(",")]
    single = len(names) == 1
    if not all(_DEVICE_RE.match(part) and (single or part != "auto") for part in names):
        raise ValueError(f"use {_DEVICE_HELP}")
    return ",".join(names)


def _dtype(value: str) -> str:
    return value.strip().lower()


def _variant(value: str | None) -> str | None:
    return (value or "").strip() or None


class DiffusersOptions(EngineOptions):
    """The server's options (`-o name=value`, names in any case, `-` for `_`), parsed."""

    device: Annotated[str, BeforeValidator(_device)] = option(default="auto", help=_DEVICE_HELP)
    dtype: Annotated[Literal["auto", "float16", "bfloat16", "float32"], BeforeValidator(_dtype)] = (
        option(
            default="auto",
            help="auto (float16 on a GPU, float32 on the CPU), float16, bfloat16 or float32",
        )
    )
    variant: Annotated[str | None, BeforeValidator(_variant)] = option(
        default=None, help="weights variant to load, e.g. fp16 (files named *.fp16.safetensors)"
    )
    max_size: int = option(
        default=DEFAULT_MAX_SIZE,
        help=f"largest width or height served, in pixels (default {DEFAULT_MAX_SIZE})",
        ge=64,
        le=16384,
    )
    steps: Steps | None = option(
        default=None,
        help="num_inference_steps for every request (default: per model family)",
        aliases=("num_inference_steps",),
    )
    guidance: Guidance | None = option(
        default=None,
        help="guidance_scale for every request (default: per model family)",
        aliases=("guidance_scale",),
    )
    negative_prompt: NegativePrompt | None = option(
        default=None, help="negative prompt for every request"
    )
    strength: Strength | None = option(
        default=None, help="strength of image-to-image edits, masked edits and variations"
    )
    max_batch_size: int = option(
        default=1,
        help="images one pipeline call may make for several requests together "
        "(default 1: no batching)",
        ge=1,
        le=256,
    )
    batch_wait_ms: int = option(
        default=DEFAULT_BATCH_WAIT_MS,
        help="how long a request may wait for others to share its pipeline call "
        f"(default {DEFAULT_BATCH_WAIT_MS})",
        ge=0,
        le=10_000,
    )

    @classmethod
    def option_name(cls, name: str) -> str:
        return name.strip().lower().replace("-", "_")

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(self.device.split(","))

    @property
    def tuning(self) -> dict[str, Any]:
        """The request settings these options fix, by diffusers' names."""
        values = {
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance,
            "negative_prompt": self.negative_prompt,
            "strength": self.strength,
        }
        return {name: value for name, value in values.items() if value is not None}


# The engine's options with a line of help each (its `option_help`, shown to users).
OPTION_HELP = DiffusersOptions.help()


def parse_engine_options(options: Mapping[str, str]) -> DiffusersOptions:
    """Parse `-o name=value` options; unknown names and bad values raise
    `ConfigurationError(param="options")`."""
    parsed = DiffusersOptions.parse(options, "diffusers")
    assert isinstance(parsed, DiffusersOptions)
    return parsed


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
    fields = Tuning.model_fields
    for name in request:
        if name not in fields:
            accepted = ", ".join(["seed", *fields])
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
        try:
            settings[name] = getattr(Tuning.model_validate({name: value}), name)
        except ValidationError:
            rule = value_rule(fields[name])
            raise InvalidRequestError(f"Invalid {name} {value!r}: {rule}.", param=name) from None
    settings = {name: value for name, value in settings.items() if name in applies}
    if "strength" in settings:
        # Image-to-image runs int(steps * strength) steps; zero steps is an error in diffusers.
        steps = max(settings["num_inference_steps"], math.ceil(1 / settings["strength"]))
        while int(steps * settings["strength"]) < 1:  # float rounding: at most a step more
            steps += 1
        settings["num_inference_steps"] = steps
    return settings
