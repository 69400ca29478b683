import pytest

from unified_ai.ml.split import overlapping_rows, split_frame
from unified_ai.ml.training import TrainingError, fit, predict_proba
from unified_ai.names import ROW_ID
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project


@pytest.fixture
def project(projects_dir):
    return load_project_file(write_project(projects_dir))


def test_split_is_deterministic_stratified_and_disjoint(project):
    frame = make_frame()
    train, holdout = split_frame(project, frame)
    again_train, _ = split_frame(project, frame)
    assert list(train[ROW_ID]) == list(again_train[ROW_ID])
    assert len(holdout) == pytest.approx(0.3 * len(frame), abs=1)
    assert overlapping_rows(train, holdout) == 0
    assert len(train) + len(holdout) == len(frame)
    assert train["label"].mean() == pytest.approx(holdout["label"].mean(), abs=0.02)


def test_fit_learns_the_signal_and_handles_missing_values(project):
    frame = make_frame()
    frame.loc[:10, "colour"] = None
    frame.loc[:10, "x2"] = None
    train, holdout = split_frame(project, frame)
    pipeline, features = fit(project, train)
    proba = predict_proba(pipeline, holdout, features)
    assert features.numeric == ["x1", "x2"] and features.categorical == ["colour"]
    assert ((proba >= 0.5) == (holdout["label"] == 1)).mean() > 0.7


def test_bad_estimator_params_give_a_clear_error(project):
    broken = project.model_copy(
        update={"estimator": project.estimator.model_copy(update={"params": {"depth": 3}})}
    )
    with pytest.raises(TrainingError, match=r"estimator.params: LogisticRegression rejects"):
        fit(broken, make_frame())


def test_model_inputs_write_numeric_categories_as_each_value_s_own_text():
    """Numeric categorical columns are put as text per distinct value: the same text as the
    value's own `astype(str)`, missing kept missing, and -0.0 not merged with 0.0."""
    import numpy as np
    import pandas as pd

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import model_inputs

    frame = pd.DataFrame(
        {
            "count": [3, 1, 3, 0],
            "flag": [1.0, np.nan, 0.0, 1e20],
            "signed": [-0.0, 0.0, 1.0, -0.0],
            "small": np.array([2, 0, 2, 1], dtype="uint8"),
            "yes": [True, False, True, True],
            "nullable": pd.array([1, None, 2, 1], dtype="Int64"),
            "x": [0.5, 1.5, 2.5, 3.5],
        },
        index=pd.RangeIndex(7, 11),
    )
    features = FeatureColumns(
        numeric=["x"], categorical=["count", "flag", "signed", "small", "yes", "nullable"]
    )
    inputs = model_inputs(frame, features)
    assert inputs["count"].tolist() == ["3", "1", "3", "0"]
    assert inputs["flag"].tolist()[0] == "1.0" and inputs["flag"].tolist()[3] == "1e+20"
    assert pd.isna(inputs["flag"].iloc[1]) and inputs["flag"].iloc[2] == "0.0"
    assert inputs["signed"].tolist() == ["-0.0", "0.0", "1.0", "-0.0"]
    assert inputs["small"].tolist() == ["2", "0", "2", "1"]
    assert inputs["yes"].tolist() == ["True", "False", "True", "True"]
    assert inputs["nullable"].tolist()[::2] == ["1", "2"] and pd.isna(inputs["nullable"].iloc[1])
    assert list(inputs.index) == [7, 8, 9, 10]
    assert all(inputs[c].dtype == object for c in features.categorical)
