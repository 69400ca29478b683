"""Data validation with Great Expectations, generated from a project's config.

Expectations are grouped into a few named validations, each of which becomes one blocking
asset check, so the UI shows a readable pass/fail per concern with GX's details as metadata.
"""

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
    schema = [e.ExpectColumnToExist(column=c) for c in project_columns(project, frame)]
    schema += [
        e.ExpectColumnValuesToBeInTypeList(column=c, type_list=_NUMERIC_TYPES)
        for c in features.numeric
    ]
    target = [
        e.ExpectColumnToExist(column=project.target),
        e.ExpectColumnValuesToNotBeNull(column=project.target),
        e.ExpectColumnUniqueValueCountToBeBetween(column=project.target, min_value=2, max_value=2),
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


def batch_expectations(project: "ProjectConfig", frame: "pd.DataFrame") -> list[Any]:
    """Expectations a production batch must meet to be scored.

    The model's inputs are there, typed as in training, within declared ranges and categories;
    no target is needed.
    """
    import great_expectations as gx

    e = gx.expectations
    features = resolve_features(project, frame)
    needed = [*features.all, *project.segments, "_row_id"]
    expectations: list[Any] = [e.ExpectColumnToExist(column=c) for c in dict.fromkeys(needed)]
    expectations.append(e.ExpectColumnValuesToBeUnique(column="_row_id"))
    expectations += [
        e.ExpectColumnValuesToBeInTypeList(column=c, type_list=_NUMERIC_TYPES)
        for c in features.numeric
    ]
    declared = build_expectations(project, frame)["declared_values"]
    keep = set(needed)
    expectations += [x for x in declared if x.column in keep]
    return expectations


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
    return outcomes + _run_suites(project.name, frame, suites)


def validate_batch(project: "ProjectConfig", frame: "pd.DataFrame") -> ValidationOutcome:
    """One validation of a production batch; an empty batch fails it."""
    if len(frame) == 0:
        return ValidationOutcome(name="batch_is_valid", passed=False, failures=["no rows"])
    suites = {"batch_is_valid": batch_expectations(project, frame)}
    return _run_suites(project.name, frame, suites)[0]


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
