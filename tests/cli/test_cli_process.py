"""The command line as a real process: exit codes, stdout bytes, stdin, terminals, Ctrl-C."""

from __future__ import annotations

import base64
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import FakeViewer, error_line, run_process
from cli_recorder import Recorder, image_bytes

PNG = b"\x89PNG\r\n\x1a\n"
HEAVY = ("PIL", "httpx2", "httpx", "pydantic", "rich", "starlette", "uvicorn", "numpy", "torch")


def test_help_and_version() -> None:
    done = run_process("--help")
    assert done.returncode == 0
    text = done.stdout.decode()
    for command in ("generate", "edit", "variation", "serve", "engines"):
        assert f"  {command} " in text
    assert done.stderr == b""
    version = run_process("--version")
    assert version.returncode == 0
    assert version.stdout.startswith(b"imagegen, version ")


def test_loading_the_command_line_imports_nothing_heavy() -> None:
    code = f"import sys, imagegen.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert done.stdout.strip() == b"[]"


# What an in-process engine never needs: the HTTP stack, the HTTP side of the client, anyio,
# pydantic (nothing from outside to parse), package metadata (the engine is built in), and
# start-up costs found and removed (bench/startup.py).
NOT_IN_PROCESS = (
    "httpx2",
    "httpcore2",
    "h11",
    "anyio",
    "imagegen._http",
    "imagegen._http_base",
    "imagegen._async_http",
    "imagegen._network",
    "imagegen._proxies",
    "imagegen._downloads",
    "imagegen._answers",
    "imagegen._retry",
    "pydantic",
    "importlib.metadata",
    "typing_extensions",
    "tempfile",
)
# Run in a fresh interpreter; prints the modules of NOT_IN_PROCESS it imported, then every
# pydantic module (no validator of a wire model can have been built without them).
_SEEN = f"""
import sys

print(sorted(m for m in {NOT_IN_PROCESS!r} if m in sys.modules))
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core")))
"""


