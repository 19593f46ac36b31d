"""Settings of `imagegen serve`: one pydantic model, filled from arguments, then `IMAGEGEN_*`.

Resolution order (as everywhere in imagegen): explicit argument > environment > default.
`ServerSettings(port=9000)` reads every field it is not given from `IMAGEGEN_<FIELD>` (for
example `IMAGEGEN_MAX_QUEUE=32`), the way pydantic-settings does, without the dependency.
List fields are comma-separated (`IMAGEGEN_API_KEYS=key1,key2`), engine options are
`key=value` pairs (`IMAGEGEN_ENGINE_OPTIONS=steps=4,device=cpu`).

API keys and the URL signing secret are `SecretStr`: they never appear in a repr, a log line
or an error message.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .._capabilities import GENERIC, MB
from .._errors import ConfigurationError
from .._imaging import MAX_PIXELS, PNG_COMPRESS_LEVEL
from .._service import DEFAULT_MAX_OUTPUT_PIXELS

__all__ = ["ENV_PREFIX", "MB", "ServerSettings", "check_bind", "is_loopback", "parse_bytes"]

ENV_PREFIX = "IMAGEGEN_"

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": MB, "mb": MB, "g": 1024 * MB, "gb": 1024 * MB}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_bytes(value: Any) -> Any:
    """`"512MB"`, `"2GB"`, `"64KB"` or a plain number of bytes; units are binary, as the
    project's MB is everywhere (50 MB = 50 x 1024 x 1024 bytes)."""
    if not isinstance(value, str):
        return value
    match = _AMOUNT.match(value)
    unit = match[2].lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError("expected a number of bytes, optionally with KB, MB or GB (as 512MB)")
    return int(float(match[1]) * _UNITS[unit])


Bytes = Annotated[int, BeforeValidator(parse_bytes)]


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]


def _option_pairs(value: str) -> list[str]:
    """`key=value` pairs separated by commas; a part without `=` continues the value before it,
    so a list keeps its commas (`device=cuda:0,cuda:1,steps=4`)."""
    pairs: list[str] = []
    for part in _split(value):
        if "=" not in part and pairs:
            pairs[-1] += "," + part
        else:
            pairs.append(part)
    return pairs


