"""Labeled production rows join training: lineage names the batches, exclusions are honoured."""

import json

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.ml.split import holdout_parts
from unified_ai.names import ORIGIN
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    materialize,
    project_defs,
    run_loop,
    step_failures,
    store,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

BATCHES = "small__batch_sensor"
LABELS = "small__labels_sensor"
TRAINING = ["training_data", "train_split", "holdout_split", "candidate_model", "evaluation_report"]


@pytest.fixture
def loop(home, projects_dir, instance, monkeypatch):
    path = write_project(projects_dir)
    # Gates judge on the recent holdout once it has 50 rows.
    path.write_text(
        path.read_text().replace("tolerance: 0.02}", "tolerance: 0.02, min_recent_rows: 50}")
    )
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    return defs, SensorDriver(defs, instance)


def scored_and_labeled(driver, count: int, seed: int) -> list[str]:
    """Write `count` batches, score them, deliver and ingest their labels; their names."""
    simulate("small", "--batches", str(count), "--rows", "100", "--seed", str(seed))
    scored = [driver.launch(r, "small__score_batch") for r in driver.tick(BATCHES).requests]
    assert all(run.success for run in scored), [step_failures(run) for run in scored]
    simulate("small", "--labels")
    labeled = [driver.launch(r, "small__ingest_labels") for r in driver.tick(LABELS).requests]
    assert len(labeled) == count and all(run.success for run in labeled)
    return sorted(run.dagster_run.tags["dagster/partition"] for run in scored)


def retrain(defs, instance) -> dict:
    """Materialize the data, splits and candidate; the training data's recorded metadata."""
    keys = [dg.AssetKey(["small", name]) for name in TRAINING]
    result = materialize(defs, instance, dg.AssetSelection.assets(*keys))
    assert result.success, step_failures(result)
    [record] = instance.fetch_materializations(keys[0], limit=1).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def project(projects_dir):
    return load_project_file(projects_dir / "small.yaml")


def test_labeled_batches_train_the_next_model_and_lineage_names_them(
    home, loop, instance, projects_dir
):
    defs, driver = loop
    lineage = store(home)
    _, holdout_before = current(home, "small", "holdout_split")
    first, second, third = scored_and_labeled(driver, 3, seed=5)
    excluded = cli("exclude", "small", first, "--reason", "vendor feed was broken", "--by", "ana")
    assert f"excluded from later training: {first}" in excluded

    metadata = retrain(defs, instance)
    assert metadata["production_rows"] == 200
    assert metadata["production_batches"] == {second: 100, third: 100}
    assert metadata["production_left_out"][first].startswith("excluded by ana at ")
    assert metadata["production_left_out"][first].endswith("vendor feed was broken")

    # The manifest names exactly the batch and label versions that went in, and the exclusions.
    data_version, data = current(home, "small", "training_data")
    upstream = lineage.read_manifest(["small", "training_data"], data_version).upstream
    for batch in (second, third):
        for asset in ("production_batch", "ground_truth"):
            path = ["small", asset, "partitions", batch]
            assert upstream["/".join(path)] == lineage.current_version(path)
    assert not any(first in label for label in upstream)
    assert "small/batch_exclusions" in upstream
    assert set(data[ORIGIN]) == {second, third, str(home.parent / "projects" / "small.csv")}

    # Source rows keep their side of the split; the newest 30 % of the production rows (60, of
    # the newest batch) are the recent holdout, never trained on.
    _, holdout = current(home, "small", "holdout_split")
    static, recent = holdout_parts(project(projects_dir), holdout)
    pd.testing.assert_frame_equal(static, holdout_before)
    assert len(recent) == 60 and set(recent[ORIGIN]) == {third}
    _, train = current(home, "small", "train_split")
    assert (train[ORIGIN] == second).sum() == 100 and (train[ORIGIN] == third).sum() == 40

    # Candidate and champion on both holdouts; the gates on the one the policy chooses.
    _, report = current(home, "small", "evaluation_report")
    holdouts = report.body["holdouts"]
    assert holdouts["used_for_gates"] == "recent"
    assert holdouts["reason"] == "the recent holdout has 60 rows (policy: at least 50 for auto)"
    assert holdouts["recent"]["holdout_rows"] == report.body["holdout_rows"] == 60
    assert holdouts["static"]["holdout_rows"] == len(static)
    assert set(holdouts["static"]["champion"]) == set(holdouts["static"]["candidate"])
    assert metadata["production_rows"] == 200  # recorded before the split

    tree = cli("lineage", "small", "candidate_model")
    assert f"small/ground_truth/partitions/{second}@" in tree
    assert f"small/production_batch/partitions/{third}@" in tree

    batch_version = lineage.current_version(["small", "production_batch", "partitions", third])
    report = json.loads(
        cli("impact", "small", "production_batch", "--batch", third, "--version", batch_version,
            "--json")
    )  # fmt: skip
    built = {(row["asset"], row["version"]) for row in report["built_from_it"]}
    model = lineage.current_version(["small", "candidate_model"])
    assert ("small/candidate_model", model) in built

    # `impact --pause` on a batch also keeps it out of later training, recorded with why.
    paused = cli(
        "impact", "small", "production_batch", "--batch", third, "--version", batch_version,
        "--pause",
    )  # fmt: skip
    assert f"excluded batch {third} from later training" in paused
    cli("resume", "small")
    metadata = retrain(defs, instance)
    assert metadata["production_batches"] == {second: 100}
    _, report = current(home, "small", "evaluation_report")
    assert report.body["holdouts"]["used_for_gates"] == "static"  # 30 recent rows only
    assert "impact analysis of small/production_batch" in metadata["production_left_out"][third]


