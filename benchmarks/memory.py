"""Peak memory (RSS) and wall time of a `score_batch` run and a training loop on many rows.

Each case runs in a fresh process (`python -m benchmarks.memory CASE ...`) that reports its own
peak RSS (its high-water mark), so nothing measured before counts; the baseline is a process
that only loads the code location. Full mode: 1M rows; quick mode: 3,000.

The batch's steps in chunks (`unified_ai.stages.monitoring.chunked_scoring`: read, validate and
store the file, score it and store the predictions, its drift statistics and Evidently sample)
are measured at 1M and 5M rows (quick: 3,000 and 15,000), beside the same steps on the whole
frame in one process: peak RSS flat in the batch size (5M / 1M <= 1.2, 1M <= 600 MB).

    python -m benchmarks --only memory [--quick]
"""

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import DEFAULT_PROJECT, QUIET, REPO, Row, Stats, clean_env

SYNTHETIC = """\
name: wide
description: Synthetic project for the memory benchmark.
data:
  source: rows.parquet
target: label
features:
  numeric: [x1, x2, x3, x4, x5, x6, x7, x8]
  categorical: [colour]
segments: [region]
columns:
  colour: {categories: [red, green, blue]}
estimator:
  class: LogisticRegression
  params: {max_iter: 200}
split: {holdout_fraction: 0.3, seed: 3}
evaluation: {bootstrap_samples: 50}
policy:
  quality_floor: {roc_auc: 0.6}
"""


