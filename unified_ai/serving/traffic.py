"""Served traffic back into the monitoring loop: rows become production batch files.

Rows are buffered and written to the project's inbox as one CSV batch file every `flush_rows`
rows or `flush_seconds` seconds, whichever comes first, and whenever the served deployment
changes (so each file holds rows one deployment served). A file is written under a hidden
name and renamed into place, so the batch sensor never sees half of it. It carries `_row_id`,
the model's inputs and the project's segments (what batch scoring needs, like a simulated
batch) and what the endpoint answered (`served_*` columns, per task: `serving.answers`).

Off the request path: a request only appends its columns (plain lists and arrays) to the open
batch under a short lock; building the table, encoding CSV and writing happen in the writer
thread. The buffer is bounded (`max_pending_rows`): beyond it the oldest waiting batch is
dropped, never silently (logged, counted in `unified_ai_serving_traffic_rows_dropped` and in
`/readyz`'s `rows_dropped`). A request never waits for the inbox: blocking would turn a slow
disk or object store into failed predictions, which the endpoint promises never to give.

Ground truth for served rows is written beside them, as label files named after the batch, in
the format the `ground_truth` asset reads (`_row_id` and the target column).
"""

import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import ROW_ID
from unified_ai.resources.inbox import LABELS
from unified_ai.serving.csv_encoder import CsvEncoder
from unified_ai.serving.inbox_files import parse_row_id as parse_row_id
from unified_ai.serving.inbox_files import write_bytes_atomically
from unified_ai.serving.inbox_quota import MEASURE_SECONDS as MEASURE_SECONDS
from unified_ai.serving.inbox_quota import InboxQuota
from unified_ai.serving.traffic_files import (
    FLOAT,
    INFER,
    OBJECT,
    Batch,
    Part,
    batch_columns,
    labels_by_batch,
    write_label_files,
)
from unified_ai.serving.traffic_files import record_inputs as record_inputs

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.serving.follower import Served
    from unified_ai.serving.metrics import ServingMetrics

log = logging.getLogger("unified_ai.serving")

PREFIX = "serve"
#: The `served_*` columns of a binary project's batches (other tasks: `serving.answers`).
SERVED_COLUMNS = (
    "served_probability",
    "served_decision",
    "served_model_version",
    "served_deployment_version",
)


#: Batches (open, waiting or written) whose row counts the writer remembers for label checks.
KNOWN_BATCHES = 10_000


