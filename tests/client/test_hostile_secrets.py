"""Credentials are all sent or clearly refused, and no attribute of any error holds a secret.

A base URL's `user:password@` becomes `Authorization: Basic`, which would silently replace the
key's `Authorization: Bearer`: the two together are refused, naming both sources. A server
that echoes the key (or the URL's password) in its error message, its JSON body however deeply
nested, its headers, its stream events or a redirect finds it masked in every attribute of the
error raised: message, `args`, `body`, `code`, `type`, `param`, `request_id`, `str`, `repr`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from scripted import Reply, ScriptedServer

import imagegen
from imagegen._errors import Problem, redact_error
from imagegen.cli import cli

# Not shaped like an OpenAI key, so only the client's knowledge of it can mask it.
KEY = "gwkey-0123456789SECRETvalue"
PASSWORD = "pass-SECRET-4821"


def _strings(value: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from `value`: attributes, containers, keys."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key, seen)
            yield from _strings(item, seen)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item, seen)
    elif isinstance(value, BaseException):
        yield str(value)
        yield repr(value)
        yield from _strings(value.args, seen)
        yield from _strings(vars(value), seen)
        for name in ("body", "code", "type", "param", "request_id", "message"):
            yield from _strings(getattr(value, name, None), seen)


def assert_clean(error: BaseException, *secrets: str) -> None:
    for text in _strings(error):
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {text!r}"


def _echo(*secrets: str) -> dict[str, Any]:
    both = " ".join(secrets)
    return {
        "error": {
            "message": f"Incorrect API key provided: {both}. Authorization: Bearer {secrets[0]}",
            "type": both,
            "code": both,
            "param": both,
            "details": {"echo": [both, {"again": [f"key={both}"]}], both: True},
        }
    }


ECHOES = {
    "status-body": lambda: Reply(status=401, json=_echo(KEY), headers={"x-request-id": KEY}),
    "2xx-error-object": lambda: Reply(json=_echo(KEY), headers={"x-request-id": KEY}),
    "2xx-not-json": lambda: Reply(body=f"oops {KEY}".encode(), content_type="text/plain"),
    "redirect": lambda: Reply(
        status=307, json={"error": {"message": "moved"}}, headers={"location": f"/v1?key={KEY}"}
    ),
    "text-error": lambda: Reply(status=400, body=f"<p>bad key {KEY}</p>".encode()),
}


@pytest.mark.parametrize("reply", ECHOES.values(), ids=ECHOES.keys())
def test_a_key_echoed_anywhere_is_masked_in_every_attribute(
    server: ScriptedServer, reply: Any
) -> None:
    server.script(reply())
    with (
        imagegen.Client(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
        pytest.raises(imagegen.APIError) as info,
    ):
        client.generate("a fox")
    assert_clean(info.value, KEY)
    assert "***" in str(info.value) or "oops" in str(info.value) or "moved" in str(info.value)


def test_the_error_body_keeps_its_shape_with_the_key_masked(server: ScriptedServer) -> None:
    server.script(Reply(status=401, json=_echo(KEY)))
    with (
        imagegen.Client(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
        pytest.raises(imagegen.AuthenticationError) as info,
    ):
        client.generate("a fox")
    body = info.value.body
    assert body["error"]["details"]["echo"][1] == {"again": ["key=***"]}
    assert body["error"]["details"]["***"] is True
    assert info.value.code == "***"


STREAM_ECHOES = {
    "error-event": [{"type": "error", "error": {"message": f"bad {KEY}", "code": KEY}}],
    "not-json": [f"data: not json {KEY}\n\n"],
    "malformed": [{"type": "image_generation.completed", "b64_json": {"echo": KEY}}],
}


@pytest.mark.parametrize("events", STREAM_ECHOES.values(), ids=STREAM_ECHOES.keys())
def test_a_key_echoed_in_a_stream_is_masked(server: ScriptedServer, events: list[Any]) -> None:
    server.script(Reply(sse=events))
    with (
        imagegen.Client(base_url=server.base_url, api_key=KEY, max_retries=0) as client,
        pytest.raises(imagegen.APIError) as info,
    ):
        client.generate("a fox", stream=True).result()
    assert_clean(info.value, KEY)


@pytest.mark.parametrize("events", STREAM_ECHOES.values(), ids=STREAM_ECHOES.keys())
def test_a_key_echoed_in_an_async_stream_is_masked(
    server: ScriptedServer, events: list[Any]
) -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(base_url=server.base_url, api_key=KEY) as client:
            stream = await client.generate("a fox", stream=True)
            await stream.result()

    server.script(Reply(sse=events))
    with pytest.raises(imagegen.APIError) as info:
        asyncio.run(main())
    assert_clean(info.value, KEY)


def test_an_async_status_error_is_masked(server: ScriptedServer) -> None:
    async def main() -> None:
        async with imagegen.AsyncClient(base_url=server.base_url, api_key=KEY) as client:
            await client.generate("a fox")

    server.script(Reply(status=403, json=_echo(KEY), headers={"x-request-id": KEY}))
    with pytest.raises(imagegen.PermissionDeniedError) as info:
        asyncio.run(main())
    assert_clean(info.value, KEY)


def test_a_url_password_echoed_back_is_masked(server: ScriptedServer) -> None:
    url = server.base_url.replace("http://", f"http://gateway:{PASSWORD}@")
    server.script(Reply(status=403, json=_echo(PASSWORD), headers={"x-request-id": PASSWORD}))
    with (
        imagegen.Client(base_url=url, max_retries=0) as client,
        pytest.raises(imagegen.PermissionDeniedError) as info,
    ):
        client.generate("a fox")
    assert_clean(info.value, PASSWORD)


def test_url_credentials_alone_are_sent_as_basic_authentication(server: ScriptedServer) -> None:
    url = server.base_url.replace("http://", f"http://gateway:{PASSWORD}@")
    with imagegen.Client(base_url=url) as client:
        client.generate("a fox")
    expected = base64.b64encode(f"gateway:{PASSWORD}".encode()).decode()
    assert server.last.headers["authorization"] == f"Basic {expected}"


def test_url_credentials_and_a_key_are_refused_naming_both() -> None:
    url = f"http://gateway:{PASSWORD}@127.0.0.1:9/v1"
    with pytest.raises(imagegen.ConfigurationError) as info:
        imagegen.Client(base_url=url, api_key=KEY)
    message = str(info.value)
    assert "base_url (--base-url)" in message and "api_key (--api-key)" in message
    assert "Authorization" in message and "Drop" in message
    assert_clean(info.value, KEY, PASSWORD)


def test_the_refusal_names_the_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://gateway:{PASSWORD}@127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(imagegen.ConfigurationError) as info:
        imagegen.Client()
    assert "OPENAI_BASE_URL" in str(info.value) and "OPENAI_API_KEY" in str(info.value)
    assert_clean(info.value, KEY, PASSWORD)


def test_an_authorization_header_and_url_credentials_are_refused(server: ScriptedServer) -> None:
    url = server.base_url.replace("http://", f"http://gateway:{PASSWORD}@")
    with pytest.raises(imagegen.ConfigurationError, match="default_headers"):
        imagegen.Client(base_url=url, default_headers={"Authorization": f"Bearer {KEY}"})
    with (
        imagegen.Client(base_url=url) as client,
        pytest.raises(imagegen.ConfigurationError, match="extra_headers"),
    ):
        client.generate("a fox", extra_headers={"authorization": f"Bearer {KEY}"})
    assert server.requests == []


def test_an_entra_token_and_url_credentials_are_refused() -> None:
    with pytest.raises(imagegen.ConfigurationError, match="Entra ID token"):
        imagegen.Client(
            azure_endpoint=f"https://u:{PASSWORD}@res.openai.azure.com",
            api_version="2025-04-01-preview",
            azure_ad_token="entra-token-xyz",
        )


def test_azures_api_key_header_and_url_credentials_are_both_sent(server: ScriptedServer) -> None:
    endpoint = server.url.replace("http://", f"http://gateway:{PASSWORD}@")
    with imagegen.Client(
        azure_endpoint=endpoint, api_version="2025-04-01-preview", api_key=KEY, azure_deployment="d"
    ) as client:
        client.generate("a fox")
    assert server.last.headers["api-key"] == KEY
    assert server.last.headers["authorization"].startswith("Basic ")


def test_the_command_line_refuses_both_in_one_line() -> None:
    url = f"http://gateway:{PASSWORD}@127.0.0.1:9/v1"
    result = CliRunner().invoke(cli, ["generate", "a fox", "--base-url", url, "--api-key", KEY])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--base-url" in result.stderr and "--api-key" in result.stderr
    assert KEY not in result.stderr and PASSWORD not in result.stderr


def test_every_problem_of_a_refused_request_keeps_its_shape_when_scrubbed() -> None:
    error = imagegen.InvalidRequestError(
        f"bad {KEY}", param="size", problems=[Problem("size", f"bad {KEY}"), Problem("n", "ok")]
    )
    redact_error(error, KEY)
    assert error.problems == (Problem("size", "bad ***"), Problem("n", "ok"))
    assert_clean(error, KEY)
