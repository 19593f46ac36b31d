"""`imagegen batch FILE` against our server: checks before sending, exit codes, what is shown,
edits and variations, resuming, and the gallery."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from batchkit import Faults, image_files, manifest_lines, png, serve, settings, write_jsonl
from click.testing import CliRunner, Result
from PIL import Image

from imagegen.cli import cli
from imagegen.server import create_app

KEY = "sk-batch-test-0123456789"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["batch", *args], catch_exceptions=False)


@pytest.fixture
def counted(data_dir: Path) -> Iterator[tuple[str, Faults]]:
    """Our server with a key, behind a layer that only counts the image requests."""
    app = Faults(create_app("placeholder", settings(data_dir, api_keys=[KEY])))
    with serve(app) as url:
        yield url, app


def _flags(url: str, *more: str) -> list[str]:
    return ["--base-url", url, "--api-key", KEY, "-m", "placeholder", "-s", "64x64", *more]


def test_a_bad_row_stops_everything_before_anything_is_sent(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    source = tmp_path / "rows.csv"
    source.write_text(
        "prompt,size,n,quality\n"
        "A fox,,,\n"
        "A fox in the wrong size,100x100x,,\n"
        "Too many,,99,\n"
        "Two problems,100x,,ultra\n"
        "Fine again,,,\n",
        encoding="utf-8",
    )
    result = invoke(str(source), "--base-url", url, "--api-key", KEY, "-m", "gpt-image-1")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"Error: {source}: 3 rows cannot be sent; nothing was sent:",
        "Error: row 2 (line 3), size: Invalid size '100x100x' for gpt-image-1: use one of auto, "
        "1024x1024, 1536x1024, 1024x1536.",
        "Error: row 3 (line 4), n: Invalid n 99 for gpt-image-1: must be a whole number from 1 "
        "to 10.",
        # Every problem of a row, not only the first.
        "Error: row 4 (line 5), size: Invalid size '100x' for gpt-image-1: use one of auto, "
        "1024x1024, 1536x1024, 1024x1536.",
        "Error: row 4 (line 5), quality: Invalid quality 'ultra' for gpt-image-1: use one of low, "
        "medium, high, auto.",
    ]
    assert app.counts["requests"] == 0
    assert not (tmp_path / "rows").exists()


def test_a_flag_that_breaks_every_row_is_one_line(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    (tmp_path / "p.txt").write_text("one\ntwo\nthree\n")
    result = invoke(str(tmp_path / "p.txt"), *_flags(url, "--output-compression", "50"))
    assert result.exit_code == 2
    assert "rows 1-3, output_compression: output_compression only applies" in result.stderr
    assert app.counts["requests"] == 0


def test_skip_invalid_sends_the_rest_and_records_the_bad_rows(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    write_jsonl(
        tmp_path / "r.jsonl", [{"prompt": "ok"}, {"prompt": "bad", "n": 0}, {"prompt": "ok 2"}]
    )
    result = invoke(str(tmp_path / "r.jsonl"), *_flags(url, "--skip-invalid"))
    assert result.exit_code == 1
    assert app.counts["requests"] == 2
    records = manifest_lines(tmp_path / "r")
    assert [(r["row"], r["status"]) for r in records] == [(1, "done"), (2, "invalid"), (3, "done")]
    assert records[1]["error"]["param"] == "n"
    assert "3 rows: 2 done, 1 invalid" in result.stderr
    assert 'class="card invalid"' in (tmp_path / "r" / "index.html").read_text()


def test_skip_invalid_also_skips_rows_that_cannot_be_read(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    """A line that is not JSON, an empty object and a typo in a key are bad rows like any
    other: listed with every other problem of the file, and skipped with --skip-invalid."""
    url, app = counted
    (tmp_path / "r.jsonl").write_text(
        '{"prompt": "ok"}\n'
        "not json\n"
        "{}\n"
        '{"prompt": "typo", "sise": "64x64"}\n'
        '{"prompt": "bad n", "n": 0}\n'
        '{"prompt": "ok 2"}\n'
    )
    refused = invoke(str(tmp_path / "r.jsonl"), *_flags(url))
    assert refused.exit_code == 2
    assert [line.split(":")[1].strip() for line in refused.stderr.splitlines()[1:]] == [
        "row 2 (line 2)",
        "row 3 (line 3), prompt",
        "row 4 (line 4), sise",
        "row 5 (line 5), n",
    ]
    assert app.counts["requests"] == 0

    result = invoke(str(tmp_path / "r.jsonl"), *_flags(url, "--skip-invalid"))
    assert result.exit_code == 1
    assert app.counts["requests"] == 2
    records = manifest_lines(tmp_path / "r")
    assert [(r["row"], r["status"]) for r in records] == [
        (1, "done"),
        (2, "invalid"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invalid"),
        (6, "done"),
    ]
    assert "6 rows: 2 done, 4 invalid" in result.stderr
    assert (tmp_path / "r" / "index.html").read_text().count('class="card invalid"') == 4


def test_a_csv_row_with_too_many_cells_is_skipped_with_skip_invalid(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    (tmp_path / "r.csv").write_text(
        "prompt,size\nA mug,64x64\nA cap, with a comma,64x64\nA sock,\n"
    )
    result = invoke(str(tmp_path / "r.csv"), *_flags(url, "--skip-invalid"))
    assert result.exit_code == 1
    assert app.counts["requests"] == 2
    assert [(r["row"], r["status"]) for r in manifest_lines(tmp_path / "r")] == [
        (1, "done"),
        (2, "invalid"),
        (3, "done"),
    ]


def test_progress_summary_and_gallery_path(tmp_path: Path, counted: tuple[str, Faults]) -> None:
    url, _ = counted
    (tmp_path / "p.txt").write_text("A fox\nA lighthouse\n<b>bold</b> & <script>x()</script>\n")
    result = invoke(str(tmp_path / "p.txt"), *_flags(url))
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "p"
    assert result.stdout == f"{out / 'index.html'}\n"
    lines = result.stderr.splitlines()
    # Not a terminal: plain lines, no bar; then the summary.
    assert lines[0].startswith("batch sending: 0/3 done")
    assert lines[-1].startswith("3 rows: 3 done; 3 images in ")
    assert image_files(out) == [
        "0001-a-fox.png",
        "0002-a-lighthouse.png",
        "0003-b-bold-b-script-x-script.png",
    ]
    page = (out / "index.html").read_text()
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "<script>" not in page
    # Images carry the prompt in their PNG text, as single saves do.
    with Image.open(out / "0001-a-fox.png") as image:
        assert image.text["prompt"] == "A fox"


def test_a_row_the_server_refuses_fails_alone_and_is_retried_by_the_next_run(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    rows = [{"prompt": "fine"}, {"prompt": "bad seed", "extra.seed": "abc"}, {"prompt": "fine 2"}]
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    result = invoke(str(source), *_flags(url))
    assert result.exit_code == 1
    assert "3 rows: 2 done, 1 failed" in result.stderr
    assert "row 2: Server answered 400: Invalid seed 'abc': must be an integer." in result.stderr
    record = manifest_lines(tmp_path / "r")[1]
    assert record["status"] == "failed" and record["attempts"] == 1  # a 400 is not retried
    assert record["error"]["status_code"] == 400 and record["error"]["param"] == "seed"
    assert "Invalid seed" in (tmp_path / "r" / "index.html").read_text()

    rows[1]["extra.seed"] = 5
    write_jsonl(source, rows)
    sent = app.counts["requests"]
    result = invoke(str(source), *_flags(url))
    assert result.exit_code == 0, result.stderr
    assert app.counts["requests"] == sent + 1  # only the row that had failed
    assert "3 rows: 1 done (+2 done before)" in result.stderr


def test_a_wrong_key_stops_the_batch_and_leaves_the_rows_pending(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    (tmp_path / "p.txt").write_text("\n".join(f"prompt {i}" for i in range(20)))
    flags = _flags(url, "--concurrency", "2")
    flags[flags.index(KEY)] = "sk-wrong-key-000000"
    result = invoke(str(tmp_path / "p.txt"), *flags)
    assert result.exit_code == 1
    assert "Error: The batch stopped early: Server answered 401" in result.stderr
    assert "Check the key" in result.stderr
    assert "sk-wrong-key-000000" not in result.stderr + result.stdout
    assert app.counts["requests"] <= 2  # not one 401 per row
    assert not [r for r in manifest_lines(tmp_path / "p") if r["status"] == "failed"]


def test_edits_and_variations_from_a_csv(tmp_path: Path, counted: tuple[str, Faults]) -> None:
    url, _ = counted
    folder = tmp_path / "inputs"
    folder.mkdir()
    png(folder / "room.png", (64, 64))
    png(folder / "logo.png", (64, 64), (250, 200, 0, 255))
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (16, 16, 48, 48))
    mask.save(folder / "hole.png")
    source = folder / "jobs.csv"
    source.write_text(
        "prompt,image,mask,n,endpoint,name\n"
        "A window onto the sea,room.png,hole.png,,,\n"
        "Put the logo on it,room.png; logo.png,,2,,\n"
        ",room.png,,2,,Room variations\n",
        encoding="utf-8",
    )
    result = invoke(str(source), *_flags(url, "--out-dir", str(tmp_path / "out")))
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out"
    assert image_files(out) == [
        "0001-a-window-onto-the-sea.png",
        "0002-put-the-logo-on-it-1.png",
        "0002-put-the-logo-on-it.png",
        "0003-room-variations-1.png",
        "0003-room-variations.png",
    ]
    records = manifest_lines(out)
    assert records[0]["request"]["image"] == ["../inputs/room.png"]
    assert records[0]["request"]["mask"] == "../inputs/hole.png"
    assert records[2]["request"]["endpoint"] == "variations"
    # The masked edit kept the pixels outside the hole.
    with Image.open(out / "0001-a-window-onto-the-sea.png") as edited:
        assert edited.convert("RGBA").getpixel((2, 2)) == (40, 90, 200, 255)
    assert "../inputs/room.png" in (out / "index.html").read_text()


def test_default_image_makes_every_prompt_an_edit(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, _ = counted
    png(tmp_path / "base.png")
    (tmp_path / "captions.txt").write_text("sunny\nrainy\n")
    result = invoke(str(tmp_path / "captions.txt"), *_flags(url, "--image", "base.png"))
    assert result.exit_code == 0, result.stderr
    assert [r["request"]["endpoint"] for r in manifest_lines(tmp_path / "captions")] == [
        "edits",
        "edits",
    ]


def test_editing_a_row_redoes_only_it_and_force_redoes_all(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    source = tmp_path / "p.txt"
    source.write_text("one\ntwo\nthree\n")
    assert invoke(str(source), *_flags(url)).exit_code == 0
    assert app.counts["requests"] == 3
    source.write_text("one\nTWO, changed\nthree\n")
    result = invoke(str(source), *_flags(url))
    assert result.exit_code == 0 and app.counts["requests"] == 4
    out = tmp_path / "p"
    assert [r["files"] for r in manifest_lines(out)][1] == ["0002-two-changed.png"]
    # The earlier version's image was paid for: it stays.
    assert "0002-two.png" in image_files(out)
    assert invoke(str(source), *_flags(url, "--force")).exit_code == 0
    assert app.counts["requests"] == 7


def test_in_process_engine_needs_no_server(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("a\nb\n")
    result = invoke(str(tmp_path / "p.txt"), "--engine", "placeholder", "-s", "64x64", "-n", "2")
    assert result.exit_code == 0, result.stderr
    assert len(image_files(tmp_path / "p")) == 4


def test_a_second_batch_cannot_write_to_the_same_folder(tmp_path: Path) -> None:
    from imagegen.batch._manifest import lock_folder

    (tmp_path / "p.txt").write_text("a\n")
    with lock_folder(tmp_path / "p"):
        result = invoke(str(tmp_path / "p.txt"), "--engine", "placeholder", "-s", "64x64")
    assert result.exit_code == 1
    assert "Another imagegen batch is writing to" in result.stderr


def test_help_lists_the_batch_flags() -> None:
    result = CliRunner().invoke(cli, ["batch", "--help"])
    for flag in ("--out-dir", "--concurrency", "--force", "--via", "--max-retries", "--image"):
        assert flag in result.stdout
    top = CliRunner().invoke(cli, ["--help"])
    assert "batch" in top.stdout


def test_the_manifest_holds_usage_and_revised_prompts_when_the_server_sends_them(
    tmp_path: Path,
) -> None:
    """A server answering like OpenAI's GPT image models: usage and revised_prompt."""
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, format="PNG")
    body = json.dumps(
        {
            "created": 1,
            "data": [
                {
                    "b64_json": base64.b64encode(buffer.getvalue()).decode(),
                    "revised_prompt": "A sly fox",
                }
            ],
            "usage": {
                "input_tokens": 5,
                "output_tokens": 272,
                "total_tokens": 277,
                "input_tokens_details": {"text_tokens": 5, "image_tokens": 0},
            },
        }
    ).encode()

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json"), (b"x-request-id", b"req_abc")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    (tmp_path / "p.txt").write_text("A fox\n")
    with serve(app) as url:
        result = invoke(str(tmp_path / "p.txt"), "--base-url", url, "--api-key", KEY)
    assert result.exit_code == 0, result.stderr
    record = manifest_lines(tmp_path / "p")[0]
    assert record["request_id"] == "req_abc"
    assert record["revised_prompts"] == ["A sly fox"]
    assert record["usage"]["output_tokens"] == 272
    assert "Revised: A sly fox" in (tmp_path / "p" / "index.html").read_text()


