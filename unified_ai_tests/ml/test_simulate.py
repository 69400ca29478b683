"""Simulated production batches: the learnable concept drift."""

import numpy as np
import pytest

from unified_ai.ml.simulate import DriftSpec, DriftSpecError, make_batch, parse_drift
from unified_ai.names import ORIGIN, ROW_ID
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project


@pytest.fixture
def project(tmp_path):
    return load_project_file(write_project(tmp_path / "p"))


def test_concept_reverses_the_outcome_exactly_above_the_median(project):
    pool = make_frame(1000).assign(**{ORIGIN: "small.csv"})
    plain_inputs, plain = make_batch(project, pool, 300, DriftSpec(), seed=4, batch="b")
    inputs, labels = make_batch(
        project, pool, 300, parse_drift(["concept:x1"], project), seed=4, batch="b"
    )
    # The inputs look the same (and carry no origin); only the truth changed.
    assert inputs.equals(plain_inputs) and ORIGIN not in inputs.columns
    above = (inputs["x1"] > pool["x1"].median()).to_numpy()
    assert 100 < above.sum() < 200
    assert (labels["label"][above] == 1 - plain["label"][above]).all()
    assert (labels["label"][~above] == plain["label"][~above]).all()
    assert labels[ROW_ID].tolist() == inputs[ROW_ID].tolist()


def test_a_model_can_learn_the_concept_drift_but_not_label_noise(project):
    from sklearn.metrics import roc_auc_score
    from sklearn.tree import DecisionTreeClassifier

    pool = make_frame(2000, seed=1)
    columns = ["x1", "x2"]
    old = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0).fit(
        pool[columns], pool["label"]
    )

    def auc_after_relearning(drift: str) -> tuple[float, float]:
        spec = parse_drift([drift], project)
        train_x, train_y = make_batch(project, pool, 1500, spec, seed=5, batch="a")
        test_x, test_y = make_batch(project, pool, 600, spec, seed=6, batch="b")
        new = DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=0).fit(
            train_x[columns], train_y["label"]
        )
        return (
            roc_auc_score(test_y["label"], old.predict_proba(test_x[columns])[:, 1]),
            roc_auc_score(test_y["label"], new.predict_proba(test_x[columns])[:, 1]),
        )

    old_auc, new_auc = auc_after_relearning("concept:x1")
    # The old model ranks the reversed half backwards; a retrained one learns the new rule.
    assert old_auc < 0.6 and new_auc > 0.75 and new_auc - old_auc > 0.2
    noisy_old, noisy_new = auc_after_relearning("flip:0.5")
    assert abs(noisy_new - 0.5) < 0.1 and abs(noisy_old - 0.5) < 0.1


def test_concept_names_a_numeric_feature(project):
    with pytest.raises(DriftSpecError, match=r"colour is not a numeric feature \(numeric "):
        parse_drift(["concept:colour"], project)
    with pytest.raises(DriftSpecError, match="or concept:COL"):
        parse_drift(["concept:"], project)
    # For a project whose features are inferred (all_but), the resolved ones are given.
    assert parse_drift(["concept:x9"], project, numeric=["x9"]).concept == ["x9"]
    assert parse_drift(["concept:x1,concept:x1"], project).concept == ["x1"]
    assert np.isclose(parse_drift(["flip:0.2"], project).flip, 0.2)


def test_batch_names_sort_in_the_order_batches_were_made_across_a_second():
    from unified_ai.ml.simulate import batch_name
    from unified_ai.resources.inbox import is_batch_name

    # The last nanosecond of one second, then the first of the next.
    before = batch_name(1_764_950_391_999_999_999, 0)
    after = batch_name(1_764_950_392_000_000_001, 0)
    assert before < after
    assert is_batch_name(before) and is_batch_name(after)
    assert before == "batch-20251205155951-999999999-000.csv"
