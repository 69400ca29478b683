"""A scikit-learn model's ONNX form, converted and verified when it is stored.

The model writer (`unified_ai.io.formats`) stores `sklearn_onnx_files` beside `model.skops`;
here the versions are written with those files added explicitly, so these tests hold whether
or not the writer adds them itself.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import deserialize, payload_bytes, serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml import onnx_export
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.onnx_checks import ONNX_FILE, ONNX_PROBE, ONNX_REFUSED, OnnxError
from unified_ai.ml.onnx_export import fitted_probe_rows, sklearn_onnx_files, stored_onnx
from unified_ai.ml.onnx_model import probe_rows
from unified_ai.ml.training import fit, model_inputs, task_card
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.schema import EstimatorSpec
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.tasks_fixtures import (
    make_multiclass_frame,
    make_regression_frame,
    write_multiclass_project,
    write_regression_project,
)

pytest.importorskip("skl2onnx")

ONNX_NAMES = (ONNX_FILE, ONNX_PROBE, ONNX_REFUSED)
TASKS = {
    "binary": (write_project, make_frame),
    "multiclass": (write_multiclass_project, make_multiclass_frame),
    "regression": (write_regression_project, make_regression_frame),
}


def _trained(projects_dir, task, estimator=None):
    write, make = TASKS[task]
    project = load_project_file(write(projects_dir))
    if estimator is not None:
        spec = EstimatorSpec.model_validate({"class": estimator, "params": {}})
        project = project.model_copy(update={"estimator": spec})
    frame = make()
    pipeline, features = fit(project, frame)
    card = {
        **task_card(project, frame),
        "features": {"numeric": features.numeric, "categorical": features.categorical},
    }
    return project, frame, TrainedModel(pipeline, card), features


def _store(home, project, frame, model, onnx_files):
    """The model as the writer stores it, with `onnx_files` as its ONNX files (none: before)."""
    store = LineageStore(home / "store")
    holdout = [project.name, "holdout_split"]
    store.set_current(
        holdout, store.write_version(holdout, *serialize(frame)).version, action="materialize"
    )
    kind, files = serialize(model)
    files = {name: data for name, data in files.items() if name not in ONNX_NAMES}
    path = [project.name, "candidate_model"]
    return store, store.write_version(path, kind, {**files, **onnx_files}).version


def _export(projects_dir, monkeypatch, *args):
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return CliRunner().invoke(main, ["export", *args])


def _no_conversion(*args, **kwargs):
    raise AssertionError("export converted a model whose ONNX form is stored")


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_a_model_that_converts_stores_its_verified_onnx_and_export_hands_it_out(
    task, home, projects_dir, monkeypatch, tmp_path
):
    project, frame, model, features = _trained(projects_dir, task)
    files = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    assert sorted(files) == [ONNX_FILE, ONNX_PROBE]
    # Read back by the checked loader of ONNX-backed models: the probe holds the project's rows
    # (the train split's head), rows drawn from the preprocessing and rows with nothing filled.
    probe = json.loads(files[ONNX_PROBE])
    assert len(probe["expected"]) == 100 + 200 + 20
    assert stored_onnx(files, model.card, where="w") == files[ONNX_FILE]
    # The same model always gives the same bytes (one model stored twice is one version).
    again = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    assert again == files

    store, version = _store(home, project, frame, model, files)
    # The stored model is unchanged: read back, it predicts as before.
    loaded = store.read_value([project.name, "candidate_model"], version)
    inputs = model_inputs(frame.head(50), features)
    assert np.allclose(loaded.predict(inputs), model.predict(inputs))

    monkeypatch.setattr(onnx_export, "sklearn_to_onnx", _no_conversion)
    target = tmp_path / "edge.onnx"
    result = _export(
        projects_dir, monkeypatch, project.name, "--version", version, "--output", target
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"of verified ONNX to {target}")
    assert target.read_bytes() == files[ONNX_FILE]
    # What an edge runtime computes from the file is what the pipeline computes.
    fresh = TASKS[task][1](rows=200, seed=7)
    converted = onnx_export.OnnxModel(
        target.read_bytes(),
        numeric=features.numeric,
        categorical=features.categorical,
        where="edge",
    )
    rows = model_inputs(fresh, features)
    got = converted.predict(rows, model.task, len(model.classes or []))
    assert np.allclose(got, model.predict(rows), rtol=1e-4, atol=1e-4)


def test_a_conversion_that_disagrees_records_the_largest_difference_and_the_model_is_stored(
    home, projects_dir, monkeypatch, tmp_path
):
    # skl2onnx converts HistGradientBoosting so that rows on its bin thresholds (the train
    # split's own rows) get other probabilities.
    project, frame, model, features = _trained(
        projects_dir, "binary", "HistGradientBoostingClassifier"
    )
    files = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    assert sorted(files) == [ONNX_REFUSED]
    why = files[ONNX_REFUSED].decode()
    assert "\n" not in why
    assert why.startswith("skl2onnx ") and " (onnx " in why
    assert "disagrees with the scikit-learn pipeline's predictions on 320 probe rows" in why
    assert "largest |Δ| 0." in why

    store, version = _store(home, project, frame, model, files)
    loaded = store.read_value([project.name, "candidate_model"], version)
    inputs = model_inputs(frame.head(50), features)
    assert np.allclose(loaded.predict(inputs), model.predict(inputs))
    # export answers with the stored reason: the same skl2onnx would convert it the same way.
    monkeypatch.setattr(onnx_export, "sklearn_to_onnx", _no_conversion)
    result = _export(
        projects_dir, monkeypatch, "small", "--version", version, "--output", tmp_path / "m.onnx"
    )
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: small/candidate_model@{version}: {why}"
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "stored",
    [
        {},  # stored before ONNX forms were
        {ONNX_REFUSED: b"not converted when stored: 60000 tree nodes, over the 50000 ..."},
        # A reason found by other converter versions may not hold for the installed ones.
        {ONNX_REFUSED: b"skl2onnx 0.1 (onnx 0.1): skl2onnx cannot convert this model (x)"},
    ],
    ids=["before", "left-for-export", "older-converter"],
)
def test_a_model_stored_without_onnx_is_converted_on_demand(
    stored, home, projects_dir, monkeypatch, tmp_path
):
    project, frame, model, features = _trained(projects_dir, "regression")
    store, version = _store(home, project, frame, model, stored)
    files = store.read_manifest([project.name, "candidate_model"], version).files
    assert not {ONNX_FILE, ONNX_PROBE} & set(files)
    target = tmp_path / "model.onnx"
    result = _export(
        projects_dir, monkeypatch, project.name, "--version", version, "--output", target
    )
    assert result.exit_code == 0, result.output
    stored = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    # The conversion on demand is the one the writer would have stored.
    assert target.read_bytes() == stored[ONNX_FILE]


def test_a_damaged_stored_onnx_is_refused_not_converted_again(
    home, projects_dir, monkeypatch, tmp_path
):
    project, frame, model, features = _trained(projects_dir, "binary")
    files = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    store, version = _store(home, project, frame, model, files)
    stored = store.version_dir([project.name, "candidate_model"], version) / ONNX_FILE
    stored.write_bytes(stored.read_bytes()[:-1] + b"\x00")
    monkeypatch.setattr(onnx_export, "sklearn_to_onnx", _no_conversion)
    target = tmp_path / "model.onnx"
    result = _export(projects_dir, monkeypatch, "small", "--version", version, "--output", target)
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "does not match its checksum" in line
    assert not target.exists()


def test_a_stored_onnx_whose_probe_outputs_were_changed_is_refused():
    frame = make_frame()
    model, features = _small_model(frame)
    files = sklearn_onnx_files(model, probe_rows(frame, features.numeric, features.categorical))
    probe = json.loads(files[ONNX_PROBE])
    probe["expected"][0] = 1.0 - probe["expected"][0]
    changed = {**files, ONNX_PROBE: json.dumps(probe).encode()}
    with pytest.raises(OnnxError, match=r"^w: the ONNX model disagrees .* largest \|Δ\| "):
        stored_onnx(changed, model.card, where="w")


def _small_model(frame):
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import build_pipeline

    features = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
    spec = EstimatorSpec.model_validate({"class": "LogisticRegression", "params": {}})
    pipeline = build_pipeline(spec, features)
    pipeline.fit(model_inputs(frame, features), frame["label"])
    card = {
        "task": "binary_classification",
        "features": {"numeric": features.numeric, "categorical": features.categorical},
    }
    return TrainedModel(pipeline, card), features


def test_storing_never_fails_on_the_conversion(monkeypatch):
    frame = make_frame()
    model, features = _small_model(frame)
    probe = probe_rows(frame, features.numeric, features.categorical)

    # No rows of the project's data: nothing is claimed verified.
    why = sklearn_onnx_files(model, None)[ONNX_REFUSED].decode()
    assert why.startswith("not converted when stored: no rows of the project's data")
    assert why.endswith("`unified-ai export` converts it on demand")

    # A converter that breaks unexpectedly.
    def broken(*args, **kwargs):
        raise RuntimeError("converter bug\nmore")

    monkeypatch.setattr(onnx_export, "sklearn_to_onnx", broken)
    assert sklearn_onnx_files(model, probe) == {
        ONNX_REFUSED: b"converting to ONNX failed unexpectedly (RuntimeError: converter bug)"
    }
    # The writer stores the model with the reason.
    kind, files = serialize(model)
    files = {**files, **sklearn_onnx_files(model, probe)}
    loaded = deserialize(kind, {n: payload_bytes(d) for n, d in files.items()}, where="w")
    assert loaded.card == model.card
    inputs = model_inputs(frame.head(20), features)
    assert np.allclose(loaded.predict(inputs), model.predict(inputs))


def test_a_large_tree_ensemble_is_left_for_export(monkeypatch):
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import build_pipeline

    frame = make_frame()
    features = FeatureColumns(numeric=["x1", "x2"], categorical=["colour"])
    spec = EstimatorSpec.model_validate(
        {"class": "RandomForestClassifier", "params": {"n_estimators": 5, "random_state": 0}}
    )
    pipeline = build_pipeline(spec, features)
    pipeline.fit(model_inputs(frame, features), frame["label"])
    card = {"task": "binary_classification", "features": {"numeric": ["x1", "x2"]}}
    card["features"]["categorical"] = ["colour"]
    nodes = onnx_export.tree_nodes(pipeline.steps[-1][1])
    assert nodes == sum(tree.tree_.node_count for tree in pipeline.steps[-1][1].estimators_)
    monkeypatch.setattr(onnx_export, "STORE_MAX_TREE_NODES", nodes - 1)
    monkeypatch.setattr(onnx_export, "sklearn_to_onnx", _no_conversion)
    probe = probe_rows(frame, ["x1", "x2"], ["colour"])
    files = sklearn_onnx_files(TrainedModel(pipeline, card), probe)
    assert files == {
        ONNX_REFUSED: (
            f"not converted when stored: {nodes} tree nodes, over the {nodes - 1} converted when "
            "a model is stored; `unified-ai export` converts it on demand"
        ).encode()
    }


def test_probe_rows_drawn_from_the_preprocessing_cover_missing_and_unseen_values():
    frame = make_frame()
    model, features = _small_model(frame)
    rows = fitted_probe_rows(model.pipeline, features.numeric, features.categorical)
    assert list(rows.columns) == ["x1", "x2", "colour"] and len(rows) == 200
    assert rows["x1"].isna().any() and rows["colour"].isna().any()
    assert set(rows["colour"].dropna()) == {"red", "green", "blue", "unseen-category"}
    assert abs(rows["x1"].mean()) < 0.5  # around the training mean (0)
    # Drawn with a fixed seed: the same rows every time.
    again = fitted_probe_rows(model.pipeline, features.numeric, features.categorical)
    assert rows.equals(again)
    # A pipeline that is not the built-in preprocessing has no rows to draw.
    assert fitted_probe_rows(model.pipeline.steps[-1][1], ["x1"], []) is None


def test_the_model_writer_stores_the_verified_onnx_beside_the_skops_file():
    frame = make_frame()
    model, features = _small_model(frame)
    model.probe_rows = probe_rows(frame, features.numeric, features.categorical)
    _, files = serialize(model)
    assert {ONNX_FILE, ONNX_PROBE} <= set(files) and ONNX_REFUSED not in files
    assert "model.skops" in files
