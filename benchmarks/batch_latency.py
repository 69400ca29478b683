"""Latency of one production batch, file to predictions + drift, vs Dagster's own floor.

Both runs are launched the same way, as the UI does: submitted over GraphQL to a
`dagster-webserver` on one instance, each run then starts in a process of its own (default run
launcher) and executes in process (the product's executor). The floor is a run of three
trivial assets (`benchmarks/floor_location.py`). Time is measured from submission until the
instance records the run as finished. After one unmeasured run of each kind, the floor and the
projects' runs are measured in turns (floor, default, regression, multiclass, then again), so a
slower or faster minute of the machine falls on all of them alike.

Targets: a 200-row `score_batch` run <= 1.5x the floor, for the binary default project and for
a regression and a multiclass project (small synthetic projects this benchmark writes, trains
and deploys: `benchmarks/task_projects.py`); a 1M-row batch (full mode only, three runs in
turns with three floors) <= 1.5x (the floor + reading the batch file with pandas + raw
`predict_proba` on it, and on the shadow sample with each shadow model the run scored + the
numpy/scipy drift floor on it: the run cannot score rows it has not read, and scores what the
project asks).

Also measured in process, for the deployed model of each of those projects: one row scored by
its compiled scorer from plain columns (`TrainedModel.predict_columns`, no DataFrame), in µs per
call, target <= 100 µs, beside the same row as a one-row DataFrame through `predict`.

    python -m benchmarks --only batch_latency [--quick]
"""

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from benchmarks.floor_location import FLOOR_JOB
from benchmarks.harness import (
    BIN,
    DEFAULT_PROJECT,
    Row,
    Stats,
    clean_env,
    free_port,
    service,
    tail,
    wait_until,
    write_instance,
    write_workspace,
)
from benchmarks.task_projects import TASK_PROJECTS, train_and_deploy, write_task_projects

TERMINAL = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class Launcher:
    """Submits jobs to a running webserver and waits for them on the instance."""

    def __init__(self, port: int, instance: dg.DagsterInstance, log: Path):
        from dagster_graphql import DagsterGraphQLClient

        self.client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        self.instance = instance
        self.log = log

    def launch(self, location: str, job: str, tags: dict[str, str] | None = None) -> float:
        """Seconds from submission until the run finished; raise if it did not succeed.

        Where the time went (process start and code load, then each step) is kept in
        `self.breakdown` for the last run.
        """
        start = time.perf_counter()
        try:
            run_id = self.client.submit_job_execution(
                job,
                repository_location_name=location,
                repository_name="__repository__",
                tags=tags or {},
            )
        except Exception as exc:
            raise RuntimeError(f"submitting {job} failed: {exc}\n{tail(self.log)}") from exc

        def finished():
            run = self.instance.get_run_by_id(run_id)
            return run if run is not None and run.status in TERMINAL else None

        run = wait_until(finished, timeout=1800, what=f"run {run_id} of {job}", poll=0.05)
        wall = time.perf_counter() - start
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise RuntimeError(f"{job} run {run_id} ended {run.status.value}")
        self.breakdown = breakdown(self.instance, run_id, wall)
        return wall


