"""The server's overhead over the bare diffusers pipeline: seconds per image, images per second.

One model is loaded once, by the diffusers engine; the bare baseline calls that same pipeline
object (same weights, device, dtype, steps, guidance and size) directly in a loop, the way a
script would. The served path is `imagegen.server.create_app(engine)` under uvicorn on
127.0.0.1 (a thread of this process), driven by httpx2 with base64 PNG answers: validation,
the engine queue, the device thread, PNG encoding, base64, JSON and HTTP all included. Between
the two, `ImageService` in process: the same work without HTTP.

1. Sequential: each round makes one image each way, in rotating order, after a warm-up, so a
   busy machine slows all alike. Printed: median seconds per image, images per second, the
   median of the rounds' ratios to the bare call, and the difference in milliseconds.
2. Concurrent: C clients send R requests, in blocks alternating with blocks of the bare loop;
   the images per second the server sustains against the bare loop's (a device runs one
   pipeline call at a time, so the bare loop is the ceiling).

On the CPU with the tiny random-weight model the tests build (default; built offline in a
temporary folder, nothing downloaded). On a busy shared CPU, `--threads 1` keeps torch's
OpenMP threads from stalling each other and steadies the figures:

    python bench/diffusers_overhead.py [--threads 1] [--requests 30] [--concurrency 4]

On a GPU with a real model (downloaded by diffusers once, unless it is in the HF cache):

    python bench/diffusers_overhead.py --model stabilityai/sd-turbo --steps 1 --size 512x512 \\
        --requests 50 --concurrency 4
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "engines")]  # live.py, tiny_models.py

PROMPT = "a lighthouse on a cliff at dawn"
KEY = "bench-key"


def _tiny_model(folder: Path) -> str:
    import tiny_models

    return str(tiny_models.build_text2img(folder / "tiny-sd"))


def _bare_call(
    engine: Any, steps: int, guidance: float, size: tuple[int, int]
) -> Callable[[], Any]:
    """One image from the engine's own pipeline object, called as a script would.

    The call runs on the engine's device thread (and nothing else runs there meanwhile): on the
    CPU, a second calling thread would bring a second OpenMP thread team into this process,
    and the two would slow each other, which is the benchmark's doing, not the server's.
    """
    import torch

    from imagegen.engines._diffusers_batching import device_worker
    from imagegen.engines._diffusers_runtime import device_key

    pipe = engine.pipeline
    device = "cpu" if str(pipe.device).startswith("mps") else str(pipe.device)
    worker = device_worker(device_key(torch, str(pipe.device)))
    counter = iter(range(10**9))

    def call() -> Any:
        generator = torch.Generator(device=device).manual_seed(next(counter))
        kwargs = dict(
            prompt=PROMPT,
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=size[0],
            height=size[1],
            generator=[generator],
            output_type="pil",
        )
        return worker.submit(pipe, **kwargs).result().images[0]

    return call


def _service_call(engine: Any, size: str) -> Callable[[], Any]:
    """What the server does per request minus HTTP: validate, run the engine, encode PNG."""
    from imagegen._models import GenerateRequest
    from imagegen._service import ImageService

    service = ImageService(engine)
    counter = iter(range(10**9))

    def call() -> Any:
        request = GenerateRequest(prompt=PROMPT, size=size, seed=next(counter))
        return service.run(service.prepare("generations", request)).images[0]

    return call


def _http_call(base_url: str, size: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import httpx2

    client = httpx2.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=600
    )
    counter = iter(range(10**9))
    lock = threading.Lock()

    def call() -> Any:
        with lock:
            seed = next(counter)
        body = {"prompt": PROMPT, "size": size, "seed": seed}
        response = client.post("/v1/images/generations", json=body)
        response.raise_for_status()
        return base64.b64decode(response.json()["data"][0]["b64_json"])

    return call, client.close


def _timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or hub id (default: the tiny test model)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: 4 tiny, else family)")
    parser.add_argument("--guidance", type=float, help="guidance_scale (default: per family)")
    parser.add_argument("--size", default=None, help="WxH (default: 64x64 tiny, else native)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (default: torch's; 1 steadies a busy CPU)"
    )
    parser.add_argument("--requests", type=int, default=30, help="timed requests per phase")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=3, help="concurrent blocks of each kind")
    parser.add_argument("--max-concurrency", type=int, default=1, help="the server's engine slots")
    args = parser.parse_args()

    from imagegen._imaging import encode_image
    from imagegen.engines._diffusers_options import detect_family
    from imagegen.engines.diffusers import DiffusersEngine
    from imagegen.server import ServerSettings, create_app
    from live import live_server

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        tiny = args.model is None
        model = _tiny_model(Path(scratch)) if tiny else args.model
        family = detect_family(model)
        steps = args.steps or (4 if tiny else family.num_inference_steps)
        guidance = family.guidance_scale if args.guidance is None else args.guidance
        options = {"steps": str(steps), "guidance": str(guidance), "device": args.device}
        engine = DiffusersEngine(model=model, options=options)
        started = time.perf_counter()
        engine.load()
        loaded_in = time.perf_counter() - started
        pipe_device = str(engine.pipeline.device)
        size_text = args.size or ("64x64" if tiny else "x".join(map(str, engine.default_size)))
        width, height = (int(part) for part in size_text.split("x"))
        bare = _bare_call(engine, steps, guidance, (width, height))

        settings = ServerSettings(
            api_keys=[KEY], max_concurrency=args.max_concurrency, max_queue=10_000
        )
        with live_server(create_app(engine, settings)) as url:
            served, close = _http_call(url, size_text)
            try:
                for _ in range(args.warmup):
                    sample = bare()
                    served()
                in_process = _service_call(engine, size_text)
                # The server must answer PNG bytes, a script need not: one cost it cannot skip.
                encode = statistics.median(
                    _timed(lambda: encode_image(sample, "png")) for _ in range(5)
                )
                calls = {
                    "bare pipeline": bare,
                    "service, no HTTP": in_process,
                    "server (HTTP)": served,
                }
                times: dict[str, list[float]] = {name: [] for name in calls}
                for round_ in range(args.requests):
                    shift = round_ % len(calls)
                    order = list(calls)[shift:] + list(calls)[:shift]
                    for name in order:
                        times[name].append(_timed(calls[name]))

                # Alternating blocks, so a busy machine slows both alike; median of blocks.
                rates: dict[str, list[float]] = {"bare": [], "server": []}
                latencies: list[float] = []
                for _ in range(args.blocks):
                    started = time.perf_counter()
                    for _ in range(args.requests):
                        bare()
                    rates["bare"].append(args.requests / (time.perf_counter() - started))
                    started = time.perf_counter()
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        latencies += pool.map(lambda _: _timed(served), range(args.requests))
                    rates["server"].append(args.requests / (time.perf_counter() - started))
            finally:
                close()
        engine.close()

    name = Path(model).name if tiny else model
    print(
        f"model {name} ({'tiny, built offline' if tiny else 'as given'}), loaded in "
        f"{loaded_in:.1f} s; device {pipe_device}; {steps} steps, guidance {guidance:g}, "
        f"{size_text}, one image per request"
    )
    print(
        f"\n1. sequential: {args.requests} rounds, each one bare call, one in-process service "
        "call and one HTTP request, in rotating order"
    )
    print(f"{'':<18}{'s/image':>10}{'images/s':>10}{'x bare':>9}{'+ms/image':>11}")
    median = {key: statistics.median(values) for key, values in times.items()}
    base = times["bare pipeline"]
    for key, values in times.items():
        # A round's calls ran back to back, under the same load: compare them pairwise.
        ratio = statistics.median(t / b for t, b in zip(values, base, strict=True))
        extra = (median[key] - median["bare pipeline"]) * 1000
        print(f"{key:<18}{median[key]:>10.4f}{1 / median[key]:>10.2f}{ratio:>9.3f}{extra:>+11.1f}")
    print(f"(encoding one {size_text} PNG, part of the server's time: {encode * 1000:.1f} ms)")

    print(
        f"\n2. concurrent: {args.blocks} blocks of {args.requests} requests from "
        f"{args.concurrency} clients (server engine slots: {args.max_concurrency}), alternating "
        "with blocks of the bare loop"
    )
    bare_rate, served_rate = statistics.median(rates["bare"]), statistics.median(rates["server"])
    print(f"bare loop      {bare_rate:>8.2f} images/s")
    print(
        f"server         {served_rate:>8.2f} images/s, latency p50 "
        f"{statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"
    )
    print(f"server / bare: {served_rate / bare_rate:.3f}x the images per second")


if __name__ == "__main__":
    main()
