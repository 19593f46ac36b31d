"""Where the placeholder's two paths spend their time: a profile of each, read before optimising.

    python bench/profile_placeholder.py server [--size 256x256] [--format b64_json]
        [--clients 8] [--seconds 10]

py-spy (`pip install py-spy`) samples every thread of `imagegen serve --engine placeholder` while
the client of bench/placeholder_speed.py keeps it busy, and prints the functions seen in the
most samples: by their own time (the leaf of the stack) and with what they call. The raw stacks
are written next to it for a flame graph (https://www.speedscope.app reads them).

    python bench/profile_placeholder.py cli [--size 1024x1024]

`imagegen generate ... --engine placeholder -o` in this process under cProfile (the functions
with the most time of their own, imports included), then the command's imports by package
(`python -X importtime`, in a fresh process): what start-up costs, and for what.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _loopback import free_port, wait_for
from placeholder_speed import _round


def _top(counts: collections.Counter[str], total: int, title: str, limit: int) -> None:
    print(f"\n{title}")
    for frame, count in counts.most_common(limit):
        print(f"  {count / total:6.1%}  {frame}")


def profile_server(args: argparse.Namespace, folder: Path) -> None:
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    port = free_port()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "imagegen", "serve", "--engine", "placeholder"),
            *("--port", str(port), "--log-level", "warning", "--max-queue", "1024"),
            *("--max-concurrency", str(os.cpu_count() or 1)),
            *("--storage-dir", str(folder / "files"), "--data-dir", str(folder / "data")),
        ],
        env={k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")},
    )
    raw = Path(f"placeholder-server-{args.size}-{args.format}.txt").resolve()
    try:
        wait_for(port, server, timeout=120)
        asyncio.run(_round(port, args.size, args.format, args.clients, 1.0))  # warm-up
        recorder = subprocess.Popen(
            [spy, "record", "--pid", str(server.pid), "--format", "raw", "--output", str(raw)]
            + ["--rate", "250", "--duration", str(int(args.seconds) + 1), "--nonblocking"]
            + (["--gil"] if args.gil else []),
            stdout=subprocess.DEVNULL,
        )
        rate, _ = asyncio.run(_round(port, args.size, args.format, args.clients, args.seconds))
        recorder.wait(timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"{args.size} {args.format}, {args.clients} clients: {rate:.1f} requests/s under py-spy")
    own: collections.Counter[str] = collections.Counter()
    within: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")[1:]]  # no thread
        if not frames:
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            within[frame] += int(count)
    _top(own, total, "own time (samples in the function itself, % of all)", args.limit)
    _top(within, total, "total time (samples in the function or what it calls)", args.limit)
    print(f"\nraw stacks: {raw}")


def profile_cli(args: argparse.Namespace, folder: Path) -> None:
    argv = ["generate", "A cute baby lion", "--engine", "placeholder", "-s", args.size]
    argv += ["-o", str(folder / "lion.png")]
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        from imagegen.cli import main

        main(argv)
    except SystemExit:
        pass
    finally:
        profiler.disable()
    print(f"imagegen {' '.join(argv[:-2])} -o FILE, in process under cProfile")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(args.limit)

    timing = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imagegen", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    by_package: collections.Counter[str] = collections.Counter()
    for line in timing.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)", line)
        if match:  # own microseconds, counted under the top-level package
            by_package[match[3].split(".")[0]] += int(match[1])
    total = sum(by_package.values())
    print(f"imports of the same command, by package (own time; {total / 1000:.0f} ms in all):")
    for package, micros in by_package.most_common(args.limit):
        print(f"  {micros / 1000:7.1f} ms  {micros / total:6.1%}  {package}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("path", choices=["server", "cli"])
    parser.add_argument("--size", default=None, help="256x256 (server) or 1024x1024 (cli)")
    parser.add_argument("--format", default="b64_json", choices=["b64_json", "url"])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--limit", type=int, default=25, help="rows of each table")
    parser.add_argument(
        "--gil", action="store_true", help="server: only samples holding the GIL (Python work)"
    )
    args = parser.parse_args()
    args.size = args.size or ("256x256" if args.path == "server" else "1024x1024")
    with tempfile.TemporaryDirectory(prefix="imagegen-profile-") as folder:
        (profile_server if args.path == "server" else profile_cli)(args, Path(folder))


if __name__ == "__main__":
    main()
