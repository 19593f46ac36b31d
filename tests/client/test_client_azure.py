"""Azure OpenAI: deployment URLs, `api-version`, `api-key` or Entra ID bearer token."""

from __future__ import annotations

import pytest
from scripted import ScriptedServer, image_bytes

import imagegen

VERSION = "2025-04-01-preview"


def test_deployment_url_version_and_api_key(server: ScriptedServer) -> None:
    with imagegen.Client(
        azure_endpoint=server.url + "/",
        azure_deployment="img-prod",
        api_version=VERSION,
        api_key="azure-key-1234",
    ) as client:
        client.generate("a fox", size="1024x1024")
    sent = server.last
    assert sent.path == "/openai/deployments/img-prod/images/generations"
    assert sent.query == {"api-version": [VERSION]}
    assert sent.headers["api-key"] == "azure-key-1234"
    assert "authorization" not in sent.headers
    # The deployment decides the model on Azure: its name is sent, and judged by the generic rules.
    assert sent.json() == {"prompt": "a fox", "model": "img-prod", "size": "1024x1024"}


def test_a_deployment_named_after_a_model_gets_that_models_rules(server: ScriptedServer) -> None:
    with imagegen.Client(
        azure_endpoint=server.url, azure_deployment="dall-e-3", api_version=VERSION, api_key="k"
    ) as client:
        client.generate("a fox", style="vivid", size="1792x1024")  # gpt-image-2 has no style
        assert server.last.json()["model"] == "dall-e-3"
        with pytest.raises(imagegen.InvalidRequestError) as caught:
            client.generate("a fox", n=2)
    assert caught.value.param == "n"
    assert len(server.requests) == 1


def test_an_explicit_model_still_wins_over_the_deployment(server: ScriptedServer) -> None:
    with imagegen.Client(
        azure_endpoint=server.url, azure_deployment="img-prod", api_version=VERSION, api_key="k"
    ) as client:
        client.generate("a fox", model="gpt-image-1")
    assert server.last.path == "/openai/deployments/img-prod/images/generations"
    assert server.last.json()["model"] == "gpt-image-1"


def test_without_deployment_the_model_names_it(server: ScriptedServer) -> None:
    with imagegen.Client(
        azure_endpoint=server.url, api_version=VERSION, azure_ad_token="entra-token-xyz"
    ) as client:
        client.edit(image_bytes(), "a hat", model="my gpt/image")
    sent = server.last
    assert sent.target == "/openai/deployments/my%20gpt%2Fimage/images/edits"
    assert sent.query == {"api-version": [VERSION]}
    assert sent.headers["authorization"] == "Bearer entra-token-xyz"
    assert "api-key" not in sent.headers


@pytest.mark.parametrize("model", [".", ".."])
def test_a_dot_model_is_not_a_deployment(server: ScriptedServer, model: str) -> None:
    # `/deployments/../images/generations` would be sent to `/openai/images/generations`.
    with (
        imagegen.Client(
            azure_endpoint=server.url, api_version=VERSION, api_key="azure-key-1234"
        ) as client,
        pytest.raises(imagegen.InvalidRequestError) as caught,
    ):
        client.generate("a fox", model=model)
    assert caught.value.param == "model"
    assert server.requests == []


def test_variations_use_the_resource_route(server: ScriptedServer) -> None:
    with imagegen.Client(
        azure_endpoint=server.url, azure_deployment="d", api_version=VERSION, api_key="k"
    ) as client:
        client.create_variation(image_bytes())
    assert server.last.path == "/openai/images/variations"
    assert server.last.query == {"api-version": [VERSION]}


def test_azure_from_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "env-dep")
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-azure-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-azure")
    with imagegen.Client() as client:
        client.generate("a fox")
    assert server.last.path == "/openai/deployments/env-dep/images/generations"
    assert server.last.headers["api-key"] == "env-azure-key"


def test_the_ad_token_from_the_environment_wins_over_the_env_key(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "env-azure-key")
    monkeypatch.setenv("AZURE_OPENAI_AD_TOKEN", "env-token")
    with imagegen.Client(azure_endpoint=server.url, api_version=VERSION) as client:
        client.generate("a fox")
    assert server.last.headers["authorization"] == "Bearer env-token"


def test_a_base_url_in_the_environment_beats_an_azure_endpoint(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    with imagegen.Client() as client:
        client.generate("a fox")
    assert server.last.path == "/v1/images/generations"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"api_key": "k"}, "OPENAI_API_VERSION"),
        ({"api_version": VERSION}, "AZURE_OPENAI_API_KEY"),
        ({"api_version": VERSION, "api_key": "k", "azure_ad_token": "t"}, "not both"),
        ({"api_version": VERSION, "api_key": "k", "azure_deployment": ".."}, "deployment"),
    ],
)
def test_azure_configuration_errors(options: dict[str, str], words: str) -> None:
    with pytest.raises(imagegen.ConfigurationError, match=words):
        imagegen.Client(azure_endpoint="https://res.openai.azure.com", **options)
