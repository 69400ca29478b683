"""The live metric per batch, for every task: the rows are read as the live report reads them."""

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.metrics import task_metrics
from unified_ai.ml.plots import live_metric_markdown, live_metric_points
from unified_ai.projects.tasks import MULTICLASS, REGRESSION

CLASSES = ["a", "b", "c"]


def regression_batches() -> list[tuple[str, pd.DataFrame]]:
    rng = np.random.default_rng(0)
    y = rng.normal(50, 10, 120)
    live = y + rng.normal(0, 2, 120)
    old = y + rng.normal(0, 6, 120)
    first = pd.DataFrame({"label": y, "prediction": old, "deployment_version": "v1"})
    second = pd.DataFrame(
        {
            "label": y,
            "prediction": live,
            "deployment_version": "v2",
            "shadow_previous_deployment": "v1",
            "shadow_previous_proba": old,
        }
    )
    return [("b1", first), ("b2", second)]


def test_regression_points_are_rmse_of_the_prediction_and_of_the_shadow():
    batches = regression_batches()
    points = live_metric_points(batches, metric="rmse", threshold=0.5, last=10, task=REGRESSION)
    assert [(p["batch"], p["model"]) for p in points] == [
        ("b1", "v1"),
        ("b2", "v2"),
        ("b2", "v1 (shadow)"),
    ]
    frame = batches[1][1]
    y, predicted = frame["label"].to_numpy(), frame["prediction"].to_numpy()
    expected = task_metrics(REGRESSION, y, predicted, 0.5)
    assert points[1]["value"] == pytest.approx(expected["rmse"])
    assert points[0]["value"] == pytest.approx(points[2]["value"])  # same rows, same model
    assert points[1]["value"] < points[2]["value"]


def test_multiclass_points_read_class_probabilities_and_skip_unknown_labels():
    labels = ["a", "b", "c", "a", "b", "c", "zzz"]
    probabilities = np.eye(3)[[0, 1, 2, 0, 1, 0, 0]]  # one miss (row 5), then an unknown label
    frame = pd.DataFrame(
        {
            "label": labels,
            "prediction": [CLASSES[i] for i in probabilities.argmax(axis=1)],
            **{f"proba_{i}": probabilities[:, i] for i in range(3)},
            "deployment_version": "v2",
            "shadow_previous_deployment": "v1",
            # The shadow's primary score: the predicted class index; this one is always right.
            "shadow_previous_proba": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 1.0],
        }
    )
    points = live_metric_points(
        [("b1", frame)],
        metric="accuracy",
        threshold=0.5,
        last=10,
        task=MULTICLASS,
        classes=CLASSES,
    )
    values = {p["model"]: p["value"] for p in points}
    assert values == {"v2": pytest.approx(5 / 6), "v1 (shadow)": pytest.approx(1.0)}


def test_the_markdown_draws_a_regression_plot():
    markdown = live_metric_markdown(
        regression_batches(),
        metric="rmse",
        threshold=0.5,
        floor=8.0,
        last=10,
        task=REGRESSION,
    )
    assert markdown.startswith("![live rmse](data:image/png;base64,")
