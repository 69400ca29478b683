"""Loading training data and resolving a project's columns. Pure functions over pandas."""

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.ml.datasets import BUNDLED_DATASETS
from unified_ai.names import INTERNAL_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig


class DataSourceError(RuntimeError):
    """The data source is missing, unreadable or empty."""


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
_SHOWN = 60


def load_source(
    source: str, fmt: str | None = None, limits: FileLimits = SOURCE_LIMITS
) -> "pd.DataFrame":
    """Read a bundled data set, or a CSV/Parquet file from a path or fsspec URL."""
    import pandas as pd

    if source.startswith("bundled:"):
        return BUNDLED_DATASETS[source.removeprefix("bundled:")]()
    fmt = fmt or ("csv" if source.endswith(".csv") else "parquet")
    try:
        if fmt == "csv":
            return read_csv_checked(source, limits)
        return pd.read_parquet(source)
    except FileNotFoundError:
        raise DataSourceError(f"data source {source} does not exist") from None
    except FileRuleError as exc:
        raise DataSourceError(f"data source {source}: {exc}") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataSourceError(f"data source {source} cannot be read as {fmt}: {first}") from None


def _too_many_fields(text: "Iterable[str]") -> str | None:
    """`line N has M fields, header has K` for the first row longer than the header."""
    import csv

    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return None
    for row in reader:
        if len(row) > len(header):
            return f"line {reader.line_num} has {len(row)} fields, header has {len(header)}"
    return None


def _opener(source: Any) -> "Callable[[], Any]":
    """A function opening `source` (a path or URL, its bytes, or a UPath) for binary reading."""
    if isinstance(source, bytes):
        return lambda: io.BytesIO(source)
    if hasattr(source, "open"):
        return lambda: source.open("rb")

    def open_url() -> Any:
        import fsspec

        return fsspec.open(source, "rb").open()

    return open_url


def _size_of(source: Any) -> int | None:
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


def _check_size(size: int | None, limits: FileLimits) -> None:
    if size is not None and limits.max_file_bytes is not None and size > limits.max_file_bytes:
        raise FileLimitError(f"is {size:,} bytes, more than the limit of {limits.max_file_bytes:,}")


def _shown(name: str) -> str:
    text = repr(name)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _check_names(names: "Sequence[str]", limits: FileLimits) -> None:
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
            raise FileRuleError(f"the header names column {_shown(name)} more than once")
        seen.add(name)


def _first_long_run(ends: Any, size: int, carried: int, limit: int | None) -> tuple[int, int, int]:
    """Runs of bytes between the `ends` positions of a chunk of `size` bytes.

    Returns the position where the first run longer than `limit` ends (-1 when none does),
    the length of the run left open at the end of the chunk, and the longest run. `carried` is
    the length of the run the previous chunk left open.
    """
    import numpy as np

    if len(ends) == 0:
        run = carried + size
        return (size if limit is not None and run > limit else -1), run, run
    tail = size - int(ends[-1]) - 1
    lengths = np.diff(ends, prepend=-1) - 1
    lengths[0] += carried
    longest = max(int(lengths.max()), tail)
    if limit is None or longest <= limit:
        return -1, tail, longest
    over = np.flatnonzero(lengths > limit)
    return (int(ends[over[0]]) if len(over) else size), tail, longest


