"""Production scoring, labels and live metrics of regression and multiclass models (pure)."""

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.batch_scoring import (
    non_finite_scores,
    prediction_columns,
    primary_score,
    scored_frame,
    scoring_metadata,
)
from unified_ai.ml.drift import prediction_drift
from unified_ai.ml.label_join import label_column
from unified_ai.ml.live import LiveTask, live_report
from unified_ai.ml.production import production_rows
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ROW_ID,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.loader import load_project_file as load_project
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION
from unified_ai_tests.tasks_fixtures import (
    CLASSES,
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)

SETTINGS = {
    "window": 3,
    "threshold": 0.5,
    "segments": ["region"],
    "min_segment_size": 20,
    "bootstrap_samples": 60,
    "confidence": 0.9,
}


@pytest.fixture
def regression(tmp_path):
    return load_project(write_regression_project(tmp_path / "r"))


@pytest.fixture
def multiclass(tmp_path):
    return load_project(write_multiclass_project(tmp_path / "m"))


def test_multiclass_predictions_store_the_class_its_confidence_and_every_probability():
    proba = np.array([[0.1, 0.7, 0.1, 0.05, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]])
    columns = prediction_columns(MULTICLASS, proba, 0.5, CLASSES)
    assert list(columns["prediction"]) == ["tech", "billing"]
    assert list(columns["proba"]) == [0.7, 0.6]
    assert [c for c in columns if c.startswith("proba_")] == [f"proba_{i}" for i in range(5)]
    assert list(primary_score(MULTICLASS, proba)) == [1.0, 0.0]
    batch = pd.DataFrame({ROW_ID: [1, 2], "region": ["north", "south"]})
    scored = scored_frame(
        batch,
        proba,
        segments=["region"],
        threshold=0.5,
        deployment="d",
        model_version="m",
        task=MULTICLASS,
        classes=CLASSES,
    )
    described = scoring_metadata(MULTICLASS, scored, CLASSES)
    assert described["classes"] == CLASSES
    assert described["class_shares"]["tech"] == 0.5 and described["class_shares"]["other"] == 0
    bad = proba.copy()
    bad[1, 3] = np.nan
    assert non_finite_scores(batch, bad) == (1, 2)


def test_regression_predictions_are_the_values_with_no_proba():
    columns = prediction_columns(REGRESSION, np.array([1.5, 2.5]), 0.5)
    assert set(columns) == {"prediction"}
    scored = pd.DataFrame(columns)
    assert scoring_metadata(REGRESSION, scored, None)["mean_prediction"] == 2.0
    binary = prediction_columns(BINARY, np.array([0.2, 0.8]), 0.5)
    assert list(binary["prediction"]) == [0, 1]


def test_regression_labels_must_be_finite_numbers(regression):
    labels = pd.DataFrame({ROW_ID: [1, 2, 3], "price": ["12.5", 7, 3.0]})
    checked, problem = label_column(regression, labels, [])
    assert problem is None and list(checked["label"]) == [12.5, 7.0, 3.0]
    for bad in ("", "inf", "cheap", True, float("nan")):
        labels = pd.DataFrame({ROW_ID: [1, 2], "price": [1.0, bad]}, dtype=object)
        checked, problem = label_column(regression, labels, [])
        assert checked is None and "not finite numbers" in problem, bad


def test_multiclass_labels_must_be_the_models_classes(multiclass):
    labels = pd.DataFrame({ROW_ID: [1, 2], "queue": ["tech", " sales "]})
    checked, problem = label_column(multiclass, labels, CLASSES)
    assert problem is None and list(checked["label"]) == ["tech", "sales"]
    labels = pd.DataFrame({ROW_ID: [1, 2, 3], "queue": ["tech", "refunds", ""]})
    checked, problem = label_column(multiclass, labels, CLASSES)
    assert checked is None and "2 of 3 rows" in problem and "refunds" in problem


