"""Rollback, history and lineage vs the number of stored versions; rollback vs a retrain.

Targets: a rollback with many stored deployments takes at most 1.2x the time with 10, by
version and to the previous one; its own work is at most 2 % of a retrain + approve + deploy of
the default project. `history --json` prints its default page (the 20 newest moves) in at most
0.2 s at 10,000 moves: measured in process, and in a fresh process beside the cost of starting
one and importing the CLI; `lineage` of the current version should not grow.

The rollback run is the real job, on the project `training_loop` deployed twice (first model by
policy, second approved by a risk officer), so there is always an earlier deployment to go back to.

    python -m benchmarks --only rollback [--quick]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.harness import DEFAULT_PROJECT, QUIET, Row, Stats, clean_env, repeat


def seeded_store(home: Path, project, registry, deployments: int) -> list[str]:
    """`deployments` stored deployment versions of `project`, each made current in turn."""
    from sklearn.linear_model import LogisticRegression

    from unified_ai.io.formats import serialize
    from unified_ai.io.store import LineageStore

    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    mlflow_versions = [
        registry.log_and_register(
            model_name=project.model_name,
            experiment=f"bench/{project.name}",
            pipeline=model,
            params={},
            metrics={},
            tags={},
        )["version"]
        for _ in range(2)
    ]
    store = LineageStore(home / "store")
    path = [project.name, "deployed_model"]
    versions = []
    for index in range(deployments):
        payload = {
            "model_version": f"{index:016x}",
            "mlflow_model_version": mlflow_versions[index % 2],
            "model_uri": "models:/bench",
            "gates": {"quality_floor": {"passed": True}},
            "n": index,
        }
        version = store.write_version(path, *serialize(payload)).version
        store.set_current(path, version, action="materialize")
        versions.append(version)
    return versions


def measure_store(tmp: Path, project, count: int, reps: int) -> dict[str, Stats]:
    from click.testing import CliRunner

    from unified_ai.cli import main
    from unified_ai.io.store import LineageStore
    from unified_ai.resources.mlflow_registry import MlflowRegistry
    from unified_ai.stages.rollback.perform import perform_rollback

    home = tmp / f"home{count}"
    registry = MlflowRegistry(
        tracking_uri=f"sqlite:///{home / 'mlflow.db'}", artifact_root=str(home / "artifacts")
    )
    home.mkdir(parents=True)
    versions = seeded_store(home, project, registry, count)
    store = LineageStore(home / "store")

    def rollback(requested: str | None) -> None:
        perform_rollback(
            store=store,
            registry=registry,
            project=project,
            requested=requested,
            reason="bench",
            actor="bench",
            run_id=None,
        )

    # Back to the oldest deployment by id (then forward again, untimed), and to the previous.
    values = []
    for _ in range(reps):
        start = time.perf_counter()
        rollback(versions[0])
        values.append(time.perf_counter() - start)
        rollback(versions[-1])
    by_version = Stats(values)
    previous = repeat(reps, lambda: rollback(None))

    runner = CliRunner()
    os.environ["UNIFIED_AI_HOME"] = str(home)

    def cli(*args: str) -> None:
        result = runner.invoke(main, list(args))
        if result.exit_code != 0:
            raise RuntimeError(f"unified-ai {' '.join(args)} failed: {result.output.strip()}")

    history = repeat(reps, lambda: cli("history", project.name, "deployed_model", "--json"))
    lineage = repeat(reps, lambda: cli("lineage", project.name, "deployed_model", "--json"))
    command = [sys.executable, "-m", "unified_ai.cli", "history", project.name, "deployed_model"]
    process = repeat(reps, lambda: fresh_process([*command, "--json"], home))
    return {
        "by_version": by_version,
        "previous": previous,
        "history": history,
        "history_process": process,
        "lineage": lineage,
    }


def fresh_process(command: list[str], home: Path) -> None:
    env = clean_env(UNIFIED_AI_HOME=str(home))
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")


def cli_import(reps: int) -> Stats:
    """A fresh interpreter that imports the CLI and exits: the floor of any command."""
    command = [sys.executable, "-c", "import unified_ai.cli"]
    return repeat(reps, lambda: subprocess.run(command, env=clean_env(), check=True))


def rollback_run(shared: Path, tmp: Path, reps: int) -> Stats:
    """Wall time of the real rollback job, in process, on a copy of the deployed project."""
    from unified_ai.definitions import build_definitions
    from unified_ai.io.store import LineageStore
    from unified_ai.names import DEPLOYED_MODEL, rollback_job
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings
    from unified_ai.stages.rollback.jobs import rollback_run_config

    root = tmp / "deployed"
    shutil.copytree(shared / "deployed", root)
    settings = load_settings({"UNIFIED_AI_HOME": str(root / "home")})
    projects = load_projects()
    project = next(p for p in projects if p.name == DEFAULT_PROJECT)
    job = build_definitions(settings, projects).resolve_job_def(rollback_job(DEFAULT_PROJECT))
    newest = LineageStore(root / "home" / "store").require_current(
        [DEFAULT_PROJECT, DEPLOYED_MODEL]
    )
    walls = []
    with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
        for index in range(reps):
            # Back to the previous deployment, then (by version) to the newest again.
            to_version = newest if index % 2 else ""
            config = rollback_run_config(project, reason="benchmark", to_version=to_version)
            config = {**config, **QUIET}
            start = time.perf_counter()
            result = job.execute_in_process(
                instance=instance, run_config=config, raise_on_error=False
            )
            walls.append(time.perf_counter() - start)
            if not result.success:
                from unified_ai.cli.launch import step_failure_messages

                raise RuntimeError(f"rollback run failed: {step_failure_messages(result)}")
    return Stats(walls)


def run(quick: bool, shared: Path) -> list[Row]:
    from unified_ai.project_tree import load_projects

    project = next(p for p in load_projects() if p.name == DEFAULT_PROJECT)
    sizes = (10, 50) if quick else (10, 1_000, 10_000)
    # Each rollback commits to MLflow's SQLite registry (fsync); 7 repetitions steady the median.
    reps = 2 if quick else 7
    rows = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        results = {count: measure_store(Path(tmp), project, count, reps) for count in sizes}
        run_walls = rollback_run(shared, Path(tmp), 2)
    small = results[sizes[0]]
    labels = {
        "by_version": ("rollback to a given version", 1.2),
        "previous": ("rollback to the previous deployment", 1.2),
        "history": ("`unified-ai history PROJECT deployed_model --json`", None),
        "lineage": ("`unified-ai lineage PROJECT deployed_model --json`", 1.5),
    }
    for kind, (label, target) in labels.items():
        for count in sizes[1:]:
            rows.append(
                Row(
                    "rollback",
                    f"{label}, {count:,} stored deployments",
                    results[count][kind],
                    small[kind],
                    f"the same with {sizes[0]}",
                    target=target if count == sizes[-1] else None,
                    note="its default page: the 20 newest moves" if kind == "history" else "",
                )
            )
    largest = results[sizes[-1]]
    rows.append(
        Row(
            "rollback",
            f"`history --json` default page at {sizes[-1]:,} moves, in process",
            largest["history"],
            note="the CLI already imported (as the rows above)",
            limit=0.2,
        )
    )
    rows.append(
        Row(
            "rollback",
            f"`history --json` default page at {sizes[-1]:,} moves, a fresh `python -m "
            "unified_ai.cli` process",
            largest["history_process"],
            cli_import(reps),
            "a fresh interpreter importing the CLI, nothing else",
            limit=0.2,
        )
    )
    loop = json.loads((shared / "training_loop.json").read_text())
    retrain = Stats([loop["loop_seconds"] + loop["approve"] + loop["deploy"]])
    own_work = results[sizes[-1]]["by_version"]
    rows.append(
        Row(
            "rollback",
            f"rollback's own work ({sizes[-1]:,} deployments) vs retrain + approve + deploy",
            own_work,
            retrain,
            f"{DEFAULT_PROJECT} training loop + approve + deploy runs",
            target=0.02,
        )
    )
    rows.append(
        Row(
            "rollback",
            "the whole rollback run (Dagster run + pointer + MLflow alias + incident record)",
            run_walls,
            retrain,
            f"{DEFAULT_PROJECT} training loop + approve + deploy runs",
        )
    )
    return rows
