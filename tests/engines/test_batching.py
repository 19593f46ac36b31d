"""Dynamic batching and several devices in the diffusers engine, on the tiny CPU model.

Jobs are merged deterministically: each test first holds the engine's device workers busy
(a task that waits for an event), queues its jobs from their own threads, waits until the
workers hold all of them, then lets the device go, so the worker finds them all queued at
once. Nothing depends on timing.

Same seed, batched or alone: the same picture, to float rounding. A merged call multiplies
bigger matrices than a lone one, and the CPU's BLAS (MKL here) picks its kernel and summation
order by matrix shape (a one-row product is not summed like an eight-row one), so the float
results differ in the last bits (about 1e-6 of the 0-1 pixel range after denoising). Rounded
to 8 bits, a pixel lands on the other side of a rounding boundary now and then: we measured 1
channel value in 20,000 one level apart, never more. `assert_same_picture` allows exactly
that: values at most 1 apart, and at most 1 in 1,000 of them apart at all.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_diffusers import STEPS, noise, pixels, png

from imagegen._imaging import load_input
from imagegen._models import (
    CompletedEvent,
    EditRequest,
    GenerateRequest,
    ImageRequest,
    PartialImageEvent,
    VariationRequest,
)
from imagegen._service import ImageService
from imagegen.engines import Job, ModelCall
from imagegen.engines._diffusers_batching import DeviceWorker, PipelineCall
from imagegen.engines.diffusers import DiffusersEngine

_SKIP = os.environ.get("IMAGEGEN_SKIP_DIFFUSERS") == "1"

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.skipif(_SKIP, reason="IMAGEGEN_SKIP_DIFFUSERS=1: diffusers tests switched off"),
]

DEADLINE = 120  # seconds; only a hang reaches it


@contextlib.contextmanager
def loaded(folder: Path, **options: str) -> Iterator[DiffusersEngine]:
    engine = DiffusersEngine(model=str(folder), options={"steps": STEPS, **options})
    engine.load()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def batching(model_folders: dict[str, Path]) -> Iterator[DiffusersEngine]:
    # No waiting for companions: the tests queue them before the device is free.
    with loaded(model_folders["sd"], max_batch_size="8", batch_wait_ms="0") as engine:
        yield engine


@pytest.fixture(scope="module")
def service(batching: DiffusersEngine) -> ImageService:
    return ImageService(batching)


@pytest.fixture
def calls(batching: DiffusersEngine) -> Iterator[list[ModelCall]]:
    seen: list[ModelCall] = []
    stop = batching.watch(seen.append)
    yield seen
    stop()


def assert_same_picture(batched: bytes, alone: bytes) -> None:
    """Equal to float rounding (see the module docstring)."""
    a = pixels(batched).astype(int)
    b = pixels(alone).astype(int)
    assert a.shape == b.shape
    apart = np.abs(a - b)
    assert apart.max() <= 1, f"pixels differ by up to {apart.max()}"
    assert (apart > 0).mean() <= 0.001, f"{(apart > 0).mean():.4%} of values differ"


def workers(engine: DiffusersEngine) -> list[DeviceWorker]:
    return [replica.worker for replica in engine._replicas]


@contextlib.contextmanager
def devices_held(engine: DiffusersEngine, queued: int) -> Iterator[None]:
    """Keep the engine's devices busy while the block queues jobs; at its end, wait until the
    workers hold `queued` images, then free the devices."""
    release = threading.Event()
    held = workers(engine)
    for worker in held:
        worker.submit(release.wait, DEADLINE)
    try:
        yield
        deadline = time.monotonic() + DEADLINE
        while sum(worker.load for worker in held) < queued + len(held):
            assert time.monotonic() < deadline, "the jobs never reached the engine"
            time.sleep(0.005)
    finally:
        release.set()


def together(engine: DiffusersEngine, jobs: list[Callable[[], Any]], images: int) -> list[Any]:
    """Run `jobs` (each making `images` in total between them) so the engine sees them all
    queued at once; their results, in order."""
    results: list[Any] = [None] * len(jobs)

    def work(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    with devices_held(engine, images):
        for thread in threads:
            thread.start()
    for thread in threads:
        thread.join(DEADLINE)
        assert not thread.is_alive(), "a job never finished"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def job_of(
    service: ImageService,
    endpoint: Any,
    request: ImageRequest,
    *images: Image.Image,
    mask: Image.Image | None = None,
) -> Job:
    inputs = [load_input(png(image)) for image in images]
    mask_input = load_input(png(mask), param="mask") if mask is not None else None
    return service.prepare(endpoint, request, inputs, mask_input)


def made(service: ImageService, job: Job) -> Callable[[], list[bytes]]:
    return lambda: service.run(job).images


# --- one pipeline call for many requests, each image as if made alone --------------------------


def test_concurrent_generations_share_one_call_and_match_their_lone_runs(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    requests = [
        GenerateRequest.of(prompt="a red fox", seed=1, size="32x32"),
        GenerateRequest.of(prompt="the owl", n=3, seed=2, size="32x32"),
        GenerateRequest.of(prompt="a red fox", seed=3, size="32x32", negative_prompt="blur"),
        GenerateRequest.of(prompt="on the moon", n=2, seed=4, size="32x32"),
        GenerateRequest.of(prompt="a red fox", seed=1, size="32x32"),  # a twin of the first
    ]
    jobs = [job_of(service, "generations", request) for request in requests]
    batched = together(batching, [made(service, job) for job in jobs], images=8)
    assert sorted((call.requests, call.images) for call in calls) == [(1, 1), (4, 7)]
    calls.clear()
    alone = [service.run(job).images for job in jobs]
    assert len(calls) == 5
    assert [len(images) for images in batched] == [1, 3, 1, 2, 1]
    for mine, reference in zip(batched, alone, strict=True):
        for image, lone in zip(mine, reference, strict=True):
            assert_same_picture(image, lone)
    assert batched[0] == batched[4]  # twins in one call: the very same bytes
    assert len({image for images in batched for image in images}) == 7


def test_negative_prompt_or_none_do_not_mix(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    """Without a negative prompt some models encode none at all (SDXL zeroes it), so jobs
    with and without one never share a call; with one each, they do, each keeping its own."""
    requests = [
        GenerateRequest.of(prompt="a fox", seed=5, size="24x24", negative_prompt="blur"),
        GenerateRequest.of(prompt="a fox", seed=5, size="24x24", negative_prompt="dark"),
        GenerateRequest.of(prompt="a fox", seed=5, size="24x24"),
    ]
    jobs = [job_of(service, "generations", request) for request in requests]
    batched = together(batching, [made(service, job) for job in jobs], images=3)
    assert sorted((call.requests, call.images) for call in calls) == [(1, 1), (2, 2)]
    assert len({images[0] for images in batched}) == 3
    for job, images in zip(jobs, batched, strict=True):
        assert_same_picture(images[0], service.run(job).images[0])


def test_different_settings_never_share_a_call(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    requests = [
        GenerateRequest.of(prompt="a fox", seed=1, size="32x32"),
        GenerateRequest.of(prompt="a fox", seed=1, size="32x24"),  # another size
        GenerateRequest.of(prompt="a fox", seed=1, size="32x32", num_inference_steps=3),
        GenerateRequest.of(prompt="a fox", seed=1, size="32x32", guidance_scale=2.0),
        GenerateRequest.of(prompt="a fox", seed=1, size="32x32"),  # joins the first
    ]
    jobs = [job_of(service, "generations", request) for request in requests]
    together(batching, [made(service, job) for job in jobs], images=5)
    assert sorted(call.requests for call in calls) == [1, 1, 1, 2]


def test_batches_stop_at_max_batch_size(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    jobs = [
        job_of(
            service, "generations", GenerateRequest.of(prompt="a fox", n=n, seed=i, size="16x16")
        )
        for i, n in enumerate([3, 3, 3, 2, 9])  # 9 > 8: still made, alone, as one call
    ]
    together(batching, [made(service, job) for job in jobs], images=20)
    assert all(call.images <= 8 or call.requests == 1 for call in calls)
    assert sorted(call.images for call in calls) == [3, 8, 9]  # 3+3+2 fill one, 3 waits


def test_edits_and_variations_are_batched_too(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    size, box = (32, 32), (8, 8, 24, 24)
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    first, second = noise(size, 1), noise(size, 2)
    jobs = [
        job_of(service, "edits", EditRequest.of(prompt="a cat", seed=1), first, mask=mask),
        job_of(service, "edits", EditRequest.of(prompt="a dog", n=2, seed=2), second, mask=mask),
        job_of(service, "edits", EditRequest.of(prompt="a cat", seed=3), first),  # image to image
        job_of(service, "edits", EditRequest.of(prompt="an owl", seed=4), second),
        job_of(service, "variations", VariationRequest.of(seed=5), first),
        job_of(service, "variations", VariationRequest.of(n=2, seed=6), second),
    ]
    batched = together(batching, [made(service, job) for job in jobs], images=8)
    # Inpainting, image to image with the edit strength, and with the variation strength.
    assert sorted((call.requests, call.images) for call in calls) == [(2, 2), (2, 3), (2, 3)]
    for job, images in zip(jobs, batched, strict=True):
        for image, lone in zip(images, service.run(job).images, strict=True):
            assert_same_picture(image, lone)
    outside = ~np.pad(np.ones((16, 16), bool), 8)
    assert np.array_equal(pixels(batched[1][1])[outside], np.asarray(second)[outside])


def test_the_image_variation_pipeline_is_batched(model_folders: dict[str, Path]) -> None:
    with loaded(model_folders["variation"], max_batch_size="4", batch_wait_ms="0") as engine:
        service = ImageService(engine)
        seen: list[ModelCall] = []
        engine.watch(seen.append)
        sources = [noise((40, 40), 20), noise((40, 40), 21)]
        jobs = [
            job_of(service, "variations", VariationRequest.of(n=2, seed=i, size="24x24"), source)
            for i, source in enumerate(sources)
        ]
        batched = together(engine, [made(service, job) for job in jobs], images=4)
        assert [call.requests for call in seen] == [2]
        for job, images in zip(jobs, batched, strict=True):
            for image, lone in zip(images, service.run(job).images, strict=True):
                assert_same_picture(image, lone)


# --- streaming --------------------------------------------------------------------------------


def test_streams_in_one_call_each_get_their_own_partial_images(
    service: ImageService, batching: DiffusersEngine, calls: list[ModelCall]
) -> None:
    four = {"num_inference_steps": 4, "size": "24x24"}
    requests = [
        GenerateRequest.of(prompt="a fox", n=2, seed=1, partial_images=2, **four),
        GenerateRequest.of(prompt="an owl", seed=2, partial_images=1, **{**four, "size": "32x32"}),
        GenerateRequest.of(prompt="a cat", seed=3, partial_images=3, **four),
        GenerateRequest.of(prompt="a dog", seed=4, **four),  # not streamed, in the same call
    ]
    jobs = [job_of(service, "generations", request) for request in requests]
    streams: list[Callable[[], Any]] = [
        lambda job=job: list(service.stream(job)) for job in jobs[:3]
    ]
    results = together(batching, [*streams, made(service, jobs[3])], images=5)
    assert sorted((call.requests, call.images) for call in calls) == [(1, 1), (3, 4)]
    for job, events in zip(jobs[:3], results[:3], strict=True):
        partial = [event for event in events if isinstance(event, PartialImageEvent)]
        done = [event for event in events if isinstance(event, CompletedEvent)]
        # Four steps: previews after steps 1, 2 and 3 at most, each image its own.
        assert len(partial) == job.partial_images * job.n
        assert [event.partial_image_index for event in partial] == list(range(len(partial)))
        assert len(done) == job.n and events[-job.n :] == done
        for event in partial + done:
            size = Image.open(io.BytesIO(base64.b64decode(event.b64_json))).size
            assert size == (job.width, job.height)
        alone = service.run(job).images
        for event, lone in zip(done, alone, strict=True):
            assert_same_picture(base64.b64decode(event.b64_json), lone)


# --- a failed merged call ---------------------------------------------------------------------


class _Output:
    def __init__(self, images: list[str]) -> None:
        self.images = images


class _FailsWhenMerged:
    """A pipeline standing in for a device that runs out of memory above one job's images
    (what a too large batch does on a GPU), and for one job whose inputs it cannot use."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, *, prompt: list[str], generator: list[int], **kwargs: Any) -> _Output:
        self.calls.append(list(prompt))
        if len(set(prompt)) > 1:
            raise MemoryError("out of memory")
        if prompt[0] == "bad":
            raise ValueError("cannot use this one")
        return _Output([f"{text}-{seed}" for text, seed in zip(prompt, generator, strict=True)])


