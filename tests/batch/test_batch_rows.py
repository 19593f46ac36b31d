"""Reading batch files: .txt, .jsonl, .csv/.tsv, with defaults, edits and variations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import InvalidRequestError
from imagegen.batch import BatchFileError
from imagegen.batch._naming import base_name, slugify
from imagegen.batch._rows import read_batch, read_rows


def test_txt_one_prompt_a_line_blank_lines_skipped_and_numbered(tmp_path: Path) -> None:
    source = tmp_path / "p.txt"
    source.write_bytes("\ufeffA fox\n\n  A lighthouse  \r\nUn café\n".encode())
    rows = read_rows(source, {"model": "gpt-image-1", "size": "1024x1024"})
    assert [(r.number, r.line, r.prompt) for r in rows] == [
        (1, 1, "A fox"),
        (2, 3, "A lighthouse"),
        (3, 4, "Un café"),
    ]
    assert all(r.endpoint == "generations" for r in rows)
    assert rows[0].params == {"model": "gpt-image-1", "size": "1024x1024", "prompt": "A fox"}


def test_txt_with_a_default_image_makes_edits(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("make it blue\n")
    rows = read_rows(tmp_path / "p.txt", {"images": ["base.png"], "mask": "m.png"})
    assert rows[0].endpoint == "edits"
    # Paths given as defaults (flags) are relative to the working folder.
    assert rows[0].images == (Path.cwd() / "base.png",)
    assert rows[0].mask == Path.cwd() / "m.png"


def test_jsonl_rows_choose_their_endpoint_and_keep_json_types(tmp_path: Path) -> None:
    source = tmp_path / "sub" / "rows.jsonl"
    source.parent.mkdir()
    lines = [
        {"prompt": "a cat", "n": 2, "quality": "low"},
        {"prompt": "add a hat", "image": "cat.png", "mask": "hat.png"},
        {"image": ["a.png"], "n": 2},
        {"prompt": "merge", "images": ["a.png", "b.png"], "extra_body": {"seed": 7}},
        {"prompt": "edit please", "image": "a.png", "endpoint": "edit", "extra.seed": 3},
        {"endpoint": "variation", "image": "a.png", "name": "Hero shot"},
    ]
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    rows = read_rows(source, {"size": "1024x1024"})
    base = source.parent.resolve()
    assert [r.endpoint for r in rows] == [
        "generations",
        "edits",
        "variations",
        "edits",
        "edits",
        "variations",
    ]
    assert rows[0].params["n"] == 2
    assert rows[1].images == (base / "cat.png",) and rows[1].mask == base / "hat.png"
    assert "prompt" not in rows[2].params and rows[2].params["n"] == 2
    assert rows[3].images == (base / "a.png", base / "b.png")
    assert rows[3].extra_body == {"seed": 7}
    assert rows[4].extra_body == {"seed": 3}
    assert rows[5].name == "Hero shot"


def test_csv_converts_integers_and_extra_json_and_splits_images(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text(
        "prompt,n,size,image,extra.seed,extra.style_name,output_compression,output_format\n"
        '"A fox, in snow",2,,,42,warm,,\n'
        '"Merge these",,512x512,a.png; b.png,,,,\n'
        '"multi\nline prompt",,,,,,80,jpeg\n'
        ",,,,,,,\n"
        '"last",1,,,,,,\n',
        encoding="utf-8",
    )
    rows = read_rows(source, {"size": "1024x1024", "n": 1})
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 3), (3, 4), (4, 7)]
    assert rows[0].params == {"size": "1024x1024", "n": 2, "prompt": "A fox, in snow"}
    assert rows[0].extra_body == {"seed": 42, "style_name": "warm"}
    assert rows[1].endpoint == "edits" and len(rows[1].images) == 2
    assert rows[1].params["size"] == "512x512"
    assert rows[2].prompt == "multi\nline prompt"
    assert rows[2].params["output_compression"] == 80


def test_csv_types_every_integer_and_object_parameter(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text(
        "prompt,output_format,frame_count,frame_duration_ms,svg,markup,image\n"
        "An animation,gif,4,250,,,\n"
        '"A logo",svg,,,"{""model"": ""svg-writer"", ""reasoning"": {""effort"": ""low""}}",,\n'
        "Circle the cat,,,,,circle.png,cat.png\n"
        'Bad object,svg,,,"not json",,\n',
        encoding="utf-8",
    )
    with pytest.raises(BatchFileError) as caught:
        read_rows(source)
    assert [str(p) for p in caught.value.row_problems] == [
        "row 4 (line 5), svg: must be a JSON object (got 'not json')"
    ]
    source.write_text("\n".join(source.read_text().splitlines()[:-1]) + "\n")
    rows = read_rows(source)
    assert rows[0].params["frame_count"] == 4 and rows[0].params["frame_duration_ms"] == 250
    assert rows[1].params["svg"] == {"model": "svg-writer", "reasoning": {"effort": "low"}}
    base = source.parent.resolve()
    assert rows[2].endpoint == "edits" and rows[2].markup == base / "circle.png"
    assert rows[2].inputs == (base / "cat.png", base / "circle.png")


def test_tsv_uses_tabs(tmp_path: Path) -> None:
    (tmp_path / "r.tsv").write_text("prompt\tquality\nA, B and C\thigh\n")
    rows = read_rows(tmp_path / "r.tsv")
    assert rows[0].prompt == "A, B and C" and rows[0].params["quality"] == "high"


def test_every_bad_row_is_reported_with_row_line_and_key(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text(
        '{"prompt": "ok"}\n'
        '{"prompt": "typo", "sise": "1024x1024"}\n'
        "not json\n"
        '{"n": 2}\n'
        '["a list"]\n'
        '{"prompt": "x", "stream": true}\n'
        '{"prompt": "x", "image": "a.png", "endpoint": "generate"}\n'
        '{"prompt": "x", "endpoint": "upscale"}\n'
    )
    with pytest.raises(BatchFileError) as caught:
        read_rows(source)
    problems = caught.value.row_problems
    assert [(p.row, p.line, p.param) for p in problems] == [
        (2, 2, "sise"),
        (3, 3, None),
        (4, 4, "prompt"),
        (5, 5, None),
        (6, 6, "stream"),
        (7, 7, "image"),
        (8, 8, "endpoint"),
    ]
    assert "did you mean size?" in problems[0].message
    assert "not valid JSON" in problems[1].message
    assert str(problems[0]).startswith("row 2 (line 2), sise: unknown key 'sise'")
    assert "nothing was sent" in str(caught.value)


def test_an_empty_object_is_a_row_without_a_prompt_not_a_blank_line(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text("{}\n")
    with pytest.raises(BatchFileError) as caught:
        read_rows(tmp_path / "r.jsonl")
    assert [(p.row, p.param) for p in caught.value.row_problems] == [(1, "prompt")]


def test_read_batch_returns_the_rows_it_can_read_and_counts_every_row(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text('{"prompt": "a"}\nnot json\n\n{}\n{"prompt": "b"}\n')
    rows, problems, total = read_batch(tmp_path / "r.jsonl")
    assert [row.number for row in rows] == [1, 4]
    assert [(p.row, p.line) for p in problems] == [(2, 2), (3, 4)]
    assert total == 4


def test_csv_header_problems_are_found_before_any_row(tmp_path: Path) -> None:
    source = tmp_path / "rows.csv"
    source.write_text("prompt,modle,prompt\nA fox,gpt-image-1,B\n")
    with pytest.raises(BatchFileError) as caught:
        read_rows(source)
    assert [(p.line, p.param) for p in caught.value.row_problems] == [(1, "modle"), (1, "prompt")]
    assert "did you mean model?" in caught.value.row_problems[0].message


def test_csv_integers_must_be_whole_numbers(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("prompt,n\nA,two\n")
    with pytest.raises(BatchFileError) as caught:
        read_rows(tmp_path / "r.csv")
    assert (
        str(caught.value.row_problems[0]) == "row 1 (line 2), n: must be a whole number (got 'two')"
    )


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(BatchFileError) as caught:
        read_rows(tmp_path / "p.txt")
    assert str(caught.value.row_problems[0]) == (
        "line 2: not UTF-8 text (byte 0xE9); save the file as UTF-8"
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.doc", "x", "Unknown batch file type '.doc'"),
        ("missing.txt", None, "does not exist"),
        ("empty.txt", "\n\n", "holds no rows"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(InvalidRequestError, match=message):
        read_rows(tmp_path / name)


def test_bad_defaults_are_named() -> None:
    with pytest.raises(BatchFileError, match="defaults: it cannot be sent") as caught:
        read_rows(Path("whatever.txt"), {"partial_images": 2})
    assert caught.value.row_problems[0].param == "partial_images"


def test_one_problem_shared_by_many_rows_is_one_line(tmp_path: Path) -> None:
    error = BatchFileError(
        "p.txt",
        [*(_problem(row) for row in [1, 2, 3, 5, 9, 10]), _problem(4, "n", "bad n")],
    )
    assert error.lines() == ["rows 1-3, 5, 9-10, size: bad size", "row 4 (line 5), n: bad n"]


def _problem(row: int, param: str = "size", message: str = "bad size") -> object:
    from imagegen.batch import RowProblem

    return RowProblem(row, row + 1, param, message)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("A red fox in the snow", "a-red-fox-in-the-snow"),
        ("Un café, s’il vous plaît!", "un-cafe-s-il-vous-plait"),
        ("<script>alert(1)</script>", "script-alert-1-script"),
        ("東京の夜", "image"),
        ("../../etc/passwd", "etc-passwd"),
        ("CON", "con"),
        ("word " * 30, "-".join(["word"] * 9)),
        ("x" * 80, "x" * 48),
    ],
)
def test_slugs_are_plain_short_and_safe(text: str, slug: str) -> None:
    assert slugify(text) == slug
    assert len(slugify(text)) <= 48


def test_base_names_start_with_the_row_number() -> None:
    assert base_name(7, "A fox") == "0007-a-fox"
    assert base_name(12345, None) == "12345-image"
    assert base_name(3, "東京", fallback="variation") == "0003-variation"


def test_the_error_message_ends_each_problem_with_one_full_stop() -> None:
    from imagegen.batch import RowProblem

    error = BatchFileError(
        "p.txt",
        [
            RowProblem(1, 1, "size", "Invalid size '100x100': must be multiples of 16."),
            RowProblem(2, 2, "n", "Invalid n 0: must be a whole number from 1 to 10."),
        ],
    )
    assert str(error) == (
        "p.txt: 2 rows cannot be sent; nothing was sent. row 1 (line 1), size: Invalid size "
        "'100x100': must be multiples of 16; row 2 (line 2), n: Invalid n 0: must be a whole "
        "number from 1 to 10."
    )


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        (
            "concurency",
            "run() got an unexpected keyword argument 'concurency' (did you mean 'concurrency'?)",
        ),
        ("stop", "run() got an unexpected keyword argument 'stop' (arun() takes stop"),
        (  # a request parameter, as `generate` takes it: the rows' defaults say it
            "quality",
            "run() got an unexpected keyword argument 'quality' (request parameters for every "
            "row go in defaults={'quality': ...})",
        ),
    ],
)
def test_a_mistyped_keyword_is_named_as_run_s_own(
    tmp_path: Path, keyword: str, message: str
) -> None:
    from imagegen import batch

    (tmp_path / "p.txt").write_text("a fox\n")
    with pytest.raises(TypeError) as caught:
        batch.run(tmp_path / "p.txt", engine="placeholder", **{keyword: 3})
    assert str(caught.value).startswith(message)
    assert not (tmp_path / "p").exists()


def test_a_csv_saved_with_semicolons_is_read_with_them(tmp_path: Path) -> None:
    """Spreadsheets save CSV with semicolons where the comma is the decimal mark."""
    (tmp_path / "r.csv").write_bytes(
        '\ufeffprompt;size;n\r\nUn café, s\'il vous plaît;1024x1024;2\r\n"a;b";;\r\n'.encode()
    )
    rows = read_rows(tmp_path / "r.csv")
    assert [dict(row.params) for row in rows] == [
        {"prompt": "Un café, s'il vous plaît", "size": "1024x1024", "n": 2},
        {"prompt": "a;b"},
    ]


def test_batch_options_name_every_async_client_argument() -> None:
    """`run`/`arun` declare the client's arguments in `BatchOptions`: a new `AsyncClient`
    argument that is not declared there would be refused as unknown."""
    import inspect

    from imagegen import AsyncClient
    from imagegen.batch._options import BatchOptions, RunOptions

    client = set(inspect.signature(AsyncClient).parameters)
    batch_own = {field for field in RunOptions.__dataclass_fields__} - {"max_retries"}
    assert set(BatchOptions.__annotations__) - batch_own == client
