"""Reading a Parquet file within its `FileLimits`, checked from its footer before any data."""

import io
from typing import TYPE_CHECKING, Any

from unified_ai.lifetime import import_table_libraries
from unified_ai.ml.file_rules import (
    BATCH_LIMITS,
    MAX_PARQUET_FOOTER_BYTES,
    FileLimitError,
    FileLimits,
    binary_opener,
    check_names,
    check_size,
    shown,
    size_of,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd


def read_parquet_checked(source: Any, limits: FileLimits = BATCH_LIMITS) -> "pd.DataFrame":
    """Read a Parquet file within `limits`, checked from its footer before any data is read.

    Raises:
        FileLimitError: the file, its footer or its decompressed data is too large, it has too
            many columns, or a text cell is too long or holds a NUL character.
        FileRuleError: two columns have the same name.
    """
    import_table_libraries()
    import pandas as pd

    check_size(size_of(source), limits)
    with binary_opener(source)() as handle:
        _checked_footer(handle, limits)
        frame = pd.read_parquet(handle)
    _check_text_cells(frame, limits)
    return frame


def iter_parquet_checked(
    source: Any, rows: int, limits: FileLimits = BATCH_LIMITS
) -> "Iterator[pd.DataFrame]":
    """`read_parquet_checked` in chunks of at most `rows` rows (its record batches).

    The footer is checked before any data is read, each chunk's text cells as it is read (a
    message names the row in the whole file); the chunks, concatenated, are the frame
    `read_parquet_checked` returns.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_size(size_of(source), limits)
    with binary_opener(source)() as handle:
        _checked_footer(handle, limits)
        parquet = pq.ParquetFile(handle)
        schema = parquet.schema_arrow
        start = 0
        for batch in parquet.iter_batches(batch_size=rows):
            frame = pa.Table.from_batches([batch], schema=schema).to_pandas()
            _check_text_cells(frame, limits, first_row=start)
            start += len(frame)
            yield frame


def _checked_footer(handle: Any, limits: FileLimits) -> None:
    """Check a Parquet file's size, footer, columns and data size; leave it at its start."""
    import pyarrow.parquet as pq

    size = handle.seek(0, io.SEEK_END)
    check_size(size, limits)
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
    check_names(parquet.schema_arrow.names, limits)
    handle.seek(0)


def _check_text_cells(frame: "pd.DataFrame", limits: FileLimits, first_row: int = 0) -> None:
    """Text cells of a frame follow the CSV rules: no NUL character, none too long.

    `first_row` is the frame's first row in its file (a chunk's rows are named in the file).
    """
    import pandas as pd

    for column in frame.columns:
        values = frame[column]
        if pd.api.types.infer_dtype(values, skipna=True) != "string":
            continue
        nul = values.str.contains("\0", regex=False, na=False).to_numpy()
        if nul.any():
            raise FileLimitError(
                f"row {first_row + int(nul.argmax())}: column {shown(str(column))} holds a "
                "NUL character"
            )
        if limits.max_cell_bytes is not None:
            lengths = values.str.len().fillna(0).to_numpy()
            if len(lengths) and lengths.max() > limits.max_cell_bytes:
                raise FileLimitError(
                    f"row {first_row + int(lengths.argmax())}: column {shown(str(column))} has "
                    f"a cell longer than {limits.max_cell_bytes:,} bytes"
                )
