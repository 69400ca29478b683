"""The batch and labels sensors on a real instance, tick by tick, without running the loop.

A sensor must not lose a file because of its modification time, nor labels because they came
before their batch; each file leads to exactly one run.
"""

import os
import time

import dagster as dg
import pytest

from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import project_defs
from unified_ai_tests.flows.monitoring_helpers import SensorDriver

BATCHES = "small__batch_sensor"
LABELS = "small__labels_sensor"
PARTITIONS = "small__batches"


@pytest.fixture
def driver(home, projects_dir, instance, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    return SensorDriver(project_defs(projects_dir), instance)


def inbox(home):
    return home / "inbox" / "small"


def drop(folder, name: str, text: str = "x1,x2,colour,region,_row_id\n1,2,red,north,a\n", age=0):
    """A file as a mover delivers it: written elsewhere, renamed in, mtime as the source had."""
    folder.mkdir(parents=True, exist_ok=True)
    hidden = folder / f".{name}.tmp"
    hidden.write_text(text)
    if age:
        then = time.time() - age
        os.utime(hidden, (then, then))
    hidden.rename(folder / name)
    return folder / name


def requested(tick) -> list[str]:
    return sorted(r.partition_key for r in tick.requests)


def test_a_batch_with_an_old_modification_time_is_still_scored(home, driver, instance):
    drop(inbox(home), "new-1.csv")
    drop(inbox(home), "new-2.csv")
    first = driver.tick(BATCHES)
    assert requested(first) == ["new-1.csv", "new-2.csv"]
    assert {r.run_key for r in first.requests} == {"new-1.csv", "new-2.csv"}
    assert instance.has_dynamic_partition(PARTITIONS, "new-1.csv")

    # `mv`, `cp -p` and rsync keep the source's time: this file is older than every file seen.
    drop(inbox(home), "moved-in.csv", age=3600)
    second = driver.tick(BATCHES)
    assert requested(second) == ["moved-in.csv"]
    assert second.requests[0].run_key == "moved-in.csv"
    # Each batch once: the files still waiting for their runs are not requested again.
    third = driver.tick(BATCHES)
    assert third.requests == []
    assert third.skip.startswith("no new batch files")
    assert "moved-in.csv" in third.skip and "already registered" in third.skip


def test_files_being_written_and_unusable_names_are_not_batches(home, driver):
    folder = inbox(home)
    folder.mkdir(parents=True)
    (folder / ".late.csv.tmp").write_text("x1,x2\n1,")  # half-written under a hidden name
    (folder / "bad name.csv").write_text("x")
    (folder / "newline.csv\n").write_text("x")  # `$` alone would accept it
    tick = driver.tick(BATCHES)
    assert tick.requests == []
    assert "'bad name.csv'" in tick.skip and "'newline.csv\\n'" in tick.skip
    assert "1 being written" in tick.skip
    (folder / ".late.csv.tmp").rename(folder / "late.csv")
    assert requested(driver.tick(BATCHES)) == ["late.csv"]


def test_labels_before_their_batch_wait_and_run_once_when_it_is_scored(home, driver, instance):
    labels = inbox(home) / "labels"
    drop(labels, "b1.csv", "_row_id,label\nb1.csv:0,1\n")
    early = driver.tick(LABELS)
    assert early.requests == []
    assert "b1.csv (batch not registered) since " in early.skip
    since = early.skip.split("b1.csv (batch not registered) since ")[1][:20]
    # Retried every tick, and still reported with the time it started waiting.
    again = driver.tick(LABELS)
    assert again.requests == [] and f"since {since}" in again.skip

    instance.add_dynamic_partitions(PARTITIONS, ["b1.csv"])
    registered = driver.tick(LABELS)
    assert registered.requests == []
    assert "b1.csv (batch not scored yet)" in registered.skip

    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=dg.AssetKey(["small", "predictions"]), partition="b1.csv")
    )
    scored = driver.tick(LABELS)
    [request] = scored.requests
    assert request.partition_key == "b1.csv" and request.run_key.startswith("labels:b1.csv:")
    # Exactly once: the file waits for its run to archive it, and is not requested again.
    assert driver.tick(LABELS).requests == []

    # Corrected labels for the same batch are new content: one more run, with its own key.
    (labels / "b1.csv").write_text("_row_id,label\nb1.csv:0,0\nb1.csv:1,1\n")
    [correction] = driver.tick(LABELS).requests
    assert correction.run_key != request.run_key
    assert driver.tick(LABELS).requests == []