def _batch(task, rows, seed, deployment, *, noise=0.0, shadow_noise=None, shadow="old"):
    """Labeled predictions of a synthetic model (and a shadow) for one batch."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            ROW_ID: np.arange(rows),
            "region": rng.choice(["north", "south"], rows),
            DEPLOYMENT_COLUMN: deployment,
        }
    )
    if task == REGRESSION:
        truth = rng.normal(50, 10, rows)
        frame["label"] = truth
        frame["prediction"] = truth + rng.normal(0, 1 + noise, rows)
        if shadow_noise is not None:
            frame[SHADOW_PREVIOUS_PROBA] = truth + rng.normal(0, 1 + shadow_noise, rows)
    else:
        truth = rng.integers(0, len(CLASSES), rows)
        frame["label"] = np.asarray(CLASSES)[truth]

        def guess(wrong_share):
            wrong = rng.random(rows) < wrong_share
            return np.where(wrong, rng.integers(0, len(CLASSES), rows), truth)

        chosen = guess(0.1 + noise)
        proba = np.full((rows, len(CLASSES)), 0.05)
        proba[np.arange(rows), chosen] = 0.8
        for name, values in prediction_columns(MULTICLASS, proba, 0.5, CLASSES).items():
            frame[name] = values
        if shadow_noise is not None:
            frame[SHADOW_PREVIOUS_PROBA] = guess(0.1 + shadow_noise).astype(float)
    if shadow_noise is not None:
        frame[SHADOW_PREVIOUS_DEPLOYMENT] = shadow
    return frame


@pytest.mark.parametrize("task", [REGRESSION, MULTICLASS])
def test_live_report_measures_each_task_in_its_own_metric(task):
    metric = "rmse" if task == REGRESSION else "macro_f1"
    gap = "mae" if task == REGRESSION else "macro_recall"
    batches = [
        ("b1", _batch(task, 300, 1, "old")),
        ("b2", _batch(task, 300, 2, "new", noise=0.6, shadow_noise=0.0)),
        ("b3", _batch(task, 300, 3, "new", noise=0.6, shadow_noise=0.0)),
    ]
    report = live_report(
        batches,
        "new",
        metric=metric,
        gap_metric=gap,
        shadow_deployment="old",
        recent_paired=1,
        recent_current=1,
        task=task,
        classes=CLASSES if task == MULTICLASS else None,
        **SETTINGS,
    )
    current, previous, paired = report["current"], report["previous"], report["paired"]
    assert report["task"] == task and current["labeled_rows"] == 600
    assert previous["deployment"] == "old" and previous["labeled_rows"] == 300
    assert paired["rows"] == 600 and paired["samples"] > 0
    assert current["segments"]["metric"] == gap
    if task == REGRESSION:
        # Lower is better: the noisier live model has the higher RMSE, live - previous > 0.
        assert current["value"] > previous["value"]
        assert paired["difference"] > 0 and paired["ci_low"] > 0
        assert set(current["metrics"]) == {"rmse", "mae", "r2", "mape"}
    else:
        assert current["value"] < previous["value"]
        assert paired["difference"] < 0 and paired["ci_high"] < 0
        assert "per_class_recall" in current["metrics"]
    assert report["recent_current"]["value"] is not None
    assert report["recent_paired"]["rows"] == 300


def test_multiclass_labels_outside_the_class_list_are_left_out_of_live_metrics():
    frame = _batch(MULTICLASS, 50, 4, "new")
    frame.loc[:4, "label"] = "unknown"
    task = LiveTask(MULTICLASS, tuple(CLASSES))
    assert len(task.usable(frame)) == 45


def test_prediction_drift_per_task():
    rng = np.random.default_rng(0)
    same = prediction_drift(REGRESSION, rng.normal(size=500), rng.normal(size=500), 0.2)
    moved = prediction_drift(REGRESSION, rng.normal(size=500), rng.normal(2, 1, 500), 0.2)
    assert not same["drifted"] and moved["drifted"] and moved["of"] == "predicted value"
    reference = rng.integers(0, 5, 500).astype(float)
    shifted = np.where(rng.random(500) < 0.7, 2.0, reference)
    found = prediction_drift(MULTICLASS, reference, shifted, 0.2)
    assert found["of"] == "predicted class" and found["drifted"] and found["ks"] is None


def test_production_rows_join_labels_as_training_targets(regression, multiclass):
    inputs = make_regression_frame(rows=20, seed=3).drop(columns=["price"])
    inputs[ROW_ID] = np.arange(20)
    truth = pd.DataFrame({ROW_ID: np.arange(10), "label": np.linspace(1, 10, 10)})
    source = make_regression_frame(rows=50)
    found = production_rows(regression, [("b1", inputs, truth)], sorted(source["price"]))
    assert found.used == {"b1": 10} and found.frame["price"].tolist() == list(
        np.linspace(1, 10, 10)
    )

    inputs = make_multiclass_frame(rows=20, seed=3).drop(columns=["queue"])
    inputs[ROW_ID] = np.arange(20)
    truth = pd.DataFrame({ROW_ID: np.arange(6), "label": ["tech", "sales"] * 3})
    found = production_rows(multiclass, [("b1", inputs, truth)], sorted(CLASSES))
    assert found.used == {"b1": 6} and found.frame["queue"].tolist() == ["tech", "sales"] * 3
