"""Labels as a hostile client sends them: repeated, contradictory, for batches that never come.

Against real parts: a trained and deployed model, a real store on disk, a real Dagster instance
and the real labels sensor evaluated tick by tick.
"""

import time

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from unified_ai.names import ROW_ID
from unified_ai.stages.monitoring import inbox_sensors
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

BATCHES = "small__batch_sensor"
LABELS = "small__labels_sensor"
PARTITIONS = "small__batches"
PREDICTIONS = ["small", "predictions"]
HOUR = 3600.0
EXPIRED = "expired"
REASON_SUFFIX = ".reason.txt"


def inbox(home):
    return home / "inbox" / "small"


@pytest.fixture
def loop(home, projects_dir, instance, monkeypatch):
    """The small project trained and deployed, with its sensors driven tick by tick."""
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    return SensorDriver(defs, instance)


def test_535_label_rows_for_200_rows_count_each_row_once_and_quarantine_conflicts(home, loop):
    """Row 3: duplicates aimed at the model's worst rows and conflicting labels."""
    driver = loop
    simulate("small", "--batches", "1", "--rows", "200", "--seed", "4")
    [request] = driver.tick(BATCHES).requests
    assert driver.launch(request, "small__score_batch").success
    batch = request.partition_key
    _, predictions = current(home, "small", f"predictions/partitions/{batch}")
    simulate("small", "--labels")
    labels_file = inbox(home) / "labels" / batch
    truth = pd.read_csv(labels_file)
    assert len(truth) == 200

    # The true label of every row; 30 rows also given the other label; the 20 rows the model
    # gets most wrong repeated 305 times between them: 535 label rows for 200 row ids.
    scored = predictions.merge(truth, on=ROW_ID)
    error = (scored["label"] - scored["proba"]).abs()
    worst = scored.loc[error.sort_values(ascending=False).index[:20], [ROW_ID, "label"]]
    rest = scored.loc[~scored[ROW_ID].isin(worst[ROW_ID]), [ROW_ID, "label"]]
    conflicting = rest.iloc[:30].assign(label=lambda f: 1 - f["label"])
    repeats = pd.concat([worst] * 16, ignore_index=True).iloc[:305]
    hostile = pd.concat([truth, conflicting, repeats], ignore_index=True)
    assert len(hostile) == 535 and hostile[ROW_ID].nunique() == 200
    hostile.sample(frac=1, random_state=0).to_csv(labels_file, index=False)

    [labels_run] = driver.tick(LABELS).requests
    run = driver.launch(labels_run, "small__ingest_labels")
    assert run.success, step_failures(run)

    # Live metrics count each row once: the same ROC AUC as the clean labels of those rows.
    kept = truth[~truth[ROW_ID].isin(conflicting[ROW_ID])]
    clean = predictions.merge(kept, on=ROW_ID)
    expected = roc_auc_score(clean["label"], clean["proba"])
    _, report = current(home, "small", "live_performance")
    live = report["current"]
    seen = f"live ROC AUC {live['value']:.3f} on "
    seen += f"{live['labeled_rows']} rows; clean labels give {expected:.3f} on 170 rows"
    assert live["labeled_rows"] == 170, seen
    assert live["value"] == pytest.approx(expected), seen

    # Ground truth: one label per scored row; the 30 contradicted rows are quarantined.
    _, joined = current(home, "small", f"ground_truth/partitions/{batch}")
    assert len(joined) == 170 and joined[ROW_ID].is_unique
    assert not set(joined[ROW_ID]) & set(conflicting[ROW_ID])
    assert (
        joined.set_index(ROW_ID)["label"]
        .sort_index()
        .equals(kept.set_index(ROW_ID)["label"].sort_index())
    )

    [check] = run.get_asset_check_evaluations()
    assert check.check_name == "labels_match_predictions" and not check.passed
    assert "all 535 label rows matched" not in check.description
    assert "535 label rows gave 170 scored rows one label each" in check.description
    assert "305 exact duplicate label rows counted once" in check.description
    assert "30 row ids with conflicting labels quarantined (60 label rows" in check.description
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["duplicate_label_rows"] == 305
    assert metadata["conflicting_row_ids_count"] == 30
    assert metadata["conflicting_label_rows"] == 60
    assert metadata["unmatched_label_rows"] == 0
    assert set(metadata["conflicting_row_ids"]) <= set(conflicting[ROW_ID])


