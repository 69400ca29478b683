"""Which labels a request may deliver: for rows that exist, within per-request and per-minute caps.

A label becomes ground truth, and ground truth drives retraining and rollback, so a label for
a row nobody served (an invented batch name, a batch still to come, a row number past the end)
is refused with 422 naming it, before anything is written.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import RowProblem
from unified_ai.serving.inbox_files import parse_row_id
from unified_ai.serving.known_rows import KnownRows
from unified_ai.serving.limits import LabelRateLimit
from unified_ai.serving.refusal import Refusal

if TYPE_CHECKING:
    from unified_ai.serving.traffic import TrafficWriter


class LabelGate:
    """Checks a labels request before its files are written.

    Args:
        project: The project's name (for messages).
        writer: The traffic writer: the batches it served, and the inbox and its quota.
        max_files: Most label files (batches) one request may touch (more: 413).
        rows_per_minute: Most label rows accepted within any minute (more: 429).
        files_per_minute: Most label files written within any minute (more: 429).
    """

    def __init__(
        self,
        project: str,
        writer: "TrafficWriter",
        *,
        max_files: int,
        rows_per_minute: int,
        files_per_minute: int,
    ):
        self.project = project
        self.writer = writer
        self.max_files = max_files
        self.known = KnownRows(writer.folder, writer.served_rows)
        self.rate = LabelRateLimit(rows_per_minute, files_per_minute)

    def check(self, pairs: Sequence[tuple[str, Any]]) -> None:
        """Refuse the request unless every row id names an existing row and the caps allow it.

        Args:
            pairs: (row id, label) of each label, the row ids already of the form `<batch>:<n>`.
        """
        parsed = []
        for row_id, _ in pairs:
            batch, number = parse_row_id(row_id) or ("", -1)
            parsed.append((row_id, batch, number))
        batches = list(dict.fromkeys(batch for _, batch, _ in parsed))
        if len(batches) > self.max_files:
            raise Refusal(
                413,
                "too_large",
                f"labels for {len(batches)} batches in one request, more than the limit of "
                f"{self.max_files}; split the request",
            )
        unknown = self.known.unknown(parsed)
        if unknown:
            more = len(unknown) - 1
            raise Refusal(
                422,
                "unknown_rows",
                f"row {unknown[0]}: field 'row_id': {parsed[unknown[0]][0]!r} is not a row this "
                "service served or a batch in the inbox holds"
                + (f" (and {more} more unknown row id(s))" if more else ""),
                [RowProblem(i, "row_id", f"{parsed[i][0]!r} names no served row") for i in unknown],
            )
        if self.writer.inbox_full:
            raise Refusal(
                507,
                "inbox_full",
                f"{self.project}: the inbox reached its quota of {self.writer.max_inbox_bytes} "
                "bytes; labels are refused until room is made",
            )
        self.rate.take(len(pairs), len(batches))
