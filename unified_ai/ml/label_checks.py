"""Checking label values against a model's classes or numbers, and one label per row id.

Shared by ground truth, live metrics, served labels and training on production rows; kept
apart from the Great Expectations validations of `unified_ai.ml.validation`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


_NOT_A_CLASS = object()
_EXAMPLES = 5


def _as_class(value: Any, classes: Sequence[Any]) -> Any:
    """The training class `value` stands for, or `_NOT_A_CLASS`.

    Types must agree: a boolean is not the class 1 and `yes` is not the class 1; a number
    written as text (`"1"` in a column that also holds words) is that number.
    """
    import numbers

    import numpy as np
    import pandas as pd

    if isinstance(value, str):
        text = value.strip()
        for cls in classes:
            if isinstance(cls, str) and cls == text:
                return cls
        numeric = [c for c in classes if isinstance(c, numbers.Number) and not _is_bool(c)]
        if numeric and text:
            try:
                number = float(text)
            except ValueError:
                return _NOT_A_CLASS
            return next((c for c in numeric if c == number), _NOT_A_CLASS)
        return _NOT_A_CLASS
    if pd.isna(value):
        return _NOT_A_CLASS
    if _is_bool(value):
        return next((c for c in classes if _is_bool(c) and bool(c) == bool(value)), _NOT_A_CLASS)
    if isinstance(value, numbers.Number | np.number):
        return next(
            (
                c
                for c in classes
                if isinstance(c, numbers.Number) and not _is_bool(c) and c == value
            ),
            _NOT_A_CLASS,
        )
    return _NOT_A_CLASS


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_)


def _shown(value: Any) -> Any:
    """A label as it reads in a message: blanks named, numpy scalars as plain numbers."""
    import numpy as np
    import pandas as pd

    if isinstance(value, str):
        return value if value.strip() else "<blank>"
    if pd.isna(value):
        return "<blank>"
    return value.item() if isinstance(value, np.generic) else value


def check_labels(values: "pd.Series", classes: Sequence[Any]) -> tuple["pd.Series", str | None]:
    """The labels as the training classes, or why they cannot be used.

    A label counts only when it is one of `classes` (the target's distinct values in training).
    Blanks, `yes`/`no` where the classes are 0/1 and any other value are refused rather than
    coerced: a blank turned into 0 would skew the live metrics that drive rollbacks.

    Returns:
        The labels mapped onto the class values (typed as in training), and None; or the
        unusable labels and a one-line reason naming how many rows fail and a few of the values.
    """
    import pandas as pd

    mapped: list[Any] = []
    examples: list[Any] = []
    bad = 0
    for value in values.tolist():
        cls = _as_class(value, classes)
        if cls is _NOT_A_CLASS:
            bad += 1
            shown = _shown(value)
            if len(examples) < _EXAMPLES and shown not in examples:
                examples.append(shown)
        mapped.append(cls)
    if bad:
        return values, (
            f"{bad} of {len(values)} rows hold values that are not the training classes "
            f"{list(classes)}, e.g. {examples}"
        )
    return pd.Series(mapped, index=values.index, name=values.name).infer_objects(), None


def check_numeric_labels(values: "pd.Series") -> tuple["pd.Series", str | None]:
    """Regression labels as floats, or why they cannot be used: each must be a finite number.

    A blank, a word or an infinite value is refused rather than coerced (a blank read as 0
    would pull the live error of the deployment wherever it happens to be).

    Returns:
        The labels as floats and None; or the labels as given and a one-line reason naming how
        many rows fail and a few of the values.
    """
    import numpy as np
    import pandas as pd

    numbers = []
    examples: list[Any] = []
    bad = 0
    for value in values.tolist():
        number = _as_number(value)
        if number is None:
            bad += 1
            shown = _shown(value)
            if len(examples) < _EXAMPLES and shown not in examples:
                examples.append(shown)
            number = np.nan
        numbers.append(number)
    if bad:
        return values, f"{bad} of {len(values)} rows are not finite numbers, e.g. {examples}"
    return pd.Series(numbers, index=values.index, name=values.name, dtype="float64"), None


def _as_number(value: Any) -> float | None:
    """A label as a finite float, or None (booleans and blanks are not numbers)."""
    import math
    import numbers

    import numpy as np

    if _is_bool(value):
        return None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, numbers.Number | np.number):
        number = float(value)  # type: ignore[arg-type]
    else:
        return None
    return number if math.isfinite(number) else None


def check_class_labels(
    values: "pd.Series", classes: Sequence[Any]
) -> tuple["pd.Series", str | None]:
    """Multiclass labels as class text (`class_key`), or why they cannot be used.

    A label counts only when it is one of `classes` (the model's class list); 3, 3.0 and "3"
    are one class. Blanks and any other value are refused.

    Returns:
        The labels as text and None; or the labels as given and a one-line reason.
    """
    import pandas as pd

    from unified_ai.projects.tasks import class_key

    known = {class_key(c) for c in classes}
    texts = []
    examples: list[Any] = []
    bad = 0
    for value in values.tolist():
        text = None if _is_blank(value) else class_key(value).strip()
        if text is None or text not in known:
            bad += 1
            shown = _shown(value)
            if len(examples) < _EXAMPLES and shown not in examples:
                examples.append(shown)
        texts.append(text)
    if bad:
        return values, (
            f"{bad} of {len(values)} rows hold values that are not the model's classes "
            f"{[class_key(c) for c in classes]}, e.g. {examples}"
        )
    return pd.Series(texts, index=values.index, name=values.name, dtype=object), None


def _is_blank(value: Any) -> bool:
    import pandas as pd

    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class OneLabelPerRow:
    """Labels reduced to one per row id, and what was set aside to get there.

    Attributes:
        labels: The rows kept: one per row id, the first of its exact duplicates.
        rows: Label rows given.
        duplicate_rows: Rows that repeat the label already given for their row id (counted once).
        conflicting_ids: Row ids given different labels, quarantined (sorted as text).
        conflicting_rows: The label rows of those row ids.
    """

    labels: "pd.DataFrame"
    rows: int
    duplicate_rows: int
    conflicting_ids: list[str]
    conflicting_rows: int

    def describe(self) -> list[str]:
        """One phrase per kind of problem (empty when every row gave one label of its own)."""
        notes = []
        if self.duplicate_rows:
            notes.append(f"{self.duplicate_rows} exact duplicate label rows counted once")
        if self.conflicting_ids:
            notes.append(
                f"{len(self.conflicting_ids)} row ids with conflicting labels quarantined "
                f"({self.conflicting_rows} label rows; e.g. {self.conflicting_ids[:_EXAMPLES]})"
            )
        return notes


def one_label_per_row(labels: "pd.DataFrame", row_id: str, label: str) -> OneLabelPerRow:
    """Keep one label per row id: the rule ground truth, live metrics and training share.

    Exact duplicates (same row id, same label) count once. A row id given two or more
    different labels is quarantined: none of its labels is kept, since nothing says which is
    true, and a label file cannot weigh a row more by repeating it.

    Args:
        labels: Label rows; `row_id` and `label` hold already-checked values.
        row_id: The row id column.
        label: The label column.
    """
    distinct = labels.groupby(row_id, sort=False, dropna=False)[label].nunique(dropna=False)
    conflicting = distinct[distinct > 1].index
    in_conflict = labels[row_id].isin(conflicting)
    kept = labels[~in_conflict]
    repeated = kept.duplicated(subset=[row_id, label])
    return OneLabelPerRow(
        labels=kept[~repeated],
        rows=len(labels),
        duplicate_rows=int(repeated.sum()),
        conflicting_ids=sorted(str(i) for i in conflicting),
        conflicting_rows=int(in_conflict.sum()),
    )
