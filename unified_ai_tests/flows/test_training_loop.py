"""End to end: real instance, real MLflow on SQLite, real GX and Evidently, real files."""

import dagster as dg
import mlflow
import pytest

from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    check_results,
    current,
    materialize,
    project_defs,
    run_loop,
    step_failures,
    store,
)

ASSETS = [
    "training_data",
    "train_split",
    "holdout_split",
    "candidate_model",
    "evaluation_report",
    "deployed_model",
]


def mlflow_client(home):
    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")


def test_loop_validates_trains_evaluates_and_deploys(home, projects_dir, instance):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "small")
    assert result.success, step_failures(result)

    checks = check_results(result)
    for name in [
        "not_empty",
        "schema",
        "target_matches_task",
        "declared_values",
        "splits_do_not_overlap",
        "quality_floor",
        "beats_champion",
        "fairness_within_policy",
    ]:
        assert checks[name][0], checks[name]
    assert "first model" in checks["beats_champion"][1]

    versions = {asset: current(home, "small", asset)[0] for asset in ASSETS}
    lineage = store(home)
    report_manifest = lineage.read_manifest(
        ["small", "evaluation_report"], versions["evaluation_report"]
    )
    assert report_manifest.upstream == {
        "small/candidate_model": versions["candidate_model"],
        "small/holdout_split": versions["holdout_split"],
    }
    assert report_manifest.policy_version.startswith("small@")
    # The candidate is stored with its verified ONNX form: the logistic regression converts.
    model_files = lineage.read_manifest(["small", "candidate_model"], versions["candidate_model"])
    assert {"model.onnx", "onnx-probe.json"} <= set(model_files.files)
    assert lineage.read_manifest(["small", "train_split"], versions["train_split"]).upstream == {
        "small/training_data": versions["training_data"]
    }

    _, report = current(home, "small", "evaluation_report")
    assert report.body["champion"] is None
    assert report.body["candidate"]["model_version"] == versions["candidate_model"]
    assert report.body["candidate"]["metrics"]["roc_auc"] > 0.8
    assert set(report.body["candidate"]["fairness"]["by_column"]) == {"region"}
    assert "<html" in report.attachments["evaluation.html"].lower()

    _, deployment = current(home, "small", "deployed_model")
    _, model = current(home, "small", "candidate_model")
    assert deployment["model_version"] == versions["candidate_model"]
    assert deployment["evaluation_report_version"] == versions["evaluation_report"]
    assert deployment["policy_version"] == report_manifest.policy_version
    registered = model.card["mlflow"]
    assert deployment["model_uri"] == registered["model_uri"]

    client = mlflow_client(home)
    champion = client.get_model_version_by_alias("unified_ai.small", "champion")
    assert str(champion.version) == registered["version"]
    run = client.get_run(registered["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["unified_ai.data_version"] == versions["train_split"]

    event = instance.get_latest_materialization_event(dg.AssetKey(["small", "deployed_model"]))
    metadata = event.asset_materialization.metadata
    assert metadata["lineage/version"].value == versions["deployed_model"]
    assert metadata["lineage/upstream"].value == {
        "small/evaluation_report": versions["evaluation_report"]
    }


def test_second_training_is_compared_with_the_first_champion(home, projects_dir, instance):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    first_model, _ = current(home, "small", "candidate_model")

    second = run_loop(defs, instance, "small")
    assert second.success, step_failures(second)
    second_model, model = current(home, "small", "candidate_model")
    assert second_model != first_model
    assert len(store(home).versions(["small", "candidate_model"])) == 2

    _, report = current(home, "small", "evaluation_report")
    assert report.body["champion"]["model_version"] == first_model
    assert report.body["candidate"]["model_version"] == second_model
    assert report.body["comparison"]["samples"] > 0
    # Same data and seed: the two models score identically, so the paired difference is 0,
    # the candidate is marked identical, and the champion stays (no no-op deployment).
    assert report.body["comparison"]["metrics"]["roc_auc"]["difference"] == pytest.approx(0.0)
    assert report.body["identical"]["identical"] is True
    assert model.card["mlflow"]["version"] == "2"
    champion = mlflow_client(home).get_model_version_by_alias("unified_ai.small", "champion")
    assert str(champion.version) == "1"


def test_unmet_policy_fails_the_gate_and_nothing_deploys(home, projects_dir, instance):
    write_project(projects_dir, name="strict", floor=0.99)
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "strict")
    assert not result.success
    passed, reason = check_results(result)["quality_floor"]
    assert not passed and "roc_auc" in reason and "< floor 0.9900" in reason
    deployed_key = dg.AssetKey(["strict", "deployed_model"])
    assert instance.get_latest_materialization_event(deployed_key) is None
    assert store(home).current_version(["strict", "deployed_model"]) is None

    # A run that selects only the deployment skips the checks: the asset re-checks them itself.
    alone = materialize(defs, instance, dg.AssetSelection.assets(deployed_key))
    assert not alone.success
    message = step_failures(alone)["strict__deployed_model"]
    assert "refusing to use strict/evaluation_report@" in message
    assert "gate quality_floor failed: roc_auc" in message
    assert store(home).current_version(["strict", "deployed_model"]) is None
    assert mlflow_client(home).search_registered_models()[0].aliases == {}


def test_deployment_refuses_a_report_whose_gates_never_ran(home, projects_dir, instance):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    report = dg.AssetKey(["small", "evaluation_report"])
    upstream = dg.AssetSelection.assets(
        *(["small", name] for name in ASSETS[:-1])
    ) - dg.AssetSelection.checks_for_assets(report)
    assert materialize(defs, instance, upstream).success
    assert store(home).current_version(report.path) is not None
    alone = materialize(defs, instance, dg.AssetSelection.assets(["small", "deployed_model"]))
    assert not alone.success
    message = step_failures(alone)["small__deployed_model"]
    assert "gate quality_floor has no recorded result" in message


def test_missing_data_source_fails_training_data_with_a_reason(home, projects_dir, instance):
    write_project(projects_dir, name="nodata", source="missing.csv")
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "nodata")
    assert not result.success
    failures = step_failures(result)
    assert list(failures) == ["nodata__training_data"]
    assert "missing.csv does not exist" in failures["nodata__training_data"]
    checks = check_results(result)
    assert checks["not_empty"][0] is False and "does not exist" in checks["not_empty"][1]
    assert store(home).current_version(["nodata", "training_data"]) is None