class TrafficWriter(InboxQuota):
    """Buffers served rows and writes them to the inbox as batch files.

    `record` (on the request path) only appends to memory under a short lock; every file is
    written by the writer thread, which takes a batch out of the waiting list before writing
    it. So a batch is either written or dropped, never both, and `rows_dropped` counts exactly
    the served rows that never reached the inbox.

    Args:
        folder: The project's inbox folder (local path or fsspec URL).
        flush_rows: Write a batch once it holds this many rows.
        flush_seconds: Write a batch once its first row is this old.
        max_pending_rows: Rows kept in memory while the inbox is not written fast enough (or
            cannot be written); beyond it the oldest waiting batch is dropped, logged and
            counted (never silently).
        max_inbox_bytes: Quota of the project's inbox folder (everything under it, waiting and
            archived); a batch that would go beyond it is dropped and counted instead of
            written. None: no quota.
        metrics: Where written, failed and dropped rows are counted.
        enabled: Whether served rows are kept at all (off: `record_columns` only hands out
            row ids, under batch names that are never written).
    """

    def __init__(
        self,
        folder: Any,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 30.0,
        max_pending_rows: int = 100_000,
        max_inbox_bytes: int | None = None,
        metrics: "ServingMetrics | None" = None,
        enabled: bool = True,
    ):
        from upath import UPath

        self.folder = UPath(folder) if isinstance(folder, str | os.PathLike) else folder
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self.max_inbox_bytes = max_inbox_bytes
        self.metrics = metrics
        self.enabled = enabled
        self._unlogged = 0  # rows answered while disabled
        # Names from several replicas (or restarts within a second) never collide.
        self._token = uuid.uuid4().hex[:8]
        self._sequence = 0
        self._open: Batch | None = None
        self._sealed: list[Batch] = []
        self._writing: Batch | None = None  # taken out of `_sealed`: never dropped
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._labels_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of sealed batches at a time
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._written = 0
        self._dropped_rows = 0
        self._known: OrderedDict[str, int] = OrderedDict()  # batch name -> rows
        self._last_error: str | None = None
        self._inbox_bytes: int | None = None
        self._measured = -math.inf
        self._refused_bytes = 0  # size of the last batch that did not fit (0: none)
        self._encoder = CsvEncoder()

    # -- serving side ----------------------------------------------------------------------
    def record(
        self, rows: "pd.DataFrame", served: "Served", probability: Sequence[float], decision
    ) -> list[str]:
        """Buffer rows a binary model scored (`served_probability`, `served_decision`)."""
        return self.record_answers(
            rows,
            served,
            {"served_probability": list(probability), "served_decision": list(decision)},
        )

    def record_answers(
        self, rows: "pd.DataFrame", served: "Served", answered: Mapping[str, Sequence[Any]]
    ) -> list[str]:
        """Buffer the rows a request scored and return their row ids (`<batch>:<n>`).

        Args:
            rows: The model inputs (and segments) of the rows.
            served: The deployment that scored them.
            answered: What the endpoint answered, per `served_*` column (its task's, see
                `unified_ai.serving.answers`), a value per row.

        Never waits on file IO: the lock it takes is only ever held for in-memory work.
        """
        columns = {
            str(column): (
                (FLOAT, values.to_numpy())
                if values.dtype == "float64"
                else (OBJECT, values.tolist())
            )
            for column, values in rows.items()
        }
        return self.record_columns(len(rows), columns, served, answered)

    def record_columns(
        self,
        count: int,
        inputs: Mapping[str, tuple[str, Any]],
        served: "Served",
        answered: Mapping[str, Sequence[Any]],
    ) -> list[str]:
        """Buffer `count` scored rows given as columns; return their row ids (`<batch>:<n>`).

        Args:
            count: How many rows.
            inputs: Per input column, ("float", a float64 array) or ("object", a list of
                values kept as they are); see `record_inputs`.
            served: The deployment that scored them.
            answered: What the endpoint answered, per `served_*` column, a value per row.

        Only appends to memory under a short lock: the table is built by the writer thread.
        """
        if not self.enabled:
            with self._lock:
                start, self._unlogged = self._unlogged, self._unlogged + count
            return [f"{PREFIX}-unlogged-{self._token}.csv:{start + i}" for i in range(count)]
        columns: dict[str, tuple[str, Any]] = {ROW_ID: (OBJECT, [])}
        columns.update(inputs)
        for column, values in answered.items():
            columns[column] = (INFER, values)
        columns["served_model_version"] = (OBJECT, [served.model_version] * count)
        columns["served_deployment_version"] = (OBJECT, [served.deployment_version] * count)
        with self._wake:
            batch = self._open
            if batch is None or batch.deployment_version != served.deployment_version:
                if batch is not None:
                    self._seal(batch)
                batch = self._open = self._new_batch(served.deployment_version)
            start = batch.rows
            ids = [f"{batch.name}:{start + i}" for i in range(count)]
            columns[ROW_ID] = (OBJECT, ids)
            batch.parts.append(Part(count, columns))
            batch.rows += count
            self._remember(batch.name, batch.rows)
            if batch.rows >= self.flush_rows:
                self._seal(batch)
                self._wake.notify()
        return ids

    def served_rows(self, batch: str) -> int | None:
        """How many rows this writer served under the batch name `batch` (None: not its own).

        Batches it dropped are forgotten: their rows never reach the loop.
        """
        with self._lock:
            return self._known.get(batch)

    def _remember(self, name: str, rows: int) -> None:
        self._known[name] = rows
        self._known.move_to_end(name)
        while len(self._known) > KNOWN_BATCHES:
            self._known.popitem(last=False)

    def _new_batch(self, deployment_version: str) -> Batch:
        self._sequence += 1
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        name = f"{PREFIX}-{stamp}-{self._token}-{self._sequence:06d}.csv"
        return Batch(name=name, deployment_version=deployment_version, opened=time.monotonic())

    def _seal(self, batch: Batch) -> None:
        """Hand a batch to the writer thread (lock held); drop the oldest waiting beyond the cap.

        The batch being written is not in `_sealed`, so it is never dropped.
        """
        if self._open is batch:
            self._open = None
        self._sealed.append(batch)
        pending = sum(b.rows for b in self._sealed)
        while pending > self.max_pending_rows and len(self._sealed) > 1:
            dropped = self._sealed.pop(0)
            pending -= dropped.rows
            why = (
                f"the inbox cannot be written ({self._last_error})"
                if self._last_error
                else "the inbox is written slower than rows are served"
            )
            self._drop(
                dropped, f"to keep at most {self.max_pending_rows} rows waiting, because {why}"
            )

    def _drop(self, batch: Batch, why: str) -> None:
        """Count and log a batch that will never be written (lock held)."""
        self._known.pop(batch.name, None)
        self._dropped_rows += batch.rows
        log.error(
            "inbox %s: dropped batch %s (%d served rows) %s",
            self.folder,
            batch.name,
            batch.rows,
            why,
        )
        if self.metrics is not None:
            self.metrics.traffic_dropped.inc(batch.rows)

    # -- writer thread ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="traffic-writer", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything buffered, then stop the writer thread."""
        with self._wake:
            self._stopping = True
            if self._open is not None:
                self._seal(self._open)
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()  # in case the thread had stopped early
        self._encoder.close()
        with self._lock:
            left, self._sealed = self._sealed, []
            for batch in left:
                self._drop(batch, f"at shutdown: it could not be written ({self._last_error})")

    def _loop(self) -> None:
        tick = max(0.05, min(0.5, self.flush_seconds / 4))
        failed = False
        while True:
            with self._wake:
                if failed or (not self._sealed and not self._stopping):
                    # After a failed write, retry a second later rather than spinning.
                    self._wake.wait(1.0 if failed else tick)
                stopping = self._stopping
            try:
                if self.max_inbox_bytes is not None:
                    self.inbox_bytes()  # measured again every few seconds
                failed = not self.flush()
            except Exception:  # never let the writer die; rows stay buffered
                log.exception("inbox %s: writing served rows failed", self.folder)
                failed = True
            if stopping:
                return

    def flush(self, *, force: bool = False) -> bool:
        """Seal the open batch if it is due (or `force`), write every sealed batch.

        Returns:
            True when nothing is left waiting to be written.
        """
        with self._flush_lock:
            return self._flush(force)

    def _flush(self, force: bool) -> bool:
        while True:
            with self._lock:
                batch = self._open
                if batch is not None and (
                    force or time.monotonic() - batch.opened >= self.flush_seconds
                ):
                    self._seal(batch)
                if not self._sealed:
                    return True
                # Out of the waiting list before any IO: a batch being written is never dropped.
                batch = self._writing = self._sealed.pop(0)
            try:
                written = self._write(batch)
            except Exception as exc:
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                if reason != self._last_error:
                    log.error(
                        "inbox %s: cannot write batch %s (%d rows), kept and retried: %s",
                        self.folder,
                        batch.name,
                        batch.rows,
                        reason,
                    )
                with self._lock:
                    self._writing = None
                    self._last_error = reason
                    self._sealed.insert(0, batch)
                if self.metrics is not None:
                    self.metrics.traffic_errors.inc()
                return False
            with self._lock:
                self._writing = None
                if written:
                    self._written += 1
                    self._last_error = None
            if written and self.metrics is not None:
                self.metrics.traffic_rows.inc(batch.rows)

    def _write(self, batch: Batch) -> bool:
        """Write one batch file, unless it would take the inbox beyond its quota (then drop it).

        Returns:
            Whether the file was written.
        """
        data = self._encoder.encode(batch_columns(batch.parts), batch.rows)
        if not self.has_room(len(data)):
            self._refused_bytes = len(data)
            with self._lock:
                self._drop(
                    batch,
                    f"because the inbox holds {self._inbox_bytes} bytes and the batch "
                    f"({len(data)} bytes) would go beyond its quota of {self.max_inbox_bytes}",
                )
            return False
        write_bytes_atomically(data, self.folder, batch.name)
        self._refused_bytes = 0
        self.wrote(len(data))
        log.info("inbox %s: wrote batch %s (%d rows)", self.folder, batch.name, batch.rows)
        return True

    def status(self) -> dict[str, Any]:
        with self._lock:
            open_rows = self._open.rows if self._open else 0
            pending = sum(b.rows for b in self._sealed)
            pending += self._writing.rows if self._writing else 0
            written = self._written
            dropped = self._dropped_rows
            error = self._last_error
        used = self._inbox_bytes
        return {
            "inbox": str(self.folder),
            "buffered_rows": open_rows + pending,
            "batches_written": written,
            "rows_dropped": dropped,
            "inbox_bytes": used,
            "max_inbox_bytes": self.max_inbox_bytes,
            "inbox_full": self.inbox_full,
            "writing": self.alive,
            "last_error": error,
        }

    # -- labels ----------------------------------------------------------------------------
    def write_labels(self, labels: Sequence[tuple[str, Any]], target: str) -> dict[str, int]:
        """Write ground truth for row ids as label files, one per batch; returns rows per file.

        Labels for a batch that already has a label file (waiting, or processed) are merged
        with it, newest value per row winning, and the merged file is delivered again: the
        labels sensor ingests a changed file once more.
        """
        by_batch = labels_by_batch(labels)
        with self._labels_lock:
            return write_label_files(self.folder / LABELS, by_batch, target, self.wrote)