class _CsvGuard(io.RawIOBase):
    """A binary stream checking a CSV's limits chunk by chunk, on its way to the parser.

    Lines, unquoted cells, NUL bytes and the size are checked with a few vectorised passes per
    chunk; only a chunk holding a quote (or inside a quoted cell) is followed quote by quote, to
    measure quoted cells, which may span lines. The header is checked as soon as it is whole,
    before the parser sees it.
    """

    def __init__(self, raw: Any, limits: FileLimits):
        super().__init__()
        self._raw = raw
        self._limits = limits
        self._total = 0
        self._line = 1  # line (1-based) of the next byte
        self._line_bytes = 0  # bytes of the current line so far
        self._cell_bytes = 0  # bytes since the last comma or line break
        self._quoted: int | None = None  # line where the open quoted cell began
        self._quoted_bytes = 0
        self._quote_pending = False  # a chunk ended on a quote inside a quoted cell
        self._last = 10  # the byte before the next one (a line break before the file)
        self._head: bytearray | None = bytearray()  # the header, until it is whole
        self._head_start: int | None = None  # where it begins, after blank lines
        self._head_scan = 0  # how far it was scanned
        self._head_quoted = False  # whether the scan stopped inside a quoted name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        if not data:
            if self._head is not None:
                head, self._head = bytes(self._head), None
                self._check_header(head)
            return 0
        self._check(data)
        buffer[: len(data)] = data
        return len(data)

    def _where(self, data: bytes, position: int) -> int:
        """The line of byte `position` of the chunk `data`."""
        return self._line + data.count(b"\n", 0, position)

    def _check(self, data: bytes) -> None:
        import numpy as np

        limits = self._limits
        self._total += len(data)
        if limits.max_file_bytes is not None and self._total > limits.max_file_bytes:
            raise FileLimitError(f"is larger than the limit of {limits.max_file_bytes:,} bytes")
        nul = data.find(b"\0")
        if nul >= 0:
            line = self._where(data, nul)
            raise FileLimitError(f"line {line} holds a NUL byte, which no CSV cell may hold")
        chars = np.frombuffer(data, dtype=np.uint8)
        breaks = chars == 10
        started = self._line_bytes
        at, self._line_bytes, longest = _first_long_run(
            np.flatnonzero(breaks), len(data), started, limits.max_line_bytes
        )
        if at >= 0:
            line = self._where(data, at)
            raise FileLimitError(f"line {line} is longer than {limits.max_line_bytes:,} bytes")
        if limits.max_cell_bytes is not None and longest > limits.max_cell_bytes:
            # A cell lies within a line (a quoted one spanning lines is followed below): only
            # a chunk with a line longer than the cell limit needs its cells measured.
            at, _, _ = _first_long_run(
                np.flatnonzero(breaks | (chars == 44)),
                len(data),
                self._cell_bytes,
                limits.max_cell_bytes,
            )
            if at >= 0:
                self._cell_too_long(self._where(data, at))
        self._cell_bytes = self._open_cell(data)
        if self._quoted is not None or self._quote_pending or b'"' in data:
            self._follow_quotes(data)
        if self._head is not None:
            self._collect_header(data)
        self._line += int(np.count_nonzero(breaks))
        self._last = data[-1]

    def _open_cell(self, data: bytes) -> int:
        """Bytes of the cell left open at the end of `data` (since its last comma or break)."""
        last = max(data.rfind(b","), data.rfind(b"\n"))
        return self._cell_bytes + len(data) if last < 0 else len(data) - last - 1

    def _cell_too_long(self, line: int) -> None:
        limit = self._limits.max_cell_bytes
        raise FileLimitError(f"line {line} has a cell longer than {limit:,} bytes")

    def _follow_quotes(self, data: bytes) -> None:
        """Follow quoted cells through `data`; refuse one longer than the cell limit."""
        limit = self._limits.max_cell_bytes
        size = len(data)
        position = 0
        if self._quote_pending:
            self._quote_pending = False
            if data[0] == 34:  # an escaped quote split between two chunks
                self._quoted_bytes += 1
                position = 1
            else:
                self._quoted = None
        while position < size:
            quote = data.find(b'"', position)
            if self._quoted is None:
                if quote < 0:
                    return
                before = data[quote - 1] if quote else self._last
                if before in (10, 13, 44):  # a quote opens a cell only at its start
                    self._quoted = self._where(data, quote)
                    self._quoted_bytes = 1
                position = quote + 1
                continue
            end = size if quote < 0 else quote + 1
            self._quoted_bytes += end - position
            if limit is not None and self._quoted_bytes > limit:
                self._cell_too_long(self._quoted)
            if quote < 0:
                return
            if quote + 1 == size:
                self._quote_pending = True
                return
            if data[quote + 1] == 34:  # `""` is a quote inside the cell
                self._quoted_bytes += 1
                position = quote + 2
            else:
                self._quoted = None
                position = quote + 1

    def _collect_header(self, data: bytes) -> None:
        """Gather the first record (blank lines before it skipped, as pandas does).

        It ends at the first line break outside a quoted name; a quote opens a name only at its
        start, as in cells. Scanned once, whatever the number of chunks it spans.
        """
        head = self._head
        head += data
        if self._head_start is None:
            start = len(head) - len(head.lstrip(b"\r\n"))
            if start == len(head):
                return  # only blank lines so far
            self._head_start = self._head_scan = start
        position = self._head_scan
        while position < len(head):
            if self._head_quoted:
                quote = head.find(b'"', position)
                if quote < 0 or quote + 1 == len(head):  # the next chunk tells
                    position = len(head) if quote < 0 else quote
                    break
                position = quote + 2 if head[quote + 1] == 34 else quote + 1
                self._head_quoted = head[quote + 1] == 34
                continue
            newline = head.find(b"\n", position)
            quote = head.find(b'"', position, None if newline < 0 else newline)
            if quote < 0:
                if newline >= 0:
                    self._head = None
                    self._check_header(bytes(head[self._head_start : newline]))
                    return
                position = len(head)
                break
            at_start = quote == self._head_start or head[quote - 1] in (10, 13, 44)
            self._head_quoted = at_start
            position = quote + 1
        self._head_scan = position
        limit = self._limits.max_line_bytes
        if limit is not None and len(head) - self._head_start > limit:
            raise FileLimitError(f"the header is longer than {limit:,} bytes")

    def _check_header(self, head: bytes) -> None:
        import csv

        text = head.decode("utf-8-sig", errors="replace").lstrip("\r\n")
        if text.strip():
            _check_names(next(csv.reader(io.StringIO(text, newline="")), []), self._limits)


