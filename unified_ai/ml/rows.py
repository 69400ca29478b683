"""Row-level validation of model inputs, with the rules production batches follow.

Pure pandas/numpy (no Great Expectations: it takes seconds to import), so a serving endpoint
can check every request and name the row, the field and the reason of each problem:

- the model's features and the project's segments are present;
- numeric features are numbers (not text, not booleans) and finite; missing is allowed, because
  the training pipeline imputes it;
- categorical features and segments are single values (text or numbers), compared as text;
- the project's declared `columns` rules hold: `min`/`max`, `categories`, `allow_null`.
"""

import math
import numbers
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# Defined with the other names of the contract; validation and serving import it from here.
from unified_ai.names import ROW_ID as ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.projects.schema import ColumnRule, ProjectConfig

#: How much of an offending value a message shows.
_SHOWN = 40


@dataclass(frozen=True)
class RowProblem:
    """Why one row (or, with `row` None, every row) cannot be used.

    Attributes:
        row: Position of the row in the request or frame (0-based); None for a missing column.
        field: The column concerned.
        reason: What is wrong, in words.
    """

    row: int | None
    field: str
    reason: str

    def describe(self) -> str:
        where = "every row" if self.row is None else f"row {self.row}"
        return f"{where}: field {self.field!r}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


def required_columns(project: "ProjectConfig", features: "FeatureColumns") -> list[str]:
    """Columns every row needs: the model's features and the project's segments."""
    return list(dict.fromkeys([*features.all, *project.segments]))


def known_columns(project: "ProjectConfig", features: "FeatureColumns") -> list[str]:
    """Columns a row may carry: the required ones and the project's declared columns."""
    return list(dict.fromkeys([*required_columns(project, features), *project.columns]))


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def finite(value: Any) -> bool:
    """A real number that is finite (an integer too large for a float is not)."""
    if not isinstance(value, numbers.Real) or is_bool(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_)


def value_kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return f"a {type(value).__name__}"


def frame_from_records(
    records: Sequence[Any], project: "ProjectConfig", features: "FeatureColumns"
) -> tuple["pd.DataFrame | None", list[RowProblem]]:
    """A frame of JSON records, or the problems that stop it from being built.

    Every record must be an object naming every required column (null for an unknown value:
    an absent field is more often a client bug than a deliberate blank) and no column the
    project does not know (a misspelt field would otherwise be ignored without a word).
    """
    import pandas as pd

    required = required_columns(project, features)
    known = known_columns(project, features)
    allowed = set(known)
    problems: list[RowProblem] = []
    present: set[str] = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                RowProblem(index, "", f"is {value_kind(record)}, not an object of field: value")
            )
            continue
        present.update(record)
        problems += [
            RowProblem(index, column, "is missing (send null for an unknown value)")
            for column in required
            if column not in record
        ]
        problems += [
            RowProblem(index, str(name), f"is not an input of project {project.name}")
            for name in record
            if name not in allowed
        ]
    if problems:
        return None, problems
    # Kept as the values JSON gave (object columns): pandas' inference would turn an integer
    # too large for a float into an OverflowError instead of a problem naming the row. An empty
    # string is null, as an empty CSV cell is: served rows become batch files, and a row must
    # mean the same served and read back from its batch (`unified_ai.ml.data.CSV_MISSING`).
    frame = pd.DataFrame(
        {
            column: pd.Series(
                [None if (v := record.get(column)) == "" else v for record in records],
                dtype=object,
            )
            for column in known
            if column in present
        }
    )
    return frame, []


