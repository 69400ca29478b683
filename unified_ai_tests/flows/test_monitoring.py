"""The event-driven loop with a real instance and real sensors (evaluated tick by tick)."""

import os
import time

import dagster as dg
import pytest

from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import Receiver, SensorDriver, simulate

BATCHES = "small__batch_sensor"
LABELS = "small__labels_sensor"
DRIFT = "small__drift_trigger"
PERFORMANCE = "small__performance_trigger"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def loop(home, projects_dir, instance, monkeypatch, receiver):
    extra = f"""\
  triggers:
    drift: {{max_drifted_share: 0.3, cooldown_minutes: 60}}
    performance: {{floor: 0.6, window_batches: 3, min_labels: 50}}
    rollback: {{bake_window_hours: 24, margin: 0.05}}
  notifications:
    - {{type: webhook, url: "{receiver.url}"}}
"""
    write_project(projects_dir, policy_extra=extra)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    return defs, SensorDriver(defs, instance)


def inbox(home):
    return home / "inbox" / "small"


def score_new_batches(driver) -> list:
    tick = driver.tick(BATCHES)
    runs = [driver.launch(request, "small__score_batch") for request in tick.requests]
    return runs


def test_clean_batch_is_scored_once_and_drift_is_skipped(home, loop):
    _, driver = loop
    simulate("small", "--batches", "1", "--rows", "300", "--seed", "1")
    [run] = score_new_batches(driver)
    assert run.success, step_failures(run)
    batch = run.dagster_run.tags["dagster/partition"]
    _, predictions = current(home, "small", f"predictions/partitions/{batch}")
    deployment = store(home).current_version(["small", "deployed_model"])
    assert set(predictions["deployment_version"]) == {deployment}
    assert len(predictions) == 300

    _, drift = current(home, "small", f"drift_report/partitions/{batch}")
    assert drift.body["drifted_share"] <= 0.3
    # A clean batch is not worth an Evidently page (seconds per batch); a drifted one is.
    assert drift.body["drifted_columns"] == [] and drift.attachments == {}
    assert "within" in driver.tick(DRIFT).skip

    # The handled file moved to processed/, kept; delivered again, it is not processed twice.
    assert driver.tick(BATCHES).skip.startswith("no new batch files")
    processed = inbox(home) / "processed" / batch
    assert processed.exists() and not (inbox(home) / batch).exists()
    again = inbox(home) / batch
    again.write_text(processed.read_text())
    os.utime(again, (time.time() + 5, time.time() + 5))
    assert driver.tick(BATCHES).requests == []


def test_drift_triggers_exactly_one_retrain_then_cooldown(home, loop, receiver):
    _, driver = loop
    simulate(
        "small",
        "--batches",
        "1",
        "--rows",
        "300",
        "--seed",
        "2",
        "--drift",
        "shift:x1=3,shift:x2=-3",
        "--drift",
        "mix:colour=blue",
    )
    [scored] = score_new_batches(driver)
    assert scored.success, step_failures(scored)
    batch = scored.dagster_run.tags["dagster/partition"]
    _, drift = current(home, "small", f"drift_report/partitions/{batch}")
    assert "<html" in drift.attachments["drift.html"].lower()
    # Without a single new label a retrain would only rebuild the champion: the trigger says so.
    unlabeled = driver.tick(DRIFT)
    assert unlabeled.requests == []
    assert "a retrain would only reproduce the champion" in unlabeled.skip
    # Labeled rows arrive (a clean batch): now a retrain has something to learn from.
    simulate("small", "--batches", "1", "--rows", "300", "--seed", "4")
    [clean] = score_new_batches(driver)
    assert clean.success, step_failures(clean)
    simulate("small", "--labels")
    clean_batch = clean.dagster_run.tags["dagster/partition"]
    [labels] = [r for r in driver.tick(LABELS).requests if r.partition_key == clean_batch]
    assert driver.launch(labels, "small__ingest_labels").success
    simulate(
        "small",
        "--batches",
        "1",
        "--rows",
        "300",
        "--seed",
        "5",
        "--drift",
        "shift:x1=3,shift:x2=-3",
    )
    [scored] = score_new_batches(driver)
    assert scored.success, step_failures(scored)
    tick = driver.tick(DRIFT)
    assert len(tick.requests) == 1
    request = tick.requests[0]
    assert request.tags["unified_ai/trigger"] == "drift"
    assert float(request.tags["unified_ai/evidence.drifted_share"]) > 0.3
    assert "x1" in request.tags["unified_ai/evidence.drifted_columns"]
    assert request.tags["unified_ai/evidence.batch"].startswith("batch-")
    assert request.tags["unified_ai/policy_version"].startswith("small@")
    retrain = driver.launch(request, "small__training_loop")
    assert retrain.success, step_failures(retrain)
    assert [m["event"] for m in receiver.messages] == ["retrain"]

    simulate(
        "small",
        "--batches",
        "1",
        "--rows",
        "300",
        "--seed",
        "3",
        "--drift",
        "shift:x1=3,shift:x2=-3",
    )
    assert all(run.success for run in score_new_batches(driver))
    second = driver.tick(DRIFT)
    assert second.requests == []
    assert "cooldown ends in" in second.skip


