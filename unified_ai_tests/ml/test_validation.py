import pytest

from unified_ai.ml.validation import VALIDATIONS, validate
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
