"""What the placeholder engine costs: one image made by each operation, against encoding it.

The baseline is a plain PNG encode (Pillow, default settings) of an image of the same size,
run in the same process and interleaved with the engine's calls, so a busy machine slows both
alike. Printed per operation: median wall and CPU milliseconds, and the ratio to the encode.
Every answer pays that encode anyway (the service encodes what the engine returns), so a ratio
under 1 means the engine costs less than turning its own image into bytes.

    python bench/placeholder_engine.py [--size 1024x1024] [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from imagegen.engines import Job
from imagegen.engines.placeholder import PlaceholderEngine


def photo(width: int, height: int) -> Image.Image:
    """A busy, photo-like input: gradients, texture and shapes (PNG cannot shrink it much)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 12, (height, width, 3))
    base = np.stack([xs / width * 255, ys / height * 255, 128 + 90 * np.sin(xs / 23)], -1)
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.1, height * 0.2, width * 0.4, height * 0.6), fill=(240, 200, 40))
    return image.convert("RGBA")


def timed(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    engine = PlaceholderEngine()
    source = photo(width, height)
    mask = Image.new("L", (width, height), 0)
    # A large hole: the middle third of the picture, an ellipse.
    ImageDraw.Draw(mask).ellipse((width / 3, height / 3, width * 2 / 3, height * 2 / 3), fill=255)
    big_mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(big_mask).ellipse(
        (width * 0.2, height * 0.2, width * 0.8, height * 0.8), fill=255
    )

    def job(endpoint: str, **fields: object) -> Job:
        return Job(endpoint=endpoint, model="placeholder", width=width, height=height, **fields)  # type: ignore[arg-type]

    def encode() -> None:
        source.convert("RGB").save(io.BytesIO(), "PNG")

    operations: dict[str, Callable[[], object]] = {
        "png encode (baseline)": encode,
        "generation": lambda: engine.generate(job("generations", prompt="A cute baby lion")),
        "generation, transparent": lambda: engine.generate(
            job("generations", prompt="A cute baby lion", background="transparent")
        ),
        "edit, mask 1/9 of the area": lambda: engine.edit(
            job("edits", prompt="a window", images=[source], mask=mask)
        ),
        "edit, mask 28% of the area": lambda: engine.edit(
            job("edits", prompt="a window", images=[source], mask=big_mask)
        ),
        "edit, no mask (restyle)": lambda: engine.edit(
            job("edits", prompt="a window", images=[source])
        ),
        "variation": lambda: engine.vary(job("variations", images=[source], seed=1)),
    }
    for call in operations.values():  # warm-up: imports, font loading, first allocations
        call()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in operations}
    for _ in range(args.rounds):
        for name, call in operations.items():
            samples[name].append(timed(call))

    base_wall = statistics.median(wall for wall, _ in samples["png encode (baseline)"])
    base_cpu = statistics.median(cpu for _, cpu in samples["png encode (baseline)"])
    print(f"placeholder engine, {width}x{height}, median of {args.rounds} rounds")
    print(f"{'operation':<30} {'wall ms':>9} {'cpu ms':>9} {'x encode (wall)':>16} {'x (cpu)':>8}")
    for name, values in samples.items():
        wall = statistics.median(v for v, _ in values)
        cpu = statistics.median(c for _, c in values)
        print(
            f"{name:<30} {wall * 1000:>9.1f} {cpu * 1000:>9.1f} "
            f"{wall / base_wall:>16.2f} {cpu / base_cpu:>8.2f}"
        )


if __name__ == "__main__":
    main()
