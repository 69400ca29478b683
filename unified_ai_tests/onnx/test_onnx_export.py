"""`unified-ai export --format onnx`: a scikit-learn model converted, verified, handed out."""

import numpy as np
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml.artifacts import TrainedModel
from unified_ai.ml.training import fit, model_inputs, task_card
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.tasks_fixtures import make_regression_frame, write_regression_project

pytest.importorskip("skl2onnx")


def _store_model(home, project, frame, estimator=None):
    if estimator is not None:
        project = project.model_copy(update={"estimator": estimator})
    pipeline, features = fit(project, frame)
    card = {
        **task_card(project, frame),
        "features": {"numeric": features.numeric, "categorical": features.categorical},
    }
    store = LineageStore(home / "store")
    holdout = [project.name, "holdout_split"]
    store.set_current(
        holdout, store.write_version(holdout, *serialize(frame)).version, action="materialize"
    )
    path = [project.name, "candidate_model"]
    version = store.write_version(path, *serialize(TrainedModel(pipeline, card))).version
    return version, pipeline, features


def _export(projects_dir, monkeypatch, *args):
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return CliRunner().invoke(main, ["export", *args])


def _onnx_scores(path, frame, features):
    import onnxruntime as ort

    session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    inputs = model_inputs(frame, features)
    feeds = {c: inputs[[c]].to_numpy(dtype="float32") for c in features.numeric}
    feeds |= {c: inputs[[c]].to_numpy(dtype=object).astype(str) for c in features.categorical}
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))


def test_export_writes_a_sklearn_deployment_as_onnx_that_onnxruntime_scores_alike(
    home, projects_dir, monkeypatch, tmp_path
):
    project = load_project_file(write_project(projects_dir))
    frame = make_frame()
    version, pipeline, features = _store_model(home, project, frame)
    target = tmp_path / "edge" / "small.onnx"
    result = _export(projects_dir, monkeypatch, "small", "--version", version, "--output", target)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"of verified ONNX to {target}")
    fresh = make_frame(rows=200, seed=4)
    outputs = _onnx_scores(target, fresh, features)
    expected = pipeline.predict_proba(model_inputs(fresh, features))[:, 1]
    assert np.abs(outputs["probabilities"][:, 1] - expected).max() < 1e-4


def test_export_of_a_regressor(home, projects_dir, monkeypatch, tmp_path):
    project = load_project_file(write_regression_project(projects_dir))
    frame = make_regression_frame()
    version, pipeline, features = _store_model(home, project, frame)
    target = tmp_path / "model.onnx"
    result = _export(
        projects_dir, monkeypatch, project.name, "--version", version, "--output", target
    )
    assert result.exit_code == 0, result.output
    outputs = _onnx_scores(target, frame.head(50), features)
    got = next(iter(outputs.values())).ravel()
    expected = pipeline.predict(model_inputs(frame.head(50), features))
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_export_refuses_in_one_line_when_nothing_is_deployed(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    result = _export(projects_dir, monkeypatch, "small")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: small: no model is deployed yet; name one with --version"
    )


def test_export_refuses_a_conversion_that_disagrees_naming_the_largest_difference(
    home, projects_dir, monkeypatch, tmp_path
):
    from unified_ai.projects.schema import EstimatorSpec

    project = load_project_file(write_project(projects_dir))
    spec = EstimatorSpec.model_validate({"class": "HistGradientBoostingClassifier", "params": {}})
    version, _, _ = _store_model(home, project, make_frame(), estimator=spec)
    target = tmp_path / "model.onnx"
    result = _export(projects_dir, monkeypatch, "small", "--version", version, "--output", target)
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line
    assert line.startswith(f"Error: small/candidate_model@{version}: the ONNX model disagrees ")
    assert "with the scikit-learn pipeline's predictions" in line and "largest |Δ| 0." in line
    assert not target.exists()