def test_a_failed_merged_call_is_run_again_job_by_job() -> None:
    pipe = _FailsWhenMerged()
    worker = DeviceWorker("test")
    release = threading.Event()
    worker.submit(release.wait, DEADLINE)
    futures = [
        worker.call(
            PipelineCall(
                pipe=pipe,
                shared={"width": 8},
                per_image={"prompt": [prompt] * n, "generator": list(range(n))},
                n=n,
                max_images=8,
            )
        )
        for prompt, n in [("fox", 2), ("bad", 1), ("owl", 1)]
    ]
    release.set()
    assert futures[0].result(DEADLINE).images == ["fox-0", "fox-1"]
    with pytest.raises(ValueError, match="cannot use this one"):
        futures[1].result(DEADLINE)
    assert futures[2].result(DEADLINE).images == ["owl-0"]
    assert pipe.calls == [["fox", "fox", "bad", "owl"], ["fox", "fox"], ["bad"], ["owl"]]


# --- several devices --------------------------------------------------------------------------


def test_two_cpu_workers_share_the_load(model_folders: dict[str, Path]) -> None:
    with loaded(model_folders["sd"], device="cpu,cpu", max_batch_size="2") as engine:
        assert [replica.worker.name for replica in engine._replicas] == ["cpu", "cpu#2"]
        assert len({id(pipe) for pipe in engine.pipelines}) == 2  # a copy each
        assert engine.capacity() == 4
        service = ImageService(engine)
        seen: list[ModelCall] = []
        engine.watch(seen.append)
        requests = [GenerateRequest.of(prompt="a fox", seed=i, size="24x24") for i in range(4)]
        jobs = [job_of(service, "generations", request) for request in requests]
        batched = together(engine, [made(service, job) for job in jobs], images=4)
        # Least loaded first: the jobs alternate, each worker merges its two.
        assert sorted((call.device, call.requests) for call in seen) == [("cpu", 2), ("cpu#2", 2)]
        for job, images in zip(jobs, batched, strict=True):
            assert_same_picture(images[0], service.run(job).images[0])


