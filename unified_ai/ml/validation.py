"""Data validation with Great Expectations, generated from a project's config.

Expectations are grouped into a few named validations, each of which becomes one blocking
asset check, so the UI shows a readable pass/fail per concern with GX's details as metadata.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.ml.data import project_columns, resolve_features

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig

#: Validation names, in the order they are reported. Each is one blocking check.
VALIDATIONS = ("not_empty", "schema", "target_is_binary", "declared_values")

_NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "float16",
    "float32",
    "float64",
    "Float32",
    "Float64",
]


@dataclass
class ValidationOutcome:
    """The result of one named validation."""

    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    expectations: int = 0

    def describe(self) -> str:
        if self.passed:
            return f"{self.name}: {self.expectations} expectations passed"
        return f"{self.name} failed: " + "; ".join(self.failures)


def build_expectations(project: "ProjectConfig", frame: "pd.DataFrame") -> dict[str, list[Any]]:
    """Return GX expectations per validation name, derived from the project config."""
    import great_expectations as gx

    e = gx.expectations
    features = resolve_features(project, frame)
    schema: list[Any] = [e.ExpectColumnToExist(column=c) for c in project_columns(project, frame)]
    schema += [
        e.ExpectColumnValuesToBeInTypeList(column=c, type_list=_NUMERIC_TYPES)
        for c in features.numeric
    ]
    target = [
        e.ExpectColumnToExist(column=project.target),
        e.ExpectColumnValuesToNotBeNull(column=project.target),
        *_target_expectations(project, e),
    ]
    declared: list[Any] = []
    for column, rule in project.columns.items():
        if rule.min is not None or rule.max is not None:
            declared.append(
                e.ExpectColumnValuesToBeBetween(
                    column=column, min_value=rule.min, max_value=rule.max
                )
            )
        if rule.categories is not None:
            declared.append(e.ExpectColumnValuesToBeInSet(column=column, value_set=rule.categories))
        if not rule.allow_null:
            declared.append(e.ExpectColumnValuesToNotBeNull(column=column))
    return {"schema": schema, "target_is_binary": target, "declared_values": declared}


def _target_expectations(project: "ProjectConfig", e: Any) -> list[Any]:
    """What the target must be for the project's task (the `target_is_binary` validation).

    Binary: exactly two values. Multiclass: at least three values, each a declared class when
    the project declares them. Regression: numbers (finite: `non_finite_failures`).
    """
    from unified_ai.projects.tasks import MULTICLASS, REGRESSION

    if project.task == REGRESSION:
        return [e.ExpectColumnValuesToBeInTypeList(column=project.target, type_list=_NUMERIC_TYPES)]
    if project.task == MULTICLASS:
        found: list[Any] = [
            e.ExpectColumnUniqueValueCountToBeBetween(column=project.target, min_value=3)
        ]
        if project.classes:
            found.append(
                e.ExpectColumnValuesToBeInSet(column=project.target, value_set=project.classes)
            )
        return found
    return [
        e.ExpectColumnUniqueValueCountToBeBetween(column=project.target, min_value=2, max_value=2)
    ]


def _failure_text(result: Any) -> str:
    config = result.expectation_config
    column = config.kwargs.get("column")
    label = f"{config.type}({column})" if column else config.type
    info = result.exception_info or {}
    if info.get("raised_exception"):
        message = str(info.get("exception_message") or "error").splitlines()[0]
        return f"{label}: {message}"
    detail = result.result or {}
    if "unexpected_count" in detail:
        sample = detail.get("partial_unexpected_list", [])[:5]
        return f"{label}: {detail['unexpected_count']} unexpected values, e.g. {sample}"
    if "observed_value" in detail:
        return f"{label}: observed {detail['observed_value']}"
    return label


def validate(project: "ProjectConfig", frame: "pd.DataFrame") -> list[ValidationOutcome]:
    """Run every validation of `project` on `frame` with an ephemeral GX context."""
    outcomes = [
        ValidationOutcome(
            name="not_empty",
            passed=len(frame) > 0,
            failures=[] if len(frame) > 0 else ["the data has no rows"],
            expectations=1,
        )
    ]
    if len(frame) == 0:
        outcomes += [
            ValidationOutcome(name=n, passed=False, failures=["no rows to validate"])
            for n in VALIDATIONS[1:]
        ]
        return outcomes

    suites = build_expectations(project, frame)
    results = _run_suites(project.name, frame, suites)
    # GX's type and range expectations let +inf/-inf through unless a range is declared; no
    # model can be fitted on them, so they fail the schema validation.
    infinite = non_finite_failures(frame, resolve_features(project, frame).numeric)
    if infinite:
        results = [
            ValidationOutcome(r.name, False, [*r.failures, *infinite], r.expectations + 1)
            if r.name == "schema"
            else r
            for r in results
        ]
    if project.task == "regression" and project.target in frame.columns:
        # A regression target must be a finite number on every row (none can be learned).
        bad_target = non_finite_failures(frame, [project.target])
        if bad_target:
            results = [
                ValidationOutcome(r.name, False, [*r.failures, *bad_target], r.expectations + 1)
                if r.name == "target_is_binary"
                else r
                for r in results
            ]
    return outcomes + results


def validate_batch(project: "ProjectConfig", frame: "pd.DataFrame") -> ValidationOutcome:
    """The one validation of a production batch; an empty batch fails it.

    The model's inputs are there, typed as in training, finite, within the declared ranges and
    categories, with unique row ids; no target is needed. These are the row rules the serving
    endpoint applies (`unified_ai.ml.rows`), in pandas: a batch is checked in milliseconds on
    the scoring hot path, without the seconds a Great Expectations import costs.
    """
    from unified_ai.ml.rows import ROW_ID, row_problems

    name = "batch_is_valid"
    if len(frame) == 0:
        return ValidationOutcome(name=name, passed=False, failures=["no rows"])
    failures = []
    if ROW_ID not in frame.columns:
        failures.append(f"column {ROW_ID!r} is missing")
    else:
        repeated = frame[ROW_ID][frame[ROW_ID].duplicated()]
        if len(repeated):
            sample = sorted({str(v) for v in repeated})[:_EXAMPLES]
            failures.append(f"{ROW_ID}: {len(repeated)} repeated row ids, e.g. {sample}")
    problems = row_problems(project, resolve_features(project, frame), frame)
    by_field: dict[str, list] = {}
    for problem in problems:
        by_field.setdefault(problem.field, []).append(problem)
    for field_name, found in by_field.items():
        rows = [p for p in found if p.row is not None]
        count = f"{len(rows)} row(s), e.g. " if rows else ""
        failures.append(f"{field_name}: {count}{found[0].describe()}")
    return ValidationOutcome(
        name=name, passed=not failures, failures=failures, expectations=2 + len(frame.columns)
    )


def non_finite_failures(frame: "pd.DataFrame", columns: list[str]) -> list[str]:
    """One failure per numeric column of `columns` holding +inf or -inf (missing is not)."""
    import numpy as np
    import pandas as pd

    failures = []
    for column in columns:
        if column not in frame.columns:
            continue  # reported by the column-exists expectation
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue  # reported by the type expectation
        numbers = values.to_numpy(dtype="float64", na_value=np.nan)
        infinite = np.isinf(numbers)
        if infinite.any():
            sample = sorted({float(v) for v in numbers[infinite]})
            failures.append(
                f"expect_column_values_to_be_finite({column}): {int(infinite.sum())} non-finite "
                f"values, e.g. {sample}"
            )
    return failures


def _run_suites(
    name: str, frame: "pd.DataFrame", suites: dict[str, list[Any]]
) -> list[ValidationOutcome]:
    """Run each named suite on `frame` with an ephemeral, offline GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    batch = (
        context.data_sources.add_pandas("unified_ai")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("whole")
    )
    outcomes = []
    for suite_name, expectations in suites.items():
        if not expectations:
            outcomes.append(ValidationOutcome(name=suite_name, passed=True, expectations=0))
            continue
        suite = context.suites.add(gx.ExpectationSuite(name=f"{name}.{suite_name}"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{name}.{suite_name}", data=batch, suite=suite)
        )
        result = definition.run(batch_parameters={"dataframe": frame})
        failures = [_failure_text(r) for r in result.results if not r.success]
        outcomes.append(
            ValidationOutcome(
                name=suite_name,
                passed=not failures,
                failures=failures,
                expectations=len(expectations),
            )
        )
    return outcomes


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