def test_generate_with_an_engine_imports_no_http_stack_and_builds_no_validator(
    tmp_path: Path,
) -> None:
    target = tmp_path / "lion.png"
    code = (
        "from imagegen.cli import main\n"
        "try:\n"
        f"    main(['generate', 'A lion', '--engine', 'placeholder', '-o', {str(target)!r}])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n" + _SEEN
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert target.read_bytes().startswith(PNG)
    assert done.stdout.splitlines()[-2:] == ["[]", "[]"], done.stdout


def test_a_client_of_an_engine_imports_no_http_stack_and_builds_no_validator(
    tmp_path: Path,
) -> None:
    target = tmp_path / "lion.png"
    code = (
        "import imagegen\n"
        "with imagegen.Client(engine='placeholder') as client:\n"
        f"    client.generate('A lion', size='256x256').save({str(target)!r})\n" + _SEEN
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert target.read_bytes().startswith(PNG)
    assert done.stdout.splitlines() == ["[]", "[]"], done.stdout


def test_exit_codes(api: Recorder, base_url: str) -> None:
    ok = run_process("generate", "x", "--base-url", base_url, "-f", "json")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == b""

    usage = run_process("generate", "x", "--base-url", base_url, "-s", "7x7")
    assert usage.returncode == 2
    assert error_line(usage).startswith("Error: -s/--size: ")

    api.fail_next(500, {"error": {"message": "boom", "type": "server_error"}})
    failed = run_process("generate", "x", "--base-url", base_url, "--max-retries", "0")
    assert failed.returncode == 1
    assert "Server answered 500: boom" in error_line(failed)


def test_byte_output_is_the_exact_image(api: Recorder, base_url: str) -> None:
    done = run_process("generate", "x", "--base-url", base_url, "-f", "byte")
    assert done.returncode == 0, done.stderr
    assert done.stdout == image_bytes("png", colour=0)
    assert done.stderr == b""


def test_stdin_prompts_in_a_pipeline(api: Recorder, base_url: str) -> None:
    done = run_process(
        "generate", "-", "--base-url", base_url, "-f", "base64", input=b"A cat\nA dog\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 2
    assert all(base64.b64decode(line).startswith(PNG) for line in lines)
    assert [r.json["prompt"] for r in api.api_requests] == ["A cat", "A dog"]


def test_image_bytes_from_stdin(api: Recorder, base_url: str, tmp_path: Path) -> None:
    data = image_bytes("png", size=(64, 64))
    done = run_process("variation", "-", "--base-url", base_url, "-o", "v.png", input=data)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"v.png\n"
    assert api.api_requests[0].files[0][3] == data


def _run_on_pty(
    args: list[str], *, stdout_tty: bool, stderr_tty: bool
) -> tuple[int, bytes, bytes, bytes]:
    """Run the CLI with stdout and/or stderr on a pseudo-terminal; returns
    (exit code, terminal output, piped stdout, piped stderr)."""
    master, slave = pty.openpty()
    out = slave if stdout_tty else subprocess.PIPE
    err = slave if stderr_tty else subprocess.PIPE
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", *args],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    piped_out, piped_err = process.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(master)
    return process.returncode, b"".join(chunks), piped_out or b"", piped_err or b""


def test_byte_output_is_refused_on_a_terminal(api: Recorder, base_url: str) -> None:
    code, terminal, _, stderr = _run_on_pty(
        ["generate", "x", "--base-url", base_url, "-f", "byte"], stdout_tty=True, stderr_tty=False
    )
    assert code == 2
    assert b"-f byte writes raw image bytes to stdout, which is a terminal" in stderr
    assert terminal == b""
    assert api.requests == []


def test_spinner_on_a_terminal_and_clean_stdout(api: Recorder, base_url: str) -> None:
    api.delay = 1.5
    code, terminal, stdout, _ = _run_on_pty(
        ["generate", "x", "--base-url", base_url, "-o", "out.png"],
        stdout_tty=False,
        stderr_tty=True,
    )
    assert code == 0
    assert stdout == b"out.png\n"
    assert b"Generating 1 image with gpt-image-2" in terminal
    assert b"1s" in terminal  # elapsed seconds


def test_no_spinner_when_quiet_or_not_a_terminal(api: Recorder, base_url: str) -> None:
    api.delay = 0.5
    code, terminal, stdout, _ = _run_on_pty(
        ["generate", "x", "--base-url", base_url, "-o", "out.png", "--quiet"],
        stdout_tty=False,
        stderr_tty=True,
    )
    assert code == 0
    assert terminal == b""
    done = run_process("generate", "x", "--base-url", base_url, "-o", "out.png")
    assert done.returncode == 0
    assert done.stderr == b""


def test_ctrl_c_exits_130_without_a_traceback(api: Recorder, base_url: str, tmp_path: Path) -> None:
    api.delay = 30
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "generate", "x", "--base-url", base_url, "-o", "x.png"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not api.api_requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.api_requests, "the request never reached the server"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert b"Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == b"Aborted."
    assert stdout == b""
    assert not (tmp_path / "x.png").exists()


def test_closed_stdout_stops_quietly(api: Recorder, base_url: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "generate", "-", "--base-url", base_url, "-f", "base64"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"a\n" * 50)
    process.stdin.close()
    process.stdout.read(10)
    process.stdout.close()  # like `| head -c 10`
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read()
    process.wait(timeout=60)
    assert b"Traceback" not in stderr
    assert stderr == b""
    assert len(api.api_requests) < 50  # it stopped instead of paying for the rest


def test_command_table_matches_the_commands() -> None:
    """`imagegen --help` lists commands from a table without importing them; each entry must
    load the command of that name."""
    import click

    from imagegen.cli import COMMANDS, cli

    with click.Context(cli) as ctx:
        for name in COMMANDS:
            command = cli.get_command(ctx, name)
            assert isinstance(command, click.Command)
            assert command.name == name
    done = run_process("--help")
    for name, (_, _, line) in COMMANDS.items():
        assert f"{name}  " in done.stdout.decode() and line in done.stdout.decode()


def test_show_returns_at_once_and_prints_nothing_of_the_viewer(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    """A viewer that outlives the command (xdg-open often waits for the program it starts)
    leaves no `ResourceWarning: subprocess N is still running`, nor its own chatter, on stderr,
    even with every warning an error, and still opens each image after the command ended."""
    viewer = FakeViewer(tmp_path, before="echo chatter >&2; sleep 1")
    env = {**os.environ, "PATH": viewer.path, "TMPDIR": str(tmp_path)}
    for output in (["-o", "s.png", "-n", "2"], ["-f", "base64"]):
        done = subprocess.run(
            [sys.executable, "-W", "error", "-X", "dev", "-m", "imagegen", "generate", "x",
             "--base-url", base_url, "--show", *output],
            capture_output=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == b""
    shown = viewer.wait_opened(3)  # in any order: the viewers run on their own
    [printed] = [name for name in shown if name not in ("s.png", "s-1.png")]
    assert sorted(shown) == sorted(["s.png", "s-1.png", printed])
    assert Path(printed).read_bytes().startswith(PNG)  # the printed image, from a file


def test_show_without_a_viewer_says_so(api: Recorder, base_url: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "empty-bin"
    bin_dir.mkdir()
    done = run_process(
        "generate", "x", "--base-url", base_url, "--show", "-o", "s.png", env={"PATH": str(bin_dir)}
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"s.png\n"
    assert done.stderr.decode() == (
        "Warning: Could not open s.png: no image viewer found (xdg-open, display, eog).\n"
    )


def test_runs_started_together_never_share_an_auto_name(
    api: Recorder, base_url: str, tmp_path: Path
) -> None:
    """Runs in one folder within one second pick the same first name; each must still end up
    with its own files (the docs promise auto names never replace a file)."""
    api.delay = 0.3  # the runs look for a free name at about the same time
    command = [sys.executable, "-m", "imagegen", "generate", "x", "--base-url", base_url]
    runs = [
        subprocess.Popen(command + ["-n", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(6)
    ]
    printed: list[str] = []
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        printed += out.decode().splitlines()
    assert len(printed) == len(set(printed)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(printed)
    assert not [name for name in printed if Path(name).stat().st_size == 0]


# The console script's entry, run as it runs it; prints its exit code and whether the
# garbage collector is running when it is done.
_ENTRY = """
import gc, sys
from imagegen.__main__ import main
sys.argv = ["imagegen", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    print(exc.code, gc.isenabled())
"""


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["generate", "A lion", "--engine", "placeholder", "-o", "{tmp}/a.png"], "0 True"),
        (["batch", "{tmp}/rows.txt", "--engine", "placeholder", "-s", "256x256"], "0 True"),
        # Refused by the command line before the command ran: never resumed (the pause is real).
        (["generate", "A lion", "--engine", "placeholder", "--no-such-flag"], "2 False"),
    ],
)
def test_the_collector_paused_for_start_up_runs_again_for_the_work(
    args: list[str], shown: str, tmp_path: Path
) -> None:
    # Paused while modules load (imagegen.__main__), resumed before the images are made: a
    # batch, or a long list of prompts, must not pile up garbage for hours.
    (tmp_path / "rows.txt").write_text("A lion\nA fox\n")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    done = subprocess.run([sys.executable, "-c", _ENTRY, *argv], capture_output=True, text=True)
    assert done.stdout.splitlines()[-1] == shown, (done.stdout, done.stderr)


# An exit handler registered before the command starts: it runs last, as the interpreter's
# teardown begins, so it shows whether the process went on to the teardown.
_TEARDOWN = """
import atexit, os, sys
from imagegen.__main__ import main

atexit.register(os.write, 2, b"torn down\\n")
sys.argv = ["imagegen", *sys.argv[1:]]
main()
"""


def test_an_image_command_ends_without_the_teardown_with_its_status_and_output() -> None:
    made = subprocess.run(
        [sys.executable, "-c", _TEARDOWN, "generate", "A lion", "--engine", "placeholder"]
        + ["-s", "256x256", "-n", "3", "-f", "base64"],
        capture_output=True,
    )
    assert made.returncode == 0, made.stderr
    images = made.stdout.split()
    assert len(images) == 3 and all(base64.b64decode(each).startswith(PNG) for each in images)
    assert b"torn down" not in made.stderr
    refused = subprocess.run(
        [sys.executable, "-c", _TEARDOWN, "generate", "A lion", "--engine", "placeholder"]
        + ["-n", "0"],
        capture_output=True,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(b"Error: -n/--number-of-images: Invalid n 0")
    assert b"torn down" not in refused.stderr
    # Any other command ends the usual way.
    listed = subprocess.run([sys.executable, "-c", _TEARDOWN, "engines"], capture_output=True)
    assert listed.returncode == 0 and b"placeholder" in listed.stdout
    assert b"torn down" in listed.stderr
