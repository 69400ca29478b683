import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from unified_ai.ml.evaluation import classification_metrics, paired_bootstrap, segments_and_gaps


@pytest.fixture
def scores():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    # Rounded so that ties occur, which the rank-based AUC must handle like sklearn.
    proba = np.clip(np.round(0.3 * y + 0.7 * rng.random(500), 2), 0, 1)
    return y, proba


def test_metrics_match_sklearn(scores):
    y, proba = scores
    metrics = classification_metrics(y, proba, 0.5)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba))
    assert metrics["f1"] == pytest.approx(f1_score(y, proba >= 0.5))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y, proba >= 0.5))
    assert metrics["log_loss"] == pytest.approx(log_loss(y, proba))


def test_auc_is_none_with_one_class():
    assert classification_metrics(np.ones(10), np.linspace(0, 1, 10), 0.5)["roc_auc"] is None


def test_bootstrap_interval_brackets_the_difference(scores):
    y, proba = scores
    worse = np.clip(proba + np.random.default_rng(2).normal(0, 0.3, len(y)), 0, 1)
    result = paired_bootstrap(y, proba, worse, 0.5, 200, 0.95, seed=0)
    auc = result["metrics"]["roc_auc"]
    assert auc["ci_low"] <= auc["difference"] <= auc["ci_high"]
    assert auc["ci_low"] > 0  # the noisy model is clearly worse
    assert result["metrics"]["log_loss"]["better"] == "lower"


def test_identical_models_have_a_zero_interval(scores):
    y, proba = scores
    auc = paired_bootstrap(y, proba, proba, 0.5, 100, 0.9, seed=0)["metrics"]["roc_auc"]
    assert auc == {"difference": 0.0, "ci_low": 0.0, "ci_high": 0.0, "better": "higher"}


def test_segment_gap_uses_eligible_segments_only():
    y = np.array([1] * 40 + [1] * 40 + [1] * 5)
    proba = np.array([0.9] * 40 + [0.9] * 20 + [0.1] * 20 + [0.1] * 5)
    segments = pd.DataFrame({"group": ["a"] * 40 + ["b"] * 40 + ["tiny"] * 5})
    result = segments_and_gaps(y, proba, segments, 0.5, "true_positive_rate", 20)
    column = result["by_column"]["group"]
    assert column["segments"]["a"]["true_positive_rate"] == 1.0
    assert column["segments"]["b"]["true_positive_rate"] == 0.5
    assert column["segments"]["tiny"]["n"] == 5
    assert column["eligible"] == ["a", "b"]
    assert result["largest"] == {"column": "group", "gap": 0.5, "low": "b", "high": "a"}
