"""Where the client's settings come from, in one documented order.

Every setting is taken from the first source that has it: **explicit argument > environment >
default**. The command line passes its flags as explicit arguments (`None` when a flag is not
given), so a flag always beats the environment. Empty environment variables count as unset.

Settings, each with its argument, then its environment variables (first set wins), then default:

- API key: `api_key`; `OPENAI_API_KEY`, `OPENAI_TOKEN` (legacy); none.
- Base URL: `base_url`; `OPENAI_BASE_URL`, `OPENAI_API_BASE`; `https://api.openai.com/v1`.
- Organization: `organization`; `OPENAI_ORG_ID`, `OPENAI_ORGANIZATION`; none.
- Project: `project`; `OPENAI_PROJECT_ID`; none.
- Azure endpoint: `azure_endpoint`; `AZURE_OPENAI_ENDPOINT`; none (not Azure).
- Azure deployment: `azure_deployment`; `AZURE_OPENAI_DEPLOYMENT`; the request's `model`.
- Azure API version: `api_version`; `OPENAI_API_VERSION`; none, required for Azure.
- Azure credential: `azure_ad_token` or `api_key`; `AZURE_OPENAI_AD_TOKEN`, then
  `AZURE_OPENAI_API_KEY`; none, required for Azure.
- Timeout: `timeout`; -; 600 s for each attempt, 10 s of them to connect (`None` or `0`: no
  limit but the connect one). A total, not a gap between bytes: see `_network`.
- Retries: `max_retries`; -; 2 (0 to 100). A call ends within `(max_retries + 1) × timeout`.
- Longest Retry-After wait taken: `max_retry_wait`; -; 60 s (a longer one is an error at once).
- Largest answer read: `max_response_size`; -; 512 MiB (`None`: no limit).
- Largest image downloaded, or streamed in one event: `max_image_size`; -; 64 MiB (`None`: no
  limit).
- Downloads from private addresses: `allow_private_downloads`; -; allowed when the base URL is
  itself on a private or loopback address, refused otherwise (see `_downloads`).
- Proxy: `proxy`; `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, read by httpx2; none.

Which service: an explicit `azure_endpoint` selects Azure OpenAI and an explicit `base_url` a
plain OpenAI-compatible server (giving both is an error). With neither, `OPENAI_BASE_URL` /
`OPENAI_API_BASE` select a plain server, else `AZURE_OPENAI_ENDPOINT` selects Azure, else
OpenAI itself. Azure takes its own credentials only (`api-key` header for a key, `Authorization:
Bearer` for an Entra ID token), never `OPENAI_API_KEY`.

A base URL may carry a user name and password (`https://user:pass@gateway/v1`), sent as HTTP
Basic authentication for a gateway in front of a server. That takes the `Authorization` header,
which a key or an Entra ID token needs too, so the two together are refused (naming both
sources) rather than one silently dropped; Azure's `api-key` header coexists with it.

A key is required only by OpenAI's own servers (`*.api.openai.com`): local and compatible servers
often need none, so a missing key there is not an error.

Checked here, so that a mistake is reported before anything is sent, naming where the value came
from (the argument and its flag, or the environment variable): URLs must be http(s) with a host
and a valid port; keys, tokens, organization and project go into HTTP headers, so they must be
printable ASCII without spaces (a pasted key with a look-alike character or a line break inside
is refused, the key itself never shown). Spaces around a value are dropped, as for variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._errors import ConfigurationError, redact
from ._headers import header_value_problem
from ._records import record

if TYPE_CHECKING:
    from urllib.parse import SplitResult

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_IMAGE_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_WAIT",
    "DEFAULT_TIMEOUT",
    "MAX_RETRIES_LIMIT",
    "AzureSettings",
    "Limits",
    "Settings",
    "check_max_retries",
    "make_limits",
    "redacted_url",
    "resolve_settings",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# gpt-image renders take up to two minutes, and longer on busy days; the connect timeout stays
# short so a wrong host or a dead proxy is reported quickly.
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
MAX_RETRIES_LIMIT = 100
# OpenAI's SDKs wait up to two minutes when a server asks; a caller paying per image would rather
# hear "try again at 14:05" than watch a command sit silent for longer than a minute.
DEFAULT_MAX_RETRY_WAIT = 60.0
MiB = 1024 * 1024
# gpt-image-2's largest image is 3840x2160: as a PNG of noise, which PNG cannot compress, 25 MB
# (33 MB with an alpha channel), 33 MB (44 MB) of base64. Ten of them fit in one answer; while
# it is parsed an answer is held in memory about twice (see `_answers`).
DEFAULT_MAX_RESPONSE_SIZE = 512 * MiB
# Twice the RGB one, so any image an API makes fits.
DEFAULT_MAX_IMAGE_SIZE = 64 * MiB

_ENV_KEY = ("OPENAI_API_KEY", "OPENAI_TOKEN")
_ENV_BASE_URL = ("OPENAI_BASE_URL", "OPENAI_API_BASE")
_ENV_ORG = ("OPENAI_ORG_ID", "OPENAI_ORGANIZATION")
_ENV_PROJECT = ("OPENAI_PROJECT_ID",)
_AZURE_EXAMPLE = "https://NAME.openai.azure.com"


@record(frozen=True)
class AzureSettings:
    """Azure OpenAI: where the resource is and how to sign in."""

    endpoint: str
    api_version: str
    deployment: str | None = None
    ad_token: str | None = None

    def __repr__(self) -> str:
        token = "***" if self.ad_token else None
        return (
            f"AzureSettings(endpoint={redacted_url(self.endpoint)!r}, "
            f"deployment={self.deployment!r}, api_version={self.api_version!r}, "
            f"ad_token={token!r})"
        )


@record(frozen=True)
class Settings:
    """Resolved connection settings. The repr never shows a secret."""

    base_url: str
    api_key: str | None = None
    organization: str | None = None
    project: str | None = None
    azure: AzureSettings | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret these settings hold, for scrubbing messages and logs; a password in
        the base URL (`https://user:pass@gateway/v1`) is one."""
        found = [self.api_key, self.azure.ad_token if self.azure else None]
        found.append(url_password(self.base_url))
        return tuple(secret for secret in found if secret)

    @property
    def is_openai(self) -> bool:
        """Whether requests go to OpenAI's own API (`*.api.openai.com`), not Azure or another
        compatible server."""
        return self.azure is None and _is_openai(self.base_url)

    @property
    def shown_url(self) -> str:
        """`base_url` as reprs, messages and logs show it: without its password."""
        return redacted_url(self.base_url)

    def auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.azure is not None:
            if self.azure.ad_token:
                headers["Authorization"] = f"Bearer {self.azure.ad_token}"
            elif self.api_key:
                headers["api-key"] = self.api_key
        elif self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def __repr__(self) -> str:
        key = "***" if self.api_key else None
        return (
            f"Settings(base_url={self.shown_url!r}, api_key={key!r}, "
            f"organization={self.organization!r}, project={self.project!r}, azure={self.azure!r})"
        )


