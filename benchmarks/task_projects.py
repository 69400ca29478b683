"""Small synthetic regression and multiclass projects the benchmarks write, train and deploy.

The same shape as the binary synthetic project of `benchmarks/scaling.py` (numeric x1 and x2,
categorical colour, segment region), with a price (regression) or one of five queues
(multiclass) learnable from the inputs. The first model of each is deployed by its training
loop (approval mode `never`: the gates alone decide).
"""

from pathlib import Path

#: Project name → its task, in the order the benchmarks report them.
TASK_PROJECTS = {"bench_prices": "regression", "bench_queues": "multiclass_classification"}
#: The multiclass project's classes, in declared order.
CLASSES = ["billing", "tech", "sales", "returns", "other"]

REGRESSION = """\
name: bench_prices
description: Synthetic regression project for the benchmarks.
task: regression
data:
  source: bench_prices.csv
target: price
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {categories: [red, green, blue]}
estimator:
  class: Ridge
split: {holdout_fraction: 0.3, seed: 3}
evaluation: {bootstrap_samples: 50}
policy:
  quality_floor: {rmse: 12.0}
  beats_champion: {metric: rmse, tolerance: 0.5}
  fairness: {metric: mae, max_gap: 5.0, min_segment_size: 20}
"""

MULTICLASS = """\
name: bench_queues
description: Synthetic multiclass project for the benchmarks.
task: multiclass_classification
data:
  source: bench_queues.csv
target: queue
classes: [billing, tech, sales, returns, other]
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {categories: [red, green, blue]}
estimator:
  class: LogisticRegression
  params: {max_iter: 300}
split: {holdout_fraction: 0.3, seed: 3}
evaluation: {bootstrap_samples: 50}
policy:
  quality_floor: {macro_f1: 0.4}
  beats_champion: {metric: macro_f1, tolerance: 0.02}
  fairness: {metric: macro_recall, max_gap: 0.3, min_segment_size: 20}
"""


def write_task_projects(folder: Path, rows: int = 2000, seed: int = 0) -> list[str]:
    """Write both projects and their CSVs into `folder`; their names."""
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "region": rng.choice(["north", "south"], size=rows),
        }
    )
    red = np.where(frame["colour"] == "red", 1.0, 0.0)
    prices = frame.assign(
        price=np.round(
            50 + 12 * frame["x1"] - 6 * frame["x2"] + 8 * red + rng.normal(0, 4, rows), 2
        )
    )
    prices.to_csv(folder / "bench_prices.csv", index=False)
    logits = np.stack(
        [2 * frame["x1"], -2 * frame["x1"], 2 * frame["x2"], -2 * frame["x2"], 3 * red - 1], axis=1
    ) + rng.gumbel(size=(rows, len(CLASSES)))
    queues = frame.assign(queue=np.asarray(CLASSES)[np.argmax(logits, axis=1)])
    queues.to_csv(folder / "bench_queues.csv", index=False)
    (folder / "bench_prices.yaml").write_text(REGRESSION)
    (folder / "bench_queues.yaml").write_text(MULTICLASS)
    return list(TASK_PROJECTS)


def train_and_deploy(folder: Path, home: Path, instance) -> dict[str, float]:
    """Run each task project's training loop in this process (policy deploys the first model).

    Returns:
        Seconds of each project's loop, by name.
    """
    import time

    from benchmarks.harness import QUIET
    from unified_ai.cli.launch import step_failure_messages
    from unified_ai.definitions import build_definitions
    from unified_ai.io.store import LineageStore
    from unified_ai.names import DEPLOYED_MODEL, training_loop_job
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings

    settings = load_settings({"UNIFIED_AI_HOME": str(home)})
    defs = build_definitions(settings, load_projects(str(folder)))
    seconds = {}
    for name in TASK_PROJECTS:
        start = time.perf_counter()
        result = defs.resolve_job_def(training_loop_job(name)).execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False
        )
        seconds[name] = time.perf_counter() - start
        if not result.success:
            raise RuntimeError(f"{name} training loop failed: {step_failure_messages(result)}")
        # Raises when the loop deployed nothing: scoring needs a deployed model.
        LineageStore(home / "store").require_current([name, DEPLOYED_MODEL])
    return seconds