def row_problems(
    project: "ProjectConfig", features: "FeatureColumns", frame: "pd.DataFrame"
) -> list[RowProblem]:
    """Every problem of every row of `frame`, ordered by row (missing columns first).

    Args:
        project: The project whose segments and declared `columns` rules apply.
        features: The model's feature columns (the deployed model's, which may differ from the
            project file's when features changed since it was trained).
        frame: The rows, one column per field.
    """
    problems = [
        RowProblem(None, column, "column is missing")
        for column in required_columns(project, features)
        if column not in frame.columns
    ]
    numeric = [c for c in features.numeric if c in frame.columns]
    for column in numeric:
        problems += _number_problems(frame[column], column)
    single = [
        c for c in [*features.categorical, *project.segments] if c not in numeric and c in frame
    ]
    for column in dict.fromkeys(single):
        problems += _single_value_problems(frame[column], column)
    for column, rule in project.columns.items():
        if column in frame.columns:
            typed = column in numeric or column in single
            problems += _rule_problems(frame[column], column, rule, typed=typed)
    # Stable: within a row, problems keep the column order above.
    return sorted(problems, key=lambda p: -1 if p.row is None else p.row)


def _number_problems(values: "pd.Series", column: str) -> list[RowProblem]:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return [
            RowProblem(row, column, f"is a boolean ({value}), not a number")
            for row, value in enumerate(values.tolist())
            if not is_null(value)
        ]
    if pd.api.types.is_numeric_dtype(values):
        numbers_ = values.to_numpy(dtype="float64", na_value=np.nan)
        return [
            RowProblem(int(row), column, f"is {numbers_[row]}, not a finite number")
            for row in np.flatnonzero(np.isinf(numbers_))
        ]
    problems = []
    for row, value in enumerate(values.tolist()):
        if is_null(value):
            continue  # the pipeline imputes a missing number
        if is_bool(value):
            problems.append(RowProblem(row, column, f"is a boolean ({value}), not a number"))
        elif isinstance(value, numbers.Real):
            if not finite(value):
                problems.append(RowProblem(row, column, f"is {shown(value)}, not a finite number"))
        else:
            problems.append(
                RowProblem(row, column, f"is {value_kind(value)} ({shown(value)}), not a number")
            )
    return problems


def _single_value_problems(values: "pd.Series", column: str) -> list[RowProblem]:
    """A categorical value is text, a number or a boolean; never a list, object or infinity."""
    return _checked(values, _rows_to_check_single(values), single_value_problem, column)


def single_value_problem(row: int, value: Any, column: str) -> list[RowProblem]:
    if is_null(value) or isinstance(value, str) or is_bool(value):
        return []
    if isinstance(value, numbers.Real):
        if not finite(value):
            return [RowProblem(row, column, f"is {shown(value)}, not a category")]
        return []
    return [RowProblem(row, column, f"is {value_kind(value)} ({shown(value)}), not a single value")]


def _checked(values: "pd.Series", rows: Any, check: Any, *args: Any) -> list[RowProblem]:
    """`check(row, value, *args)` on the rows that may have a problem.

    `rows` is a mask of them, or None for every row: a clean column of a million rows costs a
    few vectorised passes instead of a million calls.
    """
    import numpy as np

    if rows is None:
        return [p for row, value in enumerate(values.tolist()) for p in check(row, value, *args)]
    picked = np.flatnonzero(rows)
    # `tolist` gives Python scalars, as the full pass does: messages show `inf`, not numpy's repr.
    pairs = zip(picked.tolist(), values.iloc[picked].tolist(), strict=True)
    return [p for row, value in pairs for p in check(row, value, *args)]


def _is_plain_numeric(values: "pd.Series") -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _all_text(values: "pd.Series") -> bool:
    """Every present value is a `str` (a CSV text column)."""
    import pandas as pd

    return pd.api.types.infer_dtype(values, skipna=True) in {"string", "empty"}


def _rows_to_check_single(values: "pd.Series") -> Any:
    """Rows of a categorical column that may hold a problem: a superset, computed in bulk."""
    import numpy as np
    import pandas as pd

    if _is_plain_numeric(values):
        return np.isinf(values.to_numpy(dtype="float64", na_value=np.nan))
    if pd.api.types.is_bool_dtype(values) or _all_text(values):
        return np.zeros(len(values), dtype=bool)
    return None


