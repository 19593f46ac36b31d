"""Azure OpenAI clients against the server, over a real socket: our `Client` with an Azure
endpoint, the official `AzureOpenAI` (deployment URLs and the v1 base URL) and plain HTTP for
what the clients never send (a missing api-version, a missing key)."""

from __future__ import annotations

import base64
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from PIL import Image
from srvkit import (
    KEY,
    SolidEngine,
    assert_openai_error,
    colour_for,
    decode,
    make_settings,
    mask_png,
    png,
)

import imagegen
from imagegen._capabilities import ModelCapabilities
from imagegen.server import create_app
from live import live_server

VERSION = "2025-04-01-preview"
RED = (200, 30, 30, 255)


def as_file(data: bytes, name: str = "in.png") -> tuple[str, bytes, str]:
    return name, data, "image/png"


def b64_image(item: Any) -> Image.Image:
    assert isinstance(item.b64_json, str)
    return decode(base64.b64decode(item.b64_json))


def azure_sdk(server: str, form: str) -> openai.AzureOpenAI:
    """The official Azure client in each of the ways its users build it."""
    common: dict[str, Any] = {"api_key": KEY, "api_version": VERSION, "max_retries": 0}
    if form == "deployment":
        return openai.AzureOpenAI(azure_endpoint=server, azure_deployment="solid-1", **common)
    if form == "endpoint":  # the SDK moves the body's model into the URL as the deployment
        return openai.AzureOpenAI(azure_endpoint=server, **common)
    return openai.AzureOpenAI(base_url=server + "/openai/v1", **common)


FORMS = ["deployment", "endpoint", "v1"]


@pytest.fixture
def our_client(server: str) -> Iterator[imagegen.Client]:
    with imagegen.Client(
        azure_endpoint=server,
        azure_deployment="solid-1",
        api_version=VERSION,
        api_key=KEY,
        max_retries=0,
    ) as client:
        yield client


# -- our client --------------------------------------------------------------------------------


def test_our_client_generates_through_a_deployment(
    our_client: imagegen.Client, solid_engine: SolidEngine
) -> None:
    result = our_client.generate("a red fox", model="solid-1", size="48x32", n=2)
    job = solid_engine.jobs[-1]
    assert (job.endpoint, job.model, job.prompt) == ("generations", "solid-1", "a red fox")
    images = [image.to_pil().convert("RGB") for image in result]
    assert [image.size for image in images] == [(48, 32)] * 2
    assert images[1].getpixel((3, 3)) == colour_for(job, 1)


def test_our_client_edits_with_a_mask(
    our_client: imagegen.Client, solid_engine: SolidEngine
) -> None:
    result = our_client.edit(
        png((64, 64), RED),
        prompt="a hat",
        model="solid-1",
        mask=mask_png((64, 64), (0, 0, 16, 16)),
        size="64x64",
    )
    job = solid_engine.jobs[-1]
    assert (job.endpoint, job.model) == ("edits", "solid-1")
    image = result[0].to_pil().convert("RGBA")
    assert image.getpixel((4, 4)) == (*colour_for(job, 0), 255)  # inside the mask's hole
    assert image.getpixel((40, 40)) == RED  # outside it, untouched


def test_our_client_makes_a_variation(
    our_client: imagegen.Client, solid_engine: SolidEngine
) -> None:
    result = our_client.create_variation(png((64, 64), (100, 100, 100, 255)), size="256x256")
    job = solid_engine.jobs[-1]
    # Our client, like the SDK, sends variations to /openai/images/variations (no deployment).
    assert job.endpoint == "variations"
    assert result[0].to_pil().size == (256, 256)


def test_our_client_unknown_deployment_is_deployment_not_found(
    server: str, solid_engine: SolidEngine
) -> None:
    before = len(solid_engine.jobs)
    with (
        imagegen.Client(
            azure_endpoint=server,
            azure_deployment="my-dalle",
            api_version=VERSION,
            api_key=KEY,
            max_retries=0,
        ) as client,
        pytest.raises(imagegen.NotFoundError) as caught,
    ):
        client.generate("a fox", model="dall-e-3")
    assert caught.value.status_code == 404
    assert caught.value.code == "DeploymentNotFound"
    assert "'my-dalle'" in str(caught.value)
    assert len(solid_engine.jobs) == before  # refused before the engine


def test_our_client_with_an_entra_token(server: str, solid_engine: SolidEngine) -> None:
    # `Authorization: Bearer` (how Entra ID tokens travel) is accepted on Azure routes too.
    with imagegen.Client(
        azure_endpoint=server, api_version=VERSION, azure_ad_token=KEY, max_retries=0
    ) as client:
        client.generate("a fox", model="solid-1", size="16x16")
    assert solid_engine.jobs[-1].model == "solid-1"


