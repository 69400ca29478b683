"""Model-people agreement over reviewed rows (`unified_ai.ml.agreement`), per task and segment."""

import pandas as pd
import pytest

from unified_ai import names
from unified_ai.ml.agreement import agreement_report, agreement_rule, agrees
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION


def _batch(labels, predictions, regions, *, origin=names.REVIEW_ORIGIN, deployment="d1", start=0):
    return pd.DataFrame(
        {
            names.ROW_ID: [f"r{start + i}" for i in range(len(labels))],
            "label": labels,
            "prediction": predictions,
            "region": regions,
            names.ORIGIN: origin,
            names.DEPLOYMENT_COLUMN: deployment,
        }
    )


def test_binary_agreement_overall_and_per_segment_value():
    frame = _batch([1, 0, 1, 0], [1, 1, 1, 0], ["north", "north", "south", "south"])
    report = agreement_report([("b1", frame)], "d1", task=BINARY, segments=["region"], window=5)
    assert (report["answers"], report["agreed"], report["agreement"]) == (4, 3, 0.75)
    assert report["segments"]["region"]["north"] == {"answers": 2, "agreed": 1, "agreement": 0.5}
    assert report["segments"]["region"]["south"]["agreement"] == 1.0
    assert report["rule"] == "same label"
    assert report["batches"] == ["b1"]


def test_only_reviewed_rows_of_the_deployment_count():
    inbox = _batch([0, 0], [1, 1], ["north", "north"], origin=names.LABEL_ORIGIN)
    other = _batch([0], [1], ["north"], deployment="d0", start=10)
    reviewed = _batch([1], [1], ["north"], start=20)
    frame = pd.concat([inbox, other, reviewed])
    report = agreement_report([("b1", frame)], "d1", task=BINARY, segments=["region"], window=5)
    assert (report["answers"], report["agreed"]) == (1, 1)


def test_the_window_counts_only_batches_with_reviewed_rows():
    reviewed = [(f"b{i}", _batch([1], [0], ["north"], start=i)) for i in range(3)]
    unreviewed = ("b9", _batch([1], [1], ["north"], origin=names.LABEL_ORIGIN, start=9))
    report = agreement_report(
        [*reviewed, unreviewed], "d1", task=BINARY, segments=["region"], window=2
    )
    assert report["batches"] == ["b1", "b2"]
    assert report["answers"] == 2


def test_no_reviewed_rows_is_no_agreement_not_zero():
    frame = _batch([1], [1], ["north"], origin=names.LABEL_ORIGIN)
    report = agreement_report([("b1", frame)], "d1", task=BINARY, segments=["region"], window=5)
    assert (report["answers"], report["agreement"], report["segments"]) == (0, None, {})


def test_multiclass_compares_classes_as_labels():
    frame = _batch(["3", "a", "b"], [3.0, "a", "a"], ["n", "n", "n"])
    assert agrees(MULTICLASS, frame).tolist() == [True, True, False]
    assert agreement_rule(MULTICLASS, None) == "same class"


@pytest.mark.parametrize(
    ("tolerance", "expected", "rule"),
    [
        (None, [True, False, True], "within 10% of the person's value"),
        (5.0, [True, True, False], "within 5 of the predicted value"),
    ],
)
def test_regression_agrees_within_a_tolerance(tolerance, expected, rule):
    frame = _batch([100.0, 20.0, 1000.0], [104.0, 24.0, 1090.0], ["n", "n", "n"])
    assert agrees(REGRESSION, frame, tolerance).tolist() == expected
    assert agreement_rule(REGRESSION, tolerance) == rule