def write_synthetic(folder: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(1, 9)})
    frame["colour"] = rng.choice(["red", "green", "blue"], size=rows)
    frame["region"] = rng.choice(["north", "south"], size=rows)
    logit = 1.5 * frame["x1"] - frame["x2"] + np.where(frame["colour"] == "red", 0.8, 0.0)
    frame["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.to_parquet(folder / "rows.parquet", index=False)
    (folder / "wide.yaml").write_text(SYNTHETIC)


def case_main(case: str, root: Path, extra: str) -> dict:
    """Runs in the measured process: one case, then its wall time and peak RSS."""
    import dagster as dg

    from unified_ai.cli.launch import step_failure_messages
    from unified_ai.definitions import build_definitions
    from unified_ai.names import ACTOR_TAG, batches_partitions, score_batch_job, training_loop_job
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings

    folder = str(root / "projects") if case == "training" else None
    settings = load_settings({"UNIFIED_AI_HOME": str(root / "home")})
    defs = build_definitions(settings, load_projects(folder))
    start = time.perf_counter()
    result = None
    if case == "score":
        job = defs.resolve_job_def(score_batch_job(DEFAULT_PROJECT))
        with dg.DagsterInstance.from_config(str(root / "dagster_home")) as instance:
            instance.add_dynamic_partitions(batches_partitions(DEFAULT_PROJECT), [extra])
            result = job.execute_in_process(
                instance=instance,
                partition_key=extra,
                tags={ACTOR_TAG: "benchmark"},
                run_config=QUIET,
                raise_on_error=False,
            )
    elif case == "training":
        job = defs.resolve_job_def(training_loop_job("wide"))
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(
                instance=instance, run_config=QUIET, raise_on_error=False
            )
    elif case in {"chunked", "whole"}:
        steps(case == "chunked", root, extra)
    if result is not None and not result.success:
        raise RuntimeError(f"{case} run failed: {step_failure_messages(result)}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: its memory's high-water mark (`VmHWM`).

    Not `getrusage`'s `ru_maxrss`: Linux carries that across `exec`, so a measured process
    would report the benchmark process's size when it was started, if that was larger.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    # Not Linux: the closest the platform gives (it may include the parent's size).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def steps(chunked: bool, root: Path, batch: str) -> None:
    """The batch's steps (store, score, drift) in process, in chunks or on the whole frame."""
    from unified_ai.io.formats import serialize
    from unified_ai.io.reader import StoreReader
    from unified_ai.io.store import LineageStore
    from unified_ai.ml.batch_scoring import primary_score, scored_frame
    from unified_ai.ml.csv_reader import read_csv_checked
    from unified_ai.ml.data import FeatureColumns, resolve_features
    from unified_ai.ml.drift import PREDICTION_REFERENCE_ROWS, drift_scores
    from unified_ai.ml.training import predict
    from unified_ai.ml.validation import validate_batch
    from unified_ai.names import PREDICTIONS, PRODUCTION_BATCH, TRAIN_SPLIT
    from unified_ai.project_tree import load_projects
    from unified_ai.queries import deployed_model_of
    from unified_ai.stages.monitoring.chunked_scoring import (
        drift_of_stored_batch,
        score_stored_batch,
        store_batch_file,
    )

    project = next(p for p in load_projects() if p.name == DEFAULT_PROJECT)
    store = LineageStore(root / "home" / "store")
    deployment, manifest, model = deployed_model_of(StoreReader(store), project.name)
    split = [project.name, TRAIN_SPLIT]
    train = store.read_value(split, store.require_current(split))
    features = FeatureColumns(**model.card["features"])
    sample = train
    if len(train) > PREDICTION_REFERENCE_ROWS:
        sample = train.sample(PREDICTION_REFERENCE_ROWS, random_state=project.split.seed)
    reference = primary_score(model.task, predict(model, sample, features))
    drift_features = resolve_features(project, train)
    # The score case moved its file to processed/ (the inbox keeps it there).
    inbox = root / "home" / "inbox" / project.name
    source = next(p for p in (inbox / batch, inbox / "processed" / batch) if p.exists())
    if chunked:
        stored = store_batch_file(project, store, source, batch)
        score_stored_batch(
            project,
            store,
            batch,
            stored.manifest.version,
            model=model,
            deployment=deployment,
            model_version=manifest.model_version,
            reference=reference,
        )
        drift_of_stored_batch(
            project,
            store,
            batch,
            stored.manifest.version,
            train,
            drift_features.numeric,
            drift_features.categorical,
            sample_rows=project.monitoring.drift_report_rows,
        )
        return
    frame = read_csv_checked(source)
    validate_batch(project, frame)
    store.write_version([project.name, PRODUCTION_BATCH, batch], *serialize(frame))
    scored = scored_frame(
        frame,
        predict(model, frame, features),
        segments=project.segments,
        threshold=project.evaluation.threshold,
        deployment=deployment,
        model_version=manifest.model_version,
        task=model.task,
        classes=model.classes,
    )
    store.write_version([project.name, PREDICTIONS, batch], *serialize(scored))
    drift_scores(
        train,
        frame,
        drift_features.numeric,
        drift_features.categorical,
        project.policy.triggers.drift.psi_threshold,
    )


def measure(case: str, root: Path, extra: str = "") -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", case, str(root), extra]
    out = subprocess.run(
        command, cwd=REPO, env=clean_env(), capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        raise RuntimeError(f"memory case {case} failed: {lines[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool, shared: Path) -> list[Row]:
    from benchmarks.batch_latency import write_batch
    from unified_ai.project_tree import load_projects

    # Quick: both sizes below `artifacts.COMPILED_MAX_ROWS` (neither imports sklearn).
    rows = 3_000 if quick else 1_000_000
    project = next(p for p in load_projects() if p.name == DEFAULT_PROJECT)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "deployed"
        shutil.copytree(shared / "deployed", root)
        idle = measure("idle", root)
        batch = write_batch(root / "home", project, rows, seed=7)
        score = measure("score", root, batch)
        # The whole-frame steps at 5M rows would hold several GB: measured at the small size.
        steps = {("whole", rows): measure("whole", root, batch)}
        steps["chunked", rows] = measure("chunked", root, batch)
        big = write_batch(root / "home", project, 5 * rows, seed=8)
        steps["chunked", 5 * rows] = measure("chunked", root, big)
        training_root = Path(tmp) / "training"
        write_synthetic(training_root / "projects", rows)
        training = measure("training", training_root)
    baseline = Stats([idle["peak_mb"]], unit="MB")
    label = "a process that only loads the code location"
    found = [
        Row(
            "memory",
            f"peak RSS, {rows:,}-row score_batch run ({DEFAULT_PROJECT}), in process",
            Stats([score["peak_mb"]], unit="MB"),
            baseline,
            label,
            note=f"the run took {score['seconds']:.1f} s",
        ),
    ]
    whole, chunked = steps["whole", rows], steps["chunked", rows]
    found.append(
        Row(
            "memory",
            f"peak RSS, {rows:,}-row batch steps in chunks (read + validate + store, score + "
            "store, drift + page sample), in process",
            Stats([chunked["peak_mb"]], unit="MB"),
            Stats([whole["peak_mb"]], unit="MB"),
            "the same steps on the whole frame",
            note=f"in chunks {chunked['seconds']:.1f} s, whole {whole['seconds']:.1f} s",
            limit=None if quick else 600.0,
        )
    )
    found.append(
        Row(
            "memory",
            f"peak RSS of the batch steps in chunks, {5 * rows:,} rows vs {rows:,}",
            Stats([steps["chunked", 5 * rows]["peak_mb"]], unit="MB"),
            Stats([chunked["peak_mb"]], unit="MB"),
            f"the same at {rows:,} rows",
            note=f"{5 * rows:,} rows in chunks took {steps['chunked', 5 * rows]['seconds']:.1f} s",
            target=None if quick else 1.2,
        )
    )
    found.append(
        Row(
            "memory",
            f"peak RSS, training loop on {rows:,} rows (8 numeric + 1 categorical, "
            "LogisticRegression), in process",
            Stats([training["peak_mb"]], unit="MB"),
            baseline,
            label,
            note=f"the loop took {training['seconds']:.1f} s",
        )
    )
    return found


if __name__ == "__main__":
    print(
        json.dumps(
            case_main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "")
        )
    )