def test_malformed_batches_are_kept_quarantined_and_the_loop_goes_on(home, loop, receiver):
    _, driver = loop
    folder = inbox(home)
    folder.mkdir(parents=True, exist_ok=True)
    good = simulate("small", "--batches", "1", "--rows", "100", "--seed", "4")
    assert "wrote 1 batch" in good
    (folder / "broken-1.csv").write_text("x1,colour,region,_row_id\n1.0,red,north,a\n")
    (folder / "empty-1.csv").write_text("")
    (folder / "bad name.csv").write_text("x")
    runs = score_new_batches(driver)
    by_batch = {r.dagster_run.tags["dagster/partition"]: r for r in runs}
    assert set(by_batch) - {"broken-1.csv", "empty-1.csv"} and "bad name.csv" not in by_batch

    broken = by_batch["broken-1.csv"]
    assert not broken.success
    check = broken.get_asset_check_evaluations()[0]
    assert not check.passed and "x2" in check.description
    assert (
        store(home).current_version(["small", "production_batch", "partitions", "broken-1.csv"])
        is not None
    )  # kept
    assert (
        store(home).current_version(["small", "predictions", "partitions", "broken-1.csv"]) is None
    )  # never scored

    empty = by_batch["empty-1.csv"]
    assert "empty-1.csv cannot be read" in step_failures(empty)["small__production_batch"]
    for name in ("broken-1.csv", "empty-1.csv"):
        assert (folder / "quarantine" / name).exists()
    assert (folder / "bad name.csv").exists()
    good_runs = [r for b, r in by_batch.items() if b.startswith("batch-")]
    assert all(r.success for r in good_runs)
    quarantines = [m for m in receiver.messages if m["event"] == "quarantine"]
    assert {m["evidence"]["batch"] for m in quarantines} == {"broken-1.csv", "empty-1.csv"}


def test_labels_for_unknown_batches_are_kept_and_explained(home, loop):
    _, driver = loop
    labels = inbox(home) / "labels"
    labels.mkdir(parents=True)
    (labels / "ghost.csv").write_text("_row_id,label\nghost.csv:0,1\n")
    tick = driver.tick(LABELS)
    assert tick.requests == []
    assert "labels waiting for their batch (files kept, retried every tick): ghost.csv" in (
        tick.skip
    )
    assert "(batch not registered) since " in tick.skip
    assert (labels / "ghost.csv").exists()


@pytest.mark.slow
def test_non_finite_inputs_misshapen_files_and_foreign_labels_are_refused_and_kept(
    home, loop, receiver
):
    import pandas as pd

    _, driver = loop
    folder = inbox(home)
    simulate("small", "--batches", "2", "--rows", "120", "--seed", "5")
    infinite, clean = sorted(p.name for p in folder.glob("batch-*.csv"))
    frame = pd.read_csv(folder / infinite)
    # x2 has no declared range: only a finiteness check stops these before the model sees them.
    frame.loc[2, "x2"] = float("inf")
    frame.loc[5, "x2"] = float("-inf")
    frame.to_csv(folder / infinite, index=False)
    rows = (folder / clean).read_text().splitlines()
    (folder / "trailing.csv").write_text("\n".join([rows[0], *(f"{r}," for r in rows[1:4])]) + "\n")
    runs = {r.dagster_run.tags["dagster/partition"]: r for r in score_new_batches(driver)}
    assert set(runs) == {infinite, clean, "trailing.csv"}

    refused = runs[infinite]
    assert not refused.success
    [check] = refused.get_asset_check_evaluations()
    assert (
        not check.passed
        and "x2" in check.description
        and "not a finite number" in check.description
    )
    assert "small__predictions" not in step_failures(refused)  # never scored, not crashed
    lineage = store(home)
    assert lineage.current_version(["small", "predictions", "partitions", infinite]) is None
    assert lineage.current_version(["small", "production_batch", "partitions", infinite])
    assert (folder / "quarantine" / infinite).exists()

    shifted = step_failures(runs["trailing.csv"])["small__production_batch"]
    assert f"{folder / 'trailing.csv'}: line 2 has 6 fields, header has 5" in shifted
    assert (folder / "quarantine" / "trailing.csv").exists()
    assert runs[clean].success, step_failures(runs[clean])

    # The truth arrives with blanks and yes/no where the classes are 0/1.
    simulate("small", "--labels")
    labels_file = folder / "labels" / clean
    truth = pd.read_csv(labels_file)
    truth["label"] = truth["label"].astype(object)
    truth.loc[0, "label"] = None
    truth.loc[1, "label"] = "yes"
    truth.loc[2, "label"] = "no"
    good_truth = labels_file.read_text()
    truth.to_csv(labels_file, index=False)
    tick = driver.tick(LABELS)
    [request] = tick.requests  # the quarantined batch's labels wait: it was never scored
    run = driver.launch(request, "small__ingest_labels")
    assert not run.success
    reason = step_failures(run)["small__ground_truth"]
    assert f"{labels_file}: column 'label': 3 of 120 rows hold values that are not the " in reason
    assert "[0, 1], e.g. ['<blank>', 'yes', 'no']" in reason
    assert "\n" not in reason.strip()
    assert (folder / "labels" / "quarantine" / clean).exists()  # kept
    assert lineage.current_version(["small", "ground_truth", "partitions", clean]) is None
    assert lineage.current_version(["small", "live_performance"]) is None
    assert clean in {
        m["evidence"].get("batch") for m in receiver.messages if m["event"] == "quarantine"
    }
    waiting = driver.tick(LABELS)
    assert waiting.requests == []
    assert f"{infinite} (batch quarantined, never scored) since " in waiting.skip

    # Corrected labels under the same name are taken in, once.
    labels_file.write_text(good_truth)
    [fixed] = driver.tick(LABELS).requests
    fixed_run = driver.launch(fixed, "small__ingest_labels")
    assert fixed_run.success, step_failures(fixed_run)
    _, joined = current(home, "small", f"ground_truth/partitions/{clean}")
    assert len(joined) == 120 and set(joined["label"]) == {0, 1}
    assert driver.tick(LABELS).requests == []


