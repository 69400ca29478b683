"""A project whose training script is LightGBM, handed back as ONNX, through the whole loop."""

from pathlib import Path

import numpy as np
import pytest

from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")

SCRIPT = Path(__file__).with_name("lgbm_train.py")
BATCHES = "small__batch_sensor"


def _lightgbm_project(projects_dir, *, tamper=False):
    path = write_project(projects_dir)
    text = SCRIPT.read_text()
    if tamper:
        text = text.replace("TAMPER = False", "TAMPER = True")
    (projects_dir / "lgbm_train.py").write_text(text)
    path.write_text(path.read_text() + "training: {runner: pipes, script: lgbm_train.py}\n")


@pytest.mark.slow
def test_a_lightgbm_project_trains_through_pipes_and_is_served_as_onnx(
    home, projects_dir, instance, monkeypatch, tmp_path
):
    from click.testing import CliRunner

    from unified_ai.cli import main

    _lightgbm_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "small")
    assert result.success, step_failures(result)
    version, model = current(home, "small", "candidate_model")
    assert model.onnx is not None
    assert model.card["training_runner"] == "pipes"
    assert model.card["features"] == {"numeric": ["x1", "x2"], "categorical": []}
    manifest = store(home).read_manifest(["small", "candidate_model"], version)
    assert manifest.kind == "model/onnx"
    scores = model.predict(make_frame(rows=50, seed=11)[["x1", "x2"]])
    assert scores.shape == (50,) and np.all((scores >= 0) & (scores <= 1))
    _, deployment = current(home, "small", "deployed_model")
    assert deployment["model_version"] == version
    incoming = home / "store" / "small" / "candidate_model" / ".incoming"
    assert list(incoming.iterdir()) == []

    # Production batches are scored by onnxruntime.
    driver = SensorDriver(defs, instance)
    simulate("small", "--batches", "1", "--rows", "200", "--seed", "1")
    [run] = [driver.launch(r, "small__score_batch") for r in driver.tick(BATCHES).requests]
    assert run.success, step_failures(run)
    batch = run.dagster_run.tags["dagster/partition"]
    _, predictions = current(home, "small", f"predictions/partitions/{batch}")
    assert len(predictions) == 200 and predictions["proba"].between(0, 1).all()

    # The deployment goes to an edge runtime as the ONNX file it is stored as.
    target = tmp_path / "edge.onnx"
    exported = CliRunner().invoke(main, ["export", "small", "--output", str(target)])
    assert exported.exit_code == 0, exported.output
    assert target.read_bytes() == model.onnx.data


@pytest.mark.slow
def test_an_onnx_hand_back_that_disagrees_with_its_script_is_refused(home, projects_dir, instance):
    _lightgbm_project(projects_dir, tamper=True)
    result = run_loop(project_defs(projects_dir), instance, "small")
    assert not result.success
    message = step_failures(result)["small__candidate_model"]
    assert "\n" not in message
    assert message.startswith("small/candidate_model@"), message
    assert "the ONNX model disagrees with the predictions its training script reported" in message
    assert "largest |Δ| 0." in message and message.endswith("refusing it")
    assert store(home).current_version(["small", "candidate_model"]) is None