@record(frozen=True)
class Limits:
    """What one call may cost beyond its timeout: the longest Retry-After wait taken, the
    bytes read, and where URL results may be downloaded from (`None`: see `_downloads`)."""

    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT
    max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE
    max_image_size: int | None = DEFAULT_MAX_IMAGE_SIZE
    private_downloads: bool | None = None

    @property
    def max_event_size(self) -> int | None:
        """The largest stream event read: one image in base64, plus its JSON around it."""
        if self.max_image_size is None:
            return None
        return self.max_image_size * 4 // 3 + MiB


def _size_limit(value: object, name: str, flag: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"Invalid {name} {value!r}: give a number of bytes above 0, or None for no limit "
            f"({flag} takes MiB, 0 for no limit).",
            param=name,
        )
    return value


def make_limits(
    *,
    max_retry_wait: object = DEFAULT_MAX_RETRY_WAIT,
    max_response_size: object = DEFAULT_MAX_RESPONSE_SIZE,
    max_image_size: object = DEFAULT_MAX_IMAGE_SIZE,
    allow_private_downloads: object = None,
) -> Limits:
    """`Limits` from the client's arguments, or a `ConfigurationError` naming the one at fault."""
    wait = max_retry_wait
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait < float("inf"):
        raise ConfigurationError(
            f"Invalid max_retry_wait {wait!r}: give seconds as a number, 0 or more "
            "(--max-retry-wait).",
            param="max_retry_wait",
        )
    if allow_private_downloads not in (None, True, False):
        raise ConfigurationError(
            f"Invalid allow_private_downloads {allow_private_downloads!r}: True, False, or None "
            "to allow them only when the base URL is itself private (--private-downloads / "
            "--no-private-downloads).",
            param="allow_private_downloads",
        )
    return Limits(
        max_retry_wait=float(wait),
        max_response_size=_size_limit(max_response_size, "max_response_size", "--max-response-mb"),
        max_image_size=_size_limit(max_image_size, "max_image_size", "--max-image-mb"),
        private_downloads=allow_private_downloads
        if isinstance(allow_private_downloads, bool)
        else None,
    )


