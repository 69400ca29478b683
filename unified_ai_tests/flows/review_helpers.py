"""A routed review batch in a lineage store, shared by the review answer tests."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd

from unified_ai import names
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.ml import simulate as simulate_module
from unified_ai.policies.review import route_batch
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)
FIXED_BATCH = "batch-20261205090000-000000000-000.csv"
FOUR_EYES = """\
  review:
    audit_share: 1.0
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo, chen]}
    four_eyes: true
"""


def routed_batch(tmp_path, projects_dir, row_ids: list):
    """A four-eyes project and a store holding batch `b1` of four rows, every one routed.

    Returns:
        (project, store, the review ids in row order, the batch's predictions).
    """
    project = load_project_file(write_project(projects_dir, policy_extra=FOUR_EYES))
    proba = np.array([0.2, 0.45, 0.55, 0.9])
    predictions = pd.DataFrame(
        {
            names.ROW_ID: row_ids,
            "region": ["north", "south", "north", "south"],
            "proba": proba,
            "prediction": (proba >= 0.5).astype(int),
            "model_version": "m1",
        }
    )
    routing = route_batch(
        predictions,
        review=project.policy.review,
        project=project.name,
        task=project.task,
        batch="b1",
        now=NOW,
        segments=project.segments,
    )
    store = LineageStore(tmp_path / "store")
    path = [project.name, names.REVIEW_QUEUE, names.PARTITIONS, "b1"]
    manifest = store.write_version(path, *serialize(routing.rows))
    store.set_current(path, manifest.version, action=names.MATERIALIZE_ACTION)
    return project, store, list(routing.rows[names.REVIEW_ID]), predictions


def scored_and_routed(home, projects_dir, instance, monkeypatch, policy_extra: str):
    """A trained project `small` with `policy_extra`, one scored batch and its routed rows.

    Runs the training loop, simulates a batch of 100 rows and takes it in through the batch
    sensor; scoring it routes its rows to people.

    Returns:
        (defs, project, the batch, its review queue, the sensor driver).
    """
    from unified_ai_tests.conftest import write_project
    from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures
    from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

    path = write_project(projects_dir, policy_extra=policy_extra)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    # Row ids, and so the audit draws that pick which rows fill the day's cap, derive from the
    # batch's name; a name from the clock would route a different 30 rows on every run.
    monkeypatch.setattr(simulate_module, "batch_name", lambda now_ns, index: FIXED_BATCH)
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    driver = SensorDriver(defs, instance)
    simulate("small", "--batches", "1", "--rows", "100", "--seed", "5")
    [request] = driver.tick(names.sensor_names("small")[names.BATCHES]).requests
    run = driver.launch(request, names.score_batch_job("small"))
    assert run.success, step_failures(run)
    batch = run.dagster_run.tags["dagster/partition"]
    _, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{batch}")
    return defs, load_project_file(path), batch, queue, driver


def route_rows(project, store: LineageStore, batch: str, row_ids: list, now: datetime) -> list:
    """Store batch `batch` of `project`'s queue, routed at `now` (audit_share 1.0: every row).

    Returns:
        The review ids, in the queue's order.
    """
    proba = np.linspace(0.1, 0.9, len(row_ids))
    predictions = pd.DataFrame(
        {
            names.ROW_ID: row_ids,
            "region": ["north", "south"] * (len(row_ids) // 2) + ["north"] * (len(row_ids) % 2),
            "proba": proba,
            "prediction": (proba >= 0.5).astype(int),
            "model_version": "m1",
        }
    )
    routing = route_batch(
        predictions,
        review=project.policy.review,
        project=project.name,
        task=project.task,
        batch=batch,
        now=now,
        segments=project.segments,
    )
    path = [project.name, names.REVIEW_QUEUE, names.PARTITIONS, batch]
    manifest = store.write_version(path, *serialize(routing.rows))
    store.set_current(path, manifest.version, action=names.MATERIALIZE_ACTION)
    return list(routing.rows[names.REVIEW_ID])
