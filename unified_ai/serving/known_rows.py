"""Which row ids exist: labels are accepted only for rows the loop can match.

A row exists when this service served it (the traffic writer knows its batches and their row
counts) or when a batch file waiting in the inbox, or already taken in (`processed/`), holds
it. A file's row ids are read once (only its `_row_id` column) and kept while the file is
unchanged, so a labels request costs a stat per batch it names.
"""

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from unified_ai.ml.rows import ROW_ID
from unified_ai.resources.inbox import PROCESSED

log = logging.getLogger("unified_ai.serving")

#: Batch files whose row ids are kept in memory.
CACHED_FILES = 128
#: A batch file larger than this is not read for row ids (its rows are not labelled here).
MAX_FILE_BYTES = 256 * 1024 * 1024


class KnownRows:
    """Answers which of some row ids name rows that exist.

    Args:
        folder: The project's inbox folder.
        served_rows: Rows this service served under a batch name (None: not one of its own).
    """

    def __init__(self, folder: Any, served_rows: Callable[[str], int | None]):
        self.folder = folder
        self.served_rows = served_rows
        self._files: OrderedDict[str, tuple[tuple, frozenset[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def unknown(self, row_ids: Sequence[tuple[str, str, int]]) -> list[int]:
        """Positions (in `row_ids`) of the ids that name no existing row.

        Args:
            row_ids: (row id, batch name, row number) of each label.
        """
        found: dict[str, frozenset[str] | int | None] = {}
        missing = []
        for index, (row_id, batch, number) in enumerate(row_ids):
            if batch not in found:
                served = self.served_rows(batch)
                found[batch] = served if served is not None else self._file_ids(batch)
            known = found[batch]
            if known is None:
                missing.append(index)
            elif isinstance(known, int):
                if number >= known:
                    missing.append(index)
            elif row_id not in known:
                missing.append(index)
        return missing

    def _file_ids(self, batch: str) -> frozenset[str] | None:
        """Row ids of the batch file `batch` in the inbox or its processed folder, if any."""
        for path in (self.folder / batch, self.folder / PROCESSED / batch):
            try:
                info = path.fs.info(path.path)
            except (FileNotFoundError, OSError):
                continue
            size = int(info.get("size") or 0)
            stamp = (str(path), size, info.get("mtime") or info.get("LastModified"))
            with self._lock:
                cached = self._files.get(batch)
                if cached is not None and cached[0] == stamp:
                    self._files.move_to_end(batch)
                    return cached[1]
            if size > MAX_FILE_BYTES:
                log.warning("%s: %d bytes, too large to read its row ids", path, size)
                return frozenset()
            ids = _read_ids(path, batch)
            with self._lock:
                self._files[batch] = (stamp, ids)
                while len(self._files) > CACHED_FILES:
                    self._files.popitem(last=False)
            return ids
        return None


def _read_ids(path: Any, name: str) -> frozenset[str]:
    """The `_row_id` column of a batch file (empty when it has none or cannot be read)."""
    import pandas as pd

    try:
        with path.open("rb") as handle:
            if name.endswith(".parquet"):
                frame = pd.read_parquet(handle, columns=[ROW_ID])
            else:
                frame = pd.read_csv(handle, usecols=[ROW_ID], dtype=str)
    except Exception as exc:  # unreadable or without row ids: nothing in it can be labelled
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("%s: cannot read its row ids: %s", path, first)
        return frozenset()
    return frozenset(frame[ROW_ID].dropna().astype(str))