def _pick(explicit: str | None, environ: Mapping[str, str], *names: str) -> str | None:
    return _pick_from(explicit, "", environ, *names)[0]


def _pick_from(
    explicit: str | None, argument: str, environ: Mapping[str, str], *names: str
) -> tuple[str | None, str]:
    """The value as `_pick` finds it, and where it came from for messages: `argument` (written
    `api_key=... (--api-key)`) or the name of the variable that held it."""
    if explicit and explicit.strip():
        return explicit.strip(), argument
    for name in names:
        if value := environ.get(name, "").strip():
            return value, name
    return None, argument


def _header_safe(value: str | None, source: str, *, what: str) -> str | None:
    """`value`, if HTTP can carry it in a header, spaces excluded; else a `ConfigurationError`
    that says which character is wrong and where the value came from, without showing it."""
    if value is None:
        return None
    problem = header_value_problem(value, spaces=False)
    if problem is not None:
        raise ConfigurationError(
            f"The {what} from {source} {problem}, which cannot be sent in an HTTP header; copy "
            f"the {what} again."
        )
    return value


def _split(url: str) -> SplitResult:
    from urllib.parse import urlsplit  # here: with ipaddress, it is ~3 ms of a start needing no URL

    return urlsplit(url)


def url_password(url: str) -> str | None:
    """The password of `http://user:password@host/...`, if the URL has one."""
    try:
        return _split(url).password
    except ValueError:
        return None


def redacted_url(url: str) -> str:
    """`url` without the password of `user:password@`, for messages and logs."""
    return redact(url, url_password(url))


