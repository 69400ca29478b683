import pandas as pd
import pytest

from unified_ai.ml.validation import VALIDATIONS, check_labels, validate, validate_batch
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project


@pytest.fixture
def project(projects_dir):
    return load_project_file(write_project(projects_dir))


def outcomes(project, frame):
    return {o.name: o for o in validate(project, frame)}


def test_valid_data_passes_every_validation(project):
    result = outcomes(project, make_frame())
    assert list(result) == list(VALIDATIONS)
    assert all(o.passed for o in result.values()), [o.describe() for o in result.values()]
    assert result["schema"].expectations >= 5


def test_missing_column_fails_schema_and_names_it(project):
    result = outcomes(project, make_frame().drop(columns=["x2"]))
    assert not result["schema"].passed
    assert "x2" in result["schema"].describe()


def test_text_in_numeric_feature_fails_schema(project):
    frame = make_frame().astype({"x1": str})
    assert not outcomes(project, frame)["schema"].passed


def test_non_binary_or_null_target_fails(project):
    frame = make_frame()
    frame.loc[0, "label"] = 2
    assert not outcomes(project, frame)["target_is_binary"].passed
    frame = make_frame().astype({"label": float})
    frame.loc[0, "label"] = None
    assert "not_be_null" in outcomes(project, frame)["target_is_binary"].describe()


def test_undeclared_category_and_out_of_range_fail_declared_values(project):
    frame = make_frame()
    frame.loc[0, "colour"] = "purple"
    frame.loc[1, "x1"] = 99.0
    result = outcomes(project, frame)["declared_values"]
    assert not result.passed
    text = result.describe()
    assert "purple" in text and "99.0" in text


def test_empty_frame_fails_every_validation(project):
    result = outcomes(project, make_frame().iloc[0:0])
    assert not any(o.passed for o in result.values())
    assert result["not_empty"].failures == ["the data has no rows"]


def batch_frame(rows: int = 50):
    frame = make_frame(rows).drop(columns=["label"])
    frame["_row_id"] = [f"b:{i}" for i in range(rows)]
    return frame


@pytest.mark.parametrize("bad", [float("inf"), float("-inf")])
def test_non_finite_numeric_inputs_fail_the_batch(project, bad):
    assert validate_batch(project, batch_frame()).passed
    frame = batch_frame()
    frame.loc[3, "x2"] = bad  # x2 has no declared range: only finiteness stops it
    outcome = validate_batch(project, frame)
    assert not outcome.passed
    assert any("x2" in f and "non-finite" in f and str(bad) in f for f in outcome.failures), (
        outcome.failures
    )


def test_missing_numeric_values_are_not_called_non_finite(project):
    frame = batch_frame()
    frame.loc[3, "x2"] = float("nan")
    assert not any("non-finite" in f for f in validate_batch(project, frame).failures)


def test_labels_must_be_the_training_classes(project):
    labels, problem = check_labels(pd.Series([1, 0, 1]), [0, 1])
    assert problem is None and labels.tolist() == [1, 0, 1]
    # Read from a CSV with a bad value, good labels arrive as text: they still count.
    labels, problem = check_labels(pd.Series(["1", "0", "yes", None, "no", "yes"]), [0, 1])
    assert problem == (
        "4 of 6 rows hold values that are not the training classes [0, 1], "
        "e.g. ['yes', '<blank>', 'no']"
    )
    labels, problem = check_labels(pd.Series([1.0, 0.0, float("nan")]), [0, 1])
    assert problem is not None and "1 of 3 rows" in problem and "<blank>" in problem
    labels, problem = check_labels(pd.Series([1.0, 0.0, 2.0]), [0, 1])
    assert problem is not None and "e.g. [2.0]" in problem
    labels, problem = check_labels(pd.Series([True, False]), [0, 1])
    assert problem is not None and "2 of 2 rows" in problem
    labels, problem = check_labels(pd.Series(["approved", "denied"]), ["approved", "denied"])
    assert problem is None and labels.tolist() == ["approved", "denied"]
    labels, problem = check_labels(pd.Series([1.0, 0.0]), [0, 1])
    assert problem is None and labels.tolist() == [1, 0] and labels.dtype == "int64"