@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal is POSIX")
def test_on_a_terminal_the_progress_is_a_bar(tmp_path: Path) -> None:
    import pty
    import subprocess
    import sys

    (tmp_path / "p.txt").write_text("".join(f"prompt {i}\n" for i in range(30)))
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "imagegen", "batch", "p.txt", "--engine", "placeholder"]
        + ["-s", "64x64"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert process.wait(timeout=120) == 0
    assert process.stdout is not None
    assert process.stdout.read().decode().strip().endswith("index.html")
    process.stdout.close()
    text = shown.decode(errors="replace")
    assert "\x1b[" in text  # drawn and redrawn in place
    assert "images/min" in text and "ETA" in text
    assert "batch sending:" not in text  # not the plain lines
    assert "30 rows: 30 done" in text


def test_gif_svg_and_webp_rows_keep_their_format_in_the_name(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a spinning coin", "output_format": "gif", "frame_count": 3},
        {"prompt": "a logo", "output_format": "svg"},
        {"prompt": "a photo", "output_format": "webp"},
    ]
    write_jsonl(tmp_path / "formats.jsonl", rows)
    result = invoke("formats.jsonl", "--engine", "placeholder", "-s", "64x64")
    assert result.exit_code == 0, result.stderr
    records = manifest_lines(tmp_path / "formats")
    assert [r["files"] for r in records] == [
        ["0001-a-spinning-coin.gif"],
        ["0002-a-logo.svg"],
        ["0003-a-photo.webp"],
    ]
    for record in records:  # formats without PNG text keep their metadata beside them
        assert (tmp_path / "formats" / (record["files"][0] + ".json")).is_file()
    assert '<img src="0002-a-logo.svg"' in (tmp_path / "formats" / "index.html").read_text()


def test_a_rate_limit_asking_for_minutes_stops_the_batch_and_says_when(tmp_path: Path) -> None:
    """Waiting ten minutes per row, or failing every row, would both be wrong: the batch stops,
    the rows stay pending, and the message says when to run it again."""
    seen: list[str] = []

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        seen.append(scope["path"])
        body = b'{"error": {"message": "Rate limit reached.", "type": "requests"}}'
        headers = [(b"content-type", b"application/json"), (b"retry-after", b"600")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    (tmp_path / "p.txt").write_text("".join(f"prompt {i}\n" for i in range(12)))
    with serve(app) as url:
        result = invoke("p.txt", "--base-url", url, "--api-key", KEY, "--concurrency", "2")
    assert result.exit_code == 1
    assert "Error: The batch stopped early: Server answered 429" in result.stderr
    assert "try again after" in result.stderr
    assert "12 rows: 0 done, 12 pending" in result.stderr
    assert len(seen) <= 2  # not one request per row


def test_help_gives_the_batch_s_own_retry_default() -> None:
    from imagegen.batch._options import DEFAULT_BATCH_RETRIES

    text = " ".join(invoke("--help").stdout.split())
    assert (
        "Retries per row after 429, 5xx, timeouts and dropped connections, with backoff "
        f"[default {DEFAULT_BATCH_RETRIES}]" in text
    )
    assert "[default 2]" not in text


def test_the_summary_speaks_of_one_row_and_one_image(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, _ = counted
    (tmp_path / "p.txt").write_text("A fox\n")
    result = invoke(str(tmp_path / "p.txt"), *_flags(url))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1].startswith("1 row: 1 done; 1 image in ")
    assert "1 row: <b>1</b> done; 1 image. Updated" in (tmp_path / "p" / "index.html").read_text()


def test_failures_are_listed_in_row_order() -> None:
    from imagegen.batch import BatchReport
    from imagegen.cli._batch import _failure_lines

    report = BatchReport(
        source=Path("p.txt"),
        out_dir=Path("p"),
        manifest=Path("p/manifest.jsonl"),
        gallery=Path("p/index.html"),
        total=12,
        skipped=0,
        done=0,
        failed=12,
        invalid=0,
        images=0,
        elapsed=1.0,
        failures={
            number: f"failed\n  number {number}"
            for number in (3, 12, 1, 2, 5, 4, 6, 7, 8, 9, 10, 11)
        },
    )
    lines = _failure_lines(report)
    assert lines[:3] == [
        "  row 1: failed number 1",
        "  row 2: failed number 2",
        "  row 3: failed number 3",
    ]
    assert lines[-1] == "  ... and 2 more: see the gallery"


def test_an_out_folder_that_cannot_be_made_is_a_usage_error_naming_the_flag(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, app = counted
    (tmp_path / "p.txt").write_text("A fox\n")
    (tmp_path / "taken").write_text("a file, not a folder")
    result = invoke(str(tmp_path / "p.txt"), *_flags(url, "-d", str(tmp_path / "taken")))
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: -d/--out-dir: Cannot use '{tmp_path / 'taken'}' as the out folder: it is a "
        "file; choose another --out-dir.\n"
    )
    assert app.counts["requests"] == 0


def test_an_invalid_row_keeps_every_problem_in_the_manifest_and_the_gallery(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    url, _ = counted
    write_jsonl(tmp_path / "r.jsonl", [{"prompt": "ok"}, {"prompt": "two", "n": 0, "size": "7"}])
    result = invoke(str(tmp_path / "r.jsonl"), *_flags(url, "--skip-invalid"))
    assert result.exit_code == 1
    assert "2 rows: 1 done, 1 invalid" in result.stderr
    error = manifest_lines(tmp_path / "r")[1]["error"]
    assert error["param"] == "n"
    assert error["message"].startswith("n: Invalid n 0")
    assert "; size: Invalid size '7'" in error["message"]
    page = (tmp_path / "r" / "index.html").read_text()
    assert "row 2 (line 2), n: Invalid n 0" in page
    assert "row 2 (line 2), size: Invalid size" in page


def test_the_progress_counts_invalid_rows_as_finished(
    tmp_path: Path, counted: tuple[str, Faults]
) -> None:
    """With skip_invalid the rows that are not sent are not pending: the bar reaches the end
    and the time left comes to nothing."""
    from imagegen import batch

    url, _ = counted
    rows = [{"prompt": "ok"}, {"prompt": "bad", "n": 0}, {"prompt": "ok 2"}, {"sise": "x"}]
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    seen: list[batch.BatchProgress] = []
    report = batch.run(
        source,
        defaults={"model": "placeholder", "size": "64x64"},
        base_url=url,
        api_key=KEY,
        skip_invalid=True,
        on_progress=seen.append,
    )
    assert (report.done, report.invalid, report.pending) == (2, 2, 0)
    last = seen[-1]
    assert (last.done, last.invalid, last.pending) == (2, 2, 0)
    assert last.eta == 0


def test_dall_e_rows_ask_for_the_image_itself_not_a_link_to_download(
    tmp_path: Path, data_dir: Path
) -> None:
    """One request per row, as the single-request commands make: no download of a link that
    may expire. A row that asks for links still gets them, downloaded to be saved."""
    fetched: list[str] = []
    app = create_app("placeholder", settings(data_dir))

    async def counting(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "http" and str(scope["path"]).startswith("/files/"):
            fetched.append(str(scope["path"]))
        await app(scope, receive, send)  # type: ignore[arg-type]

    png(tmp_path / "sq.png", (256, 256))
    rows = [
        {"prompt": "a fox", "model": "dall-e-2", "size": "256x256"},
        {"image": "sq.png", "size": "256x256"},  # a variation: dall-e-2 by default
        {"prompt": "links", "model": "dall-e-2", "size": "256x256", "response_format": "url"},
    ]
    source = write_jsonl(tmp_path / "r.jsonl", rows)
    with serve(counting) as url:
        result = invoke(str(source), "--base-url", url)
    assert result.exit_code == 0, result.stderr
    assert len(image_files(tmp_path / "r")) == 3
    assert len(fetched) == 1
