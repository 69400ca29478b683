"""The limits and timings of the serving endpoint, each a `unified-ai serve` option."""

import math
from dataclasses import dataclass, fields


class ServeConfigError(ValueError):
    """A serving option is out of range; the message names the option."""


@dataclass(frozen=True)
class ServeOptions:
    """Limits and timings of the service (each is a `unified-ai serve` option).

    Attributes:
        poll_seconds: How often the `deployed_model` pointer is read.
        retry_seconds: How long a deployment that failed to load waits before another try.
        flush_rows: Served rows per batch file written to the inbox.
        flush_seconds: Longest time a served row waits before its batch file is written.
        max_rows: Most rows one request may carry (more: 413).
        max_body_bytes: Largest request body (larger: 413).
        max_concurrent: Requests scored at the same time.
        queue_seconds: How long a request waits for a scoring slot before 503.
        max_pending_rows: Served rows kept in memory while the inbox cannot be written.
        max_text_chars: Longest text in a categorical or segment without a declared category
            list (longer: 422).
        max_row_bytes: Most bytes of one served row, its values as text (more: 422).
        max_inbox_bytes: Quota of the project's inbox folder: beyond it served rows are
            answered but not written (counted as dropped) and labels get 507.
        max_label_files: Most label files (batches) one labels request may touch (more: 413).
        label_rows_per_minute: Most label rows accepted within any minute (more: 429).
        label_files_per_minute: Most label files written within any minute (more: 429).
        header_seconds: Longest wait for a request's headers (then the connection is closed).
        body_seconds: Longest wait for a request's body (then 400).
        keep_alive_seconds: How long an idle connection is kept open between requests.
        max_connections: Most open connections (per worker); more are answered 503 and closed.
        workers: Server processes sharing the port, each following the deployment itself.
        log_traffic: Whether served rows are written to the inbox (off: answered only; their
            row ids then name no batch, so they cannot be labelled).
    """

    poll_seconds: float = 0.5
    retry_seconds: float = 5.0
    flush_rows: int = 1000
    flush_seconds: float = 30.0
    max_rows: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    max_concurrent: int = 4
    queue_seconds: float = 2.0
    max_pending_rows: int = 100_000
    max_text_chars: int = 256
    max_row_bytes: int = 16 * 1024
    max_inbox_bytes: int = 10 * 1024**3
    max_label_files: int = 10
    label_rows_per_minute: int = 10_000
    label_files_per_minute: int = 100
    header_seconds: float = 5.0
    body_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    max_connections: int = 1000
    workers: int = 1
    log_traffic: bool = True

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            option = "--" + spec.name.replace("_", "-")
            if spec.name == "log_traffic":
                if not isinstance(value, bool):
                    raise ServeConfigError(f"{option}: {value!r} is not true or false")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ServeConfigError(f"{option}: {value!r} is not a number")
            if (
                not math.isfinite(value)
                or value < 0
                or (value == 0 and spec.name != "queue_seconds")
            ):
                raise ServeConfigError(f"{option}: {value!r} must be a positive number")
        if not isinstance(self.workers, int) or isinstance(self.workers, bool):
            raise ServeConfigError(f"--workers: {self.workers!r} is not a whole number")
        if self.max_pending_rows < self.flush_rows:
            raise ServeConfigError(
                f"--max-pending-rows: {self.max_pending_rows} is less than --flush-rows "
                f"{self.flush_rows}"
            )
        if self.label_files_per_minute < self.max_label_files:
            raise ServeConfigError(
                f"--label-files-per-minute: {self.label_files_per_minute} is less than "
                f"--max-label-files {self.max_label_files}"
            )
