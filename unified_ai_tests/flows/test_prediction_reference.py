"""The prediction-drift reference is computed once per model and split version, then reused.

Also: the multiclass class list is read from the model's card, without loading the model.
"""

import logging
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from unified_ai.io.formats import serialize
from unified_ai.io.reader import ReadLog, StoreReader
from unified_ai.io.records import IntegrityError
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.batch_scoring import primary_score
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.drift import PREDICTION_REFERENCE_ROWS
from unified_ai.ml.training import fit, predict, task_card
from unified_ai.names import CANDIDATE_MODEL, TRAIN_SPLIT
from unified_ai.projects.loader import load_project_file
from unified_ai.stages.monitoring.scoring import (
    PREDICTION_REFERENCE,
    recorded_classes,
    reference_scores,
)
from unified_ai_tests.tasks_fixtures import make_multiclass_frame, write_multiclass_project


@pytest.fixture
def stored(tmp_path):
    project = load_project_file(write_multiclass_project(tmp_path / "project"))
    train = make_multiclass_frame(rows=PREDICTION_REFERENCE_ROWS + 700, seed=2)
    pipeline, features = fit(project, train)
    model = TrainedModel(
        pipeline=pipeline, card={"features": asdict(features), **task_card(project, train)}
    )
    store = LineageStore(tmp_path / "store")
    split = [project.name, TRAIN_SPLIT]
    store.set_current(split, store.write_version(split, *serialize(train)).version, action="test")
    model_path = [project.name, CANDIDATE_MODEL]
    model_version = store.write_version(model_path, *serialize(model)).version
    return project, store, train, model, model_version


def _context():
    return SimpleNamespace(run_id="run-1", log=logging.getLogger("test"))


def test_the_reference_is_scored_once_and_reused_with_the_same_numbers(stored, monkeypatch):
    project, store, train, model, model_version = stored
    sample = train.sample(PREDICTION_REFERENCE_ROWS, random_state=project.split.seed)
    features = FeatureColumns(**model.card["features"])
    expected = primary_score(model.task, predict(model, sample, features))

    log = ReadLog()
    first = reference_scores(_context(), StoreReader(store, log), project, model, model_version)
    np.testing.assert_array_equal(first, expected)
    split = [project.name, TRAIN_SPLIT]
    assert log.upstream() == {"/".join(split): store.require_current(split)}
    [cached] = store.asset_paths([project.name, PREDICTION_REFERENCE])
    assert model_version in cached[-1]

    # Later batches neither read the split nor score it: the stored numbers come back.
    monkeypatch.setattr(type(model), "predict", lambda *a, **k: pytest.fail("scored again"))
    again_log = ReadLog()
    again = reference_scores(
        _context(), StoreReader(store, again_log), project, model, model_version
    )
    np.testing.assert_array_equal(again, expected)
    assert again_log.upstream() == log.upstream()
    assert store.verify().problems == []


def test_a_damaged_stored_reference_is_scored_again(stored):
    project, store, _, model, model_version = stored
    reader = StoreReader(store)
    first = reference_scores(_context(), reader, project, model, model_version)
    [cached] = store.asset_paths([project.name, PREDICTION_REFERENCE])
    [data] = Path(store.asset_dir(cached).path).rglob("data.parquet")
    data.write_bytes(b"garbage")
    np.testing.assert_array_equal(
        reference_scores(_context(), reader, project, model, model_version), first
    )


def test_classes_come_from_the_card_checked_without_loading_the_model(stored, monkeypatch):
    project, store, _, model, model_version = stored
    import unified_ai.io.formats as formats

    monkeypatch.setattr(formats, "deserialize", lambda *a, **k: pytest.fail("model loaded"))
    log = ReadLog()
    assert recorded_classes(StoreReader(store, log), project, model_version) == model.classes
    assert log.upstream() == {f"{project.name}/{CANDIDATE_MODEL}": model_version}
    card = store.version_dir([project.name, CANDIDATE_MODEL], model_version) / "card.json"
    card.write_bytes(card.read_bytes().replace(b"billing", b"billinG"))
    with pytest.raises(IntegrityError, match="checksum"):
        recorded_classes(StoreReader(store), project, model_version)
