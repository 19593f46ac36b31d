"""The server on Ray Serve: a local Ray instance started here (2 CPUs, no dashboard), Serve's
HTTP proxy on 127.0.0.1, the official SDK as the client, for all three endpoints, with the
placeholder engine and with the tiny diffusers model; then `imagegen serve --ray` in a real
process, joining that instance. Ray is shut down at the end.

Ray's own services (its control store, the raylet) listen on the machine's address, not on
loopback: Ray turns 127.0.0.1 into that address on purpose, so nodes can reach each other. They
answer only callers holding the cluster's token (Ray's token authentication, on by default).

Needs the `ray` extra (`pip install 'imagegen[ray]'`); CI installs it. Slow (Ray takes tens of
seconds to start), so marked `ray`.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from test_batching import assert_same_picture
from test_diffusers import STEPS, alpha_mask, noise, png

from imagegen._errors import ConfigurationError
from imagegen._models import GenerateRequest
from imagegen._service import ImageService
from imagegen.engines.diffusers import DiffusersEngine
from imagegen.server import ServerSettings, ray_app
from live import stop_process
from promkit import scrape, value
from raykit import local_ray_serve

pytestmark = [pytest.mark.ray, pytest.mark.diffusers]

KEY = "sk-ray-test-0123456789"
DEADLINE = 300  # seconds; a replica loading torch on a busy CI machine is slow, never this slow


@pytest.fixture(scope="module")
def ray_proxy() -> Iterator[str]:
    """A local Ray instance with Serve's HTTP proxy on 127.0.0.1; its base URL."""
    with local_ray_serve(num_cpus=2) as url:
        yield url


def deploy(settings: ServerSettings) -> None:
    from ray import serve

    serve.run(ray_app(settings), name="imagegen", route_prefix="/")


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=DEADLINE)


def decoded(item: Any) -> bytes:
    return base64.b64decode(item.b64_json)


def test_the_placeholder_on_ray_answers_the_sdk(ray_proxy: str) -> None:
    deploy(ServerSettings(engine="placeholder", api_keys=[KEY]))
    size, box = (64, 48), (8, 8, 40, 40)
    with sdk(ray_proxy) as client:
        made = client.images.generate(prompt="a lighthouse", n=2, size="64x48")
        assert len(made.data) == 2 and made.size == "64x48"
        edited = client.images.edit(
            image=("in.png", png(noise(size, 1)), "image/png"),
            mask=("mask.png", png(alpha_mask(size, box)), "image/png"),
            prompt="a boat",
        )
        assert len(edited.data) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks them deprecated
            varied = client.images.create_variation(
                image=("in.png", png(noise((32, 32), 2)), "image/png"), n=3
            )
        assert len(varied.data) == 3
        events = list(
            client.images.generate(prompt="a fox", size="32x32", stream=True, partial_images=2)
        )
        assert [event.type for event in events] == ["image_generation.partial_image"] * 2 + [
            "image_generation.completed"
        ]
        linked = client.images.generate(
            model="dall-e-2", prompt="a fox", size="256x256", response_format="url"
        )
        assert (linked.data[0].url or "").startswith(ray_proxy + "/files/")
    picture = httpx2.get(linked.data[0].url or "", timeout=60)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    with (
        openai.OpenAI(base_url=ray_proxy + "/v1", api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.models.list()
    samples = scrape(ray_proxy, {"authorization": f"Bearer {KEY}"})
    ok = {"model": "placeholder", "status": "200"}
    assert value(samples, "imagegen_requests_total", endpoint="generations", **ok) == 2
    assert value(samples, "imagegen_requests_total", endpoint="edits", **ok) == 1
    assert value(samples, "imagegen_requests_total", endpoint="variations", **ok) == 1


def test_the_tiny_model_on_ray_answers_the_sdk(
    ray_proxy: str, model_folders: dict[str, Path]
) -> None:
    options = {"steps": STEPS, "max_batch_size": "4", "batch_wait_ms": "0"}
    deploy(
        ServerSettings(
            engine="diffusers",
            model=str(model_folders["sd"]),
            engine_options=options,
            api_keys=[KEY],
        )
    )
    size, box = (32, 32), (8, 8, 24, 24)
    with sdk(ray_proxy) as client:
        made = client.images.generate(prompt="a red fox", n=2, size="40x24", extra_body={"seed": 7})
        edited = client.images.edit(
            image=("in.png", png(noise(size, 3)), "image/png"),
            mask=("mask.png", png(alpha_mask(size, box)), "image/png"),
            prompt="a cat",
            extra_body={"seed": 1},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            varied = client.images.create_variation(
                image=("in.png", png(noise(size, 4)), "image/png"), extra_body={"seed": 2}
            )
        assert made.usage is not None and made.usage.input_tokens > 0
        assert [len(made.data), len(edited.data), len(varied.data)] == [2, 1, 1]
        assert [m.id for m in client.models.list().data][0] == "tiny-sd"
    # The replica runs the same engine as this process would: same seed, same pictures.
    engine = DiffusersEngine(model=str(model_folders["sd"]), options={"steps": STEPS})
    try:
        here = ImageService(engine)
        job = here.prepare(
            "generations", GenerateRequest.of(prompt="a red fox", n=2, size="40x24", seed=7)
        )
        local = here.run(job).images
    finally:
        engine.close()
    for item, mine in zip(made.data, local, strict=True):
        assert_same_picture(decoded(item), mine)


def test_ray_app_refuses_bad_settings_before_deploying() -> None:
    with pytest.raises(ConfigurationError, match="steps"):
        ray_app(ServerSettings(engine="placeholder", engine_options={"steps": "2"}))
    with pytest.raises(ConfigurationError, match="min_replicas"):
        ray_app(ServerSettings(engine="placeholder"), min_replicas=0)
    with pytest.raises(ConfigurationError, match="max_replicas"):
        ray_app(ServerSettings(engine="placeholder"), min_replicas=3, max_replicas=2)


def test_imagegen_serve_ray_joins_a_cluster_and_serves(ray_proxy: str) -> None:
    """The command line, in its own process, joining the instance this module started (its
    proxy already listens, so the app is served at the proxy's address)."""
    import ray

    address = ray.get_runtime_context().gcs_address
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGEN_", "OPENAI_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imagegen",
            "serve",
            "--ray",
            "--ray-address",
            address,
            "--engine",
            "placeholder",
            "--api-key",
            KEY,
            "--port",
            ray_proxy.rsplit(":", 1)[1],
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=clean,
    )
    log: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            log.append(line)
            if re.search(r"serving on Ray at http://127\.0\.0\.1:\d+/v1", line):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.wait(1):
            assert process.poll() is None and time.monotonic() < deadline, "".join(log)
        with sdk(ray_proxy) as client:
            made = client.images.generate(prompt="a fox", size="16x16", n=2)
        assert len(made.data) == 2
        process.terminate()
        assert process.wait(timeout=DEADLINE) == 0, "".join(log)
    finally:
        stop_process(process)
        reader.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    # The app was deleted when the command stopped; the cluster it joined lives on.
    assert httpx2.get(ray_proxy + "/health", timeout=60).status_code == 404
