"""Row validation for served requests: every problem names its row, field and reason."""

import math

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.rows import (
    RowProblem,
    as_model_categories,
    frame_from_records,
    known_columns,
    required_columns,
    row_problems,
)
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project

FEATURES = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
GOOD = {"x1": 0.5, "x2": -1.0, "colour": "red", "region": "north"}


@pytest.fixture
def project(projects_dir):
    path = write_project(projects_dir)
    text = path.read_text().replace(
        "  x1: {min: -10, max: 10}\n",
        "  x1: {min: -10, max: 10}\n  region: {categories: [north, south], allow_null: false}\n",
    )
    path.write_text(text)
    return load_project_file(path)


def problems_of(project, rows):
    frame, problems = frame_from_records(rows, project, FEATURES)
    if problems:
        return problems
    return row_problems(project, FEATURES, frame)


def test_valid_rows_have_no_problems_and_missing_numbers_are_allowed(project):
    rows = [GOOD, {**GOOD, "x2": None}, {**GOOD, "x1": 3, "colour": None}]
    assert problems_of(project, rows) == []
    assert required_columns(project, FEATURES) == ["x1", "x2", "colour", "region"]
    assert known_columns(project, FEATURES) == ["x1", "x2", "colour", "region"]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"x1": math.inf}, "x1", "is inf, not a finite number"),
        ({"x2": -math.inf}, "x2", "is -inf, not a finite number"),
        ({"x2": "1.5"}, "x2", "is text ('1.5'), not a number"),
        ({"x2": True}, "x2", "is a boolean (True), not a number"),
        ({"x2": [1, 2]}, "x2", "is a list ([1, 2]), not a number"),
        ({"x1": 11.0}, "x1", "is 11.0, above the declared maximum 10.0"),
        ({"x1": -10.5}, "x1", "is -10.5, below the declared minimum -10.0"),
        ({"colour": "purple"}, "colour", "is 'purple', not one of the declared categories"),
        ({"colour": {"a": 1}}, "colour", "is an object ({'a': 1}), not a single value"),
        ({"region": None}, "region", "is null, which the project forbids"),
        ({"region": "east"}, "region", "not one of the declared categories ['north', 'south']"),
    ],
)
def test_each_bad_value_is_named_with_row_field_and_reason(project, change, field, reason):
    rows = [GOOD, GOOD, {**GOOD, **change}]
    problems = problems_of(project, rows)
    assert len(problems) == 1, problems  # each bad value is reported once
    first = problems[0]
    assert (first.row, first.field) == (2, field)
    assert reason in first.reason
    assert first.describe().startswith(f"row 2: field {field!r}: ")


def test_missing_and_unknown_fields_and_non_objects(project):
    rows = [{k: v for k, v in GOOD.items() if k != "region"}, {**GOOD, "x3": 1}, [1, 2]]
    problems = problems_of(project, rows)
    assert [(p.row, p.field) for p in problems] == [(0, "region"), (1, "x3"), (2, "")]
    assert "is missing (send null for an unknown value)" in problems[0].reason
    assert "is not an input of project small" in problems[1].reason
    assert "is a list, not an object" in problems[2].reason


def test_frame_level_problems_for_batches(project):
    """The same function validates a whole batch: a missing column, inf in a float column."""
    frame = pd.DataFrame(
        {"x1": [0.1, np.inf, np.nan], "colour": ["red", "blue", "green"], "region": ["north"] * 3}
    )
    problems = row_problems(project, FEATURES, frame)
    assert problems[0] == RowProblem(None, "x2", "column is missing")
    assert problems[0].describe() == "every row: field 'x2': column is missing"
    assert problems[1] == RowProblem(1, "x1", "is inf, not a finite number")
    assert len(problems) == 2  # NaN is imputed by the pipeline, not a problem


def test_integer_categories_compare_as_text(projects_dir):
    path = write_project(projects_dir)
    path.write_text(path.read_text().replace("[red, green, blue]", "[1, 2, red]"))
    project = load_project_file(path)
    ok = [{**GOOD, "colour": value} for value in (1, "1", 2.0, "red")]
    assert problems_of(project, ok) == []
    bad = problems_of(project, [{**GOOD, "colour": 3}])
    assert [(p.row, p.field) for p in bad] == [(0, "colour")]


def test_numbers_become_the_category_text_the_model_knows():
    frame = pd.DataFrame({"married": [0, 1.0, None, "x"], "flag": [True, 2, 3.5, None]})
    known = {"married": ["0.0", "1.0"], "flag": ["True", "2"]}
    out = as_model_categories(frame, ["married", "flag"], known)
    assert out["married"].tolist()[:2] == ["0.0", "1.0"]
    assert pd.isna(out["married"][2]) and out["married"][3] == "x"
    assert out["flag"].tolist()[:3] == ["True", "2", "3.5"]
    # Without known categories: plain str(), as batch scoring does.
    assert as_model_categories(frame, ["married"])["married"].tolist()[:2] == ["0", "1.0"]


@pytest.mark.parametrize("seed", range(4))
def test_typed_batch_columns_are_checked_in_bulk_with_the_same_findings(project, seed, monkeypatch):
    """A CSV batch has typed columns; checking only the rows that may be wrong (found in bulk)
    reports exactly what checking every value does."""
    from unified_ai.ml import rows as rows_module

    rng = np.random.default_rng(seed)
    n = 400
    x1 = rng.normal(0, 8, n)  # some beyond the declared -10..10
    x1[rng.random(n) < 0.05] = np.nan
    x1[rng.random(n) < 0.02] = np.inf
    x1[:2] = [-10.0, 10.0]  # exactly at the bounds: allowed
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": rng.integers(-3, 3, n),
            "colour": rng.choice(["red", "green", "blue", "purple", None], n),
            "region": rng.choice(["north", "south", None, "east"], n),
        }
    )
    if seed % 2:  # a segment read as numbers, checked against text categories
        frame["region"] = rng.choice([0.0, 1.0, np.nan], n)
    bulk = row_problems(project, FEATURES, frame)
    monkeypatch.setattr(rows_module, "_rows_to_check_rule", lambda *args: None)
    monkeypatch.setattr(rows_module, "_rows_to_check_single", lambda *args: None)
    every_value = row_problems(project, FEATURES, frame)
    assert bulk == every_value
    assert {p.field for p in bulk} >= {"x1", "colour", "region"}