def batches_with_labels(driver, *drift: str) -> list[str]:
    """Two scored batches of 200 rows, then their labels; returns the batch keys."""
    simulate("small", "--batches", "2", "--rows", "200", *drift)
    runs = score_new_batches(driver)
    assert runs and all(run.success for run in runs), [step_failures(r) for r in runs]
    simulate("small", "--labels")
    tick = driver.tick(LABELS)
    assert len(tick.requests) == 2
    for request in tick.requests:
        run = driver.launch(request, "small__ingest_labels")
        assert run.success, step_failures(run)
    return [run.dagster_run.tags["dagster/partition"] for run in runs]


def test_when_both_models_degrade_together_the_loop_retrains_instead_of_rolling_back(
    home, loop, instance
):
    defs, driver = loop
    v1 = store(home).current_version(["small", "deployed_model"])
    batches_with_labels(driver)
    healthy = driver.tick(PERFORMANCE)
    assert healthy.requests == [] and "no live comparison" in healthy.skip

    assert run_loop(defs, instance, "small").success  # a fresh deployment, v2
    v2 = store(home).current_version(["small", "deployed_model"])
    assert v2 != v1
    [batch, _] = batches_with_labels(driver, "--drift", "flip:0.7")  # the world changed under v2
    _, predictions = current(home, "small", f"predictions/partitions/{batch}")
    assert set(predictions["shadow_previous_deployment"]) == {v1}
    assert predictions["shadow_previous_proba"].notna().all()
    _, live = current(home, "small", "live_performance")
    # Against v1's numbers on last week's rows, v2 looks far worse ...
    assert live["current"]["deployment"] == v2 and live["previous"]["deployment"] == v1
    assert live["current"]["value"] < live["previous"]["value"] - 0.05
    # ... but on the same rows v1 does no better, within the rollback margin (0.05): the world
    # changed, not the model. (The interval may sit a hair below zero: a difference inside the
    # margin is no reason to roll back, however certain.)
    paired = live["paired"]
    assert paired["deployment"] == v1 and paired["rows"] == 400
    assert abs(paired["difference"]) < 0.05 and paired["ci_high"] > -0.05

    tick = driver.tick(PERFORMANCE)
    [request] = tick.requests
    assert request.job_name == "small__training_loop"
    assert request.tags["unified_ai/trigger"] == "live_below_floor"
    assert request.tags["unified_ai/evidence.paired_deployment"] == v1
    assert request.tags["unified_ai/evidence.paired_rows"] == "400"
    assert store(home).current_version(["small", "deployed_model"]) == v2