def _check_url(url: str, what: str, source: str, example: str) -> str:
    """`url` without a trailing `/`, or a `ConfigurationError` naming `source` and a fix."""
    try:
        parts = _split(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
        problem = "" if parts.scheme in ("http", "https") and parts.hostname else "-"
    except ValueError as exc:
        problem = str(exc).lower().rstrip(".")  # "invalid ipv6 url", "port out of range ..."
    if problem:
        detail = f" ({problem})" if problem != "-" else ""
        raise ConfigurationError(
            f"Invalid {what} {redacted_url(url)!r}{detail} from {source}: use an http:// or "
            f"https:// URL such as {example!r}."
        )
    return url.rstrip("/")


def _check_one_authorization(url: str, url_source: str, credential: str) -> None:
    """Refuse a URL with `user:password@` together with a credential sent as a Bearer token.

    httpx2 turns the URL's user and password into `Authorization: Basic ...`, which replaces
    `Authorization: Bearer <key>`: one header cannot carry both, and no other header is
    understood by every server and gateway. Sending one and dropping the other without a word
    fails in confusing ways (a 401 for a key that is right), so both sources are named."""
    try:
        parts = _split(url)
        has_login = bool(parts.username or parts.password)
    except ValueError:
        return
    if has_login:
        raise ConfigurationError(
            f"The URL {redacted_url(url)!r} from {url_source} holds a user name and password, "
            f"sent as HTTP Basic authentication in the Authorization header, and {credential} "
            "goes in that same header as a Bearer token: one request cannot carry both. Drop "
            "the user and password from the URL, or the key (for a gateway that takes the key "
            "in another header, send it with default_headers / --extra-header instead)."
        )


def _is_openai(url: str) -> bool:
    host = (_split(url).hostname or "").lower()
    return host == "api.openai.com" or host.endswith(".api.openai.com")


def resolve_settings(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    organization: str | None = None,
    project: str | None = None,
    azure_endpoint: str | None = None,
    azure_deployment: str | None = None,
    api_version: str | None = None,
    azure_ad_token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Apply the order in the module docstring; raise `ConfigurationError` naming the fix."""
    env = os.environ if environ is None else environ
    if azure_endpoint and base_url:
        raise ConfigurationError(
            "Both a base URL and an Azure endpoint were given: use base_url (--base-url) for "
            "OpenAI-compatible servers or azure_endpoint (--azure-endpoint) for Azure OpenAI."
        )
    organization = _header_safe(
        *_pick_from(organization, "organization=... (--organization)", env, *_ENV_ORG),
        what="organization ID",
    )
    project = _header_safe(
        *_pick_from(project, "project=... (--project)", env, *_ENV_PROJECT), what="project ID"
    )

    env_azure = bool(_pick(None, env, "AZURE_OPENAI_ENDPOINT"))
    use_azure = bool(azure_endpoint) or (
        not base_url and not _pick(None, env, *_ENV_BASE_URL) and env_azure
    )
    if use_azure:
        return _azure_settings(
            env,
            endpoint=_pick_from(
                azure_endpoint, "azure_endpoint (--azure-endpoint)", env, "AZURE_OPENAI_ENDPOINT"
            ),
            deployment=_pick(azure_deployment, env, "AZURE_OPENAI_DEPLOYMENT"),
            api_version=_pick(api_version, env, "OPENAI_API_VERSION"),
            api_key=api_key,
            ad_token=azure_ad_token,
            organization=organization,
            project=project,
        )
    if azure_ad_token or azure_deployment:
        raise ConfigurationError(
            "An Azure token or deployment was given without an Azure endpoint: set "
            "azure_endpoint (--azure-endpoint) or AZURE_OPENAI_ENDPOINT."
        )

    url, url_source = _pick_from(base_url, "base_url (--base-url)", env, *_ENV_BASE_URL)
    url = _check_url(url or DEFAULT_BASE_URL, "base URL", url_source, "http://127.0.0.1:8000/v1")
    key, key_source = _pick_from(api_key, "api_key (--api-key)", env, *_ENV_KEY)
    key = _header_safe(key, key_source, what="API key")
    if key is not None:
        _check_one_authorization(url, url_source, f"an API key from {key_source}")
    if key is None and _is_openai(url):
        raise ConfigurationError(
            f"No API key for {redacted_url(url)}: pass api_key=... (--api-key) or set "
            "OPENAI_API_KEY. To use a local or compatible server that needs no key, set base_url "
            "(--base-url) or OPENAI_BASE_URL."
        )
    return Settings(base_url=url, api_key=key, organization=organization, project=project)


def _azure_settings(
    env: Mapping[str, str],
    *,
    endpoint: tuple[str | None, str],
    deployment: str | None,
    api_version: str | None,
    api_key: str | None,
    ad_token: str | None,
    organization: str | None,
    project: str | None,
) -> Settings:
    url = _check_url(endpoint[0] or "", "Azure endpoint", endpoint[1], _AZURE_EXAMPLE)
    if not api_version:
        raise ConfigurationError(
            "Azure OpenAI needs an API version: pass api_version=... (--api-version) or set "
            "OPENAI_API_VERSION (for example 2025-04-01-preview)."
        )
    if api_key and ad_token:
        raise ConfigurationError(
            "Give either an Azure API key with api_key=... (--api-key) or an Entra ID token "
            "with azure_ad_token=... (--azure-ad-token), not both."
        )
    key_from = token_from = ""
    if api_key:
        api_key, key_from = _pick_from(api_key, "api_key (--api-key)", env)
    elif ad_token:
        ad_token, token_from = _pick_from(ad_token, "azure_ad_token (--azure-ad-token)", env)
    else:
        ad_token, token_from = _pick_from(None, "", env, "AZURE_OPENAI_AD_TOKEN")
        if not ad_token:
            api_key, key_from = _pick_from(None, "", env, "AZURE_OPENAI_API_KEY")
    api_key = _header_safe(api_key, key_from, what="Azure API key")
    ad_token = _header_safe(ad_token, token_from, what="Entra ID token")
    if not api_key and not ad_token:
        raise ConfigurationError(
            "No Azure credential: pass api_key=... (--api-key) or set AZURE_OPENAI_API_KEY, "
            "or pass an Entra ID token as azure_ad_token (--azure-ad-token) or set "
            "AZURE_OPENAI_AD_TOKEN."
        )
    if ad_token:
        _check_one_authorization(url, endpoint[1], f"an Entra ID token from {token_from}")
    if deployment is not None and deployment.strip("/") in ("", ".", ".."):
        raise ConfigurationError(f"Invalid Azure deployment name {deployment!r}.")
    return Settings(
        base_url=url,
        api_key=api_key,
        organization=organization,
        project=project,
        azure=AzureSettings(
            endpoint=url, api_version=api_version, deployment=deployment, ad_token=ad_token
        ),
    )


def check_max_retries(value: object) -> int:
    """`max_retries` as an int from 0 to 100, or a `ConfigurationError` naming the rule."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES_LIMIT:
        raise ConfigurationError(
            f"Invalid max_retries {value!r}: must be a whole number from 0 to "
            f"{MAX_RETRIES_LIMIT} (--max-retries)."
        )
    return value