def test_training_without_production_data_reads_no_batch(home, projects_dir, instance, monkeypatch):
    path = write_project(projects_dir)
    path.write_text(
        path.read_text().replace(
            "evaluation:", "training: {production_data: {include: false}}\nevaluation:"
        )
    )
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    driver = SensorDriver(defs, instance)
    scored_and_labeled(driver, 1, seed=8)
    metadata = retrain(defs, instance)
    assert metadata["production_rows"] == 0 and metadata["production_batches"] == {}
    version, _ = current(home, "small", "training_data")
    upstream = store(home).read_manifest(["small", "training_data"], version).upstream
    assert upstream == {}


GROUND_TRUTH_TRIGGER = "small__ground_truth_trigger"


def test_new_ground_truth_triggers_one_retrain_on_it(home, projects_dir, instance, monkeypatch):
    write_project(
        projects_dir,
        policy_extra="  triggers:\n    ground_truth: {min_new_labels: 150, cooldown_minutes: 0}\n",
    )
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    driver = SensorDriver(defs, instance)
    assert driver.tick(GROUND_TRUTH_TRIGGER).skip == "no new ground truth"

    [first] = scored_and_labeled(driver, 1, seed=11)
    tick = driver.tick(GROUND_TRUTH_TRIGGER)
    assert tick.requests == []
    assert tick.skip.startswith("100 labeled rows from 1 batches since training data ")
    assert tick.skip.endswith("(need 150)")

    second, third = scored_and_labeled(driver, 2, seed=12)
    [request] = driver.tick(GROUND_TRUTH_TRIGGER).requests
    assert request.tags["unified_ai/trigger"] == "new_ground_truth"
    assert request.tags["unified_ai/evidence.new_labels"] == "300"
    assert set(request.tags["unified_ai/evidence.batches"].split(",")) == {first, second, third}
    run = driver.launch(request, "small__training_loop")
    [record] = instance.fetch_materializations(
        dg.AssetKey(["small", "training_data"]), limit=1
    ).records
    assert record.run_id == run.run_id
    assert record.asset_materialization.metadata["production_rows"].value == 300

    # The labels are in the training data now: they do not count again.
    assert driver.tick(GROUND_TRUTH_TRIGGER).skip == "no new ground truth"
    scored_and_labeled(driver, 1, seed=13)
    assert driver.tick(GROUND_TRUTH_TRIGGER).skip.startswith("100 labeled rows from 1 batches")

    # A training loop already on its way (another trigger's, or a person's) reads these labels
    # when it runs: no second retrain for the same evidence.
    scored_and_labeled(driver, 1, seed=14)
    loop = defs.resolve_job_def("small__training_loop")
    waiting = instance.create_run_for_job(
        loop, status=dg.DagsterRunStatus.NOT_STARTED, tags={"unified_ai/actor": "drift_trigger"}
    )
    tick = driver.tick(GROUND_TRUTH_TRIGGER)
    assert tick.requests == []
    assert tick.skip == (
        f"a retrain is already on its way (run {waiting.run_id[:8]}, not_started, by "
        "drift_trigger); it trains on the newest data, this evidence included"
    )


def test_a_quarantined_batch_never_joins_training(home, projects_dir, instance, monkeypatch):
    """Even with labels recorded for it (a stale or hand-written record), it is left out."""
    from unified_ai.io.formats import serialize
    from unified_ai.names import ROW_ID, batches_partitions
    from unified_ai_tests.conftest import make_frame

    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    folder = home / "inbox" / "small"
    folder.mkdir(parents=True)
    lineage = store(home)
    for name, seed in (("good.csv", 1), ("bad.csv", 2)):
        frame = make_frame(50, seed=seed).assign(**{ROW_ID: [f"{name}:{i}" for i in range(50)]})
        inputs = frame.drop(columns=["label"])
        if name == "bad.csv":
            inputs.loc[3, "x1"] = float("inf")  # fails batch_is_valid: stored, quarantined
        inputs.to_csv(folder / name, index=False)
        instance.add_dynamic_partitions(batches_partitions("small"), [name])
        dg.materialize(
            [*defs.assets, *defs.asset_checks],
            selection=dg.AssetSelection.assets(dg.AssetKey(["small", "production_batch"])),
            resources=defs.resources,
            instance=instance,
            partition_key=name,
            raise_on_error=False,
        )
        truth = frame[[ROW_ID, "region"]].assign(label=frame["label"])
        path = ["small", "ground_truth", "partitions", name]
        manifest = lineage.write_version(path, *serialize(truth))
        lineage.set_current(path, manifest.version, action="materialize", reason="test")

    result = materialize(
        defs, instance, dg.AssetSelection.assets(dg.AssetKey(["small", "training_data"]))
    )
    assert result.success, step_failures(result)
    [record] = instance.fetch_materializations(
        dg.AssetKey(["small", "training_data"]), limit=1
    ).records
    metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    assert metadata["production_batches"] == {"good.csv": 50}
    assert metadata["production_left_out"] == {
        "bad.csv": "quarantined when it arrived (never scored)"
    }
