"""The rules a data file must keep: its limits, the errors that refuse it, and missing words.

Shared by the checked CSV and Parquet readers (`unified_ai.ml.csv_reader`,
`unified_ai.ml.parquet_reader`) and by feature inference (`unified_ai.ml.columns`).
"""

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pandas as pd


class FileRuleError(ValueError):
    """A data file breaks a rule of its format or a limit.

    The message says where and why, without the file's name: the caller puts the name first.
    """


class CsvShapeError(FileRuleError):
    """A CSV row has more fields than the header."""


class FileLimitError(FileRuleError):
    """A data file is larger, longer or wider than its limits, or holds a byte no cell may hold."""


@dataclass(frozen=True)
class FileLimits:
    """Bounds a batch, label or data file must keep, checked while the file is read.

    The reader stops at the first byte past a limit, so a file breaking one is refused in
    bounded memory however large it is. None means no limit.

    Attributes:
        max_file_bytes: Size of the file (and of a Parquet file's data once decompressed).
        max_line_bytes: Length of one line of a CSV file, without its line break.
        max_cell_bytes: Length of one cell (quotes included: a quoted cell may span lines).
        max_columns: Columns of the header (a Parquet file's leaf columns).
    """

    max_file_bytes: int | None = 2 * 1024**3
    max_line_bytes: int | None = 1024**2
    max_cell_bytes: int | None = 64 * 1024
    max_columns: int | None = 1_000


#: The limits of a production batch or label file: far above real batches (a million rows of
#: the default project is about 200 MB of CSV), far below what exhausts a worker's memory.
BATCH_LIMITS = FileLimits()
#: A project's own training CSV: the same shape rules, no size limit. (A Parquet source, which
#: may be a folder of files, is read by pandas as it is.)
SOURCE_LIMITS = FileLimits(max_file_bytes=None)
#: Largest Parquet footer (schema and statistics, read before any data).
MAX_PARQUET_FOOTER_BYTES = 16 * 1024**2
#: Only an empty cell is missing in a CSV. `NA`, `null`, `None`, `nan`... are text, as they are
#: in a served JSON row, so a row scores the same served and read back from its batch.
CSV_MISSING = [""]
#: The words pandas takes as missing by default (text here, see `CSV_MISSING`).
MISSING_WORDS = frozenset(
    {
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
#: How much of a column name a message shows.
SHOWN = 60


def binary_opener(source: Any) -> "Callable[[], Any]":
    """A function opening `source` (a path or URL, its bytes, or a UPath) for binary reading."""
    if isinstance(source, bytes):
        return lambda: io.BytesIO(source)
    if hasattr(source, "open"):
        return lambda: source.open("rb")

    def open_url() -> Any:
        import fsspec

        return fsspec.open(source, "rb").open()

    return open_url


def size_of(source: Any) -> int | None:
    """The size of `source` in bytes when it is known without reading it."""
    if isinstance(source, bytes):
        return len(source)
    try:
        if hasattr(source, "stat"):
            return int(source.stat().st_size)
        import fsspec

        fs, path = fsspec.core.url_to_fs(source)
        return int(fs.size(path))
    except FileNotFoundError:
        raise
    except Exception:  # not known here: the reader counts the bytes as they come
        return None


def check_size(size: int | None, limits: FileLimits) -> None:
    """Refuse a file of `size` bytes (None: not known yet) larger than the limit."""
    if size is not None and limits.max_file_bytes is not None and size > limits.max_file_bytes:
        raise FileLimitError(f"is {size:,} bytes, more than the limit of {limits.max_file_bytes:,}")


def shown(name: str) -> str:
    """A column name as a message shows it: quoted, cut to `SHOWN` characters."""
    text = repr(name)
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def check_names(names: "Sequence[str]", limits: FileLimits) -> None:
    """Refuse a header wider than the column limit, or naming a column twice.

    pandas would rename the second `loanamt` to `loanamt.1`, so a batch with both would be
    scored on whichever the producer did not mean.
    """
    if limits.max_columns is not None and len(names) > limits.max_columns:
        raise FileLimitError(
            f"has {len(names):,} columns, more than the limit of {limits.max_columns:,}"
        )
    seen: set[str] = set()
    for name in names:
        if name in seen and name != "":  # pandas names blank headers `Unnamed: N` apart
            raise FileRuleError(f"the header names column {shown(name)} more than once")
        seen.add(name)


def numeric_with_missing_words(values: "pd.Series") -> bool:
    """Whether a text column holds numbers and words that pandas would have read as missing.

    Such a column (`12.5`, `NA`, `7`) is a numeric column whose producer wrote a missing value
    as a word: it stays numeric, so validation names each word as not a number, rather than
    silently becoming a category column.
    """
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return False
    words = values.isin(MISSING_WORDS).to_numpy()
    if not words.any():
        return False
    rest = values[~words].dropna()
    if rest.empty:  # words alone (every row `NA`) say nothing of the column's type
        return False
    try:  # stops at the first value that is not a number: a text column costs little
        pd.to_numeric(rest, errors="raise")
    except (ValueError, TypeError, OverflowError):
        return False
    return True
