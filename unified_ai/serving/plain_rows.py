"""A request's rows checked and turned into model inputs on plain Python values: no DataFrame.

The batch path (`ServingService.frame_inputs`) builds a pandas frame of the request and runs
`unified_ai.ml.rows` over it, which is the right tool for a file of a million rows and costs
about a millisecond of pandas overhead for a single row. This module applies the same rules,
value by value, with the same messages and in the same order, and hands the model one typed
array per input column (`TrainedModel.predict_columns`):

- the structure (`frame_from_records`): every row an object, every required column present,
  no column the project does not know; an empty string is null, as an empty CSV cell is;
- `row_problems`: numbers are finite numbers, categories single values, the declared `columns`
  rules hold (per-value functions of `unified_ai.ml.rows`, called on every row);
- `as_model_categories`: a category written the way the fitted encoder knows it.

The two paths give identical answers and identical refusals: the serving tests check it on a
corpus of hostile rows.
"""

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

from unified_ai.ml.rows import (
    RowProblem,
    category_text,
    finite,
    is_bool,
    is_null,
    known_columns,
    required_columns,
    rule_problem,
    shown,
    single_value_problem,
)
from unified_ai.ml.rows import value_kind as kind

if TYPE_CHECKING:
    import numpy as np

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.projects.schema import ProjectConfig


@dataclass(frozen=True)
class CheckedRows:
    """A request's rows, checked: what the model scores and what the inbox is sent.

    Attributes:
        count: How many rows.
        model: Per model input column (the features, in the model's order), a float64 array
            (numeric) or an object array of text and NaN (categorical).
        written: Per column of the request that the project knows, in the project's order, its
            values as the batch path's frame holds them: numeric features as a float64 array,
            categoricals as the model's text (NaN when missing), anything else as sent (an
            empty string as None).
    """

    count: int
    model: dict[str, "np.ndarray"]
    written: dict[str, Any]


@dataclass(frozen=True)
class RowPlan:
    """What checking a row needs, worked out once per served model (not once per request).

    Attributes:
        project: The project's name (for messages).
        required: Columns every row needs (`unified_ai.ml.rows.required_columns`).
        known: Columns a row may hold, in the project's order (`known_columns`).
        numeric: The model's numeric features.
        single: Categorical features and segments that are not numeric features.
        rules: Per declared column: (column, rule, its categories as text or None, whether
            its type is checked by the feature checks).
        categories: Per categorical feature, the categories its encoder knows (as text).
        model_columns: The model's input columns, in its order.
    """

    project: str
    required: tuple[str, ...]
    known: tuple[str, ...]
    numeric: tuple[str, ...]
    single: tuple[str, ...]
    rules: tuple[tuple[str, Any, set[str] | None, bool], ...]
    categories: Mapping[str, frozenset[str]]
    model_columns: tuple[str, ...]
    categorical: frozenset[str] = frozenset()
    #: Per categorical feature, the model's text of values seen before (`_model_texts`).
    texts: dict[str, dict[tuple[type, Any], Any]] = field(default_factory=dict)


def row_plan(
    project: "ProjectConfig",
    features: "FeatureColumns",
    categories: Mapping[str, frozenset[str]],
) -> RowPlan:
    """The `RowPlan` of `project`'s rows for a model of `features` and encoder `categories`."""
    numeric = tuple(features.numeric)
    single = tuple(
        dict.fromkeys(c for c in [*features.categorical, *project.segments] if c not in numeric)
    )
    rules = tuple(
        (
            column,
            rule,
            {category_text(c) for c in rule.categories} if rule.categories is not None else None,
            column in numeric or column in single,
        )
        for column, rule in project.columns.items()
    )
    return RowPlan(
        project=project.name,
        required=tuple(required_columns(project, features)),
        known=tuple(known_columns(project, features)),
        numeric=numeric,
        single=single,
        rules=rules,
        categories=dict(categories),
        model_columns=tuple(features.all),
        categorical=frozenset(features.categorical),
    )


def structure_problems(records: Sequence[Any], plan: RowPlan) -> tuple[list[str], list[RowProblem]]:
    """The columns the request holds (in the project's order) and its structural problems.

    The rules and messages of `unified_ai.ml.rows.frame_from_records`.
    """
    required = plan.required
    known = plan.known
    allowed = set(known)
    exact = set(required)
    problems: list[RowProblem] = []
    present: set[str] = set()
    exact_rows = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            problems.append(
                RowProblem(index, "", f"is {kind(record)}, not an object of field: value")
            )
            continue
        if record.keys() == exact:
            exact_rows += 1  # the common row: exactly the required columns
            continue
        present.update(record)
        problems += [
            RowProblem(index, column, "is missing (send null for an unknown value)")
            for column in required
            if column not in record
        ]
        problems += [
            RowProblem(index, str(name), f"is not an input of project {plan.project}")
            for name in record
            if name not in allowed
        ]
    if exact_rows:
        present.update(exact)
    return [column for column in known if column in present], problems


