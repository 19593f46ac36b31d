"""Batching and several devices end to end: the server, the official SDK, the tiny model.

As in `test_batching.py`, the devices are held busy while the requests arrive, so the worker
finds them all queued: this also proves the server lets that many requests reach the engine at
once (with one engine slot, the held device would never see more than one, and the test would
fail at its deadline).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from test_batching import DEADLINE, assert_same_picture, devices_held, loaded

from imagegen.engines.diffusers import DiffusersEngine
from imagegen.server import ServerSettings, create_app
from live import live_server
from promkit import scrape, value

_SKIP = os.environ.get("IMAGEGEN_SKIP_DIFFUSERS") == "1"

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.skipif(_SKIP, reason="IMAGEGEN_SKIP_DIFFUSERS=1: diffusers tests switched off"),
]


def serve(engine: DiffusersEngine) -> Any:
    return live_server(create_app(engine, ServerSettings(max_queue=32)))


def sdk(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=DEADLINE)


@pytest.fixture(scope="module")
def batching(model_folders: dict[str, Path]) -> Iterator[DiffusersEngine]:
    with loaded(model_folders["sd"], max_batch_size="8", batch_wait_ms="0") as engine:
        yield engine


def test_eight_concurrent_requests_make_one_pipeline_call(batching: DiffusersEngine) -> None:
    prompts = [f"a fox number {i}" for i in range(8)]

    def generate(index: int) -> bytes:
        with sdk(url) as client:
            result = client.images.generate(
                prompt=prompts[index], size="32x32", extra_body={"seed": index}
            )
        return base64.b64decode(result.data[0].b64_json or "")

    with serve(batching) as url:
        health = httpx2.get(url + "/health").json()
        assert health["max_concurrency"] == 8  # the engine's capacity, not the default 1
        with ThreadPoolExecutor(8) as pool, devices_held(batching, queued=8):
            futures = [pool.submit(generate, i) for i in range(8)]
        batched = [future.result(DEADLINE) for future in futures]
        samples = scrape(url)
        alone = [generate(i) for i in range(8)]
        after = scrape(url)
    assert value(samples, "imagegen_batch_requests_count", device="cpu") == 1
    assert value(samples, "imagegen_batch_requests_sum", device="cpu") == 8
    assert value(samples, "imagegen_batch_images_sum", device="cpu") == 8
    labels = {"endpoint": "generations", "model": "tiny-sd", "status": "200"}
    assert value(samples, "imagegen_requests_total", **labels) == 8
    assert value(after, "imagegen_batch_requests_count", device="cpu") == 9  # then one each
    for image, lone in zip(batched, alone, strict=True):
        assert_same_picture(image, lone)


def test_streams_and_plain_requests_share_a_call_over_http(batching: DiffusersEngine) -> None:
    extra = {"num_inference_steps": 4}

    def stream(seed: int, partials: int) -> list[Any]:
        with sdk(url) as client:
            events = client.images.generate(
                prompt="an owl",
                size="24x24",
                stream=True,
                partial_images=partials,
                extra_body={**extra, "seed": seed},
            )
            return list(events)

    def plain(seed: int) -> list[Any]:
        with sdk(url) as client:
            result = client.images.generate(
                prompt="an owl", size="24x24", n=2, extra_body={**extra, "seed": seed}
            )
            return list(result.data)

    with serve(batching) as url:
        with ThreadPoolExecutor(3) as pool, devices_held(batching, queued=4):
            first = pool.submit(stream, 1, 2)
            second = pool.submit(stream, 2, 1)
            third = pool.submit(plain, 3)
        streams = [first.result(DEADLINE), second.result(DEADLINE)]
        both = third.result(DEADLINE)
        samples = scrape(url)
        lone = stream(1, 2)
    assert value(samples, "imagegen_batch_requests_count", device="cpu") == 1
    assert value(samples, "imagegen_batch_images_sum", device="cpu") == 4
    kinds = [[event.type.rsplit(".", 1)[1] for event in events] for events in streams]
    assert kinds == [["partial_image"] * 2 + ["completed"], ["partial_image", "completed"]]
    assert len(both) == 2
    assert_same_picture(
        base64.b64decode(streams[0][-1].b64_json), base64.b64decode(lone[-1].b64_json)
    )


def test_two_cpu_workers_both_serve(model_folders: dict[str, Path]) -> None:
    with loaded(model_folders["sd"], device="cpu,cpu") as engine, serve(engine) as url:
        assert httpx2.get(url + "/health").json()["max_concurrency"] == 2

        def generate(seed: int) -> None:
            with sdk(url) as client:
                client.images.generate(prompt="a fox", size="16x16", extra_body={"seed": seed})

        with ThreadPoolExecutor(2) as pool, devices_held(engine, queued=2):
            futures = [pool.submit(generate, seed) for seed in (1, 2)]
        for future in futures:
            future.result(DEADLINE)
        samples = scrape(url)
    assert value(samples, "imagegen_batch_requests_count", device="cpu") == 1
    assert value(samples, "imagegen_batch_requests_count", device="cpu#2") == 1
