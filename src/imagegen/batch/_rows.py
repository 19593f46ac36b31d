"""Reading a batch file: one request per row, from `.txt`, `.jsonl` or `.csv` (`.tsv`).

- `.txt`: every non-blank line is a prompt (a generation, or an edit / variation when the
  defaults give an image).
- `.jsonl`: one JSON object per non-blank line, keys as below.
- `.csv` / `.tsv`: a header row naming the columns, then one row per request; an empty cell
  means "not set" (the default applies). A `.csv` whose header row has semicolons and no
  comma is read with semicolons (as spreadsheets save it in many countries).

Keys and columns: `prompt`; every request parameter in OpenAI's wire names (`model`, `n`,
`size`, `quality`, `style`, `background`, `moderation`, `output_format`, `output_compression`,
`response_format`, `user`, `input_fidelity`, `safety_identifier`, `complexity`, ...; in CSV an
object such as `svg` is written as JSON); `image` (a path; in CSV several paths separated by
`;`, in JSONL a string or a list) or `images`; `mask` and `markup`; `endpoint` (`generate`,
`edit` or
`variation`, else decided by the row: image and prompt make an edit, an image alone a
variation, a prompt alone a generation); `name` (the file name's words instead of the
prompt's); `extra.KEY` (a field sent as is, such as `extra.seed`; in JSONL also an `extra_body`
object). Image paths are relative to the batch file's folder.

Rows are numbered from 1 in file order, blank lines not counted; `Row.line` is where the row
starts in the file, for messages. Any other key is refused (a typo such as `sise` would
otherwise be sent, or ignored, for every row), naming the row and the close match.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .._capabilities import ENDPOINT_PARAMS, Endpoint
from .._errors import InvalidRequestError, Problem

__all__ = ["FORMATS", "Row", "RowProblem", "read_batch", "read_rows", "row_from_fields"]

FORMATS = (".txt", ".jsonl", ".csv", ".tsv")

# Request parameters a row may set: every endpoint's, less what a batch never does.
_NOT_IN_BATCH = {"stream", "partial_images"}
_FILES = {"image", "mask", "markup"}
_PARAMS = sorted(set().union(*ENDPOINT_PARAMS.values()) - {"prompt"} - _FILES)


@cache
def _fields_of_type(*kinds: type) -> frozenset[str]:
    """Parameters whose wire type is one of `kinds` (CSV cells are text: they are converted)."""
    from .._models import request_class

    found = set()
    for endpoint in ENDPOINT_PARAMS:
        for name, annotation in request_class(endpoint).field_types().items():
            args = getattr(annotation, "__args__", (annotation,))
            if any(
                isinstance(arg, type) and issubclass(arg, kinds) and arg is not bool for arg in args
            ):
                found.add(name)
    return frozenset(found)


_ENDPOINTS: dict[str, Endpoint] = {
    "generate": "generations",
    "generation": "generations",
    "generations": "generations",
    "edit": "edits",
    "edits": "edits",
    "variation": "variations",
    "variations": "variations",
}
_OWN_KEYS = {"prompt", "image", "images", "mask", "markup", "endpoint", "name", "extra_body"}
KNOWN_KEYS = sorted(_OWN_KEYS | set(_PARAMS) - _NOT_IN_BATCH)
EXTRA_PREFIX = "extra."


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row: where, which key, and the rule broken."""

    row: int | None
    line: int | None
    param: str | None
    message: str

    def __str__(self) -> str:
        place = ""
        if self.row is not None:
            place = f"row {self.row}" + (f" (line {self.line})" if self.line else "")
        elif self.line is not None:
            place = f"line {self.line}"
        subject = ", ".join(part for part in (place, self.param) if part)
        return f"{subject}: {self.message}" if subject else self.message


def _numbers(rows: list[int]) -> str:
    """`[1, 2, 3, 5, 8, 9]` -> `rows 1-3, 5, 8-9`."""
    spans: list[list[int]] = []
    for number in sorted(set(rows)):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans]
    if len(shown) > 6:
        shown = [*shown[:6], f"and {len(shown) - 6} more"]
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(shown)


