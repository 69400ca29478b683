"""Which holdout compares models, and the report plots, for regression and multiclass."""

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.holdout_report import holdout_problem, plots_markdown
from unified_ai.ml.plots import MULTICLASS_PLOTS, REGRESSION_PLOTS, task_evaluation_plots
from unified_ai.policies.holdout import choose_holdout
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.tasks_fixtures import (
    CLASSES,
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)


@pytest.fixture
def regression(tmp_path):
    return load_project_file(write_regression_project(tmp_path, rows=60))


@pytest.fixture
def multiclass(tmp_path):
    return load_project_file(write_multiclass_project(tmp_path, rows=60))


def test_a_regression_holdout_needs_rows_with_spread(regression):
    frame = make_regression_frame(rows=40)
    assert holdout_problem(regression, frame) is None
    assert holdout_problem(regression, frame.head(5)) == "are fewer than 10"
    flat = frame.assign(price=42.0)
    assert holdout_problem(regression, flat) == "have one target value only"
    broken = frame.assign(price=frame["price"].astype(object))
    broken.loc[3, "price"] = "n/a"
    assert holdout_problem(regression, broken).startswith("cannot be scored (prices: target")


def test_a_multiclass_holdout_needs_two_known_classes(multiclass):
    frame = make_multiclass_frame(rows=60)
    assert holdout_problem(multiclass, frame, CLASSES) is None
    two = frame[frame["queue"].isin(["billing", "tech"])]
    assert holdout_problem(multiclass, two, CLASSES) is None
    one = frame[frame["queue"] == "billing"]
    assert holdout_problem(multiclass, one, CLASSES) == "have one class only"
    unknown = frame.assign(queue=frame["queue"].replace({"other": "legal"}))
    assert "not in the class list" in holdout_problem(multiclass, unknown, CLASSES)


def test_the_recent_holdout_is_refused_with_the_task_reason(regression):
    rule = regression.policy.beats_champion
    used, why = choose_holdout(rule, 500, recent_problem="have one target value only")
    assert used == "static"
    assert why == (
        "the recent holdout's 500 rows have one target value only: no metric compares models on it"
    )
    assert choose_holdout(rule, 500, recent_problem=None)[0] == "recent"


def test_regression_plots_compare_candidate_and_champion_by_segment():
    rng = np.random.default_rng(0)
    y = rng.normal(50, 10, 120)
    segments = pd.DataFrame({"region": rng.choice(["north", "south"], 120)})
    probas = {"candidate": y + rng.normal(0, 2, 120), "champion": y + 3.0}
    plots = task_evaluation_plots("regression", y, probas, 0.5, segments=segments)
    assert set(plots) == set(REGRESSION_PLOTS)
    assert all(png.startswith(b"\x89PNG") for png in plots.values())
    shown = plots_markdown(plots)
    assert "**Predicted vs actual**" in shown and "**Residuals by segment**" in shown


def test_multiclass_plots_draw_every_class_even_one_never_predicted():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 150)
    proba = rng.dirichlet(np.ones(5), 150)
    proba[:, 4] = 0.0  # the last class is never predicted
    plots = task_evaluation_plots(
        "multiclass_classification", y, {"candidate": proba}, 0.5, classes=CLASSES
    )
    assert set(plots) == set(MULTICLASS_PLOTS)
    assert "**Per-class precision and recall**" in plots_markdown(plots)