def sensor_driver(projects_dir, instance, monkeypatch, monitoring: str = "") -> SensorDriver:
    """The small project's sensors (nothing trained), with `monitoring` settings if given."""
    path = write_project(projects_dir)
    if monitoring:
        path.write_text(path.read_text() + f"monitoring: {monitoring}\n")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return SensorDriver(project_defs(projects_dir), instance)


@pytest.fixture
def sensors(home, projects_dir, instance, monkeypatch):
    """Labels expire after the default `monitoring.label_expiry_hours` (a week)."""
    return sensor_driver(projects_dir, instance, monkeypatch)


class Clock:
    """The labels sensor's clock, moved on by hand (files cannot be made to arrive earlier)."""

    def __init__(self, monkeypatch):
        self.offset = 0.0
        real = time.time
        monkeypatch.setattr(
            inbox_sensors, "now_seconds", lambda: real() + self.offset, raising=False
        )

    def advance(self, hours: float) -> None:
        self.offset += hours * HOUR


def scored(instance, *batches: str) -> None:
    import dagster as dg

    instance.add_dynamic_partitions(PARTITIONS, list(batches))
    for batch in batches:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=dg.AssetKey(PREDICTIONS), partition=batch)
        )


def test_labels_for_batches_that_never_come_expire_after_the_policy_time(
    home, sensors, instance, monkeypatch
):
    """Row 10: moved aside with a reason after `monitoring.label_expiry_hours`, never deleted."""
    clock = Clock(monkeypatch)
    labels = inbox(home) / "labels"
    labels.mkdir(parents=True)
    texts = {
        "ghost.csv": "_row_id,label\nghost.csv:0,1\n",  # a batch that never comes
        "stuck.csv": "_row_id,label\nstuck.csv:0,0\n",  # registered, never scored
        "bad name.csv": "_row_id,label\nx,1\n",  # can match no batch
        "late.csv": "_row_id,label\nlate.csv:0,1\n",  # its batch comes after a day
    }
    for name, text in texts.items():
        (labels / name).write_text(text)
    (labels / ".partial.csv.tmp").write_text("_row_id,la")  # still being written
    instance.add_dynamic_partitions(PARTITIONS, ["stuck.csv"])

    first = sensors.tick(LABELS)
    assert first.requests == [] and "expired" not in first.skip
    clock.advance(167)
    assert "expired" not in sensors.tick(LABELS).skip
    assert sorted(p.name for p in labels.iterdir() if p.is_file()) == sorted(
        [*texts, ".partial.csv.tmp"]
    )

    clock.advance(2)  # 169 hours: past the default week
    scored(instance, "late.csv")  # scored in time: its labels run instead of expiring
    tick = sensors.tick(LABELS)
    assert [r.partition_key for r in tick.requests] == ["late.csv"]
    log = tick.skip if tick.skip is not None else ""
    expired = labels / EXPIRED
    assert sorted(p.name for p in expired.iterdir() if not p.name.endswith(REASON_SUFFIX)) == [
        "bad name.csv",
        "ghost.csv",
        "stuck.csv",
    ]
    for name in ("ghost.csv", "stuck.csv", "bad name.csv"):
        assert (expired / name).read_text() == texts[name]  # moved, never deleted
        assert not (labels / name).exists()
        reason = (expired / f"{name}{REASON_SUFFIX}").read_text()
        assert f"labels file {name!r} waited from " in reason
        assert "monitoring.label_expiry_hours (168 h)" in reason
        assert reason.count("\n") == 1
    assert "its batch never arrived" in (expired / f"ghost.csv{REASON_SUFFIX}").read_text()
    assert "arrived but was never stored" in (expired / f"stuck.csv{REASON_SUFFIX}").read_text()
    assert "can match no batch" in (expired / f"bad name.csv{REASON_SUFFIX}").read_text()
    assert (labels / ".partial.csv.tmp").exists() and (labels / "late.csv").exists()
    assert log == ""  # runs were requested: the notes went to the log, not a skip reason

    # The next tick says nothing is left to expire; a file delivered again waits afresh.
    after = sensors.tick(LABELS)
    assert after.requests == [] and "expired" not in (after.skip or "")
    clock.offset = 0  # delivered again now: it waits a full expiry time afresh
    (expired / "ghost.csv").rename(labels / "ghost.csv")
    again = sensors.tick(LABELS)
    assert "ghost.csv (batch not registered) since " in again.skip
    assert (labels / "ghost.csv").exists()


