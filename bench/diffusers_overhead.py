"""The server's overhead over the bare diffusers pipeline: seconds per image, images per second.

One model is loaded once, by the diffusers engine; the bare baseline calls that same pipeline
object (same weights, device, dtype, steps, guidance and size) directly in a loop, the way a
script would. The served path is `imagegen.server.create_app(engine)` under uvicorn on
127.0.0.1, driven by httpx2 with base64 PNG answers: validation, the engine queue, the device
lock, PNG encoding, base64, JSON and HTTP all included.

1. Sequential: rounds interleave one bare call and one HTTP request (rotating order), after a
   warm-up, so a busy machine slows both alike. Printed: median seconds per image, images per
   second, the ratio and the overhead in milliseconds.
2. Concurrent: C clients send R requests in all; the images per second the server sustains
   against the bare loop's (a pipeline runs one call at a time per device, so the bare loop is
   the ceiling).

On the CPU with the tiny random-weight model the tests build (default; built offline in a
temporary folder, nothing downloaded):

    python bench/diffusers_overhead.py [--requests 20] [--concurrency 4]

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
    """One image from the engine's own pipeline object, called as a script would."""
    import torch

    pipe = engine.pipeline
    device = "cpu" if str(pipe.device).startswith("mps") else str(pipe.device)
    counter = iter(range(10**9))

    def call() -> Any:
        generator = torch.Generator(device=device).manual_seed(next(counter))
        return pipe(
            prompt=PROMPT,
            num_inference_steps=steps,
            guidance_scale=guidance,
            width=size[0],
            height=size[1],
            generator=[generator],
            output_type="pil",
        ).images[0]

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
    parser.add_argument("--requests", type=int, default=20, help="timed requests per phase")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=3, help="concurrent blocks of each kind")
    parser.add_argument("--max-concurrency", type=int, default=1, help="the server's engine slots")
    args = parser.parse_args()

    from imagegen.engines._diffusers_options import detect_family
    from imagegen.engines.diffusers import DiffusersEngine
    from imagegen.server import ServerSettings, create_app
    from live import live_server

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
                    bare()
                    served()
                times: dict[str, list[float]] = {"bare pipeline": [], "server (HTTP)": []}
                calls = {"bare pipeline": bare, "server (HTTP)": served}
                for round_ in range(args.requests):
                    order = list(calls) if round_ % 2 == 0 else list(reversed(calls))
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
    print(f"\n1. sequential: {args.requests} rounds, one bare call and one request each")
    print(f"{'':<16}{'s/image':>10}{'images/s':>10}")
    median = {key: statistics.median(values) for key, values in times.items()}
    for key, value in median.items():
        print(f"{key:<16}{value:>10.4f}{1 / value:>10.2f}")
    ratio = median["server (HTTP)"] / median["bare pipeline"]
    extra = (median["server (HTTP)"] - median["bare pipeline"]) * 1000
    print(f"server / bare: {ratio:.3f}x the time per image ({extra:+.1f} ms per image)")

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
