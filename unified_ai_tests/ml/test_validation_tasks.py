"""The training data's target validation follows the project's task."""

import numpy as np
import pytest

from unified_ai.ml.validation import validate
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.tasks_fixtures import (
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)


def target_outcome(project, frame):
    return {o.name: o for o in validate(project, frame)}["target_matches_task"]


@pytest.fixture
def regression(tmp_path):
    return load_project_file(write_regression_project(tmp_path / "r"))


@pytest.fixture
def multiclass(tmp_path):
    return load_project_file(write_multiclass_project(tmp_path / "m"))


def test_a_regression_target_is_any_finite_number(regression):
    frame = make_regression_frame(rows=60)
    assert target_outcome(regression, frame).passed
    frame.loc[3, "price"] = np.inf
    found = target_outcome(regression, frame)
    assert not found.passed and "non-finite" in found.describe()
    words = make_regression_frame(rows=60).astype({"price": object})
    words.loc[3, "price"] = "cheap"
    assert not target_outcome(regression, words).passed


def test_a_multiclass_target_holds_declared_classes(multiclass):
    frame = make_multiclass_frame(rows=200)
    assert target_outcome(multiclass, frame).passed
    frame.loc[3, "queue"] = "refunds"
    found = target_outcome(multiclass, frame)
    assert not found.passed and "refunds" in found.describe()
