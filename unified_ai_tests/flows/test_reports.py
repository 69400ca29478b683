"""What a person sees after a loop: plots and tables in the UI, the same story in MLflow."""

import base64
import re

import dagster as dg
import mlflow

from unified_ai.ml.plots import EVALUATION_PLOTS
from unified_ai.projects.loader import load_project_file
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai.stages.rollback.jobs import rollback_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    new_source_rows,
    project_defs,
    run_loop,
    step_failures,
)
from unified_ai_tests.stages.gate_outcome_driver import GateOutcomes

PNG = b"\x89PNG\r\n\x1a\n"


def latest_metadata(instance, *path: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(list(path)))
    return event.asset_materialization.metadata


def test_evaluation_shows_plots_segments_and_links_to_one_mlflow_run_per_dagster_run(
    home, projects_dir, instance
):
    project = load_project_file(write_project(projects_dir))
    defs = project_defs(projects_dir)
    gate_sensor = GateOutcomes(defs, instance, project)
    first = run_loop(defs, instance, "small")
    assert first.success, step_failures(first)
    new_source_rows(projects_dir)  # a new model, not the champion again: it deploys
    second = run_loop(defs, instance, "small")
    assert second.success, step_failures(second)
    gate_sensor.tick()  # the gate outcome sensor tags each run's candidate with its verdicts

    version, report = current(home, "small", "evaluation_report")
    for name in EVALUATION_PLOTS:
        png = report.attachments[name]
        assert png.startswith(PNG) and len(png) < 60_000, name
    metadata = latest_metadata(instance, "small", "evaluation_report")

    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)\)", metadata["plots"].value)
    assert len(images) == len(EVALUATION_PLOTS)
    assert all(base64.b64decode(image).startswith(PNG) for image in images)

    segments = metadata["segments"].value
    champion_regions = report.body["champion"]["fairness"]["by_column"]["region"]["segments"]
    north = champion_regions["north"]["true_positive_rate"]
    assert f"{north:.3f}" in segments  # the champion's column is filled
    assert segments.count("**north**") + segments.count("**south**") == 2  # the largest gap

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    model = current(home, "small", "candidate_model")[1]
    run = client.get_run(model.card["mlflow"]["run_id"])
    assert run.data.tags["dagster_run_id"] == second.run_id
    assert run.data.tags["dagster_run_url"] == f"http://localhost:3000/runs/{second.run_id}"
    experiment = client.get_experiment(run.info.experiment_id)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["dagster_run_id"] for r in runs) == sorted(
        [first.run_id, second.run_id]
    )
    assert (
        run.data.metrics["holdout_candidate_roc_auc"]
        == report.body["candidate"]["metrics"]["roc_auc"]
    )
    assert "holdout_champion_roc_auc" in run.data.metrics
    folder = f"evaluation_report/{second.run_id}"
    logged = {a.path for a in client.list_artifacts(run.info.run_id, folder)}
    assert f"{folder}/evaluation.html" in logged and f"{folder}/roc.png" in logged
    assert metadata["html_report_in_mlflow"].value == (
        f"http://localhost:5000/#/experiments/{experiment.experiment_id}/runs/"
        f"{run.info.run_id}/artifacts/{folder}/evaluation.html"
    )

    registered = client.get_model_version("unified_ai.small", model.card["mlflow"]["version"])
    assert "Holdout" in registered.description and version  # the model card
    assert registered.tags["gate.quality_floor"] == "passed"
    assert registered.tags["evaluation_report_version"] == version
    assert registered.tags["deployment.status"] == "champion"
    previous = client.get_model_version("unified_ai.small", str(int(registered.version) - 1))
    assert previous.tags["deployment.status"] == "replaced"

    gates = {e.check_name: e for e in second.get_asset_check_evaluations()}
    quality = gates["quality_floor"]
    assert f"evaluation_report@{version}" in quality.description
    assert "\n" not in quality.description
    assert (
        quality.metadata["html_report_in_mlflow"].value == metadata["html_report_in_mlflow"].value
    )

    # A person's decision and a rollback are on the versions too.
    candidate_version = report.body["candidate"]["model_version"]
    defs.resolve_job_def("small__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project,
            model_version=candidate_version,
            decision="approve",
            approver="bob",
            comment="plots look right",
        ),
        raise_on_error=False,
    )
    approved = client.get_model_version("unified_ai.small", registered.version)
    assert approved.tags["approval.approver"] == "bob"
    assert approved.tags["approval.decision"] in {"approve", "invalid"}
    rolled = defs.resolve_job_def("small__rollback").execute_in_process(
        run_config=rollback_run_config(project, reason="latency spike", trigger="oncall"),
        instance=instance,
        raise_on_error=False,
    )
    assert rolled.success, step_failures(rolled)
    from_version = client.get_model_version("unified_ai.small", registered.version)
    assert from_version.tags["deployment.status"] == "rolled back"
    assert from_version.tags["rollback.reason"] == "latency spike"
    restored = client.get_model_version("unified_ai.small", previous.version)
    assert restored.tags["deployment.status"] == "champion (restored by rollback)"
