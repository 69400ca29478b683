"""Training through Dagster Pipes: a real subprocess locally; the pod it would get in the
cluster is validated offline."""

import base64
from pathlib import Path

import kubernetes_validate
from dagster_k8s.pipes import build_pod_body
from kubernetes.client import ApiClient

from unified_ai.projects.loader import load_project_file
from unified_ai.resources.training_runner import training_command
from unified_ai.stages.placement import pipes_pod_spec
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    project_defs,
    run_loop,
    step_failures,
    store,
)
from unified_ai_tests.io.test_model_security import payloads

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "projects" / "mortgage_external.yaml"


def test_loop_trains_in_an_external_process_via_pipes(home, projects_dir, instance):
    path = write_project(projects_dir)
    path.write_text(path.read_text() + "training: {runner: pipes}\n")
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "small")
    assert result.success, step_failures(result)
    _, model = current(home, "small", "candidate_model")
    assert model.card["training_runner"] == "pipes"
    assert model.card["training_metrics"]["train_roc_auc"] > 0.8
    assert model.card["features"] == {"numeric": ["x1", "x2"], "categorical": ["colour"]}
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("training LogisticRegression on" in m for m in messages), "logs through Pipes"
    _, deployment = current(home, "small", "deployed_model")
    assert deployment["model_version"] == current(home, "small", "candidate_model")[0]
    incoming = home / "store" / "small" / "candidate_model" / ".incoming"
    assert list(incoming.iterdir()) == []  # the handed-over model file is consumed


def test_example_project_loads_and_its_training_pod_is_valid():
    project = load_project_file(EXAMPLE)
    assert project.training.runner == "pipes"
    pod = build_pod_body(
        pod_name="dagster-pipes-0123456789",
        image="registry.example.com/ml/unified-ai:0.1.0",
        command=training_command(project, python="python"),
        env_vars={"DAGSTER_PIPES_CONTEXT": "e30=", "DAGSTER_PIPES_MESSAGES": "e30="},
        base_pod_meta=None,
        base_pod_spec=pipes_pod_spec(project),
    )
    body = {"apiVersion": "v1", "kind": "Pod", **ApiClient().sanitize_for_serialization(pod)}
    kubernetes_validate.validate(body, "1.30.0", strict=True)
    container = body["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "unified_ai.stages.training.external_train"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert body["spec"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert body["spec"]["restartPolicy"] == "Never"


#: A training script that hands back a crafted model file instead of a trained pipeline.
CRAFTED_TRAINING = """\
import base64

import fsspec
from dagster_pipes import open_dagster_pipes

with open_dagster_pipes() as pipes:
    options = pipes.extras.get("storage_options") or {{}}
    with fsspec.open(pipes.extras["model_uri"], "wb", **options) as handle:
        handle.write(base64.b64decode({payload!r}))
    pipes.report_asset_materialization(
        metadata={{
            "train_roc_auc": 0.99,
            "features": {{
                "raw_value": {{"numeric": ["x1", "x2"], "categorical": ["colour"]}},
                "type": "json",
            }},
        }}
    )
"""


def test_a_crafted_model_from_pipes_training_is_refused_and_never_runs(
    home, projects_dir, instance, tmp_path
):
    marker = tmp_path / "marker"
    data, type_name = payloads(marker)["numpy_runstring"]
    path = write_project(projects_dir)
    script = projects_dir / "crafted_train.py"
    script.write_text(CRAFTED_TRAINING.format(payload=base64.b64encode(data).decode()))
    path.write_text(path.read_text() + "training: {runner: pipes, script: crafted_train.py}\n")
    result = run_loop(project_defs(projects_dir), instance, "small")
    assert not result.success
    failures = step_failures(result)
    message = failures["small__candidate_model"]
    assert "\n" not in message
    assert message.startswith("small/candidate_model@"), message
    assert ": model file would instantiate [" in message and type_name in message
    assert message.endswith("which are not allowed; refusing to load it")
    assert not marker.exists()
    assert store(home).current_version(["small", "candidate_model"]) is None
    incoming = home / "store" / "small" / "candidate_model" / ".incoming"
    assert list(incoming.iterdir()) == []  # the refused file is not left behind either
