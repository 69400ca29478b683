"""Rollback time vs the number of stored versions, and vs a retrain + deploy.

Targets: rollback with 1,000 stored deployments takes at most 1.2x the time with 10, and a
rollback costs at most 2 % of a retrain + deploy of the default project.

    python benchmarks/rollback.py [--repeat 5]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import dagster as dg

from unified_ai.definitions import build_definitions
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.projects.loader import load_projects
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.runtime import load_settings
from unified_ai.stages.rollback.perform import perform_rollback


def seeded_store(root: Path, project, registry: MlflowRegistry, deployments: int) -> list[str]:
    """`deployments` stored deployment versions of `project`, each made current in turn."""
    from sklearn.linear_model import LogisticRegression

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
    store = LineageStore(root)
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


def time_rollbacks(root: Path, project, registry, versions: list[str], repeat: int) -> dict:
    store = LineageStore(root)
    explicit, default = [], []
    for _ in range(repeat):
        # Back to the oldest deployment by id, then forward again to the newest.
        start = time.perf_counter()
        perform_rollback(
            store=store,
            registry=registry,
            project=project,
            requested=versions[0],
            reason="bench",
            actor="bench",
            run_id=None,
        )
        explicit.append(time.perf_counter() - start)
        perform_rollback(
            store=store,
            registry=registry,
            project=project,
            requested=versions[-1],
            reason="bench",
            actor="bench",
            run_id=None,
        )
    for _ in range(repeat):
        start = time.perf_counter()
        perform_rollback(
            store=store,
            registry=registry,
            project=project,
            requested=None,
            reason="bench",
            actor="bench",
            run_id=None,
        )
        default.append(time.perf_counter() - start)
    return {"explicit": statistics.median(explicit), "default": statistics.median(default)}


def retrain_and_deploy_seconds(home: Path, repeat: int) -> tuple[float, float]:
    """Median wall time of the default project's training loop and of its rollback job."""
    settings = load_settings({"UNIFIED_AI_HOME": str(home)})
    defs = build_definitions(settings, load_projects())
    loop = defs.resolve_job_def("mortgage_approval__training_loop")
    rollback_job = defs.resolve_job_def("mortgage_approval__rollback")
    from unified_ai.stages.rollback.jobs import rollback_run_config

    project = next(p for p in load_projects() if p.name == "mortgage_approval")
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    loops, rollbacks = [], []
    with dg.instance_for_test() as instance:
        loop.execute_in_process(instance=instance, run_config=quiet)  # warm-up: imports
        for _ in range(repeat):
            start = time.perf_counter()
            assert loop.execute_in_process(instance=instance, run_config=quiet).success
            loops.append(time.perf_counter() - start)
            config = {**rollback_run_config(project, reason="bench"), **quiet}
            start = time.perf_counter()
            assert rollback_job.execute_in_process(instance=instance, run_config=config).success
            rollbacks.append(time.perf_counter() - start)
    return statistics.median(loops), statistics.median(rollbacks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    project = next(p for p in load_projects() if p.name == "mortgage_approval")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (10, 1000):
            root = Path(tmp) / f"store{count}"
            registry = MlflowRegistry(
                tracking_uri=f"sqlite:///{Path(tmp) / f'mlflow{count}.db'}",
                artifact_root=str(Path(tmp) / f"artifacts{count}"),
            )
            versions = seeded_store(root, project, registry, count)
            results[count] = time_rollbacks(root, project, registry, versions, args.repeat)
        loop_time, rollback_run = retrain_and_deploy_seconds(Path(tmp) / "loop", args.repeat)

    print("| stored deployments | rollback to a version (s) | rollback to the previous (s) |")
    print("|---|---|---|")
    for count, row in results.items():
        print(f"| {count:,} | {row['explicit']:.4f} | {row['default']:.4f} |")
    ratio = results[1000]["explicit"] / results[10]["explicit"]
    ratio_default = results[1000]["default"] / results[10]["default"]
    share = results[1000]["explicit"] / loop_time
    print(
        f"\n1,000 vs 10 versions: {ratio:.2f}x by version, {ratio_default:.2f}x to previous "
        f"(target <= 1.2x: {'met' if max(ratio, ratio_default) <= 1.2 else 'MISSED'})"
    )
    print(
        f"retrain + deploy of mortgage_approval: {loop_time:.2f} s; rollback's own work "
        f"{results[1000]['explicit'] * 1000:.1f} ms = {share:.1%} of it "
        f"(target <= 2 %: {'met' if share <= 0.02 else 'MISSED'})"
    )
    print(
        f"the whole rollback run (Dagster run + incident record): {rollback_run:.2f} s = "
        f"{rollback_run / loop_time:.1%} of a retrain + deploy"
    )


if __name__ == "__main__":
    main()