def test_a_deployment_clearly_worse_on_the_same_rows_rolls_back_by_itself(
    home, projects_dir, loop, instance
):
    import pandas as pd

    defs, driver = loop
    v1 = store(home).current_version(["small", "deployed_model"])
    v1_model = current(home, "small", "deployed_model")[1]["model_version"]
    # A bad model reaches production: trained on labels reversed at the source, it even beats
    # the champion on a holdout cut from the same reversed data.
    source = projects_dir / "small.csv"
    reversed_labels = pd.read_csv(source)
    reversed_labels["label"] = 1 - reversed_labels["label"]
    reversed_labels.to_csv(source, index=False)
    assert run_loop(defs, instance, "small").success
    v2 = store(home).current_version(["small", "deployed_model"])
    assert v2 != v1

    # Production is the real world: batches are drawn from the (reversed) holdout, so their
    # labels are flipped back.
    [batch, _] = batches_with_labels(driver, "--drift", "flip:1.0")
    version, predictions = current(home, "small", f"predictions/partitions/{batch}")
    assert set(predictions["shadow_previous_deployment"]) == {v1}
    # The shadow model was read through the step's reader: it is in the predictions' lineage.
    upstream = store(home).read_manifest(["small", "predictions", "partitions", batch], version)
    assert v1_model in upstream.upstream["small/candidate_model"]
    _, live = current(home, "small", "live_performance")
    paired = live["paired"]
    assert paired["deployment"] == v1 and paired["rows"] == 400
    assert paired["difference"] < -0.3 and paired["ci_high"] < 0

    tick = driver.tick(PERFORMANCE)
    [request] = tick.requests
    assert request.job_name == "small__rollback"
    assert request.tags["unified_ai/trigger"] == "live_degradation"
    rollback = driver.launch(request)
    assert rollback.success, step_failures(rollback)
    assert store(home).current_version(["small", "deployed_model"]) == v1
    _, incident = current(home, "small", "incidents")
    assert incident["trigger"] == "performance_trigger"
    assert "on the same 400 labeled rows" in incident["reason"]
    assert "below the previous deployment" in incident["reason"]
    # Same evidence again: within the cooldown, no second rollback.
    assert driver.tick(PERFORMANCE).requests == []
    # Live numbers computed for v2 before the rollback landed are stale, not a reason to act.
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(["small", "live_performance"]),
            metadata={
                "metric": "roc_auc",
                "deployment_version": v2,
                "value": 0.3,
                "labeled_rows": 1000,
                "paired_deployment": v1,
                "paired_rows": 1000,
                "paired_value": 0.3,
                "paired_previous_value": 0.9,
                "paired_difference": -0.6,
                "paired_ci_high": -0.5,
                "deployed_at": live["current"]["deployed_at"],
            },
        )
    )
    stale = driver.tick(PERFORMANCE)
    assert stale.requests == []
    assert stale.skip == f"live performance of deployment {v2} is stale: {v1} is deployed now"
    # Rolled back to v1: nothing earlier to compare with, so no shadow any more.
    [after, _] = batches_with_labels(driver)
    _, predictions = current(home, "small", f"predictions/partitions/{after}")
    assert predictions["shadow_previous_deployment"].isna().all()


def test_impact_lists_what_a_dataset_version_built_and_pauses_automations(home, loop, instance):
    from click.testing import CliRunner

    from unified_ai.cli import main

    _, driver = loop
    simulate("small", "--batches", "1", "--rows", "100", "--seed", "9")
    [run] = score_new_batches(driver)
    assert run.success
    batch = run.dagster_run.tags["dagster/partition"]
    lineage = store(home)
    split = lineage.current_version(["small", "train_split"])
    deployment = lineage.current_version(["small", "deployed_model"])

    result = CliRunner().invoke(
        main, ["impact", "small", "train_split", "--version", split, "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output)
    built = {(row["asset"], row["version"]) for row in report["built_from_it"]}
    assert ("small/candidate_model", lineage.current_version(["small", "candidate_model"])) in built
    assert ("small/deployed_model", deployment) in built
    assert any(a == f"small/predictions/partitions/{batch}" for a, _ in built)
    assert any(a == f"small/drift_report/partitions/{batch}" for a, _ in built)
    assert not any(a.startswith("small/training_data") for a, _ in built)
    assert {BATCHES, LABELS, DRIFT, PERFORMANCE} <= set(report["automations"])

    text = CliRunner().invoke(
        main, ["impact", "small", "train_split", "--version", split, "--pause"]
    )
    assert f"small/deployed_model@{deployment}" in text.output and "<- LIVE" in text.output
    assert "resume with: unified-ai resume small" in text.output
    # Paused in Dagster itself: the UI shows the sensors stopped, the daemon skips them.
    states = {s.instigator_name: s.status.value for s in instance.all_instigator_state()}
    assert {states[name] for name in report["automations"]} == {"STOPPED"}
    assert "resumed: " in CliRunner().invoke(main, ["resume", "small"]).output
    states = {s.instigator_name: s.status.value for s in instance.all_instigator_state()}
    assert {states[name] for name in report["automations"]} == {"RUNNING"}