def read_csv_checked(source: Any, limits: FileLimits = BATCH_LIMITS) -> "pd.DataFrame":
    """Read a CSV (a path or URL, a UPath, or its bytes) within `limits`, taken as written.

    Limits are checked on each chunk before the parser sees it (see `FileLimits`): nothing is
    read whole first. Only an empty cell is missing (`CSV_MISSING`). A NUL byte, a column named
    twice in the header and a row with more fields than the header are refused. When the first
    rows carry one field too many (a trailing comma), pandas silently takes the first column as
    the index and shifts every value under the wrong name; with `index_col=False` it silently
    drops the extra field instead. A longer row further down already makes pandas fail; an
    implicit index is the sign of the first case. Only then is the file scanned a second time
    for the offending line: a well-formed file is read once.

    Raises:
        FileLimitError: the file breaks a limit or holds a NUL byte.
        FileRuleError: the header names a column twice.
        CsvShapeError: a row is longer than the header.
    """
    import pandas as pd

    _check_size(_size_of(source), limits)
    opener = _opener(source)

    def longer_row() -> str | None:
        with opener() as raw:
            stream = io.BufferedReader(_CsvGuard(raw, limits))
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            return _too_many_fields(text)

    try:
        with opener() as raw:
            frame = pd.read_csv(
                _CsvGuard(raw, limits), keep_default_na=False, na_values=CSV_MISSING
            )
    except pd.errors.ParserError:
        problem = longer_row()
        if problem is None:
            raise  # another tokenizing problem: pandas' own words
        raise CsvShapeError(problem) from None
    if not isinstance(frame.index, pd.RangeIndex):
        raise CsvShapeError(longer_row() or "rows have more fields than the header")
    return _numbers_kept(frame)


def _numbers_kept(frame: "pd.DataFrame") -> "pd.DataFrame":
    """Numbers of a column that also holds missing words (`NA`) stay numbers, words stay text.

    Read whole as text, `12.5` would be the text `'12.5'`, and validation would report every
    value of the column instead of the word. The numbers are floats, as pandas reads a column
    with missing cells.
    """
    import pandas as pd

    for column in frame.columns[frame.dtypes.map(pd.api.types.is_object_dtype)]:
        values = frame[column]
        if numeric_with_missing_words(values):
            words = values.isin(MISSING_WORDS)
            kept = pd.to_numeric(values.mask(words), errors="coerce").astype(object)
            kept[words] = values[words]
            frame[column] = kept
    return frame