class BatchFileError(InvalidRequestError):
    """A batch file (or its defaults) has rows that cannot be sent; nothing was sent.

    `row_problems` lists every one found, each naming its row, line and parameter; `lines()`
    words them with rows that share a problem (a bad default) together, and `problems` holds
    the same lines as `InvalidRequestError`'s problems.
    """

    def __init__(self, source: str, problems: list[RowProblem]) -> None:
        self.source = source
        self.row_problems = problems
        rows = {problem.row for problem in problems if problem.row is not None}
        what = f"{len(rows)} row{'s' if len(rows) != 1 else ''}" if rows else "it"
        self.head = f"{source}: {what} cannot be sent; nothing was sent"
        lines = self.lines()
        more = f"; and {len(lines) - 3} more" if len(lines) > 3 else ""
        shown = "; ".join(line.rstrip(".") for line in lines[:3])
        super().__init__(
            f"{self.head}. {shown}{more}.",
            param=problems[0].param,
            problems=[Problem(problem.param, str(problem)) for problem in problems],
        )

    def lines(self) -> list[str]:
        """One line per distinct problem, with every row that has it."""
        groups: dict[tuple[str | None, str], list[RowProblem]] = {}
        for problem in self.row_problems:
            groups.setdefault((problem.param, problem.message), []).append(problem)
        lines: list[str] = []
        for (param, message), found in groups.items():
            rows = [problem.row for problem in found if problem.row is not None]
            if len(found) == 1 or len(rows) != len(found):
                lines.extend(str(problem) for problem in found)
            else:
                lines.append(
                    f"{_numbers(rows)}, {param}: {message}"
                    if param
                    else f"{_numbers(rows)}: {message}"
                )
        return lines


@dataclass(frozen=True)
class Row:
    """One request of a batch, with the defaults applied."""

    number: int
    line: int
    endpoint: Endpoint
    params: Mapping[str, Any]  # wire parameters, the prompt included; no files
    images: tuple[Path, ...] = ()
    mask: Path | None = None
    markup: Path | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    @property
    def inputs(self) -> tuple[Path, ...]:
        """Every input file: the images, then the mask and the markup."""
        return (*self.images, *(p for p in (self.mask, self.markup) if p is not None))

    @property
    def prompt(self) -> str | None:
        prompt = self.params.get("prompt")
        return prompt if isinstance(prompt, str) else None

    @property
    def where(self) -> str:
        return f"row {self.number} (line {self.line})"

    def describe(self) -> dict[str, Any]:
        """The row as the manifest and the gallery record it (paths as given, relative)."""
        shown: dict[str, Any] = {"endpoint": self.endpoint, **self.params}
        if self.images:
            shown["image"] = [str(path) for path in self.images]
        for name, path in (("mask", self.mask), ("markup", self.markup)):
            if path is not None:
                shown[name] = str(path)
        if self.extra_body:
            shown["extra_body"] = dict(self.extra_body)
        return shown


def _closest(key: str) -> str:
    match = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
    return f" (did you mean {match[0]}?)" if match else ""


def _unknown(key: str) -> str:
    return (
        f"unknown key {key!r}{_closest(key)}; a row may set {', '.join(KNOWN_KEYS)}, and "
        f"{EXTRA_PREFIX}NAME for fields sent as they are"
    )


def _paths(value: Any, base: Path, key: str, *, split: bool) -> tuple[Path, ...]:
    items: list[Any]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(";")] if split else [value]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(f"{key} must be a path or a list of paths")
    paths = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{key} must name files (got {item!r})")
        path = Path(item.strip()).expanduser()
        paths.append(path if path.is_absolute() else base / path)
    return tuple(paths)


