"""Reading a CSV within its `FileLimits`, checked chunk by chunk before the parser sees it."""

import io
from typing import TYPE_CHECKING, Any

from unified_ai.lifetime import import_table_libraries
from unified_ai.ml.file_rules import (
    BATCH_LIMITS,
    CSV_MISSING,
    MISSING_WORDS,
    CsvShapeError,
    FileLimitError,
    FileLimits,
    binary_opener,
    check_names,
    check_size,
    numeric_with_missing_words,
    size_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    import pandas as pd


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
        if head is None:  # already whole (the caller checks; this tells the type checker)
            return
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
            check_names(next(csv.reader(io.StringIO(text, newline="")), []), self._limits)


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
    import_table_libraries()
    import pandas as pd

    check_size(size_of(source), limits)
    opener = binary_opener(source)

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


class ChunkTypesDiffer(ValueError):
    """Chunks of one file were read with different column types (read the file whole).

    A column pandas reads as integers in one chunk and floats (or text) in another, or whose
    numbers stay numbers beside missing words in one chunk but not in the rest, is typed from
    the whole column when the file is read whole: its chunks cannot stand for it.
    """


def iter_csv_checked(
    source: Any, rows: int, limits: FileLimits = BATCH_LIMITS
) -> "Iterator[pd.DataFrame]":
    """`read_csv_checked` in chunks of at most `rows` rows, each numbered from 0.

    The same checks in one pass (the limits on each block of bytes before the parser sees it,
    a row longer than the header, the numbers beside missing words); concatenated, the chunks
    are the frame `read_csv_checked` returns, with one exception it refuses rather than
    guesses: a column typed differently in two chunks.

    Raises:
        ChunkTypesDiffer: a column's type (or its missing-word reading) differs between two
            chunks; the caller reads the file whole instead (`read_csv_checked`).
        FileLimitError, FileRuleError, CsvShapeError: as `read_csv_checked`.
    """
    import pandas as pd

    check_size(size_of(source), limits)
    opener = binary_opener(source)

    def longer_row() -> str | None:
        with opener() as raw:
            stream = io.BufferedReader(_CsvGuard(raw, limits))
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            return _too_many_fields(text)

    types: dict[str, tuple[str, bool]] | None = None
    with opener() as raw:
        chunks = pd.read_csv(
            _CsvGuard(raw, limits),
            keep_default_na=False,
            na_values=CSV_MISSING,
            chunksize=rows,
        )
        with chunks:
            while True:
                try:
                    frame = next(chunks)
                except StopIteration:
                    return
                except pd.errors.ParserError:
                    problem = longer_row()
                    if problem is None:
                        raise
                    raise CsvShapeError(problem) from None
                if not isinstance(frame.index, pd.RangeIndex):
                    raise CsvShapeError(longer_row() or "rows have more fields than the header")
                kept = {
                    str(c): numeric_with_missing_words(frame[c])
                    for c in frame.columns[frame.dtypes.map(pd.api.types.is_object_dtype)]
                }
                found = {str(c): (str(frame[c].dtype), kept.get(str(c), False)) for c in frame}
                if types is None:
                    types = found
                elif found != types:
                    changed = sorted(c for c in found if found[c] != types.get(c))
                    raise ChunkTypesDiffer(f"columns {changed} are typed differently by chunk")
                yield _numbers_kept(frame.reset_index(drop=True))