def number_problem(row: int, value: Any, column: str) -> RowProblem | None:
    """Why `value` is not a numeric feature's value (None: it is, or it is missing).

    The per-value rules of `unified_ai.ml.rows._number_problems` on a column of JSON values.
    """
    if type(value) is float and math.isfinite(value):
        return None
    if is_null(value):
        return None  # the pipeline imputes a missing number
    if is_bool(value):
        return RowProblem(row, column, f"is a boolean ({value}), not a number")
    if isinstance(value, numbers.Real):
        if not finite(value):
            return RowProblem(row, column, f"is {shown(value)}, not a finite number")
        return None
    return RowProblem(row, column, f"is {kind(value)} ({shown(value)}), not a number")


def value_problems(plan: RowPlan, values: Mapping[str, list[Any]]) -> list[RowProblem]:
    """Every problem of every row, in the order `unified_ai.ml.rows.row_problems` gives them.

    A column whose values plainly hold (finite numbers in range, text of a declared category:
    decided in bulk) is not checked value by value; any other is, by the same per-value rules.

    Args:
        plan: What the rows are checked against.
        values: Per column the request holds, its values (an empty string already None); every
            required column is there.
    """
    problems: list[RowProblem] = []
    # First every numeric column at once (and every category column): when all of them plainly
    # hold, which is most requests, one check replaces one per column.
    numbers = [values[column] for column in plan.numeric]
    if not numbers or _finite_numbers(list(chain.from_iterable(numbers))) is None:
        for column, column_values in zip(plan.numeric, numbers, strict=True):
            if _finite_numbers(column_values) is not None:
                continue
            for row, value in enumerate(column_values):
                found = number_problem(row, value, column)
                if found is not None:
                    problems.append(found)
    categories = [values[column] for column in plan.single]
    if not categories or not _plain_categories(list(chain.from_iterable(categories))):
        for column, column_values in zip(plan.single, categories, strict=True):
            if _plain_categories(column_values):
                continue
            for row, value in enumerate(column_values):
                problems += single_value_problem(row, value, column)
    for column, rule, allowed, typed in plan.rules:
        if column not in values:
            continue
        if _rule_plainly_holds(values[column], rule, allowed):
            continue
        low, high = rule.min, rule.max
        ranged = low is not None or high is not None
        for row, value in enumerate(values[column]):
            kind_of = type(value)
            # The values that plainly hold the rule skip the full check (`_rule_problem`).
            if kind_of is str:
                if not ranged and (allowed is None or value in allowed):
                    continue
            elif (kind_of is float and math.isfinite(value)) or kind_of is int:
                if (
                    (low is None or value >= low)
                    and (high is None or value <= high)
                    and (allowed is None or category_text(value) in allowed)
                ):
                    continue
            elif value is None and rule.allow_null:
                continue
            problems += rule_problem(row, value, column, rule, allowed, typed)
    return sorted(problems, key=lambda p: -1 if p.row is None else p.row)


#: The types of a column of text (and nulls); of numbers (and nulls); of categories.
_TEXT = {str, type(None)}
_NUMBERS = {float, int, type(None)}
_CATEGORIES = {str, float, int, bool, type(None)}


def _finite_numbers(column: list[Any]) -> list[Any] | None:
    """The present values of a column of finite numbers (nulls aside), else None.

    Decided by one exact sum: it is finite when every value is (a sum too large for a float,
    or a NaN among them, sends the column to the value-by-value check, which is exact).
    """
    kinds = set(map(type, column))
    if not kinds <= _NUMBERS:
        return None
    present = [v for v in column if v is not None] if type(None) in kinds else column
    return present if _finite_sum(present) else None


def _finite_sum(values: list[Any]) -> bool:
    try:
        return math.isfinite(math.fsum(values))
    except (OverflowError, ValueError):  # a huge value, or inf - inf
        return False


def _plain_categories(column: list[Any]) -> bool:
    """Whether every value is plainly a category: text, a boolean, a finite number, or null."""
    kinds = set(map(type, column))
    if kinds <= _TEXT:
        return True
    if not kinds <= _CATEGORIES:
        return False
    return _finite_sum([v for v in column if type(v) is float or type(v) is int])


