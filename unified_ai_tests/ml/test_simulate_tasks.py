"""Simulated batches of regression and multiclass projects: a concept change per task."""

import numpy as np
import pytest

from unified_ai.ml.simulate import make_batch, parse_drift
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.tasks_fixtures import (
    CLASSES,
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)


@pytest.mark.parametrize("kind", ["regression", "multiclass"])
def test_concept_reverses_the_outcome_above_the_median_only(tmp_path, kind):
    if kind == "regression":
        project = load_project_file(write_regression_project(tmp_path))
        pool = make_regression_frame(rows=400)
    else:
        project = load_project_file(write_multiclass_project(tmp_path))
        pool = make_multiclass_frame(rows=400)
    target = project.target
    plain_features, plain = make_batch(project, pool, 200, parse_drift([], project), 7, "b")
    features, changed = make_batch(project, pool, 200, parse_drift(["concept:x1"], project), 7, "b")
    above = (features["x1"] > pool["x1"].median()).to_numpy()
    assert above.any() and (~above).any()
    old, new = plain[target].to_numpy(), changed[target].to_numpy()
    assert (old[~above] == new[~above]).all()
    if kind == "regression":
        centre = pool[target].mean()
        assert np.allclose(new[above], 2 * centre - old[above])
    else:
        following = {c: CLASSES[(i + 1) % len(CLASSES)] for i, c in enumerate(CLASSES)}
        assert [following[v] for v in old[above]] == list(new[above])
    assert list(plain_features.columns) == list(features.columns)
