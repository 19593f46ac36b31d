"""The Batch API: `imagegen serve`'s /v1/files and /v1/batches (driven by the official SDK and
by `--via batch-api`), jobs that survive a restart and a kill -9, and a client stopped while
its batch runs, which collects the results later without submitting again."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest
from batchkit import DEFAULTS, image_files, manifest_lines, png, serve, settings, write_jsonl
from click.testing import CliRunner

import imagegen
from imagegen import batch
from imagegen.cli import cli
from imagegen.engines import EngineResult, Job, PartialCallback
from imagegen.engines.placeholder import PlaceholderEngine
from imagegen.server import create_app
from live import stop_process

KEY = "sk-batch-api-0123456789"
TERMINAL = ("completed", "failed", "expired", "cancelled")


def _line(custom_id: str, body: dict[str, Any], url: str = "/v1/images/generations") -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def _requests(count: int, size: str = "64x64") -> bytes:
    lines = [
        _line(f"req-{i}", {"model": "placeholder", "prompt": f"fox {i}", "size": size})
        for i in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


def _wait(sdk: openai.OpenAI, batch_id: str, until: Any = None, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = sdk.batches.retrieve(batch_id)
        if found.status in TERMINAL or (until is not None and until(found)):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


@pytest.fixture
def keyed(data_dir: Path) -> Iterator[str]:
    with serve(
        create_app("placeholder", settings(data_dir, api_keys=[KEY, KEY + "-other"]))
    ) as url:
        yield url


def test_the_official_sdk_runs_a_batch_on_our_server(keyed: str) -> None:
    sdk = openai.OpenAI(base_url=keyed, api_key=KEY, max_retries=0)
    content = (
        _requests(4)
        + _line("bad-size", {"model": "placeholder", "prompt": "x", "size": "64x"}).encode()
    )
    uploaded = sdk.files.create(file=("jobs.jsonl", content), purpose="batch")
    assert (uploaded.filename, uploaded.purpose, uploaded.bytes) == (
        "jobs.jsonl",
        "batch",
        len(content),
    )
    created = sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/images/generations",
        completion_window="24h",
        metadata={"project": "catalogue"},
    )
    assert created.status == "validating" and created.metadata == {"project": "catalogue"}
    done = _wait(sdk, created.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (
        done.request_counts.total,
        done.request_counts.completed,
        done.request_counts.failed,
    ) == (5, 4, 1)
    assert done.completed_at and done.in_progress_at and done.finalizing_at

    outputs = [
        json.loads(line) for line in sdk.files.content(done.output_file_id).text.splitlines()
    ]
    assert [line["custom_id"] for line in outputs] == [f"req-{i}" for i in range(4)]
    first = outputs[0]["response"]
    assert first["status_code"] == 200 and first["request_id"].startswith("req_")
    image = openai.types.ImagesResponse.model_validate(first["body"])
    assert image.data and image.data[0].b64_json
    errors = [json.loads(line) for line in sdk.files.content(done.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "bad-size"
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["param"] == "size"

    assert [b.id for b in sdk.batches.list()] == [created.id]
    names = {f.id: f.purpose for f in sdk.files.list()}
    assert names == {
        uploaded.id: "batch",
        done.output_file_id: "batch_output",
        done.error_file_id: "batch_output",
    }
    assert sdk.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)

    # Another key sees nothing of it.
    other = openai.OpenAI(base_url=keyed, api_key=KEY + "-other", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        other.batches.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.files.content(done.output_file_id)
    assert list(other.batches.list()) == []


def test_bad_uploads_and_batches_are_refused_in_openais_words(keyed: str) -> None:
    sdk = openai.OpenAI(base_url=keyed, api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="purpose batch") as refused:
        sdk.files.create(file=("x.jsonl", b"{}"), purpose="fine-tune")
    assert refused.value.param == "purpose"
    with pytest.raises(openai.BadRequestError, match="No such file"):
        sdk.batches.create(
            input_file_id="file-nope", endpoint="/v1/images/generations", completion_window="24h"
        )
    uploaded = sdk.files.create(file=("x.jsonl", _requests(1)), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="runs batches of") as wrong:
        sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
    assert wrong.value.param == "endpoint"
    # Missing parameters are named as missing, whichever they are.
    for missing in ("input_file_id", "endpoint", "completion_window"):
        given = {
            "input_file_id": uploaded.id,
            "endpoint": "/v1/images/generations",
            "completion_window": "24h",
        }
        del given[missing]
        with pytest.raises(openai.BadRequestError, match="Missing required parameter") as absent:
            sdk.post("/batches", body=given, cast_to=object)
        assert absent.value.param == missing

    # A malformed input file fails the batch, naming the lines.
    content = (
        _line("a", {"prompt": "x"})
        + "\nnot json\n"
        + _line("a", {"prompt": "y"})
        + "\n"
        + _line("b", {"prompt": "z"}, url="/v1/images/edits")
        + "\n"
    ).encode()
    bad = sdk.files.create(file=("bad.jsonl", content), purpose="batch")
    created = sdk.batches.create(
        input_file_id=bad.id, endpoint="/v1/images/generations", completion_window="24h"
    )
    failed = _wait(sdk, created.id)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    found = [(e.line, e.code) for e in failed.errors.data]
    assert found == [(2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "mismatched_url")]
    assert failed.output_file_id is None


def test_cancel_ends_a_running_batch_with_what_it_made(data_dir: Path) -> None:
    release, running = threading.Event(), threading.Event()

    class Gated(PlaceholderEngine):
        def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
            running.set()
            release.wait(30)
            return super().generate(job, on_partial)

    with serve(create_app(Gated(), settings(data_dir, max_concurrency=1))) as url:
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        uploaded = sdk.files.create(file=("j.jsonl", _requests(6)), purpose="batch")
        created = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        )
        _wait(sdk, created.id, until=lambda b: b.status == "in_progress")
        # "in_progress" comes before the first request reaches the engine: cancel while one runs.
        assert running.wait(30)
        cancelling = sdk.batches.cancel(created.id)
        assert cancelling.status == "cancelling" and cancelling.cancelling_at
        release.set()
        ended = _wait(sdk, created.id)
        assert ended.status == "cancelled" and ended.cancelled_at
        assert ended.request_counts is not None
        assert ended.request_counts.total == 6
        assert ended.request_counts.completed + ended.request_counts.failed == 6
        assert ended.request_counts.completed >= 1  # the one running when cancelled
        errors = sdk.files.content(ended.error_file_id).text.splitlines()
        assert all(json.loads(line)["error"]["code"] == "batch_cancelled" for line in errors)
        with pytest.raises(openai.ConflictError):
            sdk.batches.cancel(created.id)


class CountingEngine(PlaceholderEngine):
    """The placeholder engine, a little slower, counting what it makes."""

    calls = 0

    def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
        type(self).calls += 1
        time.sleep(0.02)
        return super().generate(job, on_partial)


def test_a_server_restart_mid_batch_loses_no_request(data_dir: Path) -> None:
    total = 30
    with serve(create_app(CountingEngine(), settings(data_dir, max_concurrency=1))) as url:
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        uploaded = sdk.files.create(file=("j.jsonl", _requests(total)), purpose="batch")
        created = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        )
        midway = _wait(sdk, created.id, until=lambda b: (b.request_counts or b).completed >= 5)
        assert midway.status == "in_progress"
    made_before = CountingEngine.calls
    # The same data folder, a new server: the batch goes on from where it was.
    with serve(create_app(CountingEngine(), settings(data_dir, max_concurrency=1))) as url:
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        done = _wait(sdk, created.id)
        assert done.status == "completed"
        lines = [
            json.loads(line) for line in sdk.files.content(done.output_file_id).text.splitlines()
        ]
    assert [line["custom_id"] for line in lines] == [f"req-{i}" for i in range(total)]
    # Each request was made once, but for at most the one running when the server stopped.
    assert total <= CountingEngine.calls <= total + 1
    assert made_before < total


@pytest.mark.skipif(os.name != "posix", reason="kill -9 is POSIX")
def test_a_killed_server_resumes_its_batch_when_started_again(tmp_path: Path) -> None:
    data = tmp_path / "data"
    drains: dict[int, threading.Thread] = {}

    def start() -> tuple[subprocess.Popen[str], str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGEGEN_", "OPENAI_"))}
        process = subprocess.Popen(
            [sys.executable, "-m", "imagegen", "serve", "--port", "0", "--data-dir", str(data)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        for line in process.stderr:
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if match:
                drain = threading.Thread(target=process.stderr.read, daemon=True)
                drain.start()  # the log must not fill the pipe and block the server
                drains[process.pid] = drain
                return process, match[1] + "/v1"
            assert time.monotonic() < deadline
        raise AssertionError("the server did not start")

    def stop(process: subprocess.Popen[str], *, kill: bool = False) -> None:
        if kill:
            process.kill()
        stop_process(process)
        drains.pop(process.pid).join(timeout=30)
        assert process.stderr is not None
        process.stderr.close()

    process, url = start()
    try:
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        uploaded = sdk.files.create(file=("j.jsonl", _requests(40, "512x512")), purpose="batch")
        created = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        )
        midway = _wait(sdk, created.id, until=lambda b: (b.request_counts or b).completed >= 3)
        assert midway.status == "in_progress"
        stop(process, kill=True)
        process, url = start()
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        done = _wait(sdk, created.id)
        assert done.status == "completed" and done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (40, 0)
        lines = sdk.files.content(done.output_file_id).text.splitlines()
        found = sorted(json.loads(line)["custom_id"] for line in lines)
        assert found == sorted(f"req-{i}" for i in range(40))
    finally:
        stop(process)


# -- the client: --via batch-api ------------------------------------------------------------


def _rows(tmp_path: Path) -> Path:
    png(tmp_path / "room.png")
    rows = [{"prompt": f"catalogue item {i}"} for i in range(6)]
    rows[2]["n"] = 2
    rows.append({"prompt": "make it blue", "image": "room.png"})
    return write_jsonl(tmp_path / "rows.jsonl", rows)


def test_via_batch_api_gives_the_same_folder_as_direct_requests(
    tmp_path: Path, server: str
) -> None:
    source = _rows(tmp_path)
    common = {"defaults": DEFAULTS, "base_url": server, "api_key": "x", "metadata": False}
    direct = batch.run(source, out_dir=tmp_path / "direct", **common)
    phases: list[str] = []
    via = batch.run(
        source,
        out_dir=tmp_path / "via",
        via="batch-api",
        poll_interval=0.2,
        on_progress=lambda progress: phases.append(progress.phase),
        **common,
    )
    assert direct.ok and via.ok and via.done == 7 and via.batch_id
    assert {"polling", "collecting", "finished"} <= set(phases)
    names = image_files(tmp_path / "direct")
    assert names == image_files(tmp_path / "via") and len(names) == 8
    for name in names:
        assert (tmp_path / "direct" / name).read_bytes() == (tmp_path / "via" / name).read_bytes()
    records = manifest_lines(tmp_path / "via")
    assert all(r["via"] == "batch-api" and r["batch_id"].startswith("batch_") for r in records)
    state = json.loads((tmp_path / "via" / "batch-api.json").read_text())
    endpoints = sorted(entry["endpoint"] for entry in state["batches"])
    assert endpoints == ["/v1/images/edits", "/v1/images/generations"]
    assert all(entry["collected"] for entry in state["batches"])
    # Done rows are not submitted again.
    again = batch.run(
        source, out_dir=tmp_path / "via", via="batch-api", poll_interval=0.2, **common
    )
    assert (again.skipped, again.done) == (7, 0)
    assert len(json.loads((tmp_path / "via" / "batch-api.json").read_text())["batches"]) == 2


def test_a_client_stopped_while_its_batch_runs_collects_it_later_without_paying_twice(
    tmp_path: Path, data_dir: Path
) -> None:
    release, running = threading.Event(), threading.Event()

    class Gated(PlaceholderEngine):
        def generate(self, job: Job, on_partial: PartialCallback | None = None) -> EngineResult:
            running.set()
            release.wait(30)
            return super().generate(job, on_partial)

    source = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": f"item {i}"} for i in range(5)])
    options = {"defaults": DEFAULTS, "api_key": "x", "via": "batch-api", "poll_interval": 0.1}
    with serve(create_app(Gated(), settings(data_dir))) as url:

        async def stopped_while_polling() -> batch.BatchReport:
            stop = anyio.Event()

            def watch(progress: batch.BatchProgress) -> None:
                if progress.phase == "polling":
                    stop.set()

            return await batch.arun(
                source,
                out_dir=tmp_path / "out",
                base_url=url,
                on_progress=watch,
                stop=stop,
                **options,
            )

        first = anyio.run(stopped_while_polling)
        assert first.interrupted and first.pending == 5 and not first.ok
        state = json.loads((tmp_path / "out" / "batch-api.json").read_text())
        assert len(state["batches"]) == 1 and state["batches"][0]["id"]
        release.set()
        second = batch.run(source, out_dir=tmp_path / "out", base_url=url, **options)
        assert second.ok and second.done == 5
        sdk = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        assert len(list(sdk.batches.list())) == 1  # collected, not submitted again


def test_variations_cannot_go_through_the_batch_api(tmp_path: Path, server: str) -> None:
    png(tmp_path / "a.png")
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "x"}, {"image": "a.png"}])
    with pytest.raises(batch.BatchFileError) as refused:
        batch.run(source, defaults=DEFAULTS, base_url=server, api_key="x", via="batch-api")
    assert [str(p) for p in refused.value.row_problems] == [
        "row 2 (line 2), image: variations cannot go through the Batch API"
    ]


def test_an_in_process_engine_is_refused_before_the_out_folder_is_made(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "x"}])
    with pytest.raises(imagegen.ConfigurationError, match="needs a server"):
        batch.run(source, engine="placeholder", via="batch-api")
    assert not (tmp_path / "r").exists()


def test_a_server_that_cannot_be_reached_stops_the_batch_early_with_its_error(
    tmp_path: Path,
) -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{free.getsockname()[1]}/v1"
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "x"}, {"prompt": "y"}])
    report = batch.run(source, defaults=DEFAULTS, base_url=url, via="batch-api", max_retries=0)
    assert isinstance(report.error, imagegen.APIConnectionError)
    assert (report.done, report.pending) == (0, 2)
    assert (tmp_path / "r" / "index.html").is_file()


def test_a_wrong_route_through_the_cli_is_one_line_exit_1(tmp_path: Path, server: str) -> None:
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "x"}])
    wrong = server.removesuffix("/v1") + "/v2"
    flags = ["--via", "batch-api", "--base-url", wrong, "--max-retries", "0"]
    result = CliRunner().invoke(cli, ["batch", str(source), "-m", "placeholder", *flags])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith(
        "Error: The batch stopped early: Server answered 404: Invalid URL (POST /v2/files)"
    )
