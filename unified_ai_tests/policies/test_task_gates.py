"""Gates on regression and multiclass reports: metric direction from the catalogue, task gaps."""

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.metrics import paired_bootstrap, segments_and_gaps, task_metrics
from unified_ai.policies.gates import beats_champion, fairness_within_policy, quality_floor
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.tasks import MULTICLASS, REGRESSION
from unified_ai_tests.tasks_fixtures import write_multiclass_project, write_regression_project

ROWS = 400


def _report(task: str, project, y, candidate, champion, segments) -> dict:
    """A report body as the evaluation stores it, from predictions of the task's shape."""
    fairness = project.policy.fairness

    def side(predicted):
        return {
            "metrics": task_metrics(task, y, predicted, 0.5),
            "fairness": segments_and_gaps(
                task, y, predicted, segments, 0.5, fairness.metric, fairness.min_segment_size
            ),
        }

    body = {"task": task, "candidate": side(candidate), "champion": None, "comparison": None}
    if champion is not None:
        body["champion"] = side(champion)
        body["comparison"] = paired_bootstrap(
            task, y, candidate, champion, 0.5, samples=60, confidence=0.95, seed=0
        )
    return body


@pytest.fixture
def regression(tmp_path):
    return load_project_file(write_regression_project(tmp_path, rows=60))


@pytest.fixture
def multiclass(tmp_path):
    return load_project_file(write_multiclass_project(tmp_path, rows=60))


