"""`imagegen serve --device/--max-batch-size/--batch-wait-ms/--ray/--replicas`: refusals
before anything starts, and the flags reaching the engine of a real server process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from test_diffusers import STEPS

from imagegen.cli import cli
from live import stop_process

pytestmark = pytest.mark.diffusers


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-batch-size", "4"], "--max-batch-size: the placeholder engine has no max_batch_"),
        (["--device", "cpu"], "--device: the placeholder engine has no device option"),
        (["--replicas", "2"], "--replicas applies to --ray only"),
        (["--ray-address", "auto"], "--ray-address applies to --ray only"),
        (["--ray", "--replicas", "3-1"], "--replicas 3-1: give a number of replicas"),
        (["--ray", "--replicas", "0"], "--replicas 0: give a number of replicas"),
        (
            ["-e", "diffusers", "-m", "some/model", "--max-batch-size", "0"],
            "Error: --max-batch-size: Invalid option max_batch_size='0' for the diffusers "
            "engine: must be a whole number",
        ),
        (
            ["-e", "diffusers", "-m", "some/model", "--device", "cpu,gpu"],
            "Error: --device: Invalid option device='cpu,gpu'",
        ),
    ],
)
def test_scale_flags_refuse_bad_values_in_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") <= 2  # one line, no traceback


def test_a_device_torch_does_not_see_names_the_device_flag() -> None:
    """The engine refuses it when it is created, where it only knows its options: the message
    still names the flag the user typed."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    args = ["serve", "-e", "diffusers", "-m", "some/model", "--device", "cuda:0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --device: Option device=cuda:0 asks for a CUDA GPU")


def test_the_flags_reach_the_engine(model_folders: dict[str, Path]) -> None:
    """Two CPU workers, batches of 3: the server holds 2 x 3 jobs in its engine at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGEN_", "OPENAI_"))}
    args = ["-e", "diffusers", "-m", str(model_folders["sd"]), "-o", f"steps={STEPS}"]
    args += ["--device", "cpu,cpu", "--max-batch-size", "3", "--batch-wait-ms", "5"]
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "serve", "--port", "0", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**env, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 120
        url = None
        for line in process.stderr:  # ends if the process exits
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match[1]
                break
            assert time.monotonic() < deadline, line
        assert url is not None, "the server did not start"
        health = httpx2.get(url + "/health", timeout=60).json()
        assert health["max_concurrency"] == 6
        answer = httpx2.post(
            url + "/v1/images/generations", json={"prompt": "a fox", "size": "16x16"}, timeout=60
        )
        assert answer.status_code == 200, answer.text
    finally:
        stop_process(process)
        if process.stderr is not None:
            process.stderr.close()


def test_a_device_list_keeps_its_commas_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagegen.server import ServerSettings

    monkeypatch.setenv("IMAGEGEN_ENGINE_OPTIONS", "device=cuda:0, cuda:1,steps=4")
    assert ServerSettings().engine_options == {"device": "cuda:0,cuda:1", "steps": "4"}
