"""The diffusers engine behind the command line, in real processes: what reaches stderr while a
model loads, and models, options and requests refused before the load.

Needs torch, diffusers and transformers, as `test_diffusers.py` does.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from live import stop_process

_SKIP = os.environ.get("IMAGEGEN_SKIP_DIFFUSERS") == "1"  # read before conftest clears IMAGEGEN_*

pytestmark = [
    pytest.mark.diffusers,
    pytest.mark.skipif(_SKIP, reason="IMAGEGEN_SKIP_DIFFUSERS=1: diffusers tests switched off"),
]

LOADING_BAR = "Loading pipeline components"

# Runs the CLI, then says whether torch was imported: a refusal that imported no torch came
# before the model load.
_CLI_THEN_TORCH = (
    "import sys\n"
    "from imagegen.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    print('torch imported:', 'torch' in sys.modules, file=sys.stderr)\n"
    "    raise\n"
)


def _environment() -> dict[str, str]:
    # Nothing the machine sets decides what the libraries print.
    quiet = ("IMAGEGEN_", "OPENAI_", "HF_HUB_DISABLE", "TRANSFORMERS_", "DIFFUSERS_", "TQDM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(quiet)}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _imagegen(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _CLI_THEN_TORCH, *args],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=cwd,
        timeout=300,
        check=False,
    )


def _generate(folder: Path, tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return _imagegen(
        "generate",
        "a fox",
        "--engine",
        "diffusers",
        "--engine-model",
        str(folder),
        "-O",
        "steps=1",
        "-s",
        "32x32",
        "-o",
        "fox.png",
        *flags,
        cwd=tmp_path,
    )


def test_generate_keeps_the_loading_bar_off_stderr(
    model_folders: dict[str, Path], tmp_path: Path
) -> None:
    done = _generate(model_folders["sd"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "fox.png\n"
    assert done.stderr == "torch imported: True\n"


def test_generate_with_debug_shows_the_loading_bar(
    model_folders: dict[str, Path], tmp_path: Path
) -> None:
    done = _generate(model_folders["sd"], tmp_path, "--debug")
    assert done.returncode == 0, done.stderr
    assert LOADING_BAR in done.stderr


def test_batch_keeps_the_loading_bar_and_library_advice_off_stderr(
    model_folders: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "p.txt").write_text("a fox\n")
    flags = ("--engine", "diffusers", "--engine-model", str(model_folders["sd"]), "-O", "steps=1")
    done = _imagegen("batch", "p.txt", *flags, "-s", "32x32", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # The progress line, the summary, and nothing from Hugging Face's libraries.
    assert LOADING_BAR not in done.stderr
    assert [line.split(":")[0] for line in lines] == ["batch sending", "1 row", "torch imported"]


@pytest.mark.parametrize(
    ("flags", "param"),
    [
        (("--background", "transparent"), "--background"),
        (("-O", "max_size=64", "-s", "128x128"), "-s/--size"),
    ],
)
def test_a_request_the_engine_refuses_fails_before_the_model_loads(
    model_folders: dict[str, Path], tmp_path: Path, flags: tuple[str, ...], param: str
) -> None:
    done = _generate(model_folders["sd"], tmp_path, *flags)
    assert done.returncode == 2, done.stderr
    error, imported = done.stderr.splitlines()
    assert error.startswith(f"Error: {param}: ")
    assert imported == "torch imported: False"
    assert not (tmp_path / "fox.png").exists()


NEEDS_A_MODEL = (
    "The diffusers engine needs a model: a local folder holding a diffusers pipeline "
    "(model_index.json) or a Hugging Face hub id such as stabilityai/sd-turbo."
)
# What each command calls the engine's model and options.
_FLAGS = {
    "generate": {
        "model": ("--engine-model", "--engine-model"),
        "options": ("-O", "-O/--engine-option"),
    },
    "serve": {"model": ("-m", "-m/--model"), "options": ("-o", "-o/--option")},
}


@pytest.mark.parametrize("command", sorted(_FLAGS))
@pytest.mark.parametrize(
    ("model", "option", "blamed", "message"),
    [
        (None, None, "model", NEEDS_A_MODEL),
        ("./no-such-model", None, "model", "Model folder ./no-such-model does not exist."),
        ("empty", None, "model", "empty has no model_index.json: give the folder of a "),
        ("model.safetensors", None, "model", "model.safetensors is a file; the diffusers engine"),
        (
            "some/model",
            "sampler=euler",
            "options",
            "Unknown option 'sampler' for the diffusers engine, which takes batch_wait_ms, "
            "device, dtype, guidance, max_batch_size, max_size, negative_prompt, steps, "
            "strength and variant "
            "(num_inference_steps and guidance_scale are accepted for steps and guidance).",
        ),
        (
            "some/model",
            "steps=0",
            "options",
            "Invalid option steps='0' for the diffusers engine: must be a whole number from 1 "
            "to 500.",
        ),
    ],
)
def test_a_bad_model_or_option_names_its_flag_before_torch_is_imported(
    tmp_path: Path,
    command: str,
    model: str | None,
    option: str | None,
    blamed: str,
    message: str,
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    flags = _FLAGS[command]
    args = ["generate", "a fox", "-o", "fox.png"] if command == "generate" else ["serve"]
    args += ["--engine", "diffusers"]
    if model is not None:
        args += [flags["model"][0], model]
    if option is not None:
        args += [flags["options"][0], option]
    if command == "serve":
        args += ["--port", "0"]  # nothing can be in use: only the engine can fail
    done = _imagegen(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    error, imported = done.stderr.splitlines()
    assert error.startswith(f"Error: {flags[blamed][1]}: {message}")
    assert imported == "torch imported: False"
    assert not (tmp_path / "fox.png").exists()


def test_serve_keeps_the_loading_bar_out_of_its_log(model_folders: dict[str, Path]) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "serve", "--engine", "diffusers", "--port", "0"]
        + ["--model", str(model_folders["sd"])],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=_environment(),
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    log: list[str] = []
    try:
        while not log or not re.search(r"running on http://", log[-1]):
            line = lines.get(timeout=300)
            assert line is not None, "".join(log)  # the server stopped before listening
            log.append(line)
    finally:
        stop_process(process)
        reader.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert LOADING_BAR not in "".join(log)
