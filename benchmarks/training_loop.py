"""The default project's training loop: wall time end to end, and Dagster's overhead in it.

Overhead is the run's wall time minus the time spent inside its steps (STEP_START to
STEP_SUCCESS in the run's event log: our code, its inputs and outputs). The floor is a run of
the same number of trivial steps on the same instance and executor, whose wall time is all
overhead. Target: our overhead <= 1.2x the floor's.

The loop also leaves what the later benchmarks start from, in `shared/deployed`: a UNIFIED_AI_HOME
with two deployments of the default project (the first deployed by policy, the second approved
by a risk officer and deployed, as a user would) and the DAGSTER_HOME the runs went to.
"""

import json
import time
from pathlib import Path

import dagster as dg

from benchmarks.harness import DEFAULT_PROJECT, QUIET, Row, Stats, write_instance

STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}


def step_seconds(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float]:
    """(number of steps, seconds spent inside them) of a finished run."""
    started: dict[str, float] = {}
    inside = 0.0
    steps = 0
    for entry in instance.all_logs(run_id, of_type=STEP_EVENTS):
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.step_key in started:
            inside += entry.timestamp - started.pop(event.step_key)
            steps += 1
    return steps, inside


def trivial_job(steps: int) -> dg.JobDefinition:
    """`steps` chained assets that do nothing, on the in-process executor the project uses."""
    assets = []
    previous = None
    for index in range(steps):
        deps = [previous] if previous is not None else []

        @dg.asset(name=f"trivial_{index}", deps=deps)
        def trivial() -> None:
            return None

        assets.append(trivial)
        previous = trivial
    job = dg.define_asset_job("trivial_floor", selection=dg.AssetSelection.all())
    defs = dg.Definitions(assets=assets, jobs=[job], executor=dg.in_process_executor)
    return defs.resolve_job_def("trivial_floor")


def run_shape(instance: dg.DagsterInstance, run_id: str) -> list[dict]:
    """The steps of a finished run in order: what each planned (assets, checks) and did."""
    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SKIPPED,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    }
    steps: dict[str, dict] = {}
    order: list[str] = []
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        step = steps.setdefault(
            event.step_key, {"assets": [], "checks": [], "skipped": False, "stored": 0}
        )
        kind = event.event_type
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            step["assets"].append(event.asset_key)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
            step["checks"].append(event.event_specific_data.check_name)
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            step["stored"] += 1
        if kind in {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SKIPPED}:
            order.append(event.step_key)
            step["skipped"] = kind == dg.DagsterEventType.STEP_SKIPPED
    return [steps[key] for key in order]


def shaped_job(shape: list[dict]) -> dg.JobDefinition:
    """Trivial steps in the shape of a real run: the same assets and checks planned in each
    step, chained; a step that stored nothing yields nothing (so its next step is skipped)."""
    assets: list = []
    checks: list = []
    previous: list[dg.AssetKey] = []
    for index, step in enumerate(shape):
        if step["assets"]:
            keys = [dg.AssetKey([f"shaped_{index}_{n}"]) for n in range(len(step["assets"]))]
            assets.append(_shaped_asset(index, keys, previous, step["checks"], step["stored"] > 0))
            previous = keys
        elif step["checks"]:
            checks.append(_shaped_check(index, previous[0], step["checks"]))
    job = dg.define_asset_job("shaped_floor", selection=dg.AssetSelection.all())
    defs = dg.Definitions(
        assets=assets, asset_checks=checks, jobs=[job], executor=dg.in_process_executor
    )
    return defs.resolve_job_def("shaped_floor")


def _shaped_asset(index, keys, previous, checks, produces):
    @dg.multi_asset(
        name=f"shaped_{index}",
        specs=[dg.AssetSpec(k, deps=previous, skippable=True) for k in keys],
        check_specs=[dg.AssetCheckSpec(c, asset=keys[0]) for c in checks],
    )
    def shaped():
        if not produces:
            return
        for k in keys:
            yield dg.MaterializeResult(asset_key=k)
        for c in checks:
            yield dg.AssetCheckResult(check_name=c, asset_key=keys[0], passed=True)

    return shaped


def _shaped_check(index, target, checks):
    names = [f"{c}_{index}" for c in checks]

    @dg.multi_asset_check(
        name=f"shaped_{index}", specs=[dg.AssetCheckSpec(n, asset=target) for n in names]
    )
    def shaped():
        for n in names:
            yield dg.AssetCheckResult(check_name=n, asset_key=target, passed=True)

    return shaped


