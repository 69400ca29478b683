"""The project schema's task rules: which fields, metrics and estimators a task may use.

A field that means nothing for the project's task (a positive label for a regression, a
classifier for a price, a ROC AUC floor for ten classes) is refused in one line that names it,
the task and what would fit. A metric left unset takes the task's default
(`unified_ai.projects.tasks.DEFAULT_METRIC`), so a minimal project file is valid for any task.
"""

from typing import TYPE_CHECKING, Any

from unified_ai.projects.schema_policy import Policy, QualityFloor
from unified_ai.projects.schema_training import REGRESSORS
from unified_ai.projects.tasks import (
    BINARY,
    DEFAULT_METRIC,
    DEFAULT_SEGMENT_METRIC,
    LIVE_METRICS,
    MULTICLASS,
    REGRESSION,
    SEGMENT_METRICS,
    TASK_METRICS,
    UNIT_SEGMENT_METRICS,
    class_key,
    metrics_of,
    not_for_task,
)

if TYPE_CHECKING:
    from unified_ai.projects.schema import ProjectConfig

#: The live metric a performance trigger watches when the project names none.
DEFAULT_LIVE_METRIC = {BINARY: "roc_auc", MULTICLASS: "macro_f1", REGRESSION: "rmse"}


def _unit(metric: str) -> bool:
    info = next((t[metric] for t in TASK_METRICS.values() if metric in t), None)
    return info.unit_range if info is not None else metric in UNIT_SEGMENT_METRICS


def _at_most_one(where: str, metric: str, values: dict[str, float | None]) -> None:
    """Refuse margins above 1 for a metric whose values are shares (they could never bind)."""
    if not _unit(metric):
        return
    for name, value in values.items():
        if value is not None and abs(value) > 1:
            raise ValueError(f"{where}.{name}: {value} is above 1, and {metric} is a share")


def _own_fields(project: "ProjectConfig") -> None:
    """Refuse the fields that belong to another task."""
    task = project.task
    if task != BINARY and "positive_label" in project.model_fields_set:
        raise ValueError(
            f"positive_label: only binary_classification projects have a positive label "
            f"(task is {task})"
        )
    if task != BINARY and "threshold" in project.evaluation.model_fields_set:
        instead = "; the most probable class wins" if task == MULTICLASS else ""
        raise ValueError(
            f"evaluation.threshold: only binary_classification projects decide at a threshold "
            f"(task is {task}{instead})"
        )
    if task != MULTICLASS and project.classes is not None:
        raise ValueError(
            f"classes: only multiclass_classification projects list classes (task is {task})"
        )
    if task == MULTICLASS and project.classes is not None:
        keys = [class_key(c) for c in project.classes]
        if len(project.classes) < 3:
            raise ValueError(
                f"classes: {len(project.classes)} listed; a multiclass project needs at least 3 "
                "(two: use task: binary_classification)"
            )
        if len(set(keys)) != len(keys):
            raise ValueError(f"classes: {project.classes} lists a class twice")
    regressor = project.estimator.class_name in REGRESSORS
    if task == REGRESSION and not regressor:
        known = ", ".join(sorted(REGRESSORS))
        raise ValueError(
            f"estimator.class: {project.estimator.class_name} predicts classes, and the task is "
            f"regression (regressors: {known})"
        )
    if task != REGRESSION and regressor:
        raise ValueError(
            f"estimator.class: {project.estimator.class_name} predicts a value, and the task is "
            f"{task} (use a classifier, or task: regression)"
        )


def _metric(
    where: str,
    chosen: Any,
    was_set: bool,
    allowed: tuple[str, ...],
    default: str,
    task: str,
    table: dict[str, tuple[str, ...]] | None = None,
) -> str:
    """The metric in effect: the one given (if it is the task's), else the task's default."""
    if not was_set:
        return default
    if chosen not in allowed:
        raise ValueError(f"{where}: {not_for_task(chosen, task, table)}")
    return chosen


def task_policy(project: "ProjectConfig") -> Policy | None:
    """The policy with the task's defaults filled in, or None when nothing changes.

    Raises:
        ValueError: A field belongs to another task, or a metric is not the task's.
    """
    _own_fields(project)
    task = project.task
    policy = project.policy
    given = policy.model_fields_set
    floor = policy.quality_floor
    if task != BINARY and "quality_floor" not in given:
        floor = QualityFloor()  # the default floor (ROC AUC 0.6) is a binary one
    for name in floor.thresholds():
        if name not in TASK_METRICS[task]:
            raise ValueError(f"policy.quality_floor.{name}: {not_for_task(name, task)}")

    champion = policy.beats_champion
    champion_metric = _metric(
        "policy.beats_champion.metric",
        champion.metric,
        "metric" in champion.model_fields_set,
        metrics_of(task),
        DEFAULT_METRIC[task],
        task,
    )
    _at_most_one(
        "policy.beats_champion",
        champion_metric,
        {"min_improvement": champion.min_improvement, "tolerance": champion.tolerance},
    )

    fairness = policy.fairness
    gap_metric = _metric(
        "policy.fairness.metric",
        fairness.metric,
        "metric" in fairness.model_fields_set,
        SEGMENT_METRICS[task],
        DEFAULT_SEGMENT_METRIC[task],
        task,
        SEGMENT_METRICS,
    )
    _at_most_one(
        "policy.fairness",
        gap_metric,
        {
            "max_gap": fairness.max_gap,
            "max_increase_vs_champion": fairness.max_increase_vs_champion,
        },
    )

    performance = policy.triggers.performance
    live_metric = _metric(
        "policy.triggers.performance.metric",
        performance.metric,
        "metric" in performance.model_fields_set,
        LIVE_METRICS[task],
        DEFAULT_LIVE_METRIC[task],
        task,
        LIVE_METRICS,
    )
    _at_most_one("policy.triggers.performance", live_metric, {"floor": performance.floor})
    _at_most_one(
        "policy.triggers.rollback", live_metric, {"margin": policy.triggers.rollback.margin}
    )
    # The default floor (0.65) is a ROC AUC: another task's trigger watches only a floor (for
    # RMSE or MAE, a ceiling) the project sets itself.
    enabled = performance.enabled and (task == BINARY or "floor" in performance.model_fields_set)

    auto = policy.approval.auto_approve
    auto_metric = _metric(
        "policy.approval.auto_approve.metric",
        auto.metric,
        "metric" in auto.model_fields_set,
        metrics_of(task),
        DEFAULT_METRIC[task],
        task,
    )
    _at_most_one(
        "policy.approval.auto_approve", auto_metric, {"min_improvement": auto.min_improvement}
    )
    _at_most_one(
        "policy.approval.auto_approve", gap_metric, {"max_gap_increase": auto.max_gap_increase}
    )

    if task == BINARY:
        return None  # binary defaults are the schema's own
    triggers = policy.triggers.model_copy(
        update={
            "performance": performance.model_copy(
                update={"metric": live_metric, "enabled": enabled}
            )
        }
    )
    approval = policy.approval.model_copy(
        update={"auto_approve": auto.model_copy(update={"metric": auto_metric})}
    )
    return policy.model_copy(
        update={
            "quality_floor": floor,
            "beats_champion": champion.model_copy(update={"metric": champion_metric}),
            "fairness": fairness.model_copy(update={"metric": gap_metric}),
            "triggers": triggers,
            "approval": approval,
        }
    )
