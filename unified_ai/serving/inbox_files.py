"""Files of a project's inbox the serving endpoint reads and writes: row ids, label files."""

import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from unified_ai.resources.inbox import PROCESSED, is_batch_name

if TYPE_CHECKING:
    import pandas as pd


def parse_row_id(row_id: Any) -> tuple[str, int] | None:
    """(batch file name, row number) of a row id `<batch>:<n>`, or None if it is not one."""
    if not isinstance(row_id, str):
        return None
    batch, _, number = row_id.rpartition(":")
    if not is_batch_name(batch) or not number.isdigit() or len(number) > 9:
        return None
    return batch, int(number)


def read_existing(folder, name: str) -> "pd.DataFrame | None":
    """The label file `name` waiting in `folder` or already processed, if there is one.

    Read by the same checked reader (and missing-value rule) as the `ground_truth` asset reads
    it, so merging never turns a label such as "NA" into a missing value.
    """
    from unified_ai.ml.data import read_csv_checked, read_parquet_checked

    reader = read_parquet_checked if name.endswith(".parquet") else read_csv_checked
    for candidate in (folder / name, folder / PROCESSED / name):
        try:
            return reader(candidate)
        except FileNotFoundError:
            continue
    return None


def write_bytes_atomically(data: bytes, folder, name: str) -> None:
    """Write `data` under a hidden temporary name in `folder`, then rename it to `name`.

    Sensors skip hidden names, so they never see half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
        temporary.rename(folder / name)
    except BaseException:
        with suppress(OSError):  # it may never have been created
            temporary.unlink()
        raise