def timed_run(job: dg.JobDefinition, instance, **kwargs) -> tuple[dg.ExecuteInProcessResult, float]:
    start = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    wall = time.perf_counter() - start
    if not result.success:
        from unified_ai.cli.launch import step_failure_messages

        raise RuntimeError(
            f"{job.name} run {result.run_id} failed: {step_failure_messages(result)}"
        )
    return result, wall


def candidate_of(result: dg.ExecuteInProcessResult) -> str:
    from unified_ai.names import CANDIDATE_MODEL, VERSION_METADATA

    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == CANDIDATE_MODEL
    ]
    return events[-1].materialization.metadata[VERSION_METADATA].value


def run(quick: bool, shared: Path) -> list[Row]:
    from unified_ai.definitions import build_definitions
    from unified_ai.names import approve_job, deploy_job, training_loop_job
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings
    from unified_ai.stages.approval.jobs import approval_run_config

    root = shared / "deployed"
    home = root / "home"
    dagster_home = write_instance(root / "dagster_home")
    settings = load_settings({"UNIFIED_AI_HOME": str(home)})
    projects = load_projects()
    project = next(p for p in projects if p.name == DEFAULT_PROJECT)
    defs = build_definitions(settings, projects)
    loop = defs.resolve_job_def(training_loop_job(DEFAULT_PROJECT))
    loops = 2 if quick else 3

    walls, overheads, steps = [], [], 0
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        # The first loop pays the imports and creates MLflow's database; policy deploys it.
        _, cold = timed_run(loop, instance, run_config=QUIET)
        # Later loops train with a nudged learning rate: on the same rows the same estimator
        # rebuilds the champion exactly, and a model identical to the champion is never
        # approved or deployed.
        params = {**project.estimator.params}
        params["learning_rate"] = params.get("learning_rate", 0.1) * 1.02
        nudged = project.model_copy(
            update={"estimator": project.estimator.model_copy(update={"params": params})}
        )
        defs = build_definitions(
            settings, [nudged if p.name == DEFAULT_PROJECT else p for p in projects]
        )
        loop = defs.resolve_job_def(training_loop_job(DEFAULT_PROJECT))
        for _ in range(loops - 1):
            result, wall = timed_run(loop, instance, run_config=QUIET)
            loop_run = result.run_id
            steps, inside = step_seconds(instance, result.run_id)
            walls.append(wall)
            overheads.append(wall - inside)
        # Later candidates wait for a person: a risk officer approves the last one, then it
        # is deployed, exactly as from the launchpad.
        config = approval_run_config(
            project,
            model_version=candidate_of(result),
            decision="approve",
            approver="risk-officer",
            comment="benchmark",
        )
        _, approve_wall = timed_run(
            defs.resolve_job_def(approve_job(DEFAULT_PROJECT)),
            instance,
            run_config={**config, **QUIET},
        )
        _, deploy_wall = timed_run(
            defs.resolve_job_def(deploy_job(DEFAULT_PROJECT)), instance, run_config=QUIET
        )

        floor_job = trivial_job(steps)
        floor = []
        for _ in range(3 if quick else 5):
            result, wall = timed_run(floor_job, instance, run_config=QUIET)
            floor.append(wall - step_seconds(instance, result.run_id)[1])
        shape = run_shape(instance, loop_run)
        shaped = []
        for _ in range(3 if quick else 5):
            result, wall = timed_run(shaped_job(shape), instance, run_config=QUIET)
            shaped.append(wall - step_seconds(instance, result.run_id)[1])

    planned_assets = sum(len(step["assets"]) for step in shape)
    planned_checks = sum(len(step["checks"]) for step in shape)
    (shared / "training_loop.json").write_text(
        json.dumps({"loop_seconds": min(walls), "approve": approve_wall, "deploy": deploy_wall})
    )
    return [
        Row(
            "training_loop",
            f"{DEFAULT_PROJECT} training loop, wall end to end ({steps} steps, in-process run)",
            Stats(walls),
            note=f"first (cold) loop {cold:.1f} s incl. imports and MLflow DB creation; then "
            f"approve {approve_wall:.2f} s + deploy {deploy_wall:.2f} s",
        ),
        Row(
            "training_loop",
            f"loop overhead: run wall - time inside its {steps} steps",
            Stats(overheads),
            Stats(floor),
            f"a run of {steps} trivial steps, same instance and executor",
            target=1.2,
        ),
        Row(
            "training_loop",
            f"loop overhead: run wall - time inside its {steps} steps, vs the same shape",
            Stats(overheads),
            Stats(shaped),
            f"trivial steps planning the same {planned_assets} assets and {planned_checks} "
            "checks per step (Dagster writes an event per planned asset and check)",
            target=1.2,
        ),
    ]
