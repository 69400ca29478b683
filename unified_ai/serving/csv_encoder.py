"""Encoding served batches as CSV away from the requests: a helper process for large batches.

Building a table of a thousand served rows and encoding it as CSV takes pandas about 20 ms of
the interpreter lock. Taken by the traffic writer's thread, those milliseconds come out of the
requests' share: under load every request in flight waits while a batch is encoded, and the
throughput lost is several times the writer's own CPU. A batch of `PROCESS_ROWS` rows or more
is therefore sent (as joined plain columns, `traffic_files.batch_columns`) to one helper
process, which builds the same table and encodes the same bytes; the writer thread only joins
the columns and pickles them. Smaller batches (a quiet endpoint, a flush on shutdown) are
encoded in the thread: starting the process would cost more than they do.

The process is started on the first large batch (a spawned interpreter, so none of the
server's threads or locks is copied into it) and stopped with the writer. If it cannot start
or dies, batches are encoded in the thread from then on (logged once): nothing is lost.
"""

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("unified_ai.serving")

#: How a part's column becomes a table column when the batch is written: "float" (a float64
#: array), "object" (values kept as they are) or "infer" (pandas infers the type, as it does
#: for a list assigned to a frame: the `served_*` answers).
FLOAT, OBJECT, INFER = "float", "object", "infer"

#: Batches of at least this many rows are encoded in the helper process.
PROCESS_ROWS = 500


class CsvEncoder:
    """Encodes joined batch columns as CSV bytes, large batches in a helper process."""

    def __init__(self, process_rows: int = PROCESS_ROWS):
        self.process_rows = process_rows
        self._pool: Any = None
        self._broken = False
        self._lock = threading.Lock()

    def encode(self, columns: Mapping[str, tuple[str, Any]], rows: int) -> bytes:
        """The batch file's bytes, the same wherever they are encoded (`encode_csv`)."""
        pool = self._process_pool() if rows >= self.process_rows else None
        if pool is None:
            return encode_csv(columns)
        try:
            return pool.submit(encode_csv, dict(columns)).result()
        except Exception as exc:  # the process died or could not start: encode here
            self._give_up(exc)
            return encode_csv(columns)

    def close(self) -> None:
        """Stop the helper process (waits for a batch it is encoding)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _process_pool(self) -> Any:
        with self._lock:
            if self._pool is None and not self._broken:
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

                try:
                    self._pool = ProcessPoolExecutor(
                        max_workers=1, mp_context=multiprocessing.get_context("spawn")
                    )
                except Exception as exc:  # e.g. no process may be started here
                    self._broken = True
                    log.warning("served batches are encoded in the writer thread: %s", exc)
            return self._pool

    def _give_up(self, exc: BaseException) -> None:
        with self._lock:
            if self._broken:
                return
            self._broken = True
            pool, self._pool = self._pool, None
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("served batches are encoded in the writer thread from now on: %s", reason)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def table_of(columns: Mapping[str, tuple[str, Any]]) -> "pd.DataFrame":
    """The table of joined `batch_columns`: object columns kept as sent, "infer" inferred."""
    import pandas as pd

    return pd.DataFrame(
        {
            name: values
            if kind == FLOAT
            else (pd.Series(values, dtype=object) if kind == OBJECT else pd.Series(values))
            for name, (kind, values) in columns.items()
        }
    )


def encode_csv(columns: Mapping[str, tuple[str, Any]]) -> bytes:
    """The batch file of joined `batch_columns` (run in the encoder process, or in a thread)."""
    return table_of(columns).to_csv(index=False).encode()