class ServerSettings(BaseModel):
    """Everything `create_app` and `imagegen serve` can be told. See the module docstring."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    # Where to listen (used by `imagegen serve`; the app itself does not bind).
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)

    # Engine loaded by `create_app` when it is not handed a ready one.
    engine: str = "placeholder"
    model: str | None = None
    engine_options: dict[str, str] = Field(default_factory=dict)

    # Authentication: keys from here and from `api_key_file` (one per line, `#` comments).
    api_keys: list[SecretStr] = Field(default_factory=list)
    api_key_file: Path | None = None
    # Serving without a key on a non-loopback address must be asked for explicitly.
    allow_no_auth: bool = False

    # `response_format=url`: where files live, how long links work, the address clients use.
    storage_dir: Path | None = None  # default: a fresh temporary folder, removed at shutdown
    url_ttl: int = Field(3600, ge=1, le=7 * 24 * 3600)  # OpenAI: 60 minutes
    public_url: str | None = None  # default: the base URL of each request
    url_secret: SecretStr | None = None  # default: random per start (links die with the server)
    sweep_interval: float = Field(60.0, gt=0)

    # Uploaded files and Batch API jobs (SQLite), kept across restarts; created on first use.
    data_dir: Path | None = None  # default: IMAGEGEN_USER_DIR, else the user's data folder

    # The engine queue: `max_concurrency` jobs run, `max_queue` wait, the rest get 429.
    max_concurrency: int = Field(1, ge=1, le=64)
    max_queue: int = Field(16, ge=0, le=10_000)

    # Request limits, from OpenAI's for GPT image models: images under 50 MB, 16 per edit.
    max_image_bytes: Bytes = Field(GENERIC.max_image_bytes, ge=1024)
    max_images: int = Field(GENERIC.max_images, ge=1, le=GENERIC.max_images)
    # Whole request body; default: every image and a mask at their maximum, plus 1 MB of fields.
    max_request_bytes: Bytes | None = Field(None, ge=1024)
    max_output_pixels: int = Field(DEFAULT_MAX_OUTPUT_PIXELS, ge=1)
    # Decoded inputs of one request, all images and the mask together: each pixel costs 4
    # bytes in memory (RGBA), so the default bounds a request to ~256 MB of decoded pixels.
    max_input_pixels: int = Field(MAX_PIXELS, ge=1)

    # zlib level (0-9) of PNG answers: higher is smaller and slower (see PNG_COMPRESS_LEVEL).
    png_compress_level: int = Field(PNG_COMPRESS_LEVEL, ge=0, le=9)

    # Hostile clients (docs/server.md, "Limits and what they cost"). A request's headers must
    # arrive within `header_timeout` seconds, its body within `body_timeout` seconds plus one
    # more for every `min_upload_rate` bytes received: totals per request, never reset by a
    # byte that trickles in.
    header_timeout: float = Field(10.0, gt=0)
    body_timeout: float = Field(30.0, gt=0)
    min_upload_rate: Bytes = Field(64 * 1024, ge=0)
    # Open connections; over the cap the oldest one still waiting for its headers is closed
    # (slow or idle clients make room), or, if every one is busy, the newcomer gets a 503.
    max_connections: int = Field(1000, ge=2)
    # A JSON edit carries its images as base64 (4/3 of their size); multipart has no such cost.
    max_json_edit_bytes: Bytes = Field(128 * MB, ge=1024)
    # Request bodies held at once, server-wide, from their first byte to the answer (uploading,
    # queued or running); a request that does not fit gets a 429. Default: 1 GB, and at least
    # the largest body one request may send.
    max_inflight_bytes: Bytes | None = Field(None, ge=1024)
    # Decoded input pixels held at once, server-wide (queued and running jobs); a request waits
    # its turn to decode. Default: `max_input_pixels` times `max_concurrency`.
    max_decoded_pixels: int | None = Field(None, ge=1)
    # Disk used by `response_format=url` images; past it the oldest are removed first.
    max_storage: Bytes = Field(1024 * MB, ge=1024)
    # Log lines per second for each kind of event; the rest are counted in one summary line.
    log_rate: int = Field(20, ge=1)

    # Seconds uvicorn waits for requests in flight at shutdown before it closes them.
    graceful_timeout: int = Field(120, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, data: Any) -> Any:
        """Fill every field the caller did not give from `IMAGEGEN_<FIELD>`."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name in cls.model_fields:
            if merged.get(name) is not None:
                continue
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is None or raw.strip() == "":
                continue
            if name == "api_keys":
                merged[name] = _split(raw)
            elif name == "engine_options":
                merged[name] = parse_options(
                    _option_pairs(raw), source=ENV_PREFIX + "ENGINE_OPTIONS"
                )
            else:
                merged[name] = raw.strip()
        return merged

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/")

    @property
    def request_limit(self) -> int:
        """Largest body accepted by the edit and variation routes, in bytes."""
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return (self.max_images + 1) * self.max_image_bytes + MB

    @property
    def inflight_limit(self) -> int:
        """Bytes of request bodies the server holds at once (`max_inflight_bytes`)."""
        if self.max_inflight_bytes is not None:
            return self.max_inflight_bytes
        return max(1024 * MB, self.request_limit, self.max_json_edit_bytes)

    def pixel_budget(self, slots: int) -> int:
        """Decoded input pixels the server holds at once (`max_decoded_pixels`), for an engine
        that runs `slots` jobs at once."""
        if self.max_decoded_pixels is not None:
            return max(self.max_decoded_pixels, self.max_input_pixels)
        return self.max_input_pixels * slots

    def resolved_api_keys(self) -> list[str]:
        """Keys from `api_keys` and `api_key_file`, deduplicated. Raises `ConfigurationError`."""
        keys = [key.get_secret_value() for key in self.api_keys]
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigurationError(
                    f"The API key file {str(self.api_key_file)!r} cannot be read: "
                    f"{exc.strerror or exc}."
                ) from None
            for line in text.splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line)
        for key in keys:
            if not key:
                # `--api-key "$KEY"` with KEY unset: a server nobody can use, on any address.
                raise ConfigurationError(
                    'An API key is empty (is the variable in --api-key "$KEY" unset?): give '
                    "a real key, or no key at all for a server that listens on loopback only."
                )
            if any(ch.isspace() for ch in key) or not key.isprintable():
                raise ConfigurationError(
                    "An API key contains spaces or control characters; each key must be one "
                    "printable word."
                )
        return list(dict.fromkeys(keys))

    @classmethod
    def build(cls, **values: Any) -> ServerSettings:
        """Like the constructor, with `None` meaning "not given" and errors as one sentence."""
        given = {name: value for name, value in values.items() if value is not None}
        try:
            return cls(**given)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(part) for part in first.get("loc", ())) or "settings"
            # pydantic words a validator's own ValueError as "Value error, <its message>".
            reason = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
            raise ConfigurationError(
                f"Invalid server setting {name} (flag --{name.replace('_', '-')} or "
                f"{ENV_PREFIX}{name.upper()}): {reason.rstrip('.')}."
            ) from None


def parse_options(pairs: list[str] | tuple[str, ...], *, source: str = "-o") -> dict[str, str]:
    """`["steps=4", "device=cpu"]` → `{"steps": "4", "device": "cpu"}`."""
    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"Invalid engine option {pair!r} in {source}: write key=value."
            )
        options[key.strip()] = value.strip()
    return options


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1: addresses other machines cannot reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServerSettings, keys: list[str] | None = None) -> None:
    """Refuse to serve a non-loopback address without a key unless told so explicitly."""
    if keys is None:
        keys = settings.resolved_api_keys()
    if keys or settings.allow_no_auth or is_loopback(settings.host):
        return
    raise ConfigurationError(
        f"Refusing to listen on {settings.host} without an API key: anyone who can reach it "
        "could use the engine. Pass --api-key KEY (or IMAGEGEN_API_KEYS, or --api-key-file), "
        "or --allow-no-auth to serve it without authentication."
    )
