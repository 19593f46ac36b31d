"""Where settings come from: explicit argument > environment > default (see `_config`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scripted import ScriptedServer

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
    first = _api._default_client()
    imagegen.edit(result[0].bytes(), "a hat")
    imagegen.create_variation(result[0].bytes())
    assert _api._default_client() is first
    assert [r.path for r in server.requests] == [
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/images/variations",
    ]
    # New settings in the environment: a new client, the old one closed.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-later-key")
    imagegen.generate("a fox")
    assert server.last.headers["authorization"] == "Bearer sk-later-key"
    assert _api._default_client() is not first
    assert first._http is not None and first._http.client.is_closed
    assert imagegen.generate.__name__ == "generate"


@pytest.mark.usefixtures("fresh_shared_client")
def test_module_level_without_configuration_explains_the_fix() -> None:
    with pytest.raises(imagegen.ConfigurationError, match="OPENAI_API_KEY"):
        imagegen.generate("a fox")