def category_text(value: Any) -> str:
    """How a category compares: as text, with a whole number written without `.0`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rule_problems(
    values: "pd.Series", column: str, rule: "ColumnRule", *, typed: bool
) -> list[RowProblem]:
    """Problems with the declared rule.

    With `typed`, the column's values were type-checked already: a value of the wrong type is
    reported once, by that check.
    """
    allowed = {category_text(c) for c in rule.categories} if rule.categories is not None else None
    rows = _rows_to_check_rule(values, rule, allowed)
    return _checked(values, rows, rule_problem, column, rule, allowed, typed)


def _rows_to_check_rule(values: "pd.Series", rule: "ColumnRule", allowed: set[str] | None) -> Any:
    """Rows that may break the rule (a superset, computed in bulk), or None for every row."""
    import numpy as np
    import pandas as pd

    ranged = rule.min is not None or rule.max is not None
    present = values.notna().to_numpy()
    rows = np.zeros(len(values), dtype=bool) if rule.allow_null else ~present
    if _is_plain_numeric(values):
        number = values.to_numpy(dtype="float64", na_value=np.nan)
        if ranged:
            with np.errstate(invalid="ignore"):
                rows |= present & ~np.isfinite(number)
                # <= and >=: a value at the bound after rounding to float is checked exactly.
                if rule.min is not None:
                    rows |= number <= rule.min
                if rule.max is not None:
                    rows |= number >= rule.max
    elif _all_text(values):
        if ranged:
            rows |= present  # text is never a number in range
    else:
        return None
    if allowed is not None:
        codes, uniques = pd.factorize(values)
        unknown = [i for i, u in enumerate(uniques.tolist()) if category_text(u) not in allowed]
        rows |= np.isin(codes, unknown)
    return rows


def rule_problem(
    row: int,
    value: Any,
    column: str,
    rule: "ColumnRule",
    allowed: set[str] | None,
    typed: bool,
) -> list[RowProblem]:
    if is_null(value):
        return (
            []
            if rule.allow_null
            else [RowProblem(row, column, "is null, which the project forbids")]
        )
    problems = []
    if rule.min is not None or rule.max is not None:
        number = isinstance(value, numbers.Real) and not is_bool(value)
        if not finite(value):
            if not typed:  # a numeric feature's type check has reported it already
                text = f"{value_kind(value)} ({shown(value)})" if not number else shown(value)
                problems.append(
                    RowProblem(row, column, f"is {text}, not a number in the declared range")
                )
        elif rule.min is not None and value < rule.min:
            problems.append(
                RowProblem(row, column, f"is {value}, below the declared minimum {rule.min}")
            )
        elif rule.max is not None and value > rule.max:
            problems.append(
                RowProblem(row, column, f"is {value}, above the declared maximum {rule.max}")
            )
    scalar = isinstance(value, str) or is_bool(value) or finite(value)
    if allowed is not None and (scalar or not typed) and category_text(value) not in allowed:
        problems.append(
            RowProblem(
                row,
                column,
                f"is {shown(value)}, not one of the declared categories {rule.categories}",
            )
        )
    return problems


def as_model_categories(
    frame: "pd.DataFrame",
    columns: Sequence[str],
    known: Mapping[str, Collection[str]] | None = None,
) -> "pd.DataFrame":
    """`frame` with its categorical `columns` as the text the model was trained on.

    The training pipeline turns categories into text with `str()`, so a column that held
    floats in training (`0.0`, `1.0`, because a blank made pandas read it as float) knows
    `"0.0"`, while a client sending `0` would produce `"0"`: an unknown category the encoder
    silently ignores. With the fitted encoder's `known` categories, a number is written the
    way the model knows it; without them, plain `str()` (as batch scoring does).
    """
    import numpy as np
    import pandas as pd

    frame = frame.copy()
    known = known or {}
    for column in columns:
        if column not in frame.columns:
            continue
        seen = set(known.get(column) or ())

        def text(value: Any, seen: set[str] = seen) -> Any:
            if pd.isna(value):
                return np.nan
            plain = str(value)
            if not seen or plain in seen or is_bool(value):
                return plain
            if isinstance(value, numbers.Real):
                for candidate in (category_text(value), str(float(value))):
                    if candidate in seen:
                        return candidate
            return plain

        frame[column] = frame[column].map(text).astype(object)
    return frame
