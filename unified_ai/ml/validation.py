"""Data validation with Great Expectations, generated from a project's config.

Expectations are grouped into a few named validations, each of which becomes one blocking
asset check, so the UI shows a readable pass/fail per concern with GX's details as metadata.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unified_ai.lifetime import import_great_expectations
from unified_ai.ml.data import project_columns, resolve_features

# Label checks live in their own module; re-exported so existing imports keep working.
from unified_ai.ml.label_checks import (
    _EXAMPLES,
    OneLabelPerRow,
    check_class_labels,
    check_labels,
    check_numeric_labels,
    one_label_per_row,
)

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig

__all__ = [
    "VALIDATIONS",
    "OneLabelPerRow",
    "ValidationOutcome",
    "build_expectations",
    "check_class_labels",
    "check_labels",
    "check_numeric_labels",
    "non_finite_failures",
    "one_label_per_row",
    "validate",
    "validate_batch",
]

#: Validation names, in the order they are reported. Each is one blocking check.
VALIDATIONS = ("not_empty", "schema", "target_matches_task", "declared_values")
#: A validation's former name: results recorded under it (before the rename) still count.
#: (`target_matches_task` was `target_is_binary` until every task's target was checked.)
FORMER_NAMES = {"target_matches_task": "target_is_binary"}

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
    import_great_expectations()
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
    return {"schema": schema, "target_matches_task": target, "declared_values": declared}


def _target_expectations(project: "ProjectConfig", e: Any) -> list[Any]:
    """What the target must be for the project's task (the `target_matches_task` validation).

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
                if r.name == "target_matches_task"
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
    import_great_expectations()
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