def _typed(key: str, value: Any, *, from_text: bool) -> Any:
    """CSV cells are text: integer and object parameters are converted; JSON keeps its types."""
    if not from_text or not isinstance(value, str):
        return value
    from .._models import WireModel

    text = value.strip()
    if key in _fields_of_type(int):
        if text.lstrip("-").isdigit():
            return int(text)
        raise ValueError(f"must be a whole number (got {value!r})")
    if key in _fields_of_type(WireModel, dict):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(f"must be a JSON object (got {value!r})") from None
    return value


def _extra_value(value: Any, *, from_text: bool) -> Any:
    if from_text and isinstance(value, str):
        try:
            return json.loads(value)  # seed=42 is the number 42, as with --extra
        except ValueError:
            return value
    return value


class _Draft:
    """A row while its keys are read, over the defaults."""

    def __init__(self, defaults: Mapping[str, Any], base: Path, from_text: bool) -> None:
        self.base = base
        self.from_text = from_text
        self.params = {k: v for k, v in defaults.items() if k in _PARAMS or k == "prompt"}
        self.images: tuple[Path, ...] = tuple(defaults.get("images") or ())
        self.single = {name: defaults.get(name) for name in ("mask", "markup")}
        self.extra: dict[str, Any] = dict(defaults.get("extra_body") or {})
        self.endpoint_name: Any = defaults.get("endpoint")
        self.name: str | None = None

    def set(self, key: str, value: Any) -> None:
        """Take one key; `ValueError` or `LookupError` (an unknown key) with the rule broken."""
        if key.startswith(EXTRA_PREFIX) and len(key) > len(EXTRA_PREFIX):
            self.extra[key[len(EXTRA_PREFIX) :]] = _extra_value(value, from_text=self.from_text)
        elif key in _KEYS:
            _KEYS[key](self, key, value)
        elif key in _NOT_IN_BATCH:
            raise ValueError("batch rows are not streamed; leave out stream and partial_images")
        elif key in _PARAMS:
            self.params[key] = _typed(key, value, from_text=self.from_text)
        else:
            raise LookupError(_unknown(key))

    def _extra_body(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            raise ValueError("must be an object of fields sent as they are")
        self.extra.update(value)

    def _images(self, key: str, value: Any) -> None:
        self.images = _paths(value, self.base, key, split=self.from_text)

    def _single(self, key: str, value: Any) -> None:
        found = _paths(value, self.base, key, split=False)
        if len(found) != 1:
            raise ValueError("must be one path")
        self.single[key] = found[0]

    def _endpoint(self, key: str, value: Any) -> None:
        self.endpoint_name = value

    def _name(self, key: str, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError("must be text")
        self.name = value

    def _prompt(self, key: str, value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError(f"must be text (got {value!r})")
        self.params["prompt"] = value.strip() if self.from_text else value

    def row(self, number: int, line: int) -> Row:
        """The finished row; `ValueError((param, message))` if its keys do not go together."""
        params, images = self.params, self.images
        endpoint = _endpoint(self.endpoint_name, params, images)
        if endpoint != "variations" and not params.get("prompt"):
            raise ValueError("prompt", "no prompt (and no image for a variation)")
        if endpoint == "generations" and (images or any(self.single.values())):
            raise ValueError("image", "a generation takes no image; use endpoint edit")
        if endpoint != "generations" and not images:
            kind = "an edit" if endpoint == "edits" else "a variation"
            raise ValueError("image", f"{kind} needs an image")
        if endpoint == "variations":
            params.pop("prompt", None)
        edit = endpoint == "edits"
        return Row(
            number=number,
            line=line,
            endpoint=endpoint,
            params=params,
            images=images,
            mask=self.single["mask"] if edit else None,
            markup=self.single["markup"] if edit else None,
            extra_body=self.extra,
            name=self.name,
        )


# The keys of a row that are not wire parameters, and what reads each.
_KEYS: dict[str, Callable[[_Draft, str, Any], None]] = {
    "extra_body": _Draft._extra_body,
    "image": _Draft._images,
    "images": _Draft._images,
    "mask": _Draft._single,
    "markup": _Draft._single,
    "endpoint": _Draft._endpoint,
    "name": _Draft._name,
    "prompt": _Draft._prompt,
}


def row_from_fields(
    fields: Mapping[str, Any],
    *,
    number: int,
    line: int,
    base: Path,
    defaults: Mapping[str, Any],
    from_text: bool = False,
) -> Row:
    """Build one row from its keys over `defaults` (already normalised by `normalise_defaults`).
    Raises `ValueError` as `(param, message)` for the first problem."""
    draft = _Draft(defaults, base, from_text)
    for key, value in fields.items():
        if value is None or (from_text and isinstance(value, str) and not value.strip()):
            continue
        try:
            draft.set(key, value)
        except (ValueError, LookupError) as exc:
            raise ValueError(key, str(exc)) from None
    return draft.row(number, line)


def _endpoint(named: Any, params: Mapping[str, Any], images: tuple[Path, ...]) -> Endpoint:
    if named is not None:
        endpoint = _ENDPOINTS.get(str(named).strip().lower())
        if endpoint is None:
            raise ValueError("endpoint", f"must be generate, edit or variation (got {named!r})")
        return endpoint
    if images:
        return "edits" if params.get("prompt") else "variations"
    return "generations"


def normalise_defaults(defaults: Mapping[str, Any] | None, *, base: Path) -> dict[str, Any]:
    """Defaults as rows use them: paths resolved against `base` (the working folder, for flags),
    `image` and `images` as one tuple. Raises `BatchFileError` naming the default at fault."""
    out: dict[str, Any] = {}
    for key, value in (defaults or {}).items():
        if value is None:
            continue
        try:
            if key in ("image", "images"):
                out["images"] = _paths(
                    [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value),
                    base,
                    key,
                    split=False,
                )
            elif key in ("mask", "markup"):
                out[key] = _paths(str(value), base, key, split=False)[0]
            elif key == "extra_body":
                out["extra_body"] = dict(value)
            elif key in _NOT_IN_BATCH:
                raise ValueError("batch rows are not streamed; leave out stream and partial_images")
            elif key in _PARAMS or key in ("endpoint", "prompt"):
                out[key] = value
            else:
                raise ValueError(_unknown(key))
        except ValueError as exc:
            raise BatchFileError("defaults", [RowProblem(None, None, key, str(exc))]) from None
    return out


# -- the three formats --------------------------------------------------------------------


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequestError(f"The batch file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise InvalidRequestError(f"{str(path)!r} is a folder, not a batch file.") from None
    except OSError as exc:
        raise InvalidRequestError(
            f"The batch file {str(path)!r} cannot be read: {exc.strerror or exc}."
        ) from None
    try:
        return raw.decode("utf-8-sig")  # Windows editors start UTF-8 files with a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BatchFileError(
            str(path),
            [
                RowProblem(
                    None,
                    line,
                    None,
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02X}); save the file as UTF-8",
                )
            ],
        ) from None


# A file's records: (line, fields), fields `None` for a record that cannot be read (its problem
# is listed already).
_Records = Iterator[tuple[int, dict[str, Any] | None]]


def _text_records(text: str) -> _Records:
    for line, raw in enumerate(text.splitlines(), start=1):
        if raw.strip():
            yield line, {"prompt": raw.strip()}


def _jsonl_records(text: str, problems: list[RowProblem]) -> _Records:
    number = 0
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        number += 1
        try:
            record = json.loads(raw)
        except ValueError as exc:
            problems.append(RowProblem(number, line, None, f"not valid JSON ({exc})"))
            yield line, None
            continue
        if not isinstance(record, dict):
            problems.append(
                RowProblem(number, line, None, 'must be a JSON object such as {"prompt": "..."}')
            )
            yield line, None
            continue
        yield line, record


def _csv_records(text: str, delimiter: str, problems: list[RowProblem]) -> _Records:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        problems.append(RowProblem(None, 1, None, f"not a valid CSV header ({exc})"))
        return
    columns = [name.strip() for name in header]
    seen: set[str] = set()
    for name in columns:
        if not name:
            problems.append(RowProblem(None, 1, None, "a column has no name in the header row"))
        elif name in seen:
            problems.append(RowProblem(None, 1, name, "this column appears twice"))
        elif not name.startswith(EXTRA_PREFIX) and name not in KNOWN_KEYS:
            problems.append(RowProblem(None, 1, name, _unknown(name)))
        seen.add(name)
    if problems:
        return
    end = reader.line_num
    number = 0
    while True:
        start = end + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(RowProblem(number + 1, start, None, f"not valid CSV ({exc})"))
            return
        end = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        number += 1
        if len(cells) > len(columns):
            problems.append(
                RowProblem(
                    number,
                    start,
                    None,
                    f"{len(cells)} cells for {len(columns)} columns (quote cells that hold "
                    f"a {_SEPARATORS[delimiter]})",
                )
            )
            yield start, None
            continue
        yield start, dict(zip(columns, cells, strict=False))  # short rows: cells left empty


_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


def _delimiter(text: str, suffix: str) -> str:
    """Tabs for `.tsv`; for `.csv` commas, or semicolons when the header row has no comma but
    a semicolon (spreadsheets save CSV that way where the comma is the decimal mark)."""
    if suffix == ".tsv":
        return "\t"
    header = text.lstrip().partition("\n")[0]
    return ";" if ";" in header and "," not in header else ","


def read_rows(path: str | Path, defaults: Mapping[str, Any] | None = None) -> list[Row]:
    """Every row of the batch file at `path`, defaults applied.

    Raises `BatchFileError` listing every row that cannot be read, or `InvalidRequestError`
    when the file itself is missing or of an unknown kind. The rules of each model (sizes,
    counts, images) are checked later, against the client (see `_plan.check_rows`).
    """
    rows, problems, _ = read_batch(path, defaults)
    if problems:
        raise BatchFileError(str(Path(path).expanduser()), problems)
    return rows


def read_batch(
    path: str | Path, defaults: Mapping[str, Any] | None = None
) -> tuple[list[Row], list[RowProblem], int]:
    """The rows of the batch file at `path` that can be read, the problems of those that
    cannot (each with its row number, so that `skip_invalid` can record them and the model's
    rules can still be checked on the others), and how many rows the file has in all.

    Raises `BatchFileError` for a problem of the whole file (its encoding, a CSV header), and
    `InvalidRequestError` when the file is missing, of an unknown kind, or holds no rows.
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidRequestError(
            f"Unknown batch file type {suffix or '(none)'!r} for {str(path)!r}: use .txt (one "
            "prompt a line), .jsonl or .csv."
        )
    base = path.resolve().parent
    cwd = Path.cwd()
    fixed = normalise_defaults(defaults, base=cwd)
    text = _text(path)
    problems: list[RowProblem] = []
    records: _Records
    if suffix == ".txt":
        records = _text_records(text)
    elif suffix == ".jsonl":
        records = _jsonl_records(text, problems)
    else:
        records = _csv_records(text, _delimiter(text, suffix), problems)
    rows: list[Row] = []
    total = 0
    for number, (line, fields) in enumerate(records, start=1):
        total = number
        if fields is None:
            continue  # its problem is already listed
        try:
            rows.append(
                row_from_fields(
                    fields,
                    number=number,
                    line=line,
                    base=base,
                    defaults=fixed,
                    from_text=suffix != ".jsonl",
                )
            )
        except ValueError as exc:
            param, message = exc.args
            problems.append(RowProblem(number, line, param, message))
    if any(problem.row is None for problem in problems):
        raise BatchFileError(str(path), problems)
    if not total:
        raise InvalidRequestError(f"The batch file {str(path)!r} holds no rows.")
    return rows, problems, total