def test_the_policy_sets_the_expiry_and_the_skip_reason_counts_what_expired(
    home, projects_dir, instance, monkeypatch
):
    sensors = sensor_driver(projects_dir, instance, monkeypatch, "{label_expiry_hours: 24}")
    clock = Clock(monkeypatch)
    labels = inbox(home) / "labels"
    labels.mkdir(parents=True)
    for index in range(3):
        (labels / f"gone-{index}.csv").write_text("_row_id,label\nx,1\n")
    sensors.tick(LABELS)
    clock.advance(23)
    assert "expired" not in sensors.tick(LABELS).skip
    clock.advance(2)
    tick = sensors.tick(LABELS)
    assert tick.requests == []
    assert "3 expired (waited over 24 h), moved to expired/ with a reason file" in tick.skip
    # A second delivery of a name already expired keeps both.
    (labels / "gone-0.csv").write_text("_row_id,label\ny,0\n")
    sensors.tick(LABELS)
    clock.advance(25)
    sensors.tick(LABELS)
    assert (labels / EXPIRED / "gone-0.csv").read_text() == "_row_id,label\nx,1\n"
    assert (labels / EXPIRED / "gone-0.csv.1").read_text() == "_row_id,label\ny,0\n"
    assert (labels / EXPIRED / f"gone-0.csv.1{REASON_SUFFIX}").exists()


def test_10000_waiting_label_files_run_only_for_scored_batches_and_expire(
    home, sensors, instance, monkeypatch
):
    """The tick that must stay cheap (benchmarks/sensor_tick.py times it) is also right."""
    clock = Clock(monkeypatch)
    labels = inbox(home) / "labels"
    labels.mkdir(parents=True)
    names = [f"b{index:05d}.csv" for index in range(10_000)]
    for name in names:
        (labels / name).write_text("_row_id,label\nr,1\n")
    scored(instance, names[10], names[5000])  # scored before their labels came

    first = sensors.tick(LABELS)
    assert sorted(r.partition_key for r in first.requests) == [names[10], names[5000]]
    quiet = sensors.tick(LABELS)
    assert quiet.requests == [] and "and 9993 more" in quiet.skip

    clock.advance(1)
    scored(instance, names[7], names[9999])  # scored while their labels wait
    later = sensors.tick(LABELS)
    assert sorted(r.partition_key for r in later.requests) == [names[7], names[9999]]
    assert sensors.tick(LABELS).requests == []

    clock.advance(168)
    moved = 0
    for _ in range(10):  # a tick moves files for a few seconds at most; the rest next tick
        tick = sensors.tick(LABELS)
        assert tick.requests == []
        moved = sum(1 for p in (labels / EXPIRED).iterdir() if p.name.endswith(".csv"))
        if moved == 9_996:
            break
    assert moved == 9_996
    waiting = {p.name for p in labels.iterdir() if p.is_file()}
    # The four labels files whose runs were requested wait for their runs, never expire.
    assert waiting == {names[7], names[10], names[5000], names[9999]}
