"""What review routing adds to a 200-row `score_batch` run: the same run with and without it.

Two copies of the default project, identical but for `policy.review`: one with the bundled
project's review policy (unsure band, out-of-range inputs against the train split, audit share,
daily cap, segment quotas), one without. Both are trained and deployed in this process, then
each scores the same 200 holdout rows per repetition, launched as the UI does (submitted over
GraphQL to a `dagster-webserver`, each run in a process of its own). The runs alternate, and
which copy goes first alternates too, so a slow minute on the machine falls on both.

Target: the run with routing <= 1.05x the run without (medians). Whole runs vary by more than
5 % from one to the next on a busy machine, so a second row sets routing's own time beside the
whole run without routing: <= 0.05x. The step that scores a batch routes it too (`predictions`
and `review_queue` are one step), so routing's time is that step's time with routing minus the
same step's without, in each pair of runs of the same rows (from the runs' event logs).

    python -m benchmarks --only review_routing [--quick]
"""

import tempfile
from pathlib import Path

import dagster as dg
import yaml

from benchmarks.batch_latency import Launcher, wait_for_webserver, webserver, write_batch
from benchmarks.harness import DEFAULT_PROJECT, QUIET, REPO, Row, Stats, clean_env, write_instance

ROUTED = "bench_routed"
UNROUTED = "bench_unrouted"
ROWS = 200


def write_projects(folder: Path) -> None:
    """The default project twice: with its review policy (ROUTED) and without (UNROUTED)."""
    component = yaml.safe_load(
        (REPO / "unified_ai/defs" / DEFAULT_PROJECT / "defs.yaml").read_text()
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name in (ROUTED, UNROUTED):
        attributes = dict(component["attributes"])
        policy = dict(attributes["policy"])
        if name == UNROUTED:
            policy.pop("review", None)
        elif "review" not in policy:
            raise RuntimeError(f"{DEFAULT_PROJECT} has no policy.review to measure")
        policy["name"] = name
        attributes["name"] = name
        attributes["policy"] = policy
        # Fewer bootstrap samples: the evaluation is not measured here, only scoring.
        attributes["evaluation"] = {**attributes["evaluation"], "bootstrap_samples": 50}
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(attributes, sort_keys=False))


def train_and_deploy(folder: Path, home: Path, instance: dg.DagsterInstance) -> None:
    """Run both copies' training loops in this process (the first model deploys by policy)."""
    from unified_ai.cli.launch import step_failure_messages
    from unified_ai.definitions import build_definitions
    from unified_ai.io.store import LineageStore
    from unified_ai.names import DEPLOYED_MODEL, training_loop_job
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings

    settings = load_settings({"UNIFIED_AI_HOME": str(home)})
    defs = build_definitions(settings, load_projects(str(folder)))
    for name in (ROUTED, UNROUTED):
        result = defs.resolve_job_def(training_loop_job(name)).execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False
        )
        if not result.success:
            raise RuntimeError(f"{name} training loop failed: {step_failure_messages(result)}")
        LineageStore(home / "store").require_current([name, DEPLOYED_MODEL])


def routed_rows(instance: dg.DagsterInstance, batch: str) -> int:
    """Rows the routed copy's `review_queue` routed for `batch` (its newest materialization)."""
    from unified_ai.names import REVIEW_QUEUE, ROUTED_METADATA

    event = instance.get_latest_materialization_event(dg.AssetKey([ROUTED, REVIEW_QUEUE]))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None or materialization.partition != batch:
        raise RuntimeError(f"{ROUTED}: no review_queue materialization for batch {batch}")
    return int(materialization.metadata[ROUTED_METADATA].value)


def run(quick: bool, shared: Path) -> list[Row]:
    from unified_ai.names import ACTOR_TAG, batches_partitions, score_batch_job
    from unified_ai.project_tree import load_projects

    reps = 3 if quick else 9
    walls: dict[str, list[float]] = {ROUTED: [], UNROUTED: []}
    steps: dict[str, list[float]] = {ROUTED: [], UNROUTED: []}
    routed: list[int] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        home = root / "home"
        folder = root / "projects"
        write_projects(folder)
        projects = {p.name: p for p in load_projects(str(folder))}
        dagster_home = write_instance(root / "dagster_home")
        env = clean_env(DAGSTER_HOME=str(dagster_home), UNIFIED_AI_HOME=str(home))
        env["UNIFIED_AI_PROJECTS"] = str(folder)
        server, port = webserver(root, env)
        with server as process, dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            train_and_deploy(folder, home, instance)  # while the webserver starts
            wait_for_webserver(port, process, root / "webserver.log")
            launcher = Launcher(port, instance, root / "webserver.log")

            def score(name: str, seed: int) -> float:
                # The same seed draws the same holdout rows for both copies (same split).
                batch = write_batch(home, projects[name], ROWS, seed)
                instance.add_dynamic_partitions(batches_partitions(name), [batch])
                tags = {"dagster/partition": batch, ACTOR_TAG: "benchmark"}
                wall = launcher.launch("unified_ai", score_batch_job(name), tags)
                steps[name].append(launcher.breakdown["predictions"])
                if name == ROUTED:
                    routed.append(routed_rows(instance, batch))
                return wall

            # One warm-up run each (first imports and caches of the run processes), not counted.
            score(UNROUTED, 1000)
            score(ROUTED, 1000)
            for seed in range(reps):
                order = (ROUTED, UNROUTED) if seed % 2 else (UNROUTED, ROUTED)
                for name in order:
                    walls[name].append(score(name, seed))
    # The warm-up's steps and count are left out with it; each pair scored the same rows.
    routing = [a - b for a, b in zip(steps[ROUTED][1:], steps[UNROUTED][1:], strict=True)]
    routed = routed[1:]
    return [
        Row(
            "review_routing",
            f"{ROWS}-row score_batch run with policy.review ({DEFAULT_PROJECT}'s policy)",
            Stats(walls[ROUTED]),
            Stats(walls[UNROUTED]),
            "the same run and rows without policy.review",
            target=1.05,
            note=f"{min(routed)}-{max(routed)} rows routed per batch",
        ),
        # The step's own time, which the run-to-run noise of whole runs can hide.
        Row(
            "review_routing",
            f"routing's own time inside the {ROWS}-row run: the step scoring and routing the "
            "batch minus the same step without policy.review, same rows",
            Stats(routing),
            Stats(walls[UNROUTED]),
            "the whole run without policy.review",
            target=0.05,
            note="routes the scored rows against the scoring model's train split and records "
            "the day's routed count",
        ),
    ]
