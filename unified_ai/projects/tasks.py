"""What each kind of model predicts, and how it is judged: the task catalogue.

A project's `task` decides its estimators, the metrics its evaluation computes (and which way
each is better), the per-segment metrics its fairness gate may compare, and the live metrics
its triggers may watch. Policies name metrics from here; the project schema refuses a metric
or field that does not apply to the project's task, in one line. Pure data: no numpy, no
sklearn, so the code location loads without them.
"""

from dataclasses import dataclass
from typing import Literal

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"

Task = Literal["binary_classification", "multiclass_classification", "regression"]
TASKS: tuple[str, ...] = (BINARY, MULTICLASS, REGRESSION)


@dataclass(frozen=True)
class MetricInfo:
    """A metric's meaning for gates: which way is better and the range of its values.

    Attributes:
        lower_is_better: A floor on it is a maximum, an improvement is a decrease.
        unit_range: Its values lie in [0, 1] (floors and gaps are then bounded by 1 too).
        describe: One line for the docs and the UI.
    """

    lower_is_better: bool
    unit_range: bool
    describe: str


_HIGHER_UNIT = {"lower_is_better": False, "unit_range": True}

#: Every metric the evaluation computes, by task, in the order reports show them.
TASK_METRICS: dict[str, dict[str, MetricInfo]] = {
    BINARY: {
        "roc_auc": MetricInfo(**_HIGHER_UNIT, describe="area under the ROC curve"),
        "f1": MetricInfo(**_HIGHER_UNIT, describe="F1 of the positive class at the threshold"),
        "accuracy": MetricInfo(**_HIGHER_UNIT, describe="share of rows decided correctly"),
        "log_loss": MetricInfo(True, False, "cross-entropy of the probabilities"),
    },
    MULTICLASS: {
        "accuracy": MetricInfo(**_HIGHER_UNIT, describe="share of rows given the right class"),
        "macro_f1": MetricInfo(**_HIGHER_UNIT, describe="F1 averaged over classes"),
        "log_loss": MetricInfo(True, False, "cross-entropy of the class probabilities"),
        "roc_auc_ovr": MetricInfo(
            **_HIGHER_UNIT, describe="one-vs-rest ROC AUC averaged over classes"
        ),
        "per_class_recall": MetricInfo(
            **_HIGHER_UNIT, describe="the lowest recall of any class (a per-class floor)"
        ),
        "per_class_precision": MetricInfo(
            **_HIGHER_UNIT, describe="the lowest precision of any class (a per-class floor)"
        ),
    },
    REGRESSION: {
        "rmse": MetricInfo(True, False, "root mean squared error"),
        "mae": MetricInfo(True, False, "mean absolute error"),
        "r2": MetricInfo(False, False, "coefficient of determination (1 is perfect)"),
        "mape": MetricInfo(
            True, False, "mean absolute percentage error (only where no target is zero)"
        ),
    },
}

#: Per-segment metrics whose largest gap between segments the fairness gate may bound.
SEGMENT_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: ("roc_auc", "f1", "accuracy", "true_positive_rate", "positive_rate"),
    MULTICLASS: ("accuracy", "macro_recall"),
    # mean_signed_error: who is systematically over- (positive) or under-predicted (negative).
    REGRESSION: ("mae", "mean_signed_error"),
}

#: Per-segment metrics whose values are bounded by 1 (a gap of them is too).
UNIT_SEGMENT_METRICS = frozenset(
    {"roc_auc", "f1", "accuracy", "true_positive_rate", "positive_rate", "macro_recall"}
)

#: Metrics the live-performance triggers may watch (what labels of a batch can measure).
LIVE_METRICS: dict[str, tuple[str, ...]] = {
    BINARY: ("roc_auc", "f1", "accuracy"),
    MULTICLASS: ("accuracy", "macro_f1"),
    REGRESSION: ("rmse", "mae", "r2"),
}

#: The default metric of each task's champion rule, performance trigger and fairness gate.
DEFAULT_METRIC = {BINARY: "roc_auc", MULTICLASS: "macro_f1", REGRESSION: "rmse"}
DEFAULT_SEGMENT_METRIC = {
    BINARY: "true_positive_rate",
    MULTICLASS: "macro_recall",
    REGRESSION: "mae",
}

ALL_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for t in TASKS for m in TASK_METRICS[t]))
ALL_SEGMENT_METRICS: tuple[str, ...] = tuple(
    dict.fromkeys(m for t in TASKS for m in SEGMENT_METRICS[t])
)
#: Metrics where a lower value is better, in any task.
LOWER_IS_BETTER = frozenset(
    name for t in TASKS for name, info in TASK_METRICS[t].items() if info.lower_is_better
)


def class_key(value: object) -> str:
    """A class label as text, so 3, 3.0 and "3" (YAML, CSV and Parquet spellings) are one class."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def metrics_of(task: str) -> tuple[str, ...]:
    """The metrics the evaluation computes for `task`, in report order."""
    return tuple(TASK_METRICS[task])


def tasks_with_metric(metric: str, table: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """The tasks that know `metric` (in TASK_METRICS, or in `table` when given)."""
    if table is None:
        return [t for t in TASKS if metric in TASK_METRICS[t]]
    return [t for t in TASKS if metric in table[t]]


def not_for_task(metric: str, task: str, table: dict[str, tuple[str, ...]] | None = None) -> str:
    """Why `metric` cannot be used by a `task` project, as the end of a one-line error."""
    known = metrics_of(task) if table is None else table[task]
    owners = tasks_with_metric(metric, table)
    where = f"a {' / '.join(owners)} metric" if owners else "an unknown metric"
    return f"{metric!r} is {where}, not one of {task}'s: {', '.join(known)}"