def _regression_rows(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(50.0, 10.0, ROWS)
    segments = pd.DataFrame({"region": np.where(np.arange(ROWS) % 2, "north", "south")})
    return rng, y, segments


def test_a_regression_candidate_with_worse_rmse_is_blocked(regression):
    rng, y, segments = _regression_rows()
    good = y + rng.normal(0, 2.0, ROWS)
    bad = y + rng.normal(0, 6.0, ROWS)
    body = _report(REGRESSION, regression, y, bad, good, segments)
    assert body["comparison"]["metrics"]["rmse"]["better"] == "lower"
    # A higher RMSE is a worse model: read the other way round, it would pass.
    assert body["comparison"]["metrics"]["rmse"]["difference"] > 0.5

    result = beats_champion(body, regression.policy)

    assert not result.passed, result.reason
    assert result.reason.startswith("rmse improvement -")
    assert result.evidence["candidate"] > result.evidence["champion"]


def test_a_regression_candidate_with_better_rmse_passes(regression):
    rng, y, segments = _regression_rows()
    good = y + rng.normal(0, 2.0, ROWS)
    bad = y + rng.normal(0, 6.0, ROWS)

    result = beats_champion(
        _report(REGRESSION, regression, y, good, bad, segments), regression.policy
    )

    assert result.passed, result.reason
    assert result.evidence["improvement"] > 0


def test_the_regression_quality_floor_is_a_ceiling_on_rmse(regression):
    rng, y, segments = _regression_rows()
    within = _report(REGRESSION, regression, y, y + rng.normal(0, 2.0, ROWS), None, segments)
    beyond = _report(REGRESSION, regression, y, y + rng.normal(0, 30.0, ROWS), None, segments)

    assert quality_floor(within, regression.policy).passed
    failed = quality_floor(beyond, regression.policy)
    assert not failed.passed
    assert "rmse" in failed.reason and "> max 12.0000" in failed.reason


@pytest.mark.parametrize("metric", ["mae", "mean_signed_error"])
def test_regression_fairness_fires_on_a_segment_predicted_too_high(regression, metric):
    rng, y, segments = _regression_rows()
    predicted = y + rng.normal(0, 1.0, ROWS)
    predicted[segments["region"].to_numpy() == "north"] += 12.0  # north over-predicted
    policy = regression.policy.model_copy(
        update={"fairness": regression.policy.fairness.model_copy(update={"metric": metric})}
    )
    project = regression.model_copy(update={"policy": policy})

    result = fairness_within_policy(
        _report(REGRESSION, project, y, predicted, None, segments), policy
    )

    assert not result.passed, result.reason
    assert result.reason.startswith(f"largest {metric} gap ")
    assert result.evidence["gap"] > 10
    assert set(result.evidence["between"]) == {"north", "south"}


def _multiclass_rows(seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, ROWS)
    segments = pd.DataFrame({"region": np.where(np.arange(ROWS) % 2, "north", "south")})
    return rng, y, segments


def _confident(y, rng, right: float) -> np.ndarray:
    """Probabilities that put the true class first on about `right` of the rows."""
    proba = rng.dirichlet(np.ones(5), len(y)) * 0.5
    hit = rng.random(len(y)) < right
    proba[np.arange(len(y))[hit], y[hit]] += 1.0
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("metric", ["macro_recall", "accuracy"])
def test_multiclass_fairness_fires_on_a_segment_classified_at_random(multiclass, metric):
    rng, y, segments = _multiclass_rows()
    proba = _confident(y, rng, 0.95)
    south = segments["region"].to_numpy() == "south"
    proba[south] = rng.dirichlet(np.ones(5), int(south.sum()))  # south: no better than chance
    policy = multiclass.policy.model_copy(
        update={"fairness": multiclass.policy.fairness.model_copy(update={"metric": metric})}
    )
    project = multiclass.model_copy(update={"policy": policy})

    result = fairness_within_policy(_report(MULTICLASS, project, y, proba, None, segments), policy)

    assert not result.passed, result.reason
    assert result.reason.startswith(f"largest {metric} gap ")
    assert result.evidence["between"] == ["south", "north"]


def test_a_multiclass_candidate_with_worse_macro_f1_is_blocked(multiclass):
    rng, y, segments = _multiclass_rows()
    good, bad = _confident(y, rng, 0.9), _confident(y, rng, 0.5)

    blocked = beats_champion(
        _report(MULTICLASS, multiclass, y, bad, good, segments), multiclass.policy
    )
    passed = beats_champion(
        _report(MULTICLASS, multiclass, y, good, bad, segments), multiclass.policy
    )

    assert not blocked.passed and blocked.reason.startswith("macro_f1 improvement -")
    assert passed.passed, passed.reason


def test_multiclass_log_loss_is_lower_is_better_in_the_gate(multiclass):
    rng, y, segments = _multiclass_rows()
    good, bad = _confident(y, rng, 0.9), _confident(y, rng, 0.5)
    rule = multiclass.policy.beats_champion.model_copy(update={"metric": "log_loss"})
    policy = multiclass.policy.model_copy(update={"beats_champion": rule})

    blocked = beats_champion(_report(MULTICLASS, multiclass, y, bad, good, segments), policy)

    assert not blocked.passed
    assert blocked.evidence["candidate"] > blocked.evidence["champion"]


def test_auto_approval_reads_the_task_metric_and_its_direction(regression):
    from unified_ai.policies.approval import auto_approval

    rng, y, segments = _regression_rows()
    good = y + rng.normal(0, 2.0, ROWS)
    bad = y + rng.normal(0, 6.0, ROWS)
    approval = regression.policy.approval
    assert approval.auto_approve.metric == "rmse"  # the task's default, not roc_auc

    better = auto_approval(approval, _report(REGRESSION, regression, y, good, bad, segments))
    worse = auto_approval(approval, _report(REGRESSION, regression, y, bad, good, segments))

    assert better.allowed, better.reason
    assert better.reason.startswith("auto-approved by policy: rmse +")
    assert not worse.allowed
    assert worse.reason.startswith("rmse improvement -")


def test_auto_approval_leaves_an_uncompared_champion_to_a_person(regression):
    from unified_ai.policies.approval import auto_approval

    rng, y, segments = _regression_rows()
    body = _report(REGRESSION, regression, y, y + rng.normal(0, 2.0, ROWS), None, segments)
    body["champion_note"] = "the champion is a binary_classification model"
    decision = auto_approval(regression.policy.approval, body)
    assert not decision.allowed
    assert "not comparable" in decision.reason

    # MAPE is not computed when a target is 0: nothing to approve on.
    rule = regression.policy.approval.auto_approve.model_copy(update={"metric": "mape"})
    approval = regression.policy.approval.model_copy(update={"auto_approve": rule})
    y[0] = 0.0
    body = _report(REGRESSION, regression, y, y + 1.0, y + 2.0, segments)
    body["metric_notes"] = {"mape": "not computed: the target is 0 in 1 of 400 rows"}
    decision = auto_approval(approval, body)
    assert not decision.allowed
    assert decision.reason.startswith(
        "mape of candidate and champion is not compared (not computed"
    )
