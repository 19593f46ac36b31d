"""Serving at scale: images per second from 8 concurrent clients, batching on vs off, and Ray
Serve vs the plain server, in one run.

Three servers of one model, same steps, guidance and size, driven the same way (C client
threads, each sending one-image generations back to back with its own seeds, httpx2, base64 PNG
answers):

1. plain server, batching off (`max_batch_size=1`): one pipeline call per request;
2. plain server, batching on (`max_batch_size=C`, `batch_wait_ms` as given): concurrent
   requests share pipeline calls;
3. the same app as 2 on Ray Serve (a local Ray instance, one replica), through Ray's HTTP proxy.

1 and 2 run in alternating blocks, so a busy machine slows both alike; the figure is the
median of the blocks. 3 runs after them, alternating with blocks of 2 again. Pipeline calls are
read from each server's `/metrics` (`imagegen_batch_requests_count`).

On the CPU with the tiny random-weight model the tests build (default; built offline in a
temporary folder, nothing downloaded):

    python bench/serve_scale.py                       # needs imagegen[diffusers,ray]
    python bench/serve_scale.py --no-ray              # without the Ray part

On a GPU with a real model:

    python bench/serve_scale.py --model stabilityai/sd-turbo --steps 1 --size 512x512
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "engines")]  # test helpers

PROMPT = "a lighthouse on a cliff at dawn"


def _calls(url: str) -> float:
    from promkit import scrape

    samples = scrape(url)
    return sum(v for (name, _), v in samples.items() if name == "imagegen_batch_requests_count")


def _drive(url: str, clients: int, requests: int, size: str, seeds: Iterator[int]) -> float:
    """Images per second while `clients` threads send `requests` generations in all."""
    import httpx2

    lock = threading.Lock()
    left = [requests]
    failures: list[str] = []

    def client() -> None:
        with httpx2.Client(base_url=url, timeout=600) as http:
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                    seed = next(seeds)
                body = {"prompt": PROMPT, "size": size, "seed": seed}
                answer = http.post("/v1/images/generations", json=body)
                if answer.status_code != 200:
                    failures.append(answer.text)
                    return
                base64.b64decode(answer.json()["data"][0]["b64_json"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"a request failed: {failures[0]}")
    return requests / (time.perf_counter() - started)


@contextmanager
def _plain(model: str, options: dict[str, str]) -> Iterator[str]:
    from imagegen.engines.diffusers import DiffusersEngine
    from imagegen.server import ServerSettings, create_app
    from live import live_server

    engine = DiffusersEngine(model=model, options=options)
    engine.load()
    try:
        with live_server(create_app(engine, ServerSettings(max_queue=1000))) as url:
            yield url
    finally:
        engine.close()


@contextmanager
def _on_ray(model: str, options: dict[str, str], cpus: int) -> Iterator[str]:
    from ray import serve

    from imagegen.server import ServerSettings, ray_app
    from raykit import local_ray_serve

    with local_ray_serve(num_cpus=cpus) as url:
        settings = ServerSettings(
            engine="diffusers", model=model, engine_options=options, max_queue=1000
        )
        serve.run(ray_app(settings), name="imagegen", route_prefix="/")
        yield url


def _blocks(
    servers: dict[str, str], args: argparse.Namespace, seeds: Iterator[int]
) -> dict[str, tuple[float, float]]:
    """Alternating blocks on each server: median images/s, and pipeline calls per request."""
    rates: dict[str, list[float]] = {name: [] for name in servers}
    for url in servers.values():  # warm-up, not timed
        _drive(url, args.clients, args.clients, args.size, seeds)
    calls = {name: _calls(url) for name, url in servers.items()}
    for _ in range(args.blocks):
        for name, url in servers.items():
            rates[name].append(_drive(url, args.clients, args.requests, args.size, seeds))
    done = args.blocks * args.requests
    return {
        name: (statistics.median(rates[name]), (_calls(url) - calls[name]) / done)
        for name, url in servers.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or hub id (default: the tiny test model)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", default="64x64")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=48, help="requests per block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--batch-wait-ms", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (Ray's too)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray Serve comparison")
    args = parser.parse_args()

    import os

    # Ray gives each replica OMP_NUM_THREADS=its CPUs; the same here, so both run alike.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    seeds = iter(range(10**9))
    base = {"steps": str(args.steps)}
    off = {**base, "max_batch_size": "1"}
    on = {**base, "max_batch_size": str(args.clients), "batch_wait_ms": str(args.batch_wait_ms)}
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-") as scratch:
        if args.model is None:
            import tiny_models

            model = str(tiny_models.build_text2img(Path(scratch) / "tiny-sd"))
        else:
            model = args.model
        with _plain(model, off) as url_off, _plain(model, on) as url_on:
            results.update(_blocks({"batching off": url_off, "batching on": url_on}, args, seeds))
            if not args.no_ray:
                with _on_ray(model, on, cpus=max(2, args.threads + 1)) as url_ray:
                    pair = {"plain server, batching on": url_on, "Ray Serve, batching on": url_ray}
                    results.update(_blocks(pair, args, seeds))

    print(
        f"model {Path(model).name if args.model is None else model}; {args.steps} steps, "
        f"{args.size}; {args.clients} clients, {args.blocks} blocks of {args.requests} "
        f"one-image requests per server (median block); torch threads {args.threads}; "
        f"batch wait {args.batch_wait_ms} ms"
    )
    print(f"\n{'':<26}{'images/s':>10}{'calls/request':>15}")
    for name, (rate, calls) in results.items():
        print(f"{name:<26}{rate:>10.2f}{calls:>15.2f}")
    on_rate, off_rate = results["batching on"][0], results["batching off"][0]
    print(f"\nbatching on / off: {on_rate / off_rate:.2f}x the images per second")
    if "Ray Serve, batching on" in results:
        plain_rate = results["plain server, batching on"][0]
        ray_rate = results["Ray Serve, batching on"][0]
        print(f"Ray Serve / plain server (batching on, same blocks): {ray_rate / plain_rate:.2f}x")


if __name__ == "__main__":
    main()
