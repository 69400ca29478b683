"""A batch scored in small chunks gives what the whole-frame steps give on the same rows.

Validation findings (counts, examples, order), the stored batch, the predictions (shadow
columns included), their metadata and prediction drift, the input drift statistics and the
Evidently page's sample: identical, for every task, from CSV and Parquet files.
"""

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from unified_ai.io.formats import serialize
from unified_ai.io.frame_chunks import FrameChunks
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.batch_scoring import (
    empty_shadow_columns,
    primary_score,
    scored_frame,
    scoring_metadata,
    shadow_rows,
)
from unified_ai.ml.chunked_batches import Shadow
from unified_ai.ml.chunked_drift import DriftScores
from unified_ai.ml.csv_reader import ChunkTypesDiffer, iter_csv_checked, read_csv_checked
from unified_ai.ml.data import resolve_features
from unified_ai.ml.drift import drift_scores, prediction_drift
from unified_ai.ml.parquet_reader import read_parquet_checked
from unified_ai.ml.training import fit, predict, task_card
from unified_ai.ml.validation import validate_batch
from unified_ai.names import (
    PREDICTIONS,
    PRODUCTION_BATCH,
    ROW_ID,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.loader import load_project_file
from unified_ai.stages.monitoring.chunked_scoring import (
    NonFiniteScores,
    drift_of_stored_batch,
    score_stored_batch,
    store_batch_file,
)
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.tasks_fixtures import (
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)

CHUNK = 97  # rows per chunk: not a divisor of anything below
BATCH = "batch-1.csv"

TASKS = {
    "binary": (write_project, make_frame, "label"),
    "regression": (write_regression_project, make_regression_frame, "price"),
    "multiclass": (write_multiclass_project, make_multiclass_frame, "queue"),
}


def _trained(tmp_path, task: str):
    write, make, target = TASKS[task]
    project = load_project_file(write(tmp_path / "project"))
    project = project.model_copy(
        update={"monitoring": project.monitoring.model_copy(update={"shadow_rows": 150})}
    )
    frame = make(rows=1500, seed=1)
    train = frame.iloc[:1000].reset_index(drop=True)
    pipeline, features = fit(project, train)
    card = {"features": asdict(features), **task_card(project, train)}
    model = TrainedModel(pipeline=pipeline, card=card)
    # A second model (other rows) as the shadow the rollback would restore.
    other, _ = fit(project, frame.iloc[500:].reset_index(drop=True))
    shadow = TrainedModel(pipeline=other, card=card)
    batch = frame.iloc[1000:].drop(columns=[target]).reset_index(drop=True)
    batch.insert(0, ROW_ID, [f"r{i:05d}" for i in range(len(batch))])
    return project, train, model, shadow, batch


def _dirty(batch: pd.DataFrame) -> pd.DataFrame:
    """Problems spread over several chunks: repeats, out of range, unknown and missing values."""
    dirty = batch.copy()
    dirty.loc[[5, 300, 420], ROW_ID] = ["r00001", "r00002", "r00001"]
    dirty.loc[[10, 250, 499], "x1"] = [50.0, -42.0, 11.0]
    dirty.loc[[120, 121, 480], "colour"] = ["purple", "mauve", "purple"]
    dirty.loc[[7, 333], "x2"] = np.nan
    return dirty


def _whole_predictions(project, model, shadow, batch: pd.DataFrame, name: str):
    """What the `predictions` step computes from the whole frame (as `scoring.py` does)."""
    predicted = predict(model, batch, _features(model))
    scored = scored_frame(
        batch,
        predicted,
        segments=project.segments,
        threshold=project.evaluation.threshold,
        deployment="d1",
        model_version="m1",
        task=model.task,
        classes=model.classes,
    )
    columns = empty_shadow_columns()
    rows = shadow_rows(len(batch), project.monitoring.shadow_rows, name)
    scores = np.full(len(batch), np.nan)
    scores[rows] = primary_score(shadow.task, predict(shadow, batch.iloc[rows], _features(shadow)))
    columns[SHADOW_PREVIOUS_DEPLOYMENT] = "d0"
    columns[SHADOW_PREVIOUS_PROBA] = scores
    return scored.assign(**columns), predicted


def _features(model):
    from unified_ai.ml.data import FeatureColumns

    return FeatureColumns(**model.card["features"])


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_batch_in_chunks_gives_the_whole_batch_results(tmp_path, task, kind):
    project, train, model, shadow, batch = _trained(tmp_path, task)
    name = f"batch-1.{kind}"
    path = tmp_path / name
    if kind == "csv":
        batch.to_csv(path, index=False)
        whole = read_csv_checked(path)
    else:
        batch.to_parquet(path, index=False)
        whole = read_parquet_checked(path)
    store = LineageStore(tmp_path / "store")

    stored = store_batch_file(project, store, path, name, rows=CHUNK)
    assert stored.outcome == validate_batch(project, whole)
    assert stored.outcome.passed
    pd.testing.assert_frame_equal(
        store.read_value([project.name, PRODUCTION_BATCH, name], stored.manifest.version), whole
    )
    chunks = FrameChunks(store, [project.name, PRODUCTION_BATCH, name], stored.manifest.version, 97)
    assert chunks.rows == len(whole) and [len(c) for c in chunks][:2] == [97, 97]

    expected, predicted = _whole_predictions(project, model, shadow, whole, name)
    reference = primary_score(model.task, predict(model, train.iloc[:300], _features(model)))
    scored = score_stored_batch(
        project,
        store,
        name,
        stored.manifest.version,
        model=model,
        deployment="d1",
        model_version="m1",
        reference=reference,
        shadows=[Shadow(SHADOW_PREVIOUS_DEPLOYMENT, SHADOW_PREVIOUS_PROBA, "d0", shadow)],
        rows=CHUNK,
        min_rows=CHUNK,  # every batch here is scored by the compiled scorer, whole or not
    )
    got = store.read_value([project.name, PREDICTIONS, name], scored.manifest.version)
    # Stored whole, the frame would be read back from Parquet the same way.
    kind_, files = serialize(expected)
    store.write_version([project.name, "whole", name], kind_, files)
    wanted = store.read_value(
        [project.name, "whole", name], store.versions([project.name, "whole", name])[0].version
    )
    pd.testing.assert_frame_equal(got, wanted)
    assert got[SHADOW_PREVIOUS_PROBA].notna().sum() == project.monitoring.shadow_rows

    found = prediction_drift(
        model.task,
        reference,
        primary_score(model.task, predicted),
        project.policy.triggers.drift.psi_threshold,
    )
    assert scored.metadata == {
        **scoring_metadata(model.task, expected, model.classes),
        "prediction_drift_of": found["of"],
        "prediction_psi": "none" if found["psi"] is None else float(found["psi"]),
        "prediction_drifted": bool(found["drifted"]),
    }

    features = resolve_features(project, train)
    body, sample = drift_of_stored_batch(
        project,
        store,
        name,
        stored.manifest.version,
        train,
        features.numeric,
        features.categorical,
        sample_rows=200,
        rows=CHUNK,
    )
    threshold = project.policy.triggers.drift.psi_threshold
    assert body == drift_scores(train, whole, features.numeric, features.categorical, threshold)
    pandas_sample = whole[features.all].sample(n=200, random_state=project.split.seed)
    pd.testing.assert_frame_equal(sample, pandas_sample.reset_index(drop=True))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_validation_findings_in_chunks_are_the_whole_batch_findings(tmp_path, kind):
    project, _, _, _, batch = _trained(tmp_path, "binary")
    dirty = _dirty(batch)
    name = f"dirty.{kind}"
    path = tmp_path / name
    if kind == "csv":
        dirty.to_csv(path, index=False)
        whole = read_csv_checked(path)
    else:
        dirty.to_parquet(path, index=False)
        whole = read_parquet_checked(path)
    expected = validate_batch(project, whole)
    assert not expected.passed and len(expected.failures) == 3
    stored = store_batch_file(
        project, store := LineageStore(tmp_path / "s"), path, name, rows=CHUNK
    )
    assert stored.outcome == expected
    assert stored.manifest.version in {
        m.version for m in store.versions([project.name, PRODUCTION_BATCH, name])
    }


def test_a_non_finite_score_stores_nothing(tmp_path):
    project, _, model, _, batch = _trained(tmp_path, "regression")
    path = tmp_path / BATCH
    batch.to_csv(path, index=False)
    store = LineageStore(tmp_path / "store")
    stored = store_batch_file(project, store, path, BATCH, rows=CHUNK)

    class Broken(TrainedModel):
        def predict(self, inputs):
            values = np.array(super().predict(inputs), dtype=float)
            values[-1] = np.inf  # the last row of each chunk: the last chunk too
            return values

    with pytest.raises(NonFiniteScores, match="non-finite"):
        score_stored_batch(
            project,
            store,
            BATCH,
            stored.manifest.version,
            model=Broken(pipeline=model.pipeline, card=model.card),
            deployment="d1",
            model_version="m1",
            rows=CHUNK,
            min_rows=CHUNK,
        )
    assert store.versions([project.name, PREDICTIONS, BATCH]) == []
    staging = list((tmp_path / "store" / project.name / PREDICTIONS / BATCH).rglob("*.parquet"))
    assert staging == []


def test_a_csv_column_typed_differently_by_chunk_is_refused_in_chunks(tmp_path):
    path = tmp_path / "mixed.csv"
    lines = [f"{i},1" for i in range(150)] + [f"{i},1.5" for i in range(150, 300)]
    path.write_text("\n".join([f"{ROW_ID},x", *lines]) + "\n")
    with pytest.raises(ChunkTypesDiffer, match="'x'"):
        list(iter_csv_checked(path, 100))
    assert len(list(iter_csv_checked(path, 1000))) == 1


def test_drift_in_chunks_matches_on_ties_missing_and_unseen_values():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame(
        {"a": np.round(rng.normal(size=700), 1), "c": rng.choice(["x", "y"], 700)}
    )
    current = pd.DataFrame(
        {"a": np.round(rng.normal(0.4, 1.3, size=901), 1), "c": rng.choice(["x", "z", None], 901)}
    )
    current.loc[current.index[::17], "a"] = np.nan
    scores = DriftScores(reference, ["a"], ["c"], 0.1)
    for start in range(0, len(current), 64):
        scores.add(current.iloc[start : start + 64])
    assert scores.result() == drift_scores(reference, current, ["a"], ["c"], 0.1)


@pytest.mark.parametrize("sizes", [[97, 97, 3], [5, 5, 97, 2], [97], [3], [97, 97, 97]])
def test_chunks_are_joined_until_each_is_large_enough(sizes):
    from unified_ai.ml.chunked_batches import at_least

    start, chunks = 0, []
    for size in sizes:
        chunks.append(pd.DataFrame({"n": range(start, start + size)}))
        start += size
    joined = list(at_least(iter(chunks), 50, start))
    assert pd.concat(joined, ignore_index=True)["n"].tolist() == list(range(start))
    assert all(len(c) >= 50 for c in joined) or len(joined) == 1


def test_missing_columns_are_found_once_as_in_the_whole_batch(tmp_path):
    project, _, _, _, batch = _trained(tmp_path, "binary")
    path = tmp_path / "gaps.csv"
    _dirty(batch).drop(columns=[ROW_ID, "x2"]).to_csv(path, index=False)
    expected = validate_batch(project, read_csv_checked(path))
    assert any("missing" in f for f in expected.failures)
    stored = store_batch_file(project, LineageStore(tmp_path / "s"), path, "gaps.csv", rows=CHUNK)
    assert stored.outcome == expected