def _rule_plainly_holds(column: list[Any], rule: Any, allowed: set[str] | None) -> bool:
    """Whether every value of `column` holds `rule`, decided in bulk (False: check each)."""
    if None in column and not rule.allow_null:
        return False
    ranged = rule.min is not None or rule.max is not None
    if set(map(type, column)) <= _TEXT:
        return not ranged and (allowed is None or set(column) - {None} <= allowed)
    if allowed is not None:
        return False
    numbers_ = _finite_numbers(column)
    if numbers_ is None:
        return False
    if not numbers_:
        return True
    # Python's comparisons, as the value-by-value check makes them (exact for any integer).
    return (rule.min is None or min(numbers_) >= rule.min) and (
        rule.max is None or max(numbers_) <= rule.max
    )


def model_text(value: Any, seen: frozenset[str] | set[str]) -> Any:
    """A categorical value as the model's text (`unified_ai.ml.rows.as_model_categories`)."""
    if value is None or (type(value) is float and value != value):
        return math.nan
    plain = value if type(value) is str else str(value)
    if not seen or plain in seen or is_bool(value):
        return plain
    if isinstance(value, numbers.Real):
        for candidate in (category_text(value), str(float(value))):
            if candidate in seen:
                return candidate
    return plain


#: Most values remembered per categorical feature (a client chooses what it sends).
MEMO_VALUES = 1_000


def _model_texts(
    values: list[Any], seen: frozenset[str], memo: dict[tuple[type, Any], Any] | None = None
) -> list[Any]:
    """`model_text` of each value, worked out once per distinct value (and type).

    `memo` keeps the texts for later requests (up to `MEMO_VALUES`): the few values a feature
    takes are worked out once per served model, not once per request.
    """
    done: dict[tuple[type, Any], Any] = {} if memo is None else memo
    texts: list[Any] = []
    for value in values:
        if type(value) is str and (not seen or value in seen):
            texts.append(value)
            continue
        if value is None or (type(value) is float and value != value):
            texts.append(math.nan)
            continue
        key = (type(value), value)  # 1, 1.0 and True are equal keys, not equal texts
        text = done.get(key)
        if text is None:
            text = model_text(value, seen)
            if memo is None or len(done) < MEMO_VALUES:
                done[key] = text
        texts.append(text)
    return texts


def check_rows(
    records: Sequence[Any],
    plan: RowPlan,
    more_problems: Callable[[Mapping[str, list[Any]]], list[RowProblem]],
) -> tuple[CheckedRows | None, list[RowProblem]]:
    """The checked rows of a request, or every problem that refuses it (sorted by row).

    Args:
        records: The request's rows (JSON values).
        plan: What they are checked against (`row_plan`).
        more_problems: Further problems of valid-looking rows (the served-text limits), given
            the request's columns (an empty string as None); asked for only when the structure
            holds, as the batch path does.
    """
    import numpy as np

    present, problems = structure_problems(records, plan)
    if problems:
        return None, sorted(problems, key=lambda p: -1 if p.row is None else p.row)
    values: dict[str, list[Any]] = {}
    for column in present:
        column_values = [record.get(column) for record in records]
        if "" in column_values:  # an empty string is null, as an empty CSV cell is
            column_values = [None if v == "" else v for v in column_values]
        values[column] = column_values
    problems = value_problems(plan, values) + more_problems(values)
    if problems:
        return None, sorted(problems, key=lambda p: -1 if p.row is None else p.row)
    numeric = plan.numeric
    count = len(records)
    # Checked: numbers and nulls only; numpy reads None as NaN, an integer as float(). One
    # array for every numeric column (a row each), not one array per column.
    numbers = dict(
        zip(numeric, np.array([values[c] for c in numeric], dtype="float64"), strict=True)
    )
    written: dict[str, Any] = {}
    for column, column_values in values.items():
        if column in numeric:
            written[column] = numbers[column]
        elif column in plan.categorical:
            seen = plan.categories.get(column) or frozenset()
            memo = plan.texts.get(column)
            if memo is None:
                memo = plan.texts.setdefault(column, {})
            written[column] = _model_texts(column_values, seen, memo)
        else:
            written[column] = column_values
    texts = [c for c in plan.model_columns if c not in numbers]
    table = np.empty((len(texts), count), dtype=object)
    if texts:  # numpy cannot broadcast an empty list into (0, count)
        table[:] = [written[column] for column in texts]
    typed = {**numbers, **dict(zip(texts, table, strict=True))}
    model = {column: typed[column] for column in plan.model_columns}
    return CheckedRows(count=count, model=model, written=written), []
