"""Metrics of each task against scikit-learn, per-segment gaps and paired intervals."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from unified_ai.ml.metrics import (
    class_table,
    mape_note,
    paired_bootstrap,
    segments_and_gaps,
    task_metrics,
)
from unified_ai.projects.tasks import (
    ALL_METRICS,
    LOWER_IS_BETTER,
    MULTICLASS,
    REGRESSION,
    TASK_METRICS,
    TASKS,
)


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 600)
    logits = rng.normal(size=(600, 5))
    logits[np.arange(600), y] += 1.5  # informative but imperfect
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.fixture
def regression():
    rng = np.random.default_rng(4)
    y = rng.normal(20, 5, 500)
    return y, y + rng.normal(0.5, 2, 500)


def test_multiclass_metrics_match_sklearn(multiclass):
    y, proba = multiclass
    got = task_metrics(MULTICLASS, y, proba, 0.5)
    predicted = proba.argmax(axis=1)
    assert set(got) == set(TASK_METRICS[MULTICLASS])
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y, predicted, average="macro"))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, proba))
    assert got["roc_auc_ovr"] == pytest.approx(
        sk.roc_auc_score(y, proba, multi_class="ovr", average="macro")
    )
    assert got["per_class_recall"] == pytest.approx(
        sk.recall_score(y, predicted, average=None).min()
    )
    assert got["per_class_precision"] == pytest.approx(
        sk.precision_score(y, predicted, average=None).min()
    )


def test_a_class_never_predicted_has_precision_zero_and_drags_the_floor():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1]] * 2 + [[0.1, 0.8, 0.1]] * 2 + [[0.1, 0.8, 0.1]] * 2)
    got = task_metrics(MULTICLASS, y, proba, 0.5)
    assert got["per_class_recall"] == 0.0  # class 2 is never recalled
    assert got["per_class_precision"] == 0.0
    table = class_table(y, proba, ["a", "b", "c"])
    assert table["c"] == {"precision": None, "recall": 0.0, "n": 2}
    assert table["b"] == {"precision": 0.5, "recall": 1.0, "n": 2}


def test_regression_metrics_match_sklearn(regression):
    y, predicted = regression
    got = task_metrics(REGRESSION, y, predicted, 0.5)
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, predicted)))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted))
    assert got["r2"] == pytest.approx(sk.r2_score(y, predicted))
    assert got["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, predicted))


def test_mape_is_not_computed_when_a_target_is_zero_and_says_why():
    y = np.array([0.0, 1.0, 2.0])
    assert task_metrics(REGRESSION, y, y + 1, 0.5)["mape"] is None
    assert mape_note(y) == ("not computed: the target is 0 in 1 of 3 rows (it would divide by 0)")
    assert mape_note(np.array([1.0, 2.0])) is None


def test_every_task_metric_has_a_direction_and_lower_means_error_or_loss():
    assert {"log_loss", "rmse", "mae", "mape"} == LOWER_IS_BETTER
    for task in TASKS:
        assert TASK_METRICS[task]
    assert len(ALL_METRICS) == len(set(ALL_METRICS))


def test_regression_interval_reads_lower_as_better(regression):
    y, good = regression
    worse = good + np.random.default_rng(5).normal(0, 4, len(y))
    result = paired_bootstrap(REGRESSION, y, worse, good, 0.5, 200, 0.95, seed=0)
    rmse = result["metrics"]["rmse"]
    assert rmse["better"] == "lower"
    assert rmse["ci_low"] > 0  # the worse candidate's RMSE is clearly higher
    assert result["metrics"]["r2"]["ci_high"] < 0
    assert result["samples"] == 200


def test_multiclass_interval_brackets_the_difference(multiclass):
    y, proba = multiclass
    noisy = proba + np.random.default_rng(6).random(proba.shape)
    noisy /= noisy.sum(axis=1, keepdims=True)
    result = paired_bootstrap(MULTICLASS, y, proba, noisy, 0.5, 150, 0.9, seed=1)
    f1 = result["metrics"]["macro_f1"]
    assert f1["ci_low"] <= f1["difference"] <= f1["ci_high"]
    assert f1["ci_low"] > 0


def test_regression_fairness_finds_who_is_over_predicted():
    y = np.full(90, 10.0)
    predicted = np.concatenate([np.full(40, 10.5), np.full(40, 13.0), np.full(10, 30.0)])
    segments = pd.DataFrame({"sex": ["f"] * 40 + ["m"] * 40 + ["x"] * 10})
    result = segments_and_gaps(REGRESSION, y, predicted, segments, 0.5, "mean_signed_error", 20)
    column = result["by_column"]["sex"]
    assert column["segments"]["m"]["mean_signed_error"] == pytest.approx(3.0)
    assert column["segments"]["f"]["mae"] == pytest.approx(0.5)
    assert column["eligible"] == ["f", "m"]  # x is too small to count
    assert result["largest"] == {
        "column": "sex",
        "gap": pytest.approx(2.5),
        "low": "f",
        "high": "m",
    }


def test_multiclass_fairness_gap_in_macro_recall(multiclass):
    y, proba = multiclass
    group = np.where(np.arange(len(y)) % 2 == 0, "a", "b")
    # Group b gets the right class far less often.
    damaged = proba.copy()
    damaged[group == "b"] = np.roll(damaged[group == "b"], 1, axis=1)
    segments = pd.DataFrame({"group": group})
    result = segments_and_gaps(MULTICLASS, y, damaged, segments, 0.5, "macro_recall", 20)
    seg = result["by_column"]["group"]["segments"]
    assert seg["a"]["macro_recall"] > seg["b"]["macro_recall"] + 0.3
    assert result["largest"]["low"] == "b"
