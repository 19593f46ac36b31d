"""Where settings come from: explicit argument > environment > default (see `_config`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from scripted import TINY_B64, Reply, ScriptedServer

import imagegen
from imagegen import _api
from imagegen._config import redacted_url, resolve_settings
from imagegen._errors import redact


def test_defaults_need_a_key_for_openai_only() -> None:
    settings = resolve_settings(api_key="sk-a")
    assert settings.base_url == "https://api.openai.com/v1"
    assert resolve_settings(base_url="http://127.0.0.1:8000/v1/").base_url == (
        "http://127.0.0.1:8000/v1"
    )
    with pytest.raises(imagegen.ConfigurationError):
        resolve_settings(base_url="https://eu.api.openai.com/v1")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"OPENAI_API_KEY": "sk-env"}, "sk-env"),
        ({"OPENAI_TOKEN": "sk-legacy"}, "sk-legacy"),
        ({"OPENAI_API_KEY": "sk-env", "OPENAI_TOKEN": "sk-legacy"}, "sk-env"),
        ({"OPENAI_API_KEY": "", "OPENAI_TOKEN": "sk-legacy"}, "sk-legacy"),
    ],
)
def test_key_from_the_environment(env: dict[str, str], expected: str) -> None:
    assert resolve_settings(environ=env).api_key == expected


def test_explicit_arguments_beat_the_environment() -> None:
    env = {
        "OPENAI_API_KEY": "sk-env",
        "OPENAI_BASE_URL": "http://env:1/v1",
        "OPENAI_ORG_ID": "org-env",
        "OPENAI_PROJECT_ID": "proj-env",
    }
    settings = resolve_settings(
        api_key="sk-arg",
        base_url="http://arg:2/v1",
        organization="org-arg",
        project="proj-arg",
        environ=env,
    )
    assert (settings.api_key, settings.base_url) == ("sk-arg", "http://arg:2/v1")
    assert (settings.organization, settings.project) == ("org-arg", "proj-arg")
    from_env = resolve_settings(environ=env)
    assert (from_env.api_key, from_env.base_url) == ("sk-env", "http://env:1/v1")
    assert (from_env.organization, from_env.project) == ("org-env", "proj-env")


def test_legacy_variable_names() -> None:
    env = {"OPENAI_API_BASE": "http://legacy:3/v1", "OPENAI_ORGANIZATION": "org-legacy"}
    settings = resolve_settings(environ=env)
    assert (settings.base_url, settings.organization) == ("http://legacy:3/v1", "org-legacy")
    env["OPENAI_BASE_URL"] = "http://new:4/v1"
    assert resolve_settings(environ=env).base_url == "http://new:4/v1"


def test_settings_repr_hides_the_key() -> None:
    settings = resolve_settings(api_key="sk-very-secret-key")
    assert "sk-very-secret-key" not in repr(settings)
    assert settings.secrets == ("sk-very-secret-key",)


def test_azure_settings_repr_hides_an_endpoint_password() -> None:
    settings = resolve_settings(
        azure_endpoint="https://user:endpoint-pass@x.openai.azure.com",
        api_version="2025-04-01-preview",
        api_key="azure-key-123",
    )
    assert "endpoint-pass" not in repr(settings.azure)
    assert "https://user:***@x.openai.azure.com" in repr(settings.azure)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:pass-word@gw:8/v1", "http://user:***@gw:8/v1"),
        ("http://u:pw@gw/v1", "http://u:***@gw/v1"),  # too short to match as a known secret
        ("http://u:p%40ss@gw/v1", "http://u:***@gw/v1"),
        ("http://token@gw/v1", "http://token@gw/v1"),  # no password: nothing to hide
        ("http://gw:8080/v1?a=b@c", "http://gw:8080/v1?a=b@c"),
    ],
)
def test_redacted_url_hides_only_the_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown
    assert resolve_settings(base_url=url).shown_url == shown


def test_redact_masks_url_passwords_in_any_text() -> None:
    """Lines from other libraries (httpx2's request log) carry URLs the caller never named."""
    line = 'HTTP Request: POST http://me:hunter2@10.0.0.1:8/v1/images "HTTP/1.1 200 OK"'
    assert redact(line) == 'HTTP Request: POST http://me:***@10.0.0.1:8/v1/images "HTTP/1.1 200 OK"'
    two = "proxy https://a:b@p:3128 and base http://c:d@e/v1"
    assert redact(two) == "proxy https://a:***@p:3128 and base http://c:***@e/v1"
    assert redact("ratio 3:1 at a@b, http://h:80/x") == "ratio 3:1 at a@b, http://h:80/x"


def test_client_reads_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-1234")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-9")
    with imagegen.Client() as client:
        assert client.base_url == server.base_url
        client.generate("a fox")
    assert server.last.headers["authorization"] == "Bearer sk-from-env-1234"
    assert server.last.headers["openai-organization"] == "org-9"


