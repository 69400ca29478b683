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
    assert not outcomes(project, frame)["target_matches_task"].passed
    frame = make_frame().astype({"label": float})
    frame.loc[0, "label"] = None
    assert "not_be_null" in outcomes(project, frame)["target_matches_task"].describe()


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
    assert outcome.failures == [
        f"x2: 1 row(s), e.g. row 3: field 'x2': is {bad}, not a finite number"
    ]


def test_missing_numeric_values_are_not_called_non_finite(project):
    frame = batch_frame()
    frame.loc[3, "x2"] = float("nan")  # imputed by the pipeline
    assert validate_batch(project, frame).passed


def test_non_finite_training_data_fails_the_schema_validation(project):
    frame = make_frame()
    frame.loc[5, "x2"] = float("inf")
    result = outcomes(project, frame)
    assert not result["schema"].passed
    assert any("x2" in f and "non-finite" in f for f in result["schema"].failures)


def test_batch_rules_name_the_field_and_the_reason(project):
    frame = batch_frame()
    frame.loc[1, "colour"] = "purple"
    frame.loc[2, "x1"] = 99.0  # declared range -10..10
    frame.loc[4, "_row_id"] = frame.loc[3, "_row_id"]
    outcome = validate_batch(project, frame.drop(columns=["region"]))
    assert not outcome.passed
    assert outcome.failures[0] == "_row_id: 1 repeated row ids, e.g. ['b:3']"
    text = "; ".join(outcome.failures)
    assert "region: every row: field 'region': column is missing" in text
    assert "colour: 1 row(s), e.g. row 1: field 'colour': is 'purple'" in text
    assert "x1: 1 row(s), e.g. row 2: field 'x1': is 99.0, above the declared maximum 10" in text


def test_validating_a_batch_does_not_import_great_expectations(project):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from unified_ai_tests.ml.test_validation import batch_frame\n"
        "from unified_ai_tests.conftest import write_project\n"
        "from unified_ai.projects.loader import load_project_file\n"
        "from unified_ai.ml.validation import validate_batch\n"
        "import pathlib, tempfile\n"
        "project = load_project_file(write_project(pathlib.Path(tempfile.mkdtemp())))\n"
        "assert validate_batch(project, batch_frame()).passed\n"
        "print('great_expectations' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


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
