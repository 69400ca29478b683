"""Sensor tick time with 10,000 past events vs 10; the labels sensor with 10,000 waiting files.

Target: at most 1.5x. The drift trigger reads only materializations after its cursor; the batch
sensor lists only the files still waiting in the inbox (handled ones sit in processed/) and
checks each against the registered partitions, whatever its modification time.

The labels sensor with 10,000 label files waiting for batches that never come: at most 0.2 s a
tick (Dagster stops a tick at 60 s). A tick lists the folder once and reads only the
`predictions` events after its cursor; a file is looked up when it arrives (batched queries,
shown as the first tick), never again every tick.

    python -m benchmarks --only sensor_tick [--quick]
"""

import json
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.harness import Row, Stats
from unified_ai.definitions import build_definitions
from unified_ai.names import DRIFT_REPORT, PREDICTIONS
from unified_ai.project_tree import load_projects
from unified_ai.runtime import load_settings
from unified_ai.stages.common import key

PROJECT = "mortgage_approval"


def seed(instance, inbox: Path, events: int, project) -> None:
    (inbox / "processed").mkdir(parents=True, exist_ok=True)
    for index in range(10):
        (inbox / f"new-{index:02d}.csv").write_text("x\n1\n")
    for index in range(events):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=key(project, DRIFT_REPORT),
                metadata={"drifted_share": 0.0, "drifted_columns": "none", "batch": f"b{index}"},
            )
        )
        # Handled batches sit in processed/, as the batch runs leave them.
        (inbox / "processed" / f"old-{index:06d}.csv").write_text("x\n1\n")


def tick_seconds(defs, instance, name: str, cursor: str | None, repeat: int) -> Stats:
    sensor = defs.get_sensor_def(name)
    times = []
    for _ in range(repeat):
        with dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=defs,
            resources=defs.resources,
            sensor_name=name,
        ) as context:
            start = time.perf_counter()
            sensor(context)
            times.append(time.perf_counter() - start)
    return Stats(times)


def measure(events: int, repeat: int) -> dict[str, Stats]:
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp,
        dg.instance_for_test() as instance,
    ):
        settings = load_settings({"UNIFIED_AI_HOME": tmp})
        projects = load_projects()
        project = next(p for p in projects if p.name == PROJECT)
        defs = build_definitions(settings, projects)
        inbox = Path(tmp) / "inbox" / PROJECT
        seed(instance, inbox, events, project)
        # Cursors as the daemon would leave them after the past events.
        records = instance.fetch_materializations(key(project, DRIFT_REPORT), limit=1).records
        drift_cursor = json.dumps({"storage_id": records[0].storage_id - 1})
        newest = max(p.stat().st_mtime for p in inbox.glob("*.csv"))
        batch_cursor = json.dumps({"mtime": newest, "names": []})
        return {
            "drift": tick_seconds(
                defs, instance, f"{PROJECT}__drift_trigger", drift_cursor, repeat
            ),
            "batches": tick_seconds(
                defs, instance, f"{PROJECT}__batch_sensor", batch_cursor, repeat
            ),
        }


#: Label files waiting for batches that never come (both modes: writing them takes ~1 s).
WAITING_LABELS = 10_000
#: The labels sensor's target tick time with that many waiting (seconds).
LABELS_TICK_LIMIT = 0.2


def labels_ticks(waiting: int, repeat: int) -> tuple[Stats, Stats]:
    """(first tick, as every file arrives; a later tick, the files waiting) with `waiting` files.

    200 other batches are scored, so a tick has `predictions` events to read past.
    """
    from unified_ai.stages.monitoring.inbox_sensors import ARRIVAL_SLACK_SECONDS

    name = f"{PROJECT}__labels_sensor"
    with (
        tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp,
        dg.instance_for_test() as instance,
    ):
        settings = load_settings({"UNIFIED_AI_HOME": tmp})
        projects = load_projects()
        project = next(p for p in projects if p.name == PROJECT)
        defs = build_definitions(settings, projects)
        labels = Path(tmp) / "inbox" / PROJECT / "labels"
        labels.mkdir(parents=True)
        for index in range(waiting):
            (labels / f"never-{index:05d}.csv").write_text("_row_id,approve\nnever:0,1\n")
        for index in range(200):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=key(project, PREDICTIONS), partition=f"scored-{index:03d}.csv"
                )
            )
        sensor = defs.get_sensor_def(name)
        first, cursor = [], None
        for _ in range(repeat):
            with dg.build_sensor_context(
                instance=instance, definitions=defs, resources=defs.resources, sensor_name=name
            ) as context:
                start = time.perf_counter()
                result = sensor(context)
                first.append(time.perf_counter() - start)
            cursor = json.loads(result.cursor)
        assert not result.run_requests, "no labels file has a scored batch"
        # As the daemon leaves the cursor once the files have waited a few minutes.
        cursor["listed_at"] += ARRIVAL_SLACK_SECONDS + 1
        later = tick_seconds(defs, instance, name, json.dumps(cursor), repeat)
        return Stats(first), later


def run(quick: bool, shared: Path) -> list[Row]:
    sizes = (10, 200) if quick else (10, 1_000, 10_000)
    reps = 3 if quick else 5
    results = {events: measure(events, reps) for events in sizes}
    rows = []
    for name in results[sizes[0]]:
        for events in sizes[1:]:
            rows.append(
                Row(
                    "sensor_tick",
                    f"{name} sensor tick with {events:,} past events",
                    results[events][name],
                    results[sizes[0]][name],
                    f"the same tick with {sizes[0]} past events",
                    target=1.5 if events == sizes[-1] else None,
                )
            )
    few, _ = labels_ticks(10, reps)
    first, later = labels_ticks(WAITING_LABELS, reps)
    rows.append(
        Row(
            "sensor_tick",
            f"labels sensor tick with {WAITING_LABELS:,} label files waiting",
            later,
            few,
            "the first tick with 10 label files",
            limit=LABELS_TICK_LIMIT,
            note="batches that never come: one listing, one query, no query per file",
        )
    )
    rows.append(
        Row(
            "sensor_tick",
            f"labels sensor tick as {WAITING_LABELS:,} label files arrive at once",
            first,
            few,
            "the first tick with 10 label files",
            note="each new file is looked up once, 500 names per query",
        )
    )
    return rows