def read_parquet_checked(source: Any, limits: FileLimits = BATCH_LIMITS) -> "pd.DataFrame":
    """Read a Parquet file within `limits`, checked from its footer before any data is read.

    Raises:
        FileLimitError: the file, its footer or its decompressed data is too large, it has too
            many columns, or a text cell is too long or holds a NUL character.
        FileRuleError: two columns have the same name.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    _check_size(_size_of(source), limits)
    with _opener(source)() as handle:
        size = handle.seek(0, io.SEEK_END)
        _check_size(size, limits)
        if size >= 12:
            handle.seek(size - 8)
            tail = handle.read(8)
            footer = int.from_bytes(tail[:4], "little")
            if tail[4:] == b"PAR1" and footer > MAX_PARQUET_FOOTER_BYTES:
                raise FileLimitError(
                    f"has a Parquet footer of {footer:,} bytes, more than the limit of "
                    f"{MAX_PARQUET_FOOTER_BYTES:,}"
                )
        handle.seek(0)
        parquet = pq.ParquetFile(handle)
        meta = parquet.metadata
        if limits.max_columns is not None and meta.num_columns > limits.max_columns:
            raise FileLimitError(
                f"has {meta.num_columns:,} columns, more than the limit of {limits.max_columns:,}"
            )
        if limits.max_file_bytes is not None:
            data = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if data > limits.max_file_bytes:
                raise FileLimitError(
                    f"holds {data:,} bytes of data once decompressed, more than the limit of "
                    f"{limits.max_file_bytes:,}"
                )
        _check_names(parquet.schema_arrow.names, limits)
        handle.seek(0)
        frame = pd.read_parquet(handle)
    _check_text_cells(frame, limits)
    return frame


def _check_text_cells(frame: "pd.DataFrame", limits: FileLimits) -> None:
    """Text cells of a frame follow the CSV rules: no NUL character, none too long."""
    import pandas as pd

    for column in frame.columns:
        values = frame[column]
        if pd.api.types.infer_dtype(values, skipna=True) != "string":
            continue
        nul = values.str.contains("\0", regex=False, na=False).to_numpy()
        if nul.any():
            raise FileLimitError(
                f"row {int(nul.argmax())}: column {_shown(str(column))} holds a NUL character"
            )
        if limits.max_cell_bytes is not None:
            lengths = values.str.len().fillna(0).to_numpy()
            if len(lengths) and lengths.max() > limits.max_cell_bytes:
                raise FileLimitError(
                    f"row {int(lengths.argmax())}: column {_shown(str(column))} has a cell "
                    f"longer than {limits.max_cell_bytes:,} bytes"
                )


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


@dataclass(frozen=True)
class FeatureColumns:
    """The resolved model inputs of a project."""

    numeric: list[str]
    categorical: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def resolve_features(project: "ProjectConfig", frame: "pd.DataFrame") -> FeatureColumns:
    """Resolve declared features, inferring types when the project uses `all_but`."""
    import pandas as pd

    spec = project.features
    if spec.all_but is None:
        return FeatureColumns(numeric=list(spec.numeric), categorical=list(spec.categorical))
    # Row ids and origins are the product's bookkeeping: a model that learned them would learn
    # where a row came from, not what it says.
    excluded = {project.target, *project.segments, *spec.all_but, *INTERNAL_COLUMNS}
    numeric, categorical = [], []
    for column in frame.columns:
        if column in excluded:
            continue
        values = frame[column]
        if (
            pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        ) or numeric_with_missing_words(values):
            numeric.append(column)
        else:
            categorical.append(column)
    return FeatureColumns(numeric=numeric, categorical=categorical)


def project_columns(project: "ProjectConfig", frame: "pd.DataFrame") -> list[str]:
    """Columns the project keeps from its source, in a stable order, without duplicates."""
    wanted = [project.target, *resolve_features(project, frame).all, *project.segments]
    wanted += list(project.columns)
    return list(dict.fromkeys(wanted))


def select_project_columns(project: "ProjectConfig", frame: "pd.DataFrame") -> "pd.DataFrame":
    """Keep the project's columns that exist; missing ones are reported by validation."""
    keep = [c for c in project_columns(project, frame) if c in frame.columns]
    return frame[keep].reset_index(drop=True)


def binary_target(project: "ProjectConfig", frame: "pd.DataFrame") -> "pd.Series":
    """The target as 0/1 integers (1 = the project's positive label)."""
    import pandas as pd

    values = frame[project.target]
    positive = project.positive_label
    if pd.api.types.is_numeric_dtype(values) and not isinstance(positive, str):
        return (values == positive).astype("int64")
    return (values.astype(str) == str(positive)).astype("int64")


def target_classes(project: "ProjectConfig", frame: "pd.DataFrame") -> list:
    """The distinct target values of `frame` (training data), as plain Python values, sorted."""
    values = frame[project.target].dropna().unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # mixed types: any stable order will do
        return sorted(values, key=repr)
