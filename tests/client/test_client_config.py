"""Where settings come from: explicit argument > environment > default (see `_config`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scripted import ScriptedServer

import imagegen
from imagegen import _api
from imagegen._config import resolve_settings


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
