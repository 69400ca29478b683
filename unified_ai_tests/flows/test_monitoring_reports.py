"""What monitoring shows a person: per-column drift, drift share and live metric over batches."""

import re

import dagster as dg
import mlflow
import pytest

from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate
from unified_ai_tests.flows.test_monitoring import batches_with_labels, score_new_batches


@pytest.fixture
def driver(home, projects_dir, instance, monkeypatch) -> SensorDriver:
    write_project(projects_dir, policy_extra="  triggers: {drift: {max_drifted_share: 0.3}}\n")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    return SensorDriver(defs, instance)


PNG = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,[A-Za-z0-9+/=]+\)")


def latest_metadata(instance, *path: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(list(path)),
            asset_partitions=[partition] if partition else None,
        ),
        limit=1,
    ).records
    return records[0].asset_materialization.metadata


def test_a_drifted_batch_shows_its_columns_its_history_and_opens_in_mlflow(home, driver, instance):
    simulate("small", "--batches", "1", "--rows", "300", "--seed", "1")
    simulate("small", "--batches", "1", "--rows", "300", "--seed", "2", "--drift", "shift:x1=3")
    runs = score_new_batches(driver)
    assert len(runs) == 2 and all(r.success for r in runs), [step_failures(r) for r in runs]
    batches = [r.dagster_run.tags["dagster/partition"] for r in runs]
    reports = {b: current(home, "small", f"drift_report/partitions/{b}")[1] for b in batches}
    [batch] = [b for b, r in reports.items() if r.body["drifted_columns"]]
    report = reports[batch]
    metadata = latest_metadata(instance, "small", "drift_report", partition=batch)

    columns = metadata["columns"].value
    x1 = report.body["columns"]["x1"]
    assert f"| **x1** | {x1['psi']:.4f} | {x1['ks']:.4f} |" in columns
    assert "| x2 |" in columns and columns.index("**x1**") < columns.index("| x2 |")

    assert report.attachments["drift_share.png"].startswith(PNG)
    assert IMAGE.fullmatch(metadata["drift_share_over_batches"].value)

    deployment = store(home).current_version(["small", "deployed_model"])
    _, manifest = current(home, "small", "deployed_model")
    assert manifest["dagster_run_id"] and deployment
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    run_id = manifest["mlflow_run_id"]
    folder = f"drift_report/{batch}"
    logged = {a.path for a in client.list_artifacts(run_id, folder)}
    assert logged == {f"{folder}/drift.html", f"{folder}/drift_share.png"}
    link = metadata["html_report_in_mlflow"].value
    assert link.startswith("http://localhost:5000/#/experiments/")
    assert link.endswith(f"/runs/{run_id}/artifacts/{folder}/drift.html")


def test_live_performance_plots_the_metric_per_batch(home, driver, instance):
    batches_with_labels(driver)
    metadata = latest_metadata(instance, "small", "live_performance")
    assert IMAGE.fullmatch(metadata["metric_over_batches"].value)
