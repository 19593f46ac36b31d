"""What GIF and SVG answers cost with the placeholder engine, against a PNG answer.

Each request runs through `ImageService` as the server runs it (validate, make, encode), in one
process, the formats interleaved round by round so a busy machine slows them alike. Printed per
format: median wall and CPU milliseconds, the answer's size, and the ratio to the PNG answer.

    python bench/gif_svg.py [--size 1024x1024] [--rounds 5] [--frames 9]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from imagegen._models import GenerateRequest
from imagegen._service import ImageService
from imagegen.engines.placeholder import PlaceholderEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=9)
    args = parser.parse_args()
    service = ImageService(PlaceholderEngine())

    def answer(**params: object) -> Callable[[], bytes]:
        request = GenerateRequest(prompt="A cute baby lion", size=args.size, **params)

        def run() -> bytes:
            return service.run(service.prepare("generations", request)).images[0]

        return run

    cases = {
        "png": answer(),
        "gif": answer(output_format="gif", frame_count=args.frames),
        "gif transparent": answer(
            output_format="gif", frame_count=args.frames, background="transparent"
        ),
        "svg": answer(output_format="svg"),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    sizes: dict[str, int] = {}
    for _ in range(args.rounds):
        for name, run in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            sizes[name] = len(run())
            walls[name].append(time.perf_counter() - wall)
            cpus[name].append(time.process_time() - cpu)
    base = statistics.median(walls["png"])
    print(f"{args.size}, {args.frames} GIF frames, median of {args.rounds} rounds")
    print(f"{'answer':<16} {'wall ms':>8} {'cpu ms':>8} {'bytes':>10} {'x png':>7}")
    for name in cases:
        wall = statistics.median(walls[name])
        cpu = statistics.median(cpus[name])
        print(
            f"{name:<16} {wall * 1000:8.0f} {cpu * 1000:8.0f} {sizes[name]:10,} {wall / base:7.2f}"
        )


if __name__ == "__main__":
    main()