@pytest.fixture
def fresh_shared_client() -> Iterator[None]:
    """The module-level functions' shared client, started afresh and closed after the test."""
    _api._shared = None
    yield
    if _api._shared is not None:
        _api._shared[1].close()
        _api._shared = None


@pytest.mark.usefixtures("fresh_shared_client")
def test_module_level_functions_use_a_shared_client_from_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    result = imagegen.generate("a fox", n=1)
    assert isinstance(result, imagegen.ImagesResult)
    first = _api._shared_client()[0]
    imagegen.edit(result[0].bytes(), "a hat")
    imagegen.create_variation(result[0].bytes())
    assert _api._shared_client()[0] is first
    assert [r.path for r in server.requests] == [
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/images/variations",
    ]
    # New settings in the environment: a new client, the old one closed (no stream reads it).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-later-key")
    imagegen.generate("a fox")
    assert server.last.headers["authorization"] == "Bearer sk-later-key"
    assert _api._shared_client()[0] is not first
    assert first._transport is not None and first._transport.client.is_closed
    assert _api._replaced == []
    assert imagegen.generate.__name__ == "generate"


@pytest.mark.usefixtures("fresh_shared_client")
def test_a_stream_survives_a_new_shared_client(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = {"type": "image_generation.partial_image", "b64_json": TINY_B64,
               "partial_image_index": 0}  # fmt: skip
    completed = {"type": "image_generation.completed", "b64_json": TINY_B64}
    server.script(Reply(sse=[partial, completed], sse_delay=0.2), Reply())
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    stream = imagegen.generate("a fox", partial_images=1)
    events = iter(stream)
    assert next(events).is_partial
    monkeypatch.setenv("OPENAI_API_KEY", "sk-another-key")  # the shared client is replaced
    imagegen.generate("a hat")
    [(old, _)] = _api._replaced  # kept open: its stream is still being read
    assert [event.type for event in events] == ["image_generation.completed"]
    assert stream.closed
    imagegen.generate("a hat")  # the next call closes it
    assert _api._replaced == [] and old._transport is not None and old._transport.client.is_closed


@pytest.mark.usefixtures("fresh_shared_client")
def test_changing_settings_many_times_keeps_no_client_open(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    clients = []
    for index in range(20):
        monkeypatch.setenv("OPENAI_API_KEY", f"sk-key-{index}")
        imagegen.generate("a fox")
        clients.append(_api._shared_client()[0])
    assert _api._replaced == []
    assert all(c._transport is not None and c._transport.client.is_closed for c in clients[:-1])


@pytest.mark.usefixtures("fresh_shared_client")
def test_module_level_without_configuration_explains_the_fix() -> None:
    with pytest.raises(imagegen.ConfigurationError, match="OPENAI_API_KEY"):
        imagegen.generate("a fox")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://[::1", "(invalid ipv6 url)"),
        ("http://127.0.0.1:99999/v1", "(port out of range"),
        ("http://127.0.0.1:port/v1", "(port could not be"),
        ("http:///v1", "Invalid base URL 'http:///v1' from"),
        ("not-a-url", "Invalid base URL 'not-a-url' from"),
    ],
)
def test_a_malformed_base_url_is_refused_naming_where_it_came_from(url: str, problem: str) -> None:
    with pytest.raises(imagegen.ConfigurationError) as caught:
        resolve_settings(base_url=url)
    assert problem in caught.value.message
    assert "from base_url (--base-url): use an http:// or https:// URL" in caught.value.message
    with pytest.raises(imagegen.ConfigurationError, match="from OPENAI_BASE_URL: "):
        resolve_settings(environ={"OPENAI_BASE_URL": url})


