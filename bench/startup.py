"""How long `imagegen --help` takes to start, as a ratio to a bare Python start.

Runs each command several times in fresh processes (after one warm-up run, so the OS file cache
is hot for all of them) and prints the median wall time and its ratio to `python -c pass` and to
`python -c "import click"` (the floor for a click command line). The target from issue 2: under
6x a bare Python start.

    python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 6.0


def _time(cmd: list[str], runs: int) -> float:
    """Median wall time of `cmd` in seconds over `runs` runs (after one warm-up)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _heavy_modules() -> list[str]:
    """Heavy packages that `import imagegen.cli` pulls in (there should be none)."""
    code = (
        "import sys, imagegen.cli; "
        "print(' '.join(m for m in ('PIL', 'httpx2', 'httpx', 'pydantic', 'rich', 'starlette', "
        "'uvicorn', 'numpy', 'torch', 'diffusers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="runs per command (median taken)")
    args = parser.parse_args()

    python = sys.executable
    script = shutil.which("imagegen", path=str(Path(python).parent)) or shutil.which("imagegen")
    commands: list[tuple[str, list[str]]] = [
        ("python -c pass", [python, "-c", "pass"]),
        ('python -c "import click"', [python, "-c", "import click"]),
        ("python -m imagegen --help", [python, "-m", "imagegen", "--help"]),
    ]
    if script:
        commands.append(("imagegen --help (console script)", [script, "--help"]))
        commands.append(("imagegen generate --help", [script, "generate", "--help"]))

    results = {label: _time(cmd, args.runs) for label, cmd in commands}
    bare = results["python -c pass"]
    click_only = results['python -c "import click"']
    print(f"start-up, median of {args.runs} runs ({sys.version.split()[0]}, {sys.platform})")
    print(f"{'command':<36} {'ms':>8} {'x bare':>8} {'x click':>8}")
    for label, seconds in results.items():
        print(
            f"{label:<36} {seconds * 1000:8.1f} {seconds / bare:8.2f} {seconds / click_only:8.2f}"
        )
    worst = max(v for k, v in results.items() if "imagegen" in k)
    verdict = "meets" if worst / bare < TARGET_RATIO else "MISSES"
    ratio = worst / bare
    print(
        f"slowest imagegen start: {ratio:.2f}x bare Python ({verdict} the {TARGET_RATIO}x target)"
    )
    heavy = _heavy_modules()
    print(f"heavy modules imported by `import imagegen.cli`: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
