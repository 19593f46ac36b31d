"""300+ rows through a server that fails a quarter of the time: every row done exactly once."""

from __future__ import annotations

import re
from pathlib import Path

from batchkit import (
    DEFAULTS,
    Faults,
    image_files,
    manifest_lines,
    prompts,
    serve,
    settings,
    write_jsonl,
)
from PIL import Image

from imagegen import batch
from imagegen.server import create_app

ROWS = 320


def _rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for number, prompt in enumerate(prompts(ROWS), start=1):
        row: dict[str, object] = {"prompt": prompt}
        if number % 7 == 0:
            row["n"] = 3  # names with -1, -2
        if number % 11 == 0:
            row["prompt"] = prompts(1)[0]  # the same prompt as row 1: its own files still
        rows.append(row)
    return rows


def test_320_rows_through_faults_are_each_done_exactly_once(
    tmp_path: Path, faulty: tuple[str, Faults]
) -> None:
    url, faults = faulty
    source = write_jsonl(tmp_path / "catalogue.jsonl", _rows())
    seen: list[batch.BatchProgress] = []

    report = batch.run(
        source,
        out_dir=tmp_path / "out",
        defaults=DEFAULTS,
        base_url=url,
        api_key="sk-test",
        concurrency=8,
        max_retries=30,
        on_progress=seen.append,
    )

    # Every kind of fault happened, and the batch absorbed them all.
    for kind in ("rate_limited", "server_error", "unavailable", "dropped", "dropped_after", "slow"):
        assert faults.counts[kind] > 0, kind
    assert report.ok, report.failures
    assert faults.most_in_flight <= 8  # never more than --concurrency at once
    assert (report.total, report.done, report.failed, report.pending) == (ROWS, ROWS, 0, 0)

    # The manifest: one line per row, in row order, each done, its files on disk.
    out = tmp_path / "out"
    records = manifest_lines(out)
    assert [record["row"] for record in records] == list(range(1, ROWS + 1))
    assert all(record["status"] == "done" for record in records)
    listed: list[str] = []
    for record, row in zip(records, _rows(), strict=True):
        n = int(row.get("n", 1))  # type: ignore[call-overload]
        assert len(record["files"]) == n
        base = record["files"][0].removesuffix(".png")
        assert re.fullmatch(rf"{record['row']:04d}-[a-z0-9-]+", base)
        assert record["files"] == [f"{base}.png"] + [f"{base}-{k}.png" for k in range(1, n)]
        assert record["request"]["prompt"] == row["prompt"]
        assert record["request_id"]
        listed += record["files"]

    # No file missing, none twice, nothing else: exactly the files the manifest lists.
    assert len(listed) == len(set(listed))
    assert image_files(out) == sorted(listed)
    for name in listed[:20]:
        with Image.open(out / name) as image:
            assert image.size == (64, 64)
    assert not [entry for entry in out.iterdir() if entry.name.endswith(".tmp")]

    # The progress went through retries, and ended finished with everything counted.
    assert any(progress.retrying for progress in seen)
    assert seen[-1].finished and seen[-1].done == ROWS
    assert report.images == len(listed)

    # Running it again sends nothing and changes nothing.
    before = faults.counts["requests"]
    again = batch.run(
        source, out_dir=out, defaults=DEFAULTS, base_url=url, api_key="sk-test", concurrency=8
    )
    assert (again.skipped, again.done, again.ok) == (ROWS, 0, True)
    assert faults.counts["requests"] == before
    assert manifest_lines(out) == records


def _always(data_dir: Path, **fault: float) -> Faults:
    return Faults(create_app("placeholder", settings(data_dir)), **fault)


def test_a_500_with_retry_after_uses_up_max_retries_and_attempts_are_counted_right(
    tmp_path: Path,
) -> None:
    """Only 429 and 503 are pacing; a 500 that says when to retry is still a failure, and the
    manifest counts the requests really made."""
    faults = _always(tmp_path / "data", server_error=1.0)
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "always fails"}])
    with serve(faults) as url:
        report = batch.run(source, defaults=DEFAULTS, base_url=url, max_retries=2)
    assert (report.done, report.failed) == (0, 1)
    assert faults.counts["requests"] == 3
    (record,) = manifest_lines(tmp_path / "r")
    assert record["attempts"] == 3
    assert record["error"]["status_code"] == 500


def test_a_row_that_cannot_connect_counts_its_attempts_right(tmp_path: Path) -> None:
    faults = _always(tmp_path / "data", dropped=1.0)
    source = write_jsonl(tmp_path / "r.jsonl", [{"prompt": "never answered"}])
    with serve(faults) as url:
        report = batch.run(source, defaults=DEFAULTS, base_url=url, max_retries=1)
    assert report.failed == 1
    assert faults.counts["requests"] == 2
    assert manifest_lines(tmp_path / "r")[0]["attempts"] == 2