def test_a_malformed_azure_endpoint_suggests_an_azure_url() -> None:
    with pytest.raises(imagegen.ConfigurationError) as caught:
        resolve_settings(azure_endpoint="not-a-url", api_version="2025-04-01-preview", api_key="k")
    assert caught.value.message == (
        "Invalid Azure endpoint 'not-a-url' from azure_endpoint (--azure-endpoint): use an "
        "http:// or https:// URL such as 'https://NAME.openai.azure.com'."
    )
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://[res",
        "OPENAI_API_VERSION": "v",
        "AZURE_OPENAI_API_KEY": "k",
    }
    with pytest.raises(imagegen.ConfigurationError, match="from AZURE_OPENAI_ENDPOINT: "):
        resolve_settings(environ=env)


SECRET = "sk-proj-AbCdEf0123456789"


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (SECRET[:10] + "\u2010" + SECRET[11:], "the non-ASCII character U+2010 at position 11"),
        (SECRET[:10] + " " + SECRET[11:], "a space at position 11"),
        (SECRET[:10] + "\n" + SECRET[11:], "a line break at position 11"),
        (SECRET[:10] + "\x7f" + SECRET[11:], "the control character U+007F at position 11"),
    ],
)
def test_a_key_http_cannot_carry_is_refused_without_showing_it(bad: str, kind: str) -> None:
    url = "http://127.0.0.1:8000/v1"
    with pytest.raises(imagegen.ConfigurationError) as caught:
        resolve_settings(api_key=bad, base_url=url)
    message = caught.value.message
    assert message == (
        f"The API key from api_key (--api-key) has {kind}, which cannot be sent in an HTTP "
        "header; copy the API key again."
    )
    with pytest.raises(imagegen.ConfigurationError, match="API key from OPENAI_TOKEN has") as env:
        resolve_settings(base_url=url, environ={"OPENAI_TOKEN": bad})
    for text in (message, env.value.message, repr(env.value)):
        assert SECRET[:10] not in text and SECRET[11:] not in text


@pytest.mark.parametrize(
    ("options", "env", "words"),
    [
        (
            {"azure_ad_token": "tok\u00e9n"},
            {},
            "Entra ID token from azure_ad_token (--azure-ad-token)",
        ),
        ({}, {"AZURE_OPENAI_AD_TOKEN": "tok en"}, "Entra ID token from AZURE_OPENAI_AD_TOKEN"),
        ({"api_key": "k\u00e9y"}, {}, "Azure API key from api_key (--api-key)"),
        ({}, {"AZURE_OPENAI_API_KEY": "k\u00e9y"}, "Azure API key from AZURE_OPENAI_API_KEY"),
        (
            {"organization": "org\u00e9"},
            {},
            "organization ID from organization=... (--organization)",
        ),
        ({}, {"OPENAI_PROJECT_ID": "pro ject"}, "project ID from OPENAI_PROJECT_ID"),
    ],
)
def test_azure_credentials_organization_and_project_must_fit_a_header(
    options: dict[str, str], env: dict[str, str], words: str
) -> None:
    azure = {"azure_endpoint": "https://res.openai.azure.com", "api_version": "2025-04-01-preview"}
    with pytest.raises(imagegen.ConfigurationError, match=re.escape(words)):
        resolve_settings(**azure, **options, environ=env)


def test_spaces_around_a_key_are_dropped() -> None:
    settings = resolve_settings(api_key="  sk-abc\n", organization=" org-1 ")
    assert (settings.api_key, settings.organization) == ("sk-abc", "org-1")


def test_an_azure_key_and_token_together_name_both_arguments() -> None:
    with pytest.raises(imagegen.ConfigurationError) as caught:
        resolve_settings(
            azure_endpoint="https://res.openai.azure.com",
            api_version="2025-04-01-preview",
            api_key="k",
            azure_ad_token="t",
        )
    assert caught.value.message == (
        "Give either an Azure API key with api_key=... (--api-key) or an Entra ID token with "
        "azure_ad_token=... (--azure-ad-token), not both."
    )


def test_redact_leaves_the_placeholder_of_openais_401_alone() -> None:
    message = (
        "provide your API key in an Authorization header (i.e. Authorization: Bearer YOUR_KEY)."
    )
    assert redact(message) == message
    assert redact("Bearer ABCDEFGH.ijklmnop") == "Bearer ***"
    assert (
        redact("authorization: bearer eyJhbGciOiJIUzI1NiJ9.e30.sig") == "authorization: bearer ***"
    )
    assert redact("Bearer SK_LIVE_0123456789") == "Bearer ***"
