"""Peak memory while saving n=10 large images: imagegen's `ImagesResult.save` vs all at once.

An answer with ten large images holds ten base64 strings; that much is unavoidable. What saving
adds on top is what this measures (tracemalloc, Python allocations): imagegen decodes and writes
one image at a time, a few MB of base64 at a time, so it should add about one image's worth or
less; the naive baseline decodes all ten first, then writes them. Both write PNG files with the
same metadata, so the work done is the same.

    python bench/save_memory.py [--n 10] [--size 1536]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from imagegen import ImagesResponse, ImagesResult
from imagegen._saving import png_text_chunks


def _noise_png(side: int) -> bytes:
    # Noise barely compresses, so the PNG is about as large as the raw pixels.
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _naive_save(result: ImagesResult, path: Path) -> None:
    """Decode every image first, then write each (with the same text chunks)."""
    decoded = [base64.b64decode(image.b64_json or "") for image in result]
    for index, (image, data) in enumerate(zip(result, decoded, strict=True)):
        target = path if index == 0 else path.with_name(f"{path.stem}-{index}{path.suffix}")
        target.write_bytes(data[:33] + png_text_chunks(image.metadata) + data[33:])


def _measure(save: Callable[[Path], object], folder: Path) -> tuple[float, float]:
    """(peak MB above the starting point, seconds) for one save into `folder`."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start_mem = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    save(folder / "image.png")
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - start_mem) / 1e6, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--size", type=int, default=1536, help="side of each square image")
    args = parser.parse_args()

    images = [_noise_png(args.size) for _ in range(args.n)]
    one_image = max(len(data) for data in images) / 1e6
    response = ImagesResponse(
        created=int(time.time()),
        data=[{"b64_json": base64.b64encode(data).decode()} for data in images],
        size=f"{args.size}x{args.size}",
    )
    result = ImagesResult(response, model="gpt-image-2", prompt="noise")
    del images

    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as naive_dir:
        ours_mb, ours_s = _measure(lambda path: result.save(path), Path(ours_dir))
        naive_mb, naive_s = _measure(lambda path: _naive_save(result, path), Path(naive_dir))
        written = sorted(p.name for p in Path(ours_dir).iterdir())
        same = all(
            (Path(ours_dir) / name).read_bytes() == (Path(naive_dir) / name).read_bytes()
            for name in written
        )

    print(f"{args.n} PNG images of {args.size}x{args.size}, {one_image:.1f} MB each (noise)")
    print(f"{'saver':<30}{'peak MB':>10}{'x one image':>13}{'seconds':>10}")
    for label, peak, seconds in (
        ("imagegen ImagesResult.save", ours_mb, ours_s),
        ("naive: decode all, then write", naive_mb, naive_s),
    ):
        print(f"{label:<30}{peak:>10.1f}{peak / one_image:>13.2f}{seconds:>10.2f}")
    print(f"imagegen's peak is {ours_mb / naive_mb:.2f}x the naive one; files identical: {same}")
    print(
        f"target (issue 2): near one image's worth, not {args.n} -> "
        f"{'met' if ours_mb <= 1.5 * one_image else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
