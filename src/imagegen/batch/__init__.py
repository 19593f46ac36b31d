"""Many prompts to many images: `imagegen.batch.run` (and `arun`), `imagegen batch FILE`.

```python
from imagegen import batch

report = batch.run(
    "products.csv",                  # .txt (a prompt a line), .jsonl or .csv
    out_dir="catalogue",             # default: beside the file, named after it
    defaults={"model": "gpt-image-1-mini", "size": "1024x1024", "quality": "low"},
    concurrency=8,
)
print(report.done, report.failed, report.gallery)     # catalogue/index.html
```

- **Checked first**: every row is checked against the model's rules (and its images read)
  before anything is sent; a bad row stops the run with its row number and parameter
  (`BatchFileError`), unless `skip_invalid=True` records it and sends the rest.
- **Paced**: at most `concurrency` requests in flight over one connection pool; 429 / 503
  answers and OpenAI's `x-ratelimit-*` headers slow it down (see `_pacing`); retries follow the
  client's policy.
- **Resumable**: images are saved as `0001-a-red-fox.png` (`-1`, `-2` ... for `n > 1`), and
  each finished row is appended to `manifest.jsonl` (status, files, request id, revised prompt,
  usage, error) and synced to disk. Running the same batch again skips the rows that are done
  and have their files; a row whose request changed is done again; `force=True` redoes all.
- **Browsable**: `index.html` in the out folder shows every row, its images and its errors.
- **Batch API**: `via="batch-api"` submits the rows to `/v1/batches` (half the price at
  OpenAI) and collects the results into the same folder.

See docs/batch.md.
"""

from __future__ import annotations

from ._rows import BatchFileError, RowProblem
from ._runner import BatchInterrupted, arun, run
from ._status import BatchProgress, BatchReport

__all__ = [
    "BatchFileError",
    "BatchInterrupted",
    "BatchProgress",
    "BatchReport",
    "RowProblem",
    "arun",
    "run",
]
