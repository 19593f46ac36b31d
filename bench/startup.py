"""How long `imagegen --help` and an in-process `imagegen generate` take, as ratios to a bare
Python start.

Each command runs in a fresh process, `--runs` times, round-robin (one run of each command in
turn, so a busy machine slows them all alike), after one warm-up run each (so the OS file cache
is hot for all, and every module's bytecode cached). Printed: the median wall time and the
median CPU time (user + system of the child, which other load on the machine disturbs less),
and their ratios to `python -c pass` and to `python -c "import click"` (the floor for any
click command line). Targets: `--help` under 6x a bare Python start; the whole `imagegen
generate "..." --engine placeholder -o FILE` (start, a 1024x1024 image drawn, encoded and
saved) under 10x.

Bytecode: an installed package has its modules compiled (pip writes the `.pyc` files), but a
checkout run with PYTHONDONTWRITEBYTECODE=1 compiles every module of `src/` from source on
every start (about 90 ms here, more than the whole `--help`). So the commands run with
bytecode written to a temporary PYTHONPYCACHEPREFIX (the warm-up run fills it; the source tree
is left alone) and PYTHONDONTWRITEBYTECODE unset, as an installed `imagegen` starts;
`--no-bytecode-cache` measures the other way.

    python bench/startup.py [--runs 21] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 6.0  # --help
GENERATE_TARGET_RATIO = 10.0  # generate --engine placeholder -o FILE
GENERATE = "imagegen generate --engine placeholder -o FILE"
HEAVY = ("PIL", "httpx2", "httpx", "pydantic", "rich", "starlette", "uvicorn", "numpy", "torch")


def _run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `cmd`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _heavy_modules() -> list[str]:
    """Heavy packages that `import imagegen.cli` pulls in (there should be none)."""
    code = f"import sys, imagegen.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep the environment's PYTHONDONTWRITEBYTECODE (modules compiled on every start)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imagegen-startup-") as work:
        env = dict(os.environ)
        if args.no_bytecode_cache:
            bytecode = "as the environment says"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
            bytecode = "cached, as installed"
        _measure(args.runs, env, Path(work) / "lion.png", bytecode)


def _measure(runs: int, env: dict[str, str], out: Path, bytecode: str) -> None:
    python = sys.executable
    script = shutil.which("imagegen", path=str(Path(python).parent)) or shutil.which("imagegen")
    commands: dict[str, list[str]] = {
        "python -c pass": [python, "-c", "pass"],
        'python -c "import click"': [python, "-c", "import click"],
        "python -m imagegen --help": [python, "-m", "imagegen", "--help"],
    }
    if script:
        commands["imagegen --help"] = [script, "--help"]
        commands["imagegen generate --help"] = [script, "generate", "--help"]
        commands[GENERATE] = [script, "generate", "A cute baby lion", "--engine", "placeholder"]
        commands[GENERATE] += ["-o", str(out)]

    for cmd in commands.values():  # warm-up
        _run_once(cmd, env)
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, cmd in commands.items():
            samples[label].append(_run_once(cmd, env))

    wall = {k: statistics.median(w for w, _ in v) for k, v in samples.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
    bare, click_only = "python -c pass", 'python -c "import click"'
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"start-up, median of {runs} runs each, round-robin "
        f"(Python {sys.version.split()[0]}, {sys.platform}, load {load:.1f}, bytecode "
        f"{bytecode})"
    )
    width = max(len(label) for label in commands)
    print(
        f"{'command':<{width}} {'wall ms':>8} {'x bare':>7} {'x click':>8}   {'cpu ms':>7} "
        f"{'x bare':>7}"
    )
    for label in commands:
        print(
            f"{label:<{width}} {wall[label] * 1000:8.1f} {wall[label] / wall[bare]:7.2f} "
            f"{wall[label] / wall[click_only]:8.2f}   {cpu[label] * 1000:7.1f} "
            f"{cpu[label] / cpu[bare]:7.2f}"
        )
    for label in (k for k in commands if "imagegen" in k):
        ratio = wall[label] / wall[bare]
        target = GENERATE_TARGET_RATIO if label == GENERATE else TARGET_RATIO
        verdict = "meets" if ratio < target else "MISSES"
        print(f"{label}: {ratio:.2f}x a bare Python start ({verdict} the {target:g}x target)")
    heavy = _heavy_modules()
    print(f"heavy modules imported by `import imagegen.cli`: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