def test_invalid_data_is_stored_but_blocks_everything_downstream(home, projects_dir, instance):
    import pandas as pd

    path = write_project(projects_dir, name="dirty")
    csv = projects_dir / "dirty.csv"
    frame = pd.read_csv(csv)
    frame.loc[0, "colour"] = "purple"
    frame.to_csv(csv, index=False)
    defs = project_defs(projects_dir)
    result = run_loop(defs, instance, "dirty")
    assert not result.success
    passed, reason = check_results(result)["declared_values"]
    assert not passed and "purple" in reason
    assert store(home).current_version(["dirty", "train_split"]) is None

    # Selecting the splits alone does not get around the failed data checks.
    splits = dg.AssetSelection.assets(["dirty", "train_split"]).required_multi_asset_neighbors()
    alone = materialize(defs, instance, splits)
    assert "gate declared_values failed" in step_failures(alone)["dirty__splits"]
    assert path.exists()


def test_default_project_runs_end_to_end(home, instance):
    defs = project_defs()
    result = run_loop(defs, instance, "mortgage_approval")
    assert result.success, step_failures(result)
    _, report = current(home, "mortgage_approval", "evaluation_report")
    assert report.body["holdout_rows"] == 597
    assert report.body["candidate"]["metrics"]["roc_auc"] > 0.75
    assert set(report.body["candidate"]["fairness"]["by_column"]) == {"race", "sex"}
    version, deployment = current(home, "mortgage_approval", "deployed_model")
    manifest = store(home).read_manifest(["mortgage_approval", "deployed_model"], version)
    assert deployment["policy_version"] == manifest.policy_version


def test_report_lineage_records_the_champion_deployment_it_followed(home, projects_dir, instance):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    first_deployment, _ = current(home, "small", "deployed_model")
    assert run_loop(defs, instance, "small").success
    version, _ = current(home, "small", "evaluation_report")
    upstream = store(home).read_manifest(["small", "evaluation_report"], version).upstream
    assert upstream["small/deployed_model"] == first_deployment
    assert set(upstream) == {"small/candidate_model", "small/holdout_split", "small/deployed_model"}
