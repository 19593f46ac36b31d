"""`GET /metrics`: scraped over HTTP after real requests, parsed with prometheus-client's own
parser. The engines are the server tests' solid-colour ones and the placeholder; the diffusers
engine's batches are scraped in `tests/engines/test_batching_server.py`."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import httpx2
import openai
import pytest
from srvkit import KEY, BlockingEngine, SolidEngine, capture_thread, make_settings, png

from imagegen.server import create_app
from live import live_server
from promkit import Samples, value
from promkit import scrape as scrape_all

AUTH = {"authorization": f"Bearer {KEY}"}


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    return scrape_all(url, AUTH if headers is None else headers)


@pytest.fixture
def server() -> Iterator[str]:
    settings = make_settings(api_keys=[KEY], max_concurrency=2, max_queue=4)
    with live_server(create_app(SolidEngine(), settings)) as url:
        yield url


def test_requests_images_and_engine_time_are_counted(server: str) -> None:
    with openai.OpenAI(base_url=server + "/v1", api_key=KEY, max_retries=0) as sdk:
        sdk.images.generate(prompt="a fox", n=2, size="16x16")
        sdk.images.generate(model="gpt-image-2", prompt="a fox", size="1024x1024")
        sdk.images.edit(image=("in.png", png((16, 16)), "image/png"), prompt="a cat", n=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sdk.images.create_variation(image=("in.png", png((16, 16)), "image/png"))
        with pytest.raises(openai.BadRequestError):
            sdk.images.generate(model="dall-e-2", prompt="a fox", size="100x100")
        with pytest.raises(openai.NotFoundError):
            sdk.images.generate(model="no-such-model-" + "x" * 40, prompt="a fox")
    with (
        openai.OpenAI(base_url=server + "/v1", api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.images.generate(prompt="a fox")
    httpx2.get(server + "/no/such/path/" + "y" * 30, headers=AUTH)
    assert httpx2.get(server + "/v1/files", headers=AUTH).status_code == 200
    assert httpx2.get(server + "/v1/batches", headers=AUTH).status_code == 200

    samples = scrape(server)
    requests = "imagegen_requests_total"
    assert value(samples, requests, endpoint="generations", model="solid-1", status="200") == 1
    assert value(samples, requests, endpoint="generations", model="gpt-image-2", status="200") == 1
    assert value(samples, requests, endpoint="edits", model="solid-1", status="200") == 1
    assert value(samples, requests, endpoint="variations", model="solid-1", status="200") == 1
    assert value(samples, requests, endpoint="generations", model="dall-e-2", status="400") == 1
    # Names the server does not serve, and paths it does not know, never become labels.
    assert value(samples, requests, endpoint="generations", model="", status="404") == 1
    assert value(samples, requests, endpoint="generations", model="", status="401") == 1
    assert value(samples, requests, endpoint="other", model="", status="404") == 1
    assert value(samples, requests, endpoint="files", model="", status="200") == 1
    assert value(samples, requests, endpoint="batches", model="", status="200") == 1
    assert not any("no-such" in str(labels) or "yyy" in str(labels) for _, labels in samples)

    images = "imagegen_images_total"
    assert value(samples, images, endpoint="generations", model="solid-1") == 2
    assert value(samples, images, endpoint="edits", model="solid-1") == 3
    assert value(samples, images, endpoint="variations", model="solid-1") == 1
    seconds = "imagegen_engine_seconds_count"
    assert value(samples, seconds, endpoint="generations", model="gpt-image-2") == 1
    # An engine that does not batch: each request is one call of its model, alone.
    assert value(samples, "imagegen_batch_requests_count", device="") == 4
    assert value(samples, "imagegen_batch_requests_sum", device="") == 4
    assert value(samples, "imagegen_batch_images_sum", device="") == 7
    assert value(samples, "imagegen_images_per_second") > 0
    assert value(samples, "imagegen_queue_slots") == 2

    again = scrape(server)  # the scrape itself is counted, with its status
    assert value(again, requests, endpoint="metrics", model="", status="200") == 1


def test_metrics_need_the_key_when_the_server_has_one(server: str) -> None:
    assert httpx2.get(server + "/metrics").status_code == 401
    assert (
        httpx2.get(server + "/metrics", headers={"authorization": "Bearer no"}).status_code == 401
    )
    assert httpx2.get(server + "/health").status_code == 200  # still open, as before
    scrape(server)


def test_metrics_are_open_without_a_key() -> None:
    with live_server(create_app("placeholder", make_settings())) as url:
        httpx2.post(url + "/v1/images/generations", json={"prompt": "x", "size": "8x8"})
        gif = {"prompt": "x", "size": "16x16", "output_format": "gif", "n": 2}
        assert httpx2.post(url + "/v1/images/generations", json=gif).status_code == 200
        samples = scrape(url, headers={})
    requests = "imagegen_requests_total"
    assert value(samples, requests, endpoint="generations", model="placeholder", status="200") == 2
    # GIF answers count as images too (an engine returns them as frames, not `images`).
    assert value(samples, "imagegen_images_total", endpoint="generations", model="placeholder") == 3


def test_azure_routes_count_as_their_endpoint_and_deployment() -> None:
    with live_server(create_app(SolidEngine(), make_settings())) as url:
        client = openai.AzureOpenAI(
            azure_endpoint=url,
            azure_deployment="gpt-image-2",
            api_key="unused",
            api_version="2025-04-01-preview",
            max_retries=0,
        )
        with client:
            client.images.generate(prompt="a fox", size="1024x1024")
        samples = scrape(url, headers={})
    requests = "imagegen_requests_total"
    assert value(samples, requests, endpoint="generations", model="gpt-image-2", status="200") == 1


def test_the_queue_gauges_follow_the_queue() -> None:
    engine = BlockingEngine()
    settings = make_settings(max_concurrency=1, max_queue=4)
    body = {"prompt": "x", "size": "8x8"}

    def post() -> httpx2.Response:
        return httpx2.post(url + "/v1/images/generations", json=body, timeout=60)

    try:
        with live_server(create_app(engine, settings)) as url:
            with capture_thread(post) as first, capture_thread(post) as second:
                engine.wait_started()
                deadline = time.monotonic() + 20
                while value(samples := scrape(url, headers={}), "imagegen_queue_waiting") < 1:
                    assert time.monotonic() < deadline, "the second request never queued"
                assert value(samples, "imagegen_queue_running") == 1
                assert value(samples, "imagegen_queue_waiting") == 1
                engine.release.set()
            assert first["result"].status_code == second["result"].status_code == 200
            samples = scrape(url, headers={})
            assert value(samples, "imagegen_queue_running") == 0
            assert value(samples, "imagegen_queue_waiting") == 0
    finally:
        engine.release.set()
