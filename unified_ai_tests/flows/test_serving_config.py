"""`serving_config` follows the deployment: each deploy and each rollback renders it in the same
run, from the `deployed_model` version it names as its upstream (real instance, MLflow, store)."""

import dagster as dg
import kubernetes_validate
import yaml

from unified_ai.projects.loader import load_project_file
from unified_ai.stages.deployment.serving import KUBERNETES_VERSION, MANIFESTS_FILE
from unified_ai.stages.rollback.jobs import rollback_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    new_source_rows,
    project_defs,
    run_loop,
    step_failures,
    store,
)

DEPLOYED = ["small", "deployed_model"]
SERVING = ["small", "serving_config"]
IMAGE = "registry.example.com/ml/unified-ai:9.9.9"
SIZED = """\
resources:
  serving:
    requests: {cpu: 750m, memory: 1536Mi}
    min_replicas: 3
    max_replicas: 5
"""


def rendered(home):
    """(version, its manifest, its value, its YAML file parsed) of the current serving config."""
    lineage = store(home)
    version = lineage.require_current(SERVING)
    manifest = lineage.read_manifest(SERVING, version)
    report = lineage.read_value(SERVING, version)
    return version, manifest, report, list(yaml.safe_load_all(report.attachments[MANIFESTS_FILE]))


def check_serves(home, deployment: str, run_id: str, instance) -> str:
    version, manifest, report, documents = rendered(home)
    assert manifest.upstream == {"small/deployed_model": deployment}
    assert manifest.run_id == run_id or store(home).history(SERVING)[-1].run_id == run_id
    assert report.body["deployment_version"] == deployment
    assert documents == report.body["manifests"]
    kinds = {d["kind"]: d for d in documents}
    assert kinds["Deployment"]["metadata"]["annotations"]["unified-ai/deployment-version"] == (
        deployment
    )
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    [container] = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE
    assert container["resources"]["requests"] == {"cpu": "750m", "memory": "1536Mi"}
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # not Secret refs
    assert env["UNIFIED_AI_HOME"] == str(home)
    assert env["MLFLOW_TRACKING_URI"] == f"sqlite:///{home / 'mlflow.db'}"
    hpa = kinds["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 5)
    event = instance.get_latest_materialization_event(dg.AssetKey(SERVING))
    assert event.run_id == run_id
    assert event.asset_materialization.metadata["lineage/version"].value == version
    return version


def test_deploy_and_rollback_each_render_the_serving_config_of_the_deployment(
    home, projects_dir, instance, monkeypatch
):
    monkeypatch.setenv("DAGSTER_CURRENT_IMAGE", IMAGE)
    path = write_project(projects_dir)
    path.write_text(path.read_text() + SIZED)
    project = load_project_file(path)
    defs = project_defs(projects_dir)

    configs = []
    for seed in range(2):
        if seed:
            new_source_rows(projects_dir, seed=seed)  # a new model, not the champion again
        result = run_loop(defs, instance, "small")
        assert result.success, step_failures(result)
        deployment = store(home).current_version(DEPLOYED)
        configs.append((deployment, check_serves(home, deployment, result.run_id, instance)))
    [(v1, c1), (v2, c2)] = configs
    assert v1 != v2 and c1 != c2

    result = defs.resolve_job_def("small__rollback").execute_in_process(
        run_config=rollback_run_config(project, reason="bad v2", to_version=v1),
        instance=instance,
        raise_on_error=False,
    )
    assert result.success, step_failures(result)
    assert store(home).current_version(DEPLOYED) == v1
    # Content-addressed: the config that serves v1 is the one rendered for v1 before; the
    # rollback run rendered it again and moved the pointer back to it.
    assert check_serves(home, v1, result.run_id, instance) == c1
    moves = store(home).history(SERVING)
    assert [(m.version, m.previous) for m in moves] == [(c1, None), (c2, c1), (c1, c2)]
    assert moves[-1].run_id == result.run_id
