"""Served traffic back into the monitoring loop: rows become production batch files.

Rows are buffered and written to the project's inbox as one CSV batch file every `flush_rows`
rows or `flush_seconds` seconds, whichever comes first, and whenever the served deployment
changes (so each file holds rows one deployment served). A file is written under a hidden
name and renamed into place, so the batch sensor never sees half of it. It carries `_row_id`,
the model's inputs and the project's segments (what batch scoring needs, like a simulated
batch) and what the endpoint answered (`served_*` columns).

Ground truth for served rows is written beside them, as label files named after the batch, in
the format the `ground_truth` asset reads (`_row_id` and the target column).
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import ROW_ID
from unified_ai.resources.inbox import LABELS, PROCESSED, is_batch_name

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.serving.follower import Served
    from unified_ai.serving.metrics import ServingMetrics

log = logging.getLogger("unified_ai.serving")

PREFIX = "serve"
SERVED_COLUMNS = (
    "served_probability",
    "served_decision",
    "served_model_version",
    "served_deployment_version",
)


def parse_row_id(row_id: Any) -> tuple[str, int] | None:
    """(batch file name, row number) of a row id `<batch>:<n>`, or None if it is not one."""
    if not isinstance(row_id, str):
        return None
    batch, _, number = row_id.rpartition(":")
    if not is_batch_name(batch) or not number.isdigit() or len(number) > 9:
        return None
    return batch, int(number)


@dataclass
class _Batch:
    name: str
    deployment_version: str
    opened: float
    frames: list["pd.DataFrame"] = field(default_factory=list)
    rows: int = 0


class TrafficWriter:
    """Buffers served rows and writes them to the inbox as batch files.

    Args:
        folder: The project's inbox folder (local path or fsspec URL).
        flush_rows: Write a batch once it holds this many rows.
        flush_seconds: Write a batch once its first row is this old.
        max_pending_rows: Rows kept in memory while the inbox cannot be written; beyond it the
            oldest batch is dropped, logged and counted (never silently).
        metrics: Where written, failed and dropped rows are counted.
    """

    def __init__(
        self,
        folder: Any,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 30.0,
        max_pending_rows: int = 100_000,
        metrics: "ServingMetrics | None" = None,
    ):
        from upath import UPath

        self.folder = UPath(folder) if isinstance(folder, str | os.PathLike) else folder
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_pending_rows = max_pending_rows
        self.metrics = metrics
        # Names from several replicas (or restarts within a second) never collide.
        self._token = uuid.uuid4().hex[:8]
        self._sequence = 0
        self._open: _Batch | None = None
        self._sealed: list[_Batch] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._labels_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one writer of sealed batches at a time
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._written: list[str] = []
        self._last_error: str | None = None

    # -- serving side ----------------------------------------------------------------------
    def record(
        self, rows: "pd.DataFrame", served: "Served", probability: Sequence[float], decision
    ) -> list[str]:
        """Buffer the rows a request scored and return their row ids (`<batch>:<n>`)."""
        count = len(rows)
        with self._wake:
            batch = self._open
            if batch is None or batch.deployment_version != served.deployment_version:
                if batch is not None:
                    self._seal(batch)
                batch = self._open = self._new_batch(served.deployment_version)
            ids = [f"{batch.name}:{batch.rows + i}" for i in range(count)]
            part = rows.reset_index(drop=True)
            part.insert(0, ROW_ID, ids)
            part = part.assign(
                served_probability=list(probability),
                served_decision=list(decision),
                served_model_version=served.model_version,
                served_deployment_version=served.deployment_version,
            )
            batch.frames.append(part)
            batch.rows += count
            if batch.rows >= self.flush_rows:
                self._seal(batch)
            self._wake.notify()
        return ids

    def _new_batch(self, deployment_version: str) -> _Batch:
        self._sequence += 1
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        name = f"{PREFIX}-{stamp}-{self._token}-{self._sequence:06d}.csv"
        return _Batch(name=name, deployment_version=deployment_version, opened=time.monotonic())

    def _seal(self, batch: _Batch) -> None:
        """Hand a batch to the writer thread (lock held)."""
        if self._open is batch:
            self._open = None
        self._sealed.append(batch)
        pending = sum(b.rows for b in self._sealed)
        while pending > self.max_pending_rows and len(self._sealed) > 1:
            dropped = self._sealed.pop(0)
            pending -= dropped.rows
            log.error(
                "inbox %s: dropped batch %s (%d served rows) after failing to write it, to keep "
                "at most %d rows waiting; last error: %s",
                self.folder,
                dropped.name,
                dropped.rows,
                self.max_pending_rows,
                self._last_error,
            )
            if self.metrics is not None:
                self.metrics.traffic_dropped.inc(dropped.rows)

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
        with self._lock:
            left = sum(b.rows for b in self._sealed)
        if left:
            log.error(
                "inbox %s: %d served rows could not be written before shutdown (%s)",
                self.folder,
                left,
                self._last_error,
            )

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
        with self._lock:
            batch = self._open
            if batch is not None and (
                force or time.monotonic() - batch.opened >= self.flush_seconds
            ):
                self._seal(batch)
            waiting = list(self._sealed)
        for batch in waiting:
            try:
                self._write(batch)
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
                self._last_error = reason
                if self.metrics is not None:
                    self.metrics.traffic_errors.inc()
                return False
            with self._lock:
                if batch in self._sealed:
                    self._sealed.remove(batch)
                self._written.append(batch.name)
            self._last_error = None
            if self.metrics is not None:
                self.metrics.traffic_rows.inc(batch.rows)
        return True

    def _write(self, batch: _Batch) -> None:
        import pandas as pd

        frame = pd.concat(batch.frames, ignore_index=True)
        _write_atomically(frame, self.folder, batch.name)
        log.info("inbox %s: wrote batch %s (%d rows)", self.folder, batch.name, batch.rows)

    def status(self) -> dict[str, Any]:
        with self._lock:
            open_rows = self._open.rows if self._open else 0
            pending = sum(b.rows for b in self._sealed)
            written = len(self._written)
        return {
            "inbox": str(self.folder),
            "buffered_rows": open_rows + pending,
            "batches_written": written,
            "writing": self.alive,
            "last_error": self._last_error,
        }

    # -- labels ----------------------------------------------------------------------------
    def write_labels(self, labels: Sequence[tuple[str, Any]], target: str) -> dict[str, int]:
        """Write ground truth for row ids as label files, one per batch; returns rows per file.

        Labels for a batch that already has a label file (waiting, or processed) are merged
        with it, newest value per row winning, and the merged file is delivered again: the
        labels sensor ingests a changed file once more.
        """
        import pandas as pd

        by_batch: dict[str, list[tuple[str, Any]]] = {}
        for row_id, value in labels:
            parsed = parse_row_id(row_id)
            if parsed is None:  # the endpoint validates first; this guards other callers
                raise ValueError(f"row id {row_id!r} is not <batch file name>:<row number>")
            by_batch.setdefault(parsed[0], []).append((row_id, value))
        folder = self.folder / LABELS
        written = {}
        with self._labels_lock:
            for batch, items in by_batch.items():
                frame = pd.DataFrame(items, columns=[ROW_ID, target])
                earlier = _read_existing(folder, batch)
                if earlier is not None and {ROW_ID, target} <= set(earlier.columns):
                    frame = pd.concat([earlier[[ROW_ID, target]], frame], ignore_index=True)
                    frame = frame.drop_duplicates(ROW_ID, keep="last")
                _write_atomically(frame, folder, batch)
                written[batch] = len(frame)
        return written


def _read_existing(folder, name: str) -> "pd.DataFrame | None":
    """The label file `name` waiting in `folder` or already processed, if there is one."""
    import pandas as pd

    for candidate in (folder / name, folder / PROCESSED / name):
        try:
            with candidate.open("rb") as handle:
                if name.endswith(".parquet"):
                    return pd.read_parquet(handle)
                return pd.read_csv(handle)
        except FileNotFoundError:
            continue
    return None


def _write_atomically(frame: "pd.DataFrame", folder, name: str) -> None:
    """Write CSV or Parquet (by `name`) under a hidden temporary name, then rename it.

    Sensors skip hidden names, so they never see half a file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if name.endswith(".parquet"):
            with temporary.open("wb") as handle:
                frame.to_parquet(handle, index=False)
        else:
            with temporary.open("w") as handle:
                frame.to_csv(handle, index=False)
        temporary.rename(folder / name)
    except BaseException:
        with suppress(OSError):  # it may never have been created
            temporary.unlink()
        raise