# -- the official SDK ----------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_sdk_generates(server: str, solid_engine: SolidEngine, form: str) -> None:
    with azure_sdk(server, form) as sdk:
        result = sdk.images.generate(model="solid-1", prompt="a fox", size="40x24")
    job = solid_engine.jobs[-1]
    assert (job.endpoint, job.model) == ("generations", "solid-1")
    image = b64_image(result.data[0]).convert("RGB")
    assert image.size == (40, 24) and image.getpixel((1, 1)) == colour_for(job, 0)


@pytest.mark.parametrize("form", FORMS)
def test_sdk_edits_with_a_mask(server: str, solid_engine: SolidEngine, form: str) -> None:
    with azure_sdk(server, form) as sdk:
        result = sdk.images.edit(
            model="solid-1",
            image=as_file(png((64, 64), RED)),
            mask=as_file(mask_png((64, 64), (32, 32, 64, 64)), "mask.png"),
            prompt="a hat",
            size="64x64",
        )
    job = solid_engine.jobs[-1]
    assert (job.endpoint, job.model) == ("edits", "solid-1")
    image = b64_image(result.data[0]).convert("RGBA")
    assert image.getpixel((50, 50)) == (*colour_for(job, 0), 255)
    assert image.getpixel((5, 5)) == RED


@pytest.mark.parametrize("form", FORMS)
def test_sdk_makes_a_variation(server: str, solid_engine: SolidEngine, form: str) -> None:
    with azure_sdk(server, form) as sdk, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks variations deprecated
        result = sdk.images.create_variation(
            model="dall-e-2", image=as_file(png((64, 64))), size="256x256", response_format="url"
        )
    assert (solid_engine.jobs[-1].endpoint, solid_engine.jobs[-1].model) == (
        "variations",
        "dall-e-2",
    )
    url = str(result.data[0].url)
    assert url.startswith(server + "/files/")
    assert decode(httpx2.get(url).content).size == (256, 256)


def test_the_deployment_decides_the_model(server: str, solid_engine: SolidEngine) -> None:
    # On Azure the body's model is ignored: a dall-e-3 deployment makes DALL·E 3 images
    # (with URLs, DALL·E's default) whatever model the body names.
    with openai.AzureOpenAI(
        azure_endpoint=server,
        azure_deployment="dall-e-3",
        api_key=KEY,
        api_version=VERSION,
        max_retries=0,
    ) as sdk:
        result = sdk.images.generate(model="gpt-image-1", prompt="a fox", size="1024x1024")
    assert solid_engine.jobs[-1].model == "dall-e-3"
    assert result.data[0].url and result.data[0].b64_json is None


def test_plain_sdk_on_the_v1_base_url(server: str, solid_engine: SolidEngine) -> None:
    # Microsoft's own advice for the v1 API: the OpenAI client, model = deployment name.
    with openai.OpenAI(base_url=server + "/openai/v1/", api_key=KEY, max_retries=0) as sdk:
        result = sdk.images.generate(model="solid-1", prompt="a fox", size="8x8")
        assert "solid-1" in [model.id for model in sdk.models.list()]
    assert solid_engine.jobs[-1].model == "solid-1"
    assert b64_image(result.data[0]).size == (8, 8)


@pytest.mark.parametrize("form", ["deployment", "endpoint", "v1"])
def test_sdk_unknown_deployment_is_not_found(
    server: str, solid_engine: SolidEngine, form: str
) -> None:
    before = len(solid_engine.jobs)
    common: dict[str, Any] = {"api_key": KEY, "api_version": VERSION, "max_retries": 0}
    if form == "deployment":
        sdk = openai.AzureOpenAI(azure_endpoint=server, azure_deployment="my-dalle", **common)
    else:
        sdk = azure_sdk(server, form)
    with sdk, pytest.raises(openai.NotFoundError) as caught:
        sdk.images.edit(model="my-dalle", image=as_file(png()), prompt="x")
    assert caught.value.code == "DeploymentNotFound"
    assert "deployment" in caught.value.message and "'my-dalle'" in caught.value.message
    assert len(solid_engine.jobs) == before


def test_sdk_lists_models_on_the_classic_route(server: str) -> None:
    with azure_sdk(server, "endpoint") as sdk:
        assert {"solid-1", "dall-e-2"} <= {model.id for model in sdk.models.list()}