def test_the_device_option_lists_devices() -> None:
    from imagegen._errors import ConfigurationError
    from imagegen.engines._diffusers_options import parse_engine_options

    assert parse_engine_options({"device": "CUDA:0, cuda:1"}).devices == ("cuda:0", "cuda:1")
    assert parse_engine_options({}).devices == ("auto",)
    for bad in ("auto,cpu", "cpu,,cpu", "gpu"):
        with pytest.raises(ConfigurationError, match="Invalid option device="):
            parse_engine_options({"device": bad})
    parsed = parse_engine_options({"max_batch_size": "8", "batch_wait_ms": "25"})
    assert (parsed.max_batch_size, parsed.batch_wait_ms) == (8, 25)
    for name, bad in (("max_batch_size", "0"), ("batch_wait_ms", "-1"), ("max_batch_size", "x")):
        with pytest.raises(ConfigurationError, match=f"Invalid option {name}="):
            parse_engine_options({name: bad})


def test_a_gpu_that_is_not_there_is_named(model_folders: dict[str, Path]) -> None:
    from imagegen._errors import ConfigurationError

    engine = DiffusersEngine(model=str(model_folders["sd"]), options={"device": "cpu,cuda:1"})
    with pytest.raises(ConfigurationError, match="device=cuda:1 asks for a CUDA GPU"):
        engine.load()


def test_counting_tokens_never_changes_how_the_pipeline_pads(batching: DiffusersEngine) -> None:
    """A fast tokenizer keeps its truncation and padding settings on itself: counting with the
    pipeline's own from a request thread changed, now and then, how the device thread padded a
    prompt mid-call, and with it the picture. The engine counts with its own copy."""
    replica = batching._replicas[0]
    tokenizer = replica.text2img.tokenizer
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            replica.tokens("a fox in the snow")

    counter = threading.Thread(target=count)
    counter.start()
    try:
        padded = [
            tokenizer(
                ["a fox"], padding="max_length", max_length=77, truncation=True, return_tensors="pt"
            )
            for _ in range(3000)
        ]
    finally:
        done.set()
        counter.join(DEADLINE)
    assert {tokens.input_ids.shape[1] for tokens in padded} == {77}
