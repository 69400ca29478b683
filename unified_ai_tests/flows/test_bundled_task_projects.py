"""The bundled regression and multiclass projects pass their loop, from the packaged defs.

For `hourly_wages` (regression) and `work_status` (multiclass): the training loop deploys the
first model by policy; `unified-ai simulate` writes a 200-row batch and then its labels; the
batch is scored, its labels joined and live performance measured in the task's metric; and
`unified-ai status` shows the deployed candidate's metrics of the task. Then a rollback
through the loop for the regression project: a second deployment made by the training loop
(after the labeled rows joined its training data) is rolled back to the first.
"""

import json

import dagster as dg
import mlflow
import numpy as np
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.names import batches_partitions
from unified_ai.project_tree import load_projects
from unified_ai.projects.tasks import DEFAULT_METRIC, MULTICLASS, REGRESSION, metrics_of
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai.stages.rollback.jobs import rollback_run_config
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import simulate

pytestmark = pytest.mark.slow

PROJECTS = {"hourly_wages": REGRESSION, "work_status": MULTICLASS}
SCORING = ("production_batch", "predictions", "ground_truth", "live_performance")


def bundled(name: str):
    [project] = [p for p in load_projects() if p.name == name]
    return project


def run(defs, instance, name: str, *assets: str, partition: str | None = None):
    """Materialize `name`'s `assets` (of one batch when `partition` is given)."""
    return dg.materialize(
        [*defs.assets, *defs.asset_checks],
        selection=dg.AssetSelection.assets(*(dg.AssetKey([name, a]) for a in assets)),
        resources=defs.resources,
        instance=instance,
        partition_key=partition,
        raise_on_error=False,
    )


def deploy_and_score(home, instance, defs, name: str) -> tuple[str, dict]:
    """Train and deploy by policy, then simulate, label and score one 200-row batch.

    Returns:
        (the first deployment's version, the live report).
    """
    task = PROJECTS[name]
    loop = run_loop(defs, instance, name)
    assert loop.success, step_failures(loop)
    deployment, payload = current(home, name, "deployed_model")
    assert payload["gates"]

    simulate(name, "--batches", "1", "--rows", "200", "--seed", "1")
    [batch] = [p.name for p in (home / "inbox" / name).glob("*.csv")]
    simulate(name, "--labels")
    instance.add_dynamic_partitions(batches_partitions(name), [batch])
    scored = run(defs, instance, name, *SCORING, partition=batch)
    assert scored.success, step_failures(scored)

    _, predictions = current(home, name, f"predictions/partitions/{batch}")
    assert len(predictions) == 200
    if task == REGRESSION:
        assert "proba" not in predictions
        assert np.isfinite(predictions["prediction"].astype(float)).all()
    else:
        classes = bundled(name).classes
        assert set(predictions["prediction"]) <= {str(c) for c in classes}
        probabilities = predictions[[f"proba_{i}" for i in range(len(classes))]].to_numpy()
        assert np.allclose(probabilities.sum(axis=1), 1.0)
    _, live = current(home, name, "live_performance")
    assert live["task"] == task and live["metric"] == DEFAULT_METRIC[task]
    assert live["current"]["deployment"] == deployment
    assert live["current"]["labeled_rows"] == 200
    assert live["current"]["value"] is not None
    return deployment, live


def status_of(name: str) -> dict:
    result = CliRunner().invoke(main, ["status", name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("name", list(PROJECTS))
def test_a_bundled_task_project_passes_its_loop(name, home, instance):
    task = PROJECTS[name]
    defs = project_defs()
    deployment, _ = deploy_and_score(home, instance, defs, name)

    status = status_of(name)
    assert status["deployed"]["version"] == deployment
    candidate = status["candidate"]
    assert candidate["state"] == "LIVE" and candidate["task"] == task
    assert list(candidate["metrics"]) == list(metrics_of(task))
    assert candidate["metrics"][DEFAULT_METRIC[task]] is not None
    table = CliRunner().invoke(main, ["status", name])
    assert table.exit_code == 0, table.output
    [line] = [x for x in table.output.splitlines() if x.startswith("candidate holdout metrics")]
    assert line.startswith(f"candidate holdout metrics ({task}: ")
    metric = DEFAULT_METRIC[task]
    assert f" {metric} " in line and f" {metric} n/a" not in line


def champion_alias(home, name: str) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return str(client.get_model_version_by_alias(f"unified_ai.{name}", "champion").version)


def test_the_regression_project_rolls_back_to_its_first_deployment(home, instance):
    name = "hourly_wages"
    project = bundled(name)
    defs = project_defs()
    first, _ = deploy_and_score(home, instance, defs, name)
    _, first_payload = current(home, name, "deployed_model")

    # The labeled batch joins the training data: the retrain learns a new model. Policy
    # deploys it if it lowers RMSE by 0.05 $/h; otherwise a workforce lead approves it.
    retrain = run_loop(defs, instance, name)
    assert retrain.success, step_failures(retrain)
    second, payload = current(home, name, "deployed_model")
    if second == first:
        _, report = current(home, name, "evaluation_report")
        config = approval_run_config(
            project,
            model_version=report.body["candidate"]["model_version"],
            decision="approve",
            approver="analytics-lead",
            comment="retrained on the first labeled batch",
        )
        approve = defs.resolve_job_def(f"{name}__approve").execute_in_process(
            run_config=config, instance=instance, raise_on_error=False
        )
        assert approve.success, step_failures(approve)
        deploy = defs.resolve_job_def(f"{name}__deploy").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert deploy.success, step_failures(deploy)
        second, payload = current(home, name, "deployed_model")
    assert second != first
    assert payload["model_version"] != first_payload["model_version"]
    assert champion_alias(home, name) == payload["mlflow_model_version"]

    rolled = defs.resolve_job_def(f"{name}__rollback").execute_in_process(
        run_config=rollback_run_config(project, reason="wage model regression", trigger="test"),
        instance=instance,
        raise_on_error=False,
    )
    assert rolled.success, step_failures(rolled)
    assert store(home).current_version([name, "deployed_model"]) == first
    assert champion_alias(home, name) == first_payload["mlflow_model_version"]
    _, incident = current(home, name, "incidents")
    assert incident["rolled_back_from"]["deployment_version"] == second
    assert incident["rolled_back_to"]["deployment_version"] == first
    assert status_of(name)["deployed"]["version"] == first
