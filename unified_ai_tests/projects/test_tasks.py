"""A project's task decides its estimators, metrics and fields; the rest is refused in a line."""

import textwrap
import typing

import pytest

from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.projects.schema_base import LiveMetric, Metric, SegmentMetric
from unified_ai.projects.tasks import (
    ALL_METRICS,
    ALL_SEGMENT_METRICS,
    LIVE_METRICS,
    TASKS,
)

REGRESSION = """\
name: prices
task: regression
data: {source: prices.csv}
target: price
features: {numeric: [x1], categorical: [colour]}
segments: [region]
estimator: {class: Ridge}
"""

MULTICLASS = """\
name: queues
task: multiclass_classification
data: {source: queues.csv}
target: queue
features: {numeric: [x1], categorical: [colour]}
estimator: {class: LogisticRegression}
"""


def write(folder, text: str, extra: str = ""):
    path = folder / "project.yaml"
    path.write_text(textwrap.dedent(text) + extra)
    return path


def refused(path, expected: str) -> str:
    with pytest.raises(ProjectConfigError, match=expected) as raised:
        load_project_file(path)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_literal_metric_lists_match_the_task_catalogue():
    assert set(typing.get_args(Metric)) == set(ALL_METRICS)
    assert set(typing.get_args(SegmentMetric)) == set(ALL_SEGMENT_METRICS)
    assert set(typing.get_args(LiveMetric)) == {m for t in TASKS for m in LIVE_METRICS[t]}


def test_a_minimal_regression_project_gets_the_task_defaults(tmp_path):
    project = load_project_file(write(tmp_path, REGRESSION))
    policy = project.policy
    assert project.task == "regression"
    assert policy.quality_floor.thresholds() == {}  # no binary ROC AUC floor
    assert policy.beats_champion.metric == "rmse"
    assert policy.fairness.metric == "mae"
    assert policy.approval.auto_approve.metric == "rmse"
    assert policy.triggers.performance.metric == "rmse"
    # The default floor is a ROC AUC: a regression trigger needs its own ceiling.
    assert policy.triggers.performance.enabled is False


def test_a_regression_policy_in_its_own_units(tmp_path):
    extra = (
        "policy:\n"
        "  quality_floor: {rmse: 5.5, r2: 0.1}\n"
        "  beats_champion: {metric: mae, min_improvement: 0.0, tolerance: 0.25}\n"
        "  fairness: {metric: mean_signed_error, max_gap: 3.0}\n"
        "  triggers: {performance: {floor: 6.0}, rollback: {margin: 0.5}}\n"
    )
    project = load_project_file(write(tmp_path, REGRESSION, extra))
    assert project.policy.quality_floor.thresholds() == {"rmse": 5.5, "r2": 0.1}
    assert project.policy.fairness.max_gap == 3.0
    assert project.policy.triggers.performance.enabled is True
    assert project.policy.triggers.performance.metric == "rmse"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("positive_label: 1\n", r"positive_label: only binary_classification .*task is regression"),
        ("evaluation: {threshold: 0.4}\n", r"evaluation\.threshold: only binary_classification"),
        ("classes: [a, b, c]\n", r"classes: only multiclass_classification projects"),
        (
            "policy: {quality_floor: {roc_auc: 0.7}}\n",
            r"policy\.quality_floor\.roc_auc: 'roc_auc' is a binary_classification / "
            r"multiclass_classification metric|policy\.quality_floor\.roc_auc: 'roc_auc' is a "
            r"binary_classification metric, not one of regression's: rmse, mae, r2, mape",
        ),
        (
            "policy: {beats_champion: {metric: accuracy}}\n",
            r"policy\.beats_champion\.metric: 'accuracy' is a binary_classification / "
            r"multiclass_classification metric, not one of regression's",
        ),
        (
            "policy: {fairness: {metric: true_positive_rate}}\n",
            r"policy\.fairness\.metric: 'true_positive_rate' is a binary_classification metric, "
            r"not one of regression's: mae, mean_signed_error",
        ),
    ],
)
def test_fields_of_another_task_are_refused(tmp_path, extra, expected):
    refused(write(tmp_path, REGRESSION, extra), expected)


def test_a_classifier_cannot_predict_a_price_nor_a_regressor_a_class(tmp_path):
    text = REGRESSION.replace("class: Ridge", "class: RandomForestClassifier")
    refused(
        write(tmp_path, text),
        r"estimator\.class: RandomForestClassifier predicts classes, and the task is regression",
    )
    text = MULTICLASS.replace("class: LogisticRegression", "class: HistGradientBoostingRegressor")
    refused(write(tmp_path, text), r"predicts a value, and the task is multiclass_classification")


def test_multiclass_defaults_and_class_list(tmp_path):
    project = load_project_file(write(tmp_path, MULTICLASS, "classes: [billing, tech, sales]\n"))
    assert project.classes == ["billing", "tech", "sales"]
    assert project.policy.beats_champion.metric == "macro_f1"
    assert project.policy.fairness.metric == "macro_recall"
    refused(write(tmp_path, MULTICLASS, "classes: [a, b]\n"), r"classes: 2 listed; .*at least 3")
    refused(write(tmp_path, MULTICLASS, "classes: [1, 2, 1.0]\n"), r"lists a class twice")
    per_class = "policy: {quality_floor: {per_class_recall: 0.5, macro_f1: 0.3}}\n"
    project = load_project_file(write(tmp_path, MULTICLASS, per_class))
    assert project.policy.quality_floor.thresholds() == {"per_class_recall": 0.5, "macro_f1": 0.3}


def test_share_metrics_keep_their_bounds_after_the_widening(tmp_path):
    # Bounds are wide for metrics in the target's units (RMSE), not for shares.
    refused(
        write(tmp_path, MULTICLASS, "policy: {fairness: {max_gap: 2.0}}\n"),
        r"policy\.fairness\.max_gap: 2\.0 is above 1, and macro_recall is a share",
    )
    refused(
        write(tmp_path, MULTICLASS, "policy: {beats_champion: {tolerance: 5}}\n"),
        r"policy\.beats_champion\.tolerance: 5\.0 is above 1, and macro_f1 is a share",
    )


def test_binary_projects_are_unchanged(projects_dir):
    from unified_ai_tests.conftest import write_project

    project = load_project_file(write_project(projects_dir))
    assert project.task == "binary_classification"
    assert project.policy.beats_champion.metric == "roc_auc"
    assert project.policy.triggers.performance.metric == "roc_auc"
    assert project.policy.triggers.performance.enabled is True
