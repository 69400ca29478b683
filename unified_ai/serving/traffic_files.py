"""What the traffic writer buffers, and the files it builds from it.

A request's rows are kept as a `Part` (plain columns, no table) in a `Batch`; the writer
thread turns a batch's parts into one table (`batch_table`) when it writes the batch file.
Ground truth for served rows is written as label files named after the batch
(`labels_by_batch`, `write_label_files`), in the format the `ground_truth` asset reads.
"""

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import ROW_ID
from unified_ai.serving.csv_encoder import FLOAT, INFER, OBJECT, table_of
from unified_ai.serving.inbox_files import parse_row_id, read_existing, write_bytes_atomically

if TYPE_CHECKING:
    import pandas as pd


class Part:
    """The rows of one request: each column's values and how it becomes a table column.

    `layout` (names and kinds) lets a batch whose parts all share one be joined column by
    column without looking at each part's columns.
    """

    __slots__ = ("count", "layout", "values")

    def __init__(self, count: int, columns: Mapping[str, tuple[str, Any]]):
        self.count = count
        self.layout = (tuple(columns), tuple(kind for kind, _ in columns.values()))
        # Tuples of plain values: the cyclic garbage collector stops tracking them, so a full
        # buffer of small requests does not lengthen every collection.
        self.values = tuple(
            tuple(values) if type(values) is list else values for _, values in columns.values()
        )

    @property
    def columns(self) -> dict[str, tuple[str, Any]]:
        names, kinds = self.layout
        return {n: (k, v) for n, k, v in zip(names, kinds, self.values, strict=True)}


@dataclass
class Batch:
    name: str
    deployment_version: str
    opened: float
    parts: list[Part] = field(default_factory=list)
    rows: int = 0


def record_inputs(written: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Checked request columns (`plain_rows.CheckedRows.written`) as `record_columns` takes them.

    A float64 array is a numeric column; anything else is kept as the values it holds.
    """
    return {
        column: (FLOAT if getattr(values, "dtype", None) == "float64" else OBJECT, values)
        for column, values in written.items()
    }


def batch_table(parts: Sequence[Part]) -> "pd.DataFrame":
    """The rows of a batch's parts as one table, as concatenating each part's frame gives it.

    Columns come in the order they first appear; a part without a column holds NaN there.
    """
    return table_of(batch_columns(parts))


def batch_columns(parts: Sequence[Part]) -> dict[str, tuple[str, Any]]:
    """The columns of `batch_table`, joined but not yet a table: per name, (kind, values).

    Values are a float64 array ("float") or a list; plain data, cheap to send to a process.
    """
    first = parts[0].layout
    if all(part.layout == first for part in parts):
        names, kinds = first
        return {
            name: _joined(kind, [part.values[index] for part in parts])
            for index, (name, kind) in enumerate(zip(names, kinds, strict=True))
        }
    columns = [part.columns for part in parts]
    order = list(dict.fromkeys(name for part in columns for name in part))
    table: dict[str, tuple[str, Any]] = {}
    for name in order:
        found = {part[name][0] for part in columns if name in part}
        kind = found.pop() if len(found) == 1 else INFER
        pieces = [
            part[name][1] if name in part else [math.nan] * rows.count
            for part, rows in zip(columns, parts, strict=True)
        ]
        table[name] = _joined(kind, pieces)
    return table


def _joined(kind: str, pieces: list[Any]) -> tuple[str, Any]:
    """One column of a kind from its pieces (one per part): (kind, array or list)."""
    import numpy as np

    if kind == FLOAT:
        return kind, np.concatenate([np.asarray(piece, dtype="float64") for piece in pieces])
    return kind, list(chain.from_iterable(pieces))


def labels_by_batch(labels: Sequence[tuple[str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    """(row id, label) pairs grouped by the batch file their row id names.

    Raises:
        ValueError: A row id is not `<batch file name>:<row number>`.
    """
    by_batch: dict[str, list[tuple[str, Any]]] = {}
    for row_id, value in labels:
        parsed = parse_row_id(row_id)
        if parsed is None:  # the endpoint validates first; this guards other callers
            raise ValueError(f"row id {row_id!r} is not <batch file name>:<row number>")
        by_batch.setdefault(parsed[0], []).append((row_id, value))
    return by_batch


def write_label_files(
    folder: Any,
    by_batch: Mapping[str, Sequence[tuple[str, Any]]],
    target: str,
    wrote: Callable[[int], None],
) -> dict[str, int]:
    """Write each batch's labels to `folder` as a label file; returns rows per file.

    Labels for a batch that already has a label file are merged with it, newest value per row
    winning. `wrote` is told the size of every file written (the inbox's quota counts it).
    """
    import pandas as pd

    written = {}
    for batch, items in by_batch.items():
        frame = pd.DataFrame(items, columns=[ROW_ID, target])
        earlier = read_existing(folder, batch)
        if earlier is not None and {ROW_ID, target} <= set(earlier.columns):
            frame = pd.concat([earlier[[ROW_ID, target]], frame], ignore_index=True)
            frame = frame.drop_duplicates(ROW_ID, keep="last")
        data = (
            frame.to_parquet(index=False)
            if batch.endswith(".parquet")
            else frame.to_csv(index=False).encode()
        )
        write_bytes_atomically(data, folder, batch)
        wrote(len(data))
        written[batch] = len(frame)
    return written