def test_sdk_wrong_key_is_authentication_error(server: str) -> None:
    with (
        openai.AzureOpenAI(
            azure_endpoint=server,
            azure_deployment="solid-1",
            api_key="sk-wrong",
            api_version=VERSION,
            max_retries=0,
        ) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.images.generate(prompt="x")
    assert caught.value.code == "invalid_api_key"


# -- plain HTTP: what the clients never send ----------------------------------------------------

GENERATE = "/openai/deployments/solid-1/images/generations"


def test_api_key_header_is_required_on_azure_routes(server: str) -> None:
    body = {"prompt": "x", "size": "8x8"}
    missing = httpx2.post(server + GENERATE, params={"api-version": VERSION}, json=body)
    error = assert_openai_error(missing, 401)
    assert "api-key" in error["message"]
    # Authentication comes first: an unknown caller learns nothing of the deployments.
    unknown = httpx2.post(
        server + "/openai/deployments/nope/images/generations",
        params={"api-version": VERSION},
        json=body,
    )
    assert_openai_error(unknown, 401)
    ok = httpx2.post(
        server + GENERATE, params={"api-version": VERSION}, json=body, headers={"api-key": KEY}
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "path", [GENERATE, "/openai/images/generations", "/openai/models"], ids=["dep", "img", "models"]
)
def test_api_version_is_required_outside_v1(server: str, path: str) -> None:
    method = "GET" if path.endswith("models") else "POST"
    for query in ({}, {"api-version": ""}):
        response = httpx2.request(
            method, server + path, params=query, json={"prompt": "x"}, headers={"api-key": KEY}
        )
        error = assert_openai_error(response, 404, param="api-version")
        assert path in error["message"] and "?api-version=" in error["message"]


def test_api_version_is_optional_on_v1_and_any_value_is_accepted(server: str) -> None:
    headers = {"api-key": KEY}
    body = {"model": "solid-1", "prompt": "x", "size": "8x8"}
    v1 = httpx2.post(server + "/openai/v1/images/generations", json=body, headers=headers)
    assert v1.status_code == 200, v1.text
    preview = httpx2.post(
        server + GENERATE, params={"api-version": "preview"}, json=body, headers=headers
    )
    assert preview.status_code == 200, preview.text


def test_unknown_azure_routes_are_404_with_the_path_sent(server: str) -> None:
    headers = {"api-key": KEY}
    query = {"api-version": VERSION}
    chat = httpx2.post(
        server + "/openai/deployments/solid-1/chat/completions", params=query, headers=headers
    )
    assert (
        "/openai/deployments/solid-1/chat/completions" in assert_openai_error(chat, 404)["message"]
    )
    wrong_method = httpx2.get(server + GENERATE, params=query, headers=headers)
    assert GENERATE in assert_openai_error(wrong_method, 405)["message"]
    # Not redirected to the /v1/ route, where the deployment would no longer pick the model.
    slash = httpx2.post(
        server + GENERATE + "/", params=query, headers=headers, json={"prompt": "x"}
    )
    assert GENERATE + "/" in assert_openai_error(slash, 404)["message"]


def test_access_log_names_the_path_sent(server: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imagegen.server.access")
    body = {"prompt": "x", "size": "8x8"}
    response = httpx2.post(
        server + GENERATE, params={"api-version": VERSION}, json=body, headers={"api-key": KEY}
    )
    assert response.status_code == 200, response.text
    access = [r.getMessage() for r in caplog.records if r.name == "imagegen.server.access"]
    assert any(f'"POST {GENERATE}" 200' in line for line in access), access


def test_body_limits_apply_to_azure_routes(server: str) -> None:
    response = httpx2.post(
        server + GENERATE,
        params={"api-version": VERSION},
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"api-key": KEY, "content-type": "application/json"},
    )
    error = assert_openai_error(response, 413, code="request_too_large")
    assert GENERATE in error["message"]


class SlashEngine(SolidEngine):
    def models(self) -> list[ModelCapabilities]:
        return [ModelCapabilities(name="acme/solid-2")]


def test_a_deployment_name_with_a_slash() -> None:
    # Declared engine models may hold a slash; clients send it percent-encoded in one segment.
    engine = SlashEngine()
    with (
        live_server(create_app(engine, make_settings())) as url,
        openai.AzureOpenAI(azure_endpoint=url, api_key="x", api_version=VERSION) as sdk,
    ):
        sdk.images.generate(model="acme/solid-2", prompt="x", size="8x8")
    assert engine.jobs[-1].model == "acme/solid-2"
