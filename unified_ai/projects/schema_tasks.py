"""The project schema's task rules: which fields, metrics and estimators a task may use.

A field that means nothing for the project's task (a positive label for a regression, a
classifier for a price, a ROC AUC floor for ten classes) is refused in one line that names it,
the task and what would fit. A metric left unset takes the task's default
(`unified_ai.projects.tasks.DEFAULT_METRIC`), so a minimal project file is valid for any task.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from unified_ai.projects.schema_policy import Policy, QualityFloor
from unified_ai.projects.schema_review import check_review
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
    not_for_task,
)

if TYPE_CHECKING:
    from unified_ai.projects.schema import ProjectConfig


def _unit(metric: str) -> bool:
    info = next((t[metric] for t in TASK_METRICS.values() if metric in t), None)
    return info.unit_range if info is not None else metric in UNIT_SEGMENT_METRICS


def _at_most_one(where: str, metric: str, values: Mapping[str, float | None]) -> None:
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
    check_review(project.policy.review, task, project.segments)


#: Each task's metrics as a table `not_for_task` reads (the evaluation's metrics).
_TASK_METRIC_NAMES = {task: tuple(names) for task, names in TASK_METRICS.items()}


def _metric(
    where: str, rule: Any, table: dict[str, tuple[str, ...]], default: str, task: str
) -> str:
    """The metric of `rule` in effect: the one given (if it is the task's), else the default."""
    if "metric" not in rule.model_fields_set:
        return default
    if rule.metric not in table[task]:
        raise ValueError(f"{where}.metric: {not_for_task(rule.metric, task, table)}")
    return str(rule.metric)


def _quality_floor(policy: Policy, task: str) -> QualityFloor:
    """The floor in effect: the binary default (ROC AUC 0.6) only for binary projects."""
    floor = policy.quality_floor
    if task != BINARY and "quality_floor" not in policy.model_fields_set:
        floor = QualityFloor()
    for name in floor.thresholds():
        if name not in TASK_METRICS[task]:
            raise ValueError(f"policy.quality_floor.{name}: {not_for_task(name, task)}")
    return floor


def _gate_metrics(policy: Policy, task: str) -> tuple[str, str, str]:
    """(champion rule, fairness, auto-approval) metrics in effect, with their margins checked."""
    champion, fairness = policy.beats_champion, policy.fairness
    auto = policy.approval.auto_approve
    where = "policy.beats_champion"
    champion_metric = _metric(where, champion, _TASK_METRIC_NAMES, DEFAULT_METRIC[task], task)
    margins = {"min_improvement": champion.min_improvement, "tolerance": champion.tolerance}
    _at_most_one(where, champion_metric, margins)
    where = "policy.fairness"
    gap_metric = _metric(where, fairness, SEGMENT_METRICS, DEFAULT_SEGMENT_METRIC[task], task)
    gaps = {
        "max_gap": fairness.max_gap,
        "max_increase_vs_champion": fairness.max_increase_vs_champion,
    }
    _at_most_one(where, gap_metric, gaps)
    where = "policy.approval.auto_approve"
    auto_metric = _metric(where, auto, _TASK_METRIC_NAMES, DEFAULT_METRIC[task], task)
    _at_most_one(where, auto_metric, {"min_improvement": auto.min_improvement})
    _at_most_one(where, gap_metric, {"max_gap_increase": auto.max_gap_increase})
    return champion_metric, gap_metric, auto_metric


def _live_metric(policy: Policy, task: str) -> tuple[str, bool]:
    """(metric, enabled) of the performance trigger, whose metric the rollback rule shares."""
    performance = policy.triggers.performance
    where = "policy.triggers.performance"
    # The task's headline metric is also one a live trigger can watch (`LIVE_METRICS`).
    metric = _metric(where, performance, LIVE_METRICS, DEFAULT_METRIC[task], task)
    _at_most_one(where, metric, {"floor": performance.floor})
    _at_most_one("policy.triggers.rollback", metric, {"margin": policy.triggers.rollback.margin})
    # The default floor (0.65) is a ROC AUC: another task's trigger watches only a floor (for
    # RMSE or MAE, a ceiling) the project sets itself.
    given = "floor" in performance.model_fields_set
    return metric, performance.enabled and (task == BINARY or given)


def task_policy(project: "ProjectConfig") -> Policy | None:
    """The policy with the task's defaults filled in, or None when nothing changes.

    Raises:
        ValueError: A field belongs to another task, or a metric is not the task's.
    """
    _own_fields(project)
    task, policy = project.task, project.policy
    floor = _quality_floor(policy, task)
    champion_metric, gap_metric, auto_metric = _gate_metrics(policy, task)
    live_metric, enabled = _live_metric(policy, task)
    if task == BINARY:
        return None  # binary defaults are the schema's own
    performance = policy.triggers.performance
    watched = performance.model_copy(update={"metric": live_metric, "enabled": enabled})
    triggers = policy.triggers.model_copy(update={"performance": watched})
    auto = policy.approval.auto_approve.model_copy(update={"metric": auto_metric})
    return policy.model_copy(
        update={
            "quality_floor": floor,
            "beats_champion": policy.beats_champion.model_copy(update={"metric": champion_metric}),
            "fairness": policy.fairness.model_copy(update={"metric": gap_metric}),
            "triggers": triggers,
            "approval": policy.approval.model_copy(update={"auto_approve": auto}),
        }
    )
