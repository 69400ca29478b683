"""Labeled production rows for training: windows, joins, bad input, origins, stable splits."""

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from unified_ai.ml.data import resolve_features
from unified_ai.ml.production import (
    LabeledBatch,
    choose_batches,
    combine,
    production_rows,
)
from unified_ai.ml.split import holdout_parts, overlapping_rows, split_frame
from unified_ai.names import ORIGIN, ROW_ID
from unified_ai.policies.holdout import choose_holdout
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.schema import ChampionRule, ProductionData
from unified_ai_tests.conftest import make_frame, write_project


@pytest.fixture
def project(tmp_path):
    return load_project_file(write_project(tmp_path / "p"))


def batch_rows(name: str, rows: int = 40, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inputs as a batch stores them, ground truth as `ground_truth` stores it)."""
    frame = make_frame(rows, seed=seed)
    frame[ROW_ID] = [f"{name}:{i}" for i in range(rows)]
    truth = frame[[ROW_ID, "region"]].assign(proba=0.5, prediction=1, label=frame["label"])
    return frame.drop(columns=["label"]), truth


def refs(count: int, start: datetime) -> list[LabeledBatch]:
    return [
        LabeledBatch(f"b{i}.csv", f"v{i}", (start + timedelta(days=i)).isoformat(), f"t{i}")
        for i in range(count)
    ]


def test_window_batches_keeps_the_newest_usable_batches():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    chosen = choose_batches(
        refs(5, start),
        ProductionData(window_batches=2),
        now=start + timedelta(days=10),
        left_out={"b4.csv": "excluded"},
    )
    # The excluded newest batch does not count: the two newest usable ones are chosen.
    assert [b.batch for b in chosen] == ["b2.csv", "b3.csv"]


def test_window_days_and_an_empty_window():
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    recent = choose_batches(
        refs(5, start), ProductionData(window_days=2.5), now=start + timedelta(days=4), left_out={}
    )
    assert [b.batch for b in recent] == ["b2.csv", "b3.csv", "b4.csv"]
    assert (
        choose_batches(
            refs(5, start),
            ProductionData(window_days=1),
            now=start + timedelta(days=30),
            left_out={},
        )
        == []
    )
    assert ProductionData().batches == 20 and ProductionData(window_days=3).batches is None
    with pytest.raises(ValueError, match="not both"):
        ProductionData(window_batches=3, window_days=1)


def test_rows_join_by_row_id_keep_their_origin_and_the_training_classes(project):
    inputs, truth = batch_rows("b1.csv")
    result = production_rows(project, [("b1.csv", inputs, truth)], [0, 1])
    assert result.used == {"b1.csv": 40} and result.left_out == {} and result.notes == []
    frame = result.frame
    assert set(frame[ORIGIN]) == {"b1.csv"}
    # The ground truth's 0/1 becomes the target column; row ids are not training columns.
    assert list(frame.columns) == ["x1", "x2", "colour", "region", "label", ORIGIN]
    expected = truth.set_index(truth[ROW_ID].str.split(":").str[1].astype(int))["label"]
    assert frame["label"].tolist() == expected.tolist()


def test_bad_labels_are_dropped_with_a_reason(project):
    inputs, truth = batch_rows("b1.csv", rows=10)
    duplicate = truth.iloc[[0]]
    conflicting = truth.iloc[[1]].assign(label=1 - truth.iloc[1]["label"])
    unscored = truth.iloc[[2]].assign(**{ROW_ID: "b1.csv:999"})
    bad = pd.concat([truth, duplicate, conflicting, unscored], ignore_index=True)
    result = production_rows(project, [("b1.csv", inputs, bad)], [0, 1])
    # Row 1 has two different labels: no label can be trusted, the row is dropped.
    assert result.used == {"b1.csv": 9}
    notes = " | ".join(result.notes)
    assert "batch b1.csv: 1 rows have conflicting labels and were dropped" in notes
    assert "1 duplicate labels of the same rows were counted once" in notes
    assert "1 labels are for rows the batch does not have and were dropped" in notes


def test_a_batch_whose_columns_no_longer_match_is_left_out_with_the_reason(project):
    good_inputs, good_truth = batch_rows("good.csv")
    old_inputs, old_truth = batch_rows("old.csv")
    old_inputs = old_inputs.drop(columns=["x2"])
    result = production_rows(
        project, [("old.csv", old_inputs, old_truth), ("good.csv", good_inputs, good_truth)], [0, 1]
    )
    assert result.used == {"good.csv": 40}
    assert "no longer match the project" in result.left_out["old.csv"]
    assert "'x2'" in result.left_out["old.csv"]


def test_max_rows_keeps_the_newest_rows(tmp_path):
    path = write_project(tmp_path / "p")
    text = path.read_text().replace(
        "evaluation:", "training: {production_data: {max_rows: 50}}\nevaluation:"
    )
    path.write_text(text)
    project = load_project_file(path)
    old, new = batch_rows("old.csv"), batch_rows("new.csv", seed=2)
    result = production_rows(project, [("old.csv", *old), ("new.csv", *new)], [0, 1])
    assert result.used == {"old.csv": 10, "new.csv": 40}
    assert "max_rows 50: the 30 oldest production rows were left out" in result.notes


def test_the_origin_column_is_never_a_feature(tmp_path):
    path = write_project(tmp_path / "p")
    path.write_text(
        path.read_text().replace(
            "  numeric: [x1, x2]\n  categorical: [colour]\n", "  all_but: []\n"
        )
    )
    project = load_project_file(path)
    frame = make_frame(20).assign(**{ORIGIN: "small.csv", ROW_ID: range(20)})
    features = resolve_features(project, frame)
    assert sorted(features.all) == ["colour", "x1", "x2"]


def test_source_rows_stay_on_their_side_when_production_rows_join(project):
    source = make_frame(400).assign(**{ORIGIN: project.data.source})
    inputs, truth = batch_rows("b1.csv", rows=60)
    joined = production_rows(project, [("b1.csv", inputs, truth)], [0, 1]).frame
    train_before, holdout_before = split_frame(project, source)
    train, holdout = split_frame(project, combine(source, joined))
    static, recent = holdout_parts(project, holdout)
    pd.testing.assert_frame_equal(static, holdout_before)
    # 18 of the 60 production rows are the recent holdout (30 %); the others train.
    assert len(train) == len(train_before) + 42 and len(recent) == 18
    assert (train[ORIGIN] == "b1.csv").sum() == 42


def test_the_newest_production_rows_are_the_recent_holdout(project):
    source = make_frame(400).assign(**{ORIGIN: project.data.source})
    old_inputs, old_truth = batch_rows("old.csv", rows=50)
    new_inputs, new_truth = batch_rows("new.csv", rows=50, seed=2)
    joined = production_rows(
        project, [("old.csv", old_inputs, old_truth), ("new.csv", new_inputs, new_truth)], [0, 1]
    ).frame
    train, holdout = split_frame(project, combine(source, joined))
    static, recent = holdout_parts(project, holdout)
    _, holdout_before = split_frame(project, source)
    pd.testing.assert_frame_equal(static, holdout_before)
    # 30 % of the 100 production rows, the newest: the last 30 rows of the newest batch.
    assert len(recent) == 30 and set(recent[ORIGIN]) == {"new.csv"}
    assert (train[ORIGIN] == "new.csv").sum() == 20 and (train[ORIGIN] == "old.csv").sum() == 50
    assert overlapping_rows(train, holdout) == 0


def test_the_policy_chooses_the_holdout_the_gates_judge_on():
    auto = ChampionRule(min_recent_rows=100)
    assert choose_holdout(auto, 150) == (
        "recent",
        "the recent holdout has 150 rows (policy: at least 100 for auto)",
    )
    assert choose_holdout(auto, 99)[0] == "static"
    assert choose_holdout(auto, 0) == (
        "static",
        "no recent holdout: no labeled production rows were held out",
    )
    assert choose_holdout(auto, 500, recent_classes=1)[1].endswith(
        "have one class only: no metric compares models on it"
    )
    assert choose_holdout(ChampionRule(holdout="recent"), 5)[0] == "recent"
    assert choose_holdout(ChampionRule(holdout="static"), 500)[0] == "static"