def breakdown(instance: dg.DagsterInstance, run_id: str, wall: float) -> dict[str, float]:
    """Seconds of a finished run: before its first step (launch, process start, code load),
    inside each step, and the rest of the wall time."""
    first = None
    started: dict[str, float] = {}
    parts: dict[str, float] = {}
    kinds = {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING}
    kinds |= {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    entries = list(instance.all_logs(run_id, of_type=kinds))
    for entry in entries:
        event = entry.dagster_event
        if event.event_type in {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING}:
            first = entry.timestamp if first is None else min(first, entry.timestamp)
        elif event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.step_key in started:
            step = event.step_key.split("__", 1)[-1]
            parts[step] = entry.timestamp - started[event.step_key]
    if first is not None and started:
        parts = {"before the first step": min(started.values()) - first, **parts}
    parts["rest (submit, finish, poll)"] = wall - sum(parts.values())
    return parts


def webserver(root: Path, env: dict[str, str]):
    """A webserver over the product's and the floor's code locations, and its port."""
    workspace = write_workspace(
        root / "dagster_home",
        unified_ai="unified_ai.definitions",
        floor_location="benchmarks.floor_location",
    )
    port = free_port()
    command = [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1"]
    command += ["-p", str(port)]
    return service(command, env, root / "webserver.log"), port


def wait_for_webserver(port: int, process, log: Path) -> None:
    import urllib.request

    def answering():
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited: {tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
                return True
        except OSError:
            return False

    wait_until(answering, timeout=180, what="dagster-webserver", poll=0.2)


def write_batch(home: Path, project, rows: int, seed: int) -> str:
    """One batch file of `rows` rows drawn from the holdout split, in the project's inbox."""
    from unified_ai.io.store import LineageStore
    from unified_ai.ml.simulate import parse_drift, write_batches
    from unified_ai.names import HOLDOUT_SPLIT

    store = LineageStore(home / "store")
    path = [project.name, HOLDOUT_SPLIT]
    pool = store.read_value(path, store.require_current(path))
    inbox = home / "inbox" / project.name
    [name] = write_batches(
        project, pool, inbox, batches=1, rows=rows, drift=parse_drift([], project), seed=seed
    )
    return name


#: The large batch's rows, and how many times its run and its floor are measured (in turns).
LARGE, LARGE_REPS = 1_000_000, 3


def large_batch(
    score: Callable[[int], float],
    last_batch: Callable[[], str],
    instance: dg.DagsterInstance,
    home: Path,
    project,
    trivial: Stats,
) -> Row:
    """The `LARGE`-row run beside its floor, each measured `LARGE_REPS` times in turns.

    The floor reads the file the run read (pandas), scores it with the raw `predict_proba`
    of the live model and the shadow sample with each shadow's, and computes the numpy drift
    floor on it, in this process, plus the trivial run's launch (its fastest).
    """
    walls, floors, parts = [], [], []
    for seed in range(100, 100 + LARGE_REPS):
        walls.append(score(seed))
        batch = last_batch()
        shadows = shadow_models(instance, home, project, batch)
        read, predict, shadow, drift = compute_floor(home, project, batch, shadows)
        # The run cannot score rows it has not read: the floor reads the file too. It scores
        # what the project asks: every row with the live model, and the shadow sample
        # (monitoring.shadow_rows) with each shadow model.
        floors.append(trivial.min + read + predict + shadow + drift)
        parts.append((read, predict, shadow, drift, len(shadows)))
    run, floor = Stats(walls), Stats(floors)
    read, predict, shadow, drift, count = (statistics.median(p) for p in zip(*parts, strict=True))
    without_read = run.median / (floor.median - read)
    live_only = run.median / (floor.median - shadow)
    return Row(
        "batch_latency",
        f"{LARGE:,}-row score_batch run",
        run,
        floor,
        "trivial-run floor + pandas read_csv of the file + raw predict_proba of the live "
        "model on every row and of each shadow on its sample + numpy/scipy drift floor, "
        "in turns with the run",
        target=1.5,
        note=f"medians: read_csv {read:.1f} s, predict_proba {predict:.1f} s, {count:.0f} "
        f"shadow(s) {shadow:.1f} s, drift {drift:.1f} s; against the floor without the read: "
        f"{without_read:.2f}x, without the shadows: {live_only:.2f}x",
    )


def shadow_models(instance: dg.DagsterInstance, home: Path, project, batch: str) -> list:
    """The shadow models that scored `batch` (as its `predictions` materialization names them,
    the live model itself left out: its scores are copied, not computed again)."""
    from unified_ai.io.store import LineageStore
    from unified_ai.names import CANDIDATE_MODEL, PREDICTIONS
    from unified_ai.serving.follower import load_deployment

    store = LineageStore(home / "store")
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey([project.name, PREDICTIONS]), asset_partitions=[batch]
        ),
        limit=1,
    ).records
    metadata = records[0].asset_materialization.metadata
    models = []
    for role in ("previous", "candidate"):
        owner = str(getattr(metadata.get(f"shadow_{role}"), "value", "none"))
        if owner == "none" or "live model itself" in owner:
            continue
        if role == "previous":  # a deployment version
            models.append(load_deployment(store, project, owner).model)
        else:  # a model version
            models.append(store.read_value([project.name, CANDIDATE_MODEL], owner))
    return models


def compute_floor(
    home: Path, project, batch: str, shadows: list
) -> tuple[float, float, float, float]:
    """Seconds to read the batch file with pandas, to score it with the raw `predict_proba`,
    to score the shadow sample's size of its rows with each shadow's, and to compute the numpy
    drift floor on it, in this process."""
    import pandas as pd

    from benchmarks.drift import floor as drift_floor
    from unified_ai.io.store import LineageStore
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import model_inputs
    from unified_ai.names import DEPLOYED_MODEL, TRAIN_SPLIT
    from unified_ai.serving.follower import load_deployment

    store = LineageStore(home / "store")
    served = load_deployment(store, project, store.require_current([project.name, DEPLOYED_MODEL]))
    inbox = home / "inbox" / project.name
    # The batch file (in the inbox or, once read, in processed/), not its pending labels.
    path = next(p for p in inbox.rglob(batch) if not p.parent.name.startswith("."))
    start = time.perf_counter()
    frame = pd.read_csv(path)
    read = time.perf_counter() - start
    inputs = model_inputs(frame, served.features)
    start = time.perf_counter()
    served.model.pipeline.predict_proba(inputs)
    predict = time.perf_counter() - start
    sample = frame.sample(n=min(project.monitoring.shadow_rows, len(frame)), random_state=0)
    shadow = 0.0
    for model in shadows:
        inputs = model_inputs(sample, FeatureColumns(**model.card["features"]))
        pipeline = model.pipeline  # loaded before the clock starts, as the live model's
        start = time.perf_counter()
        pipeline.predict_proba(inputs)
        shadow += time.perf_counter() - start
    split = [project.name, TRAIN_SPLIT]
    train = store.read_value(split, store.require_current(split))
    numeric = served.features.numeric
    reference = train[numeric].astype("float64").fillna(0.0)
    current = frame[numeric].astype("float64").fillna(0.0)
    start = time.perf_counter()
    drift_floor(reference, current)
    return read, predict, shadow, time.perf_counter() - start


def one_row(home: Path, project, quick: bool) -> Row:
    """µs per one-row call of the deployed model's compiled scorer, in this process."""
    import pandas as pd

    from unified_ai.io.store import LineageStore
    from unified_ai.ml.training import model_inputs
    from unified_ai.names import DEPLOYED_MODEL, HOLDOUT_SPLIT
    from unified_ai.serving.follower import load_deployment

    store = LineageStore(home / "store")
    served = load_deployment(store, project, store.require_current([project.name, DEPLOYED_MODEL]))
    model = served.model
    split = [project.name, HOLDOUT_SPLIT]
    frame = model_inputs(
        store.read_value(split, store.require_current(split)).head(1), served.features
    )
    columns = {
        name: [None if pd.isna(value) else value for value in frame[name]] for name in frame.columns
    }
    calls, reps = (200, 9) if quick else (1000, 15)

    def micros(fn) -> Stats:
        fn()  # warm: first-call caches
        values = []
        for _ in range(reps):
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            values.append((time.perf_counter() - start) / calls * 1e6)
        return Stats(values, unit="µs")

    compiled = model.scorer is not None
    estimator = model.card.get("estimator") or type(model.pipeline.steps[-1][1]).__name__
    return Row(
        "batch_latency",
        f"compiled scorer, one row, in process ({project.name}, {model.task}, {estimator})",
        micros(lambda: model.predict_columns(columns)),
        micros(lambda: model.predict(frame)),
        "the same row as a one-row DataFrame through TrainedModel.predict",
        limit=100.0 if compiled else None,
        note="" if compiled else "no compiled scorer: scored by the sklearn pipeline",
    )


def run(quick: bool, shared: Path) -> list[Row]:
    from unified_ai.names import ACTOR_TAG, batches_partitions, score_batch_job
    from unified_ai.project_tree import load_projects

    reps = 2 if quick else 5
    rows = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "deployed"
        shutil.copytree(shared / "deployed", root)
        home = root / "home"
        tasks_folder = root / "task_projects"
        write_task_projects(tasks_folder)
        projects = {p.name: p for p in load_projects(str(tasks_folder))}
        project = projects[DEFAULT_PROJECT]
        dagster_home = write_instance(root / "dagster_home")
        env = clean_env(DAGSTER_HOME=str(dagster_home), UNIFIED_AI_HOME=str(home))
        # The webserver's code location loads the synthetic task projects beside the bundled.
        env["UNIFIED_AI_PROJECTS"] = str(tasks_folder)
        server, port = webserver(root, env)
        with server as process, dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            # While the webserver starts: train and deploy the task projects (in this process).
            loops = train_and_deploy(tasks_folder, home, instance)
            wait_for_webserver(port, process, root / "webserver.log")
            launcher = Launcher(port, instance, root / "webserver.log")

            scored_batches: dict[str, str] = {}

            def score(scored, batch_rows: int, seed: int) -> float:
                batch = scored_batches[scored.name] = write_batch(home, scored, batch_rows, seed)
                instance.add_dynamic_partitions(batches_partitions(scored.name), [batch])
                tags = {"dagster/partition": batch, ACTOR_TAG: "benchmark"}
                return launcher.launch("unified_ai", score_batch_job(scored.name), tags)

            kinds: dict[str, Callable[[int], float]] = {
                "floor": lambda seed: launcher.launch("floor_location", FLOOR_JOB),
                project.name: lambda seed: score(project, 200, seed),
                **{
                    name: (lambda seed, scored=projects[name]: score(scored, 200, seed))
                    for name in TASK_PROJECTS
                },
            }
            measured: dict[str, list[float]] = {name: [] for name in kinds}
            wheres: dict[str, str] = {}
            # One unmeasured run of each kind first (the first runs after the webserver starts
            # warm its caches), then the measured runs in turns, so that a slower or a faster
            # minute of the machine falls on the floor and the projects alike.
            for launch in kinds.values():
                launch(reps)
            for seed in range(reps):
                for name, launch in kinds.items():
                    measured[name].append(launch(seed))
                    wheres[name] = ", ".join(
                        f"{k} {v:.1f} s" for k, v in launcher.breakdown.items()
                    )
            floor = Stats(measured["floor"])
            rows.append(
                Row(
                    "batch_latency",
                    "200-row score_batch run, submitted to the webserver until finished",
                    Stats(measured[project.name]),
                    floor,
                    "a run of 3 trivial assets launched the same way, in turns",
                    target=1.5,
                    note=f"last run: {wheres[project.name]}; last floor run: {wheres['floor']}",
                )
            )
            for name, task in TASK_PROJECTS.items():
                rows.append(
                    Row(
                        "batch_latency",
                        f"200-row score_batch run, {task} project ({name}, synthetic)",
                        Stats(measured[name]),
                        floor,
                        "a run of 3 trivial assets launched the same way, in turns",
                        target=1.5,
                        note=f"last run: {wheres[name]}; its training loop {loops[name]:.1f} s",
                    )
                )
            for scored in (project, *(projects[name] for name in TASK_PROJECTS)):
                rows.append(one_row(home, scored, quick))
            if not quick:
                rows.append(
                    large_batch(
                        lambda seed: score(project, LARGE, seed),
                        lambda: scored_batches[project.name],
                        instance,
                        home,
                        project,
                        floor,
                    )
                )
    return rows
