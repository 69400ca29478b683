"""Sensor tick time with 10,000 past events vs 10.

Target: at most 1.5x. The drift trigger reads only materializations after its cursor; the batch
sensor lists only the files still waiting in the inbox (handled ones sit in processed/) and
checks each against the registered partitions, whatever its modification time.

    python -m benchmarks --only sensor_tick [--quick]
"""

import json
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.harness import Row, Stats
from unified_ai.definitions import build_definitions
from unified_ai.names import DRIFT_REPORT
from unified_ai.projects.loader import load_projects
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
    return rows
