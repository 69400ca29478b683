"""Which labels a request may deliver: for rows that exist, of the task's kind, within caps.

A label becomes ground truth, and ground truth drives retraining and rollback, so a label for
a row nobody served (an invented batch name, a batch still to come, a row number past the end)
is refused with 422 naming it, before anything is written; so is a value the project's task
cannot learn from (`label_problems`): binary, one of the training classes; multiclass, one of
the served model's classes; regression, a finite number.
"""

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import RowProblem
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key
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


def label_problems(
    index: int, item: dict, classes: Sequence[Any], task: str = BINARY
) -> list[RowProblem]:
    """What is wrong with label `item` (at `index`): unknown fields, row id, label value.

    Args:
        index: The label's position in the request.
        item: The label object (`{row_id, label}`).
        classes: Binary: the training classes; multiclass: the served model's classes as text
            (`class_key`); regression: unused.
        task: The project's task.
    """
    problems = [
        RowProblem(index, str(name), "is not a field of a label (row_id, label)")
        for name in item
        if name not in ("row_id", "label")
    ]
    row_id = item.get("row_id")
    if parse_row_id(row_id) is None:
        problems.append(
            RowProblem(
                index,
                "row_id",
                f"{row_id!r} is not a row id the endpoint returned "
                "(<batch file name>:<row number>)",
            )
        )
    if "label" not in item:
        problems.append(RowProblem(index, "label", "is missing"))
    else:
        wrong = _value_problem(task, item["label"], classes)
        if wrong is not None:
            problems.append(RowProblem(index, "label", wrong))
    return problems


def _value_problem(task: str, label: Any, classes: Sequence[Any]) -> str | None:
    """Why `label` is not a value of `task`'s target, or None."""
    if task == REGRESSION:
        return None if _finite_number(label) is not None else f"is {label!r}, not a finite number"
    if task == MULTICLASS:
        if isinstance(label, dict | list) or label is None or class_key(label) not in classes:
            return f"is {label!r}, not one of the deployed model's classes {list(classes)}"
        return None
    import pandas as pd

    from unified_ai.ml.validation import check_labels

    if isinstance(label, dict | list) or check_labels(pd.Series([label]), classes)[1]:
        return f"is {label!r}, not one of the training classes {list(classes)}"
    return None


def _finite_number(label: Any) -> float | None:
    """`label` as a finite float (a JSON number, or text holding one), else None."""
    if isinstance(label, bool) or not isinstance(label, int | float | str):
        return None
    try:
        value = float(label)
    except (ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def label_value(task: str, label: Any) -> Any:
    """A checked label as its label file holds it.

    Multiclass: the class as text (`class_key`); regression: a float; binary: as given (the
    ground_truth asset maps it onto the training classes).
    """
    if task == MULTICLASS:
        return class_key(label)
    if task == REGRESSION:
        return _finite_number(label)
    return label
