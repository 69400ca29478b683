"""Regression and multiclass projects through training, evaluation, gates and deployment.

Real instance, real MLflow on SQLite, real Evidently pages; one small project per test.
"""

import json

import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.ml.plots import MULTICLASS_PLOTS, REGRESSION_PLOTS
from unified_ai.projects.tasks import MULTICLASS, REGRESSION
from unified_ai_tests.flows.helpers import (
    check_results,
    current,
    project_defs,
    run_loop,
    step_failures,
)
from unified_ai_tests.tasks_fixtures import (
    CLASSES,
    write_multiclass_project,
    write_regression_project,
)

GATES = ("quality_floor", "beats_champion", "fairness_within_policy")


def _evaluation_metadata(instance, project: str) -> dict:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey([project, "evaluation_report"]))
    metadata = event.asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def _model_metadata(instance, project: str) -> dict:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey([project, "candidate_model"]))
    metadata = event.asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def test_regression_trains_deploys_and_a_worse_model_is_blocked(
    home, projects_dir, instance, monkeypatch, tmp_path
):
    path = write_regression_project(projects_dir)
    result = run_loop(project_defs(projects_dir), instance, "prices")
    assert result.success, step_failures(result)

    checks = check_results(result)
    assert all(checks[gate][0] for gate in GATES), checks
    assert checks["quality_floor"][1].startswith("meets the floor: rmse ")
    assert "first model passes" in checks["beats_champion"][1]
    assert checks["fairness_within_policy"][1].startswith("largest mae gap ")

    model_version, model = current(home, "prices", "candidate_model")
    assert model.card["task"] == REGRESSION and "classes" not in model.card
    assert model.task == REGRESSION
    assert set(model.card["training_metrics"]) >= {"train_rmse", "train_mae", "train_r2"}
    assert "train_roc_auc" not in model.card["training_metrics"]
    assert _model_metadata(instance, "prices")["task"] == REGRESSION

    _, report = current(home, "prices", "evaluation_report")
    metrics = report.body["candidate"]["metrics"]
    assert report.body["task"] == REGRESSION
    assert set(metrics) == {"rmse", "mae", "r2", "mape"}
    assert metrics["rmse"] < 8 and metrics["r2"] > 0.6
    assert set(report.attachments) >= {"evaluation.html", *REGRESSION_PLOTS}
    shown = _evaluation_metadata(instance, "prices")
    assert shown["task"] == REGRESSION
    assert shown["rmse"] == pytest.approx(metrics["rmse"])
    assert "| rmse |" in shown["summary"] and "roc_auc" not in shown["summary"]
    assert "Predicted vs actual" in shown["plots"] and "Residuals by segment" in shown["plots"]

    _, deployment = current(home, "prices", "deployed_model")
    assert deployment["model_version"] == model_version

    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    status = CliRunner().invoke(main, ["status", "prices", "--json"])
    assert status.exit_code == 0, status.output
    candidate = json.loads(status.output)["candidate"]
    assert candidate["state"] == "LIVE" and candidate["task"] == REGRESSION
    assert candidate["metrics"]["rmse"] == pytest.approx(metrics["rmse"])
    table = CliRunner().invoke(main, ["status", "prices"])
    assert f"candidate holdout metrics (regression: rmse {metrics['rmse']:.4f}" in table.output
    page = tmp_path / "evaluation.html"
    written = CliRunner().invoke(main, ["report", "prices", "--out", str(page)])
    assert written.exit_code == 0, written.output
    assert "<html" in page.read_text().lower()

    # A much weaker estimator on the same rows: its RMSE is higher, and lower is better.
    text = path.read_text().replace(
        "  class: Ridge\n", "  class: DecisionTreeRegressor\n  params: {max_depth: 1}\n"
    )
    path.write_text(text)
    worse = run_loop(project_defs(projects_dir), instance, "prices")
    assert not worse.success
    checks = check_results(worse)
    passed, reason = checks["beats_champion"]
    assert not passed, reason
    assert reason.startswith("rmse improvement -")
    _, blocked = current(home, "prices", "evaluation_report")
    assert blocked.body["champion"]["model_version"] == model_version
    comparison = blocked.body["comparison"]["metrics"]["rmse"]
    assert comparison["better"] == "lower" and comparison["difference"] > 0
    assert current(home, "prices", "deployed_model")[1]["model_version"] == model_version

    # A replay reads the new policy as a regression policy: its unset champion metric is RMSE,
    # and a floor of another task's metric is refused in one line.
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text("quality_floor: {rmse: 1.0}\nbeats_champion: {tolerance: 0.0}\n")
    replayed = CliRunner().invoke(main, ["policy", "dry-run", "prices", "--policy", str(stricter)])
    assert replayed.exit_code == 0, replayed.output
    assert "promoted then, BLOCKED now  <- differs" in replayed.output
    assert "quality_floor: rmse" in replayed.output and "> max 1.0000" in replayed.output
    assert "beats_champion: rmse improvement -" in replayed.output
    binary = tmp_path / "binary.yaml"
    binary.write_text("quality_floor: {roc_auc: 0.9}\n")
    refused = CliRunner().invoke(main, ["policy", "dry-run", "prices", "--policy", str(binary)])
    assert refused.exit_code == 1
    assert "'roc_auc' is a binary_classification metric" in refused.output


def test_multiclass_trains_deploys_with_its_classes(home, projects_dir, instance):
    write_multiclass_project(projects_dir)
    result = run_loop(project_defs(projects_dir), instance, "queues")
    assert result.success, step_failures(result)

    checks = check_results(result)
    assert all(checks[gate][0] for gate in GATES), checks
    assert checks["quality_floor"][1].startswith("meets the floor: macro_f1 ")
    assert "per_class_recall" in checks["quality_floor"][1]
    assert checks["fairness_within_policy"][1].startswith("largest macro_recall gap ")

    model_version, model = current(home, "queues", "candidate_model")
    assert model.card["task"] == MULTICLASS and model.card["classes"] == CLASSES
    assert "train_macro_f1" in model.card["training_metrics"]
    assert _model_metadata(instance, "queues")["classes"] == CLASSES

    _, report = current(home, "queues", "evaluation_report")
    assert report.body["task"] == MULTICLASS and report.body["classes"] == CLASSES
    assert set(report.body["candidate"]["metrics"]) == {
        "accuracy",
        "macro_f1",
        "log_loss",
        "roc_auc_ovr",
        "per_class_recall",
        "per_class_precision",
    }
    per_class = report.body["candidate"]["per_class"]
    assert set(per_class) == set(CLASSES)
    assert sum(row["n"] for row in per_class.values()) == report.body["holdout_rows"]
    assert set(report.attachments) >= {"evaluation.html", *MULTICLASS_PLOTS}
    shown = _evaluation_metadata(instance, "queues")
    assert shown["task"] == MULTICLASS and shown["classes"] == CLASSES
    # The per-class table follows the model's class order.
    table = [line.split("|")[1].strip() for line in shown["summary"].splitlines() if "|" in line]
    assert [label for label in table if label in CLASSES] == CLASSES
    assert "Per-class precision and recall" in shown["plots"]

    _, deployment = current(home, "queues", "deployed_model")
    assert deployment["model_version"] == model_version
