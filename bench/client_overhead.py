"""Client overhead per request: imagegen's `Client`, the official `openai` SDK and bare httpx2.

All three send the same generation request to the same loopback server, which answers a small
fixed `ImagesResponse` at once, so the time that differs between them is the client's own work
(building and checking the request, parsing and wrapping the answer). The server runs in a
separate process (uvicorn), so its work does not compete for this process's GIL.

Rounds are interleaved (one request of each client per round, in a rotating order), after a
warm-up, so a busy machine slows all three alike. Printed: the median time per request, the
overhead over the bare httpx2 call, and the ratios. Issue 2's target: imagegen's overhead no
worse than the SDK's.

    python bench/client_overhead.py [--rounds 1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from _loopback import free_port, tiny_png, wait_for

PROMPT = "a lighthouse at dawn"


def serve(port: int) -> None:
    """The loopback server: every POST gets the same small ImagesResponse."""
    import json

    import uvicorn

    body = json.dumps(
        {
            "created": 1_790_000_000,
            "data": [{"b64_json": tiny_png()}],
            "background": "opaque",
            "output_format": "png",
            "size": "1024x1024",
            "quality": "low",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 272,
                "total_tokens": 282,
                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
            },
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_bench")]

    async def app(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        more = True
        while more:  # read the whole request body
            message = await receive()
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def _clients(base_url: str) -> dict[str, tuple[Callable[[], object], Callable[[], None]]]:
    """name -> (one request, close)."""
    import httpx2
    import openai

    import imagegen

    bare = httpx2.Client()
    url = base_url + "/images/generations"

    def bare_call() -> object:
        response = bare.post(
            url,
            json={"prompt": PROMPT, "model": "gpt-image-2"},
            headers={"Authorization": "Bearer x"},
        )
        response.raise_for_status()
        return response.json()

    sdk = openai.OpenAI(base_url=base_url, api_key="x")
    ours = imagegen.Client(base_url=base_url, api_key="x")
    return {
        "httpx2 (bare)": (bare_call, bare.close),
        "openai SDK": (lambda: sdk.images.generate(prompt=PROMPT, model="gpt-image-2"), sdk.close),
        "imagegen": (lambda: ours.generate(PROMPT), ours.close),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for(port, server)
        clients = _clients(f"http://127.0.0.1:{port}/v1")
        names = list(clients)
        for name in names:
            for _ in range(args.warmup):
                clients[name][0]()
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                call = clients[name][0]
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        for _, close in clients.values():
            close()
    finally:
        server.terminate()
        server.wait(10)

    median = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    bare = median["httpx2 (bare)"]
    print(f"{args.rounds} requests per client, interleaved, loopback server in another process")
    print(f"{'client':<16}{'median µs':>11}{'overhead µs':>13}{'x bare':>9}")
    for name in names:
        over = median[name] - bare
        print(f"{name:<16}{median[name]:>11.0f}{over:>13.0f}{median[name] / bare:>9.2f}")
    ours, sdk = median["imagegen"] - bare, median["openai SDK"] - bare
    print(
        f"imagegen / SDK: {median['imagegen'] / median['openai SDK']:.2f}x per request, "
        f"{ours / sdk if sdk > 0 else float('nan'):.2f}x the overhead over a bare call"
    )
    verdict = "met" if ours <= sdk else "NOT met"
    print(f"target (issue 2): overhead no worse than the SDK's -> {verdict}")


if __name__ == "__main__":
    main()
