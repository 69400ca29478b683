"""A run waiting in the queue does not hide the gate results a running run depends on.

Dagster records a planned check evaluation when a run is created. With two training loops of a
project (the ground-truth and the performance trigger both ask for one; the tag concurrency
limit queues the second), the queued run's planned checks are the newest records while the
first run is still between its steps.
"""

import dagster as dg

from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    materialize,
    project_defs,
    step_failures,
    store,
)


def test_a_queued_run_does_not_hide_the_gates_of_a_running_one(
    home, projects_dir, instance, monkeypatch
):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    data = dg.AssetKey(["small", "training_data"])
    gated = materialize(defs, instance, dg.AssetSelection.assets(data))
    assert gated.success, step_failures(gated)

    # A second training loop is created and waits in the queue.
    loop = defs.resolve_job_def("small__training_loop")
    waiting = instance.create_run_for_job(loop)
    assert instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.NOT_STARTED

    # The first run goes on with the splits of the version its gates passed on.
    splits = dg.AssetSelection.assets(["small", "train_split"]).required_multi_asset_neighbors()
    result = materialize(defs, instance, splits)
    assert result.success, step_failures(result)
    version, _ = current(home, "small", "training_data")
    split, _ = current(home, "small", "train_split")
    assert store(home).read_manifest(["small", "train_split"], split).upstream == {
        "small/training_data": version
    }
