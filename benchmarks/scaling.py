"""Code-location load time and sensor ticks with the bundled projects, and with 10 and 50.

Load is measured in a fresh interpreter (import `unified_ai.definitions`, build the
definitions, resolve the asset graph), beside `import dagster` alone in a fresh interpreter.
With every bundled project (one per task: `unified_ai/defs/*/defs.yaml`) the load must take at
most 1.6x `import dagster`; with more projects it should grow sub-linearly. A tick is every
sensor of every project evaluated once, as the daemon does each interval; Dagster gives one
sensor 60 s.

The bundled projects are always loaded; the others are small synthetic project files in
UNIFIED_AI_PROJECTS.

    python -m benchmarks --only scaling [--quick]
"""

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.harness import REPO, Row, Stats, clean_env

PROJECT = """\
name: {name}
description: Synthetic project for the scaling benchmark.
data:
  source: rows.csv
target: label
features:
  numeric: [x1, x2]
  categorical: [colour]
segments: [region]
columns:
  colour: {{categories: [red, green, blue]}}
estimator:
  class: LogisticRegression
  params: {{max_iter: 200}}
split: {{holdout_fraction: 0.3, seed: 3}}
evaluation: {{bootstrap_samples: 50}}
policy:
  quality_floor: {{roc_auc: 0.6}}
"""

LOAD = textwrap.dedent(
    """\
    import time
    start = time.perf_counter()
    import unified_ai.definitions as module
    module.defs().resolve_asset_graph().get_all_asset_keys()
    print(time.perf_counter() - start)
    """
)
IMPORT_DAGSTER = "import time\nstart = time.perf_counter()\nimport dagster\n"
IMPORT_DAGSTER += "print(time.perf_counter() - start)\n"
#: The bundled projects' load may take at most this many times `import dagster`.
BUNDLED_LOAD_TARGET = 1.6


def bundled_projects() -> list[str]:
    """The projects the package ships (each a `defs.yaml` folder), by name."""
    return sorted(p.parent.name for p in (REPO / "unified_ai" / "defs").glob("*/defs.yaml"))


def write_projects(folder: Path, count: int) -> None:
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows),
            "colour": rng.choice(["red", "green", "blue"], size=rows),
            "region": rng.choice(["north", "south"], size=rows),
            "label": rng.integers(0, 2, rows),
        }
    )
    frame.to_csv(folder / "rows.csv", index=False)
    for index in range(count):
        (folder / f"p{index:03d}.yaml").write_text(PROJECT.format(name=f"p{index:03d}"))


def fresh(code: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        raise RuntimeError(f"loading the code location failed: {lines[-1]}")
    return float(out.stdout.strip().splitlines()[-1])


def tick_all(folder: Path | None, home: Path) -> tuple[float, float, int]:
    """(seconds for every sensor once, slowest single sensor, number of sensors ticked)."""
    import dagster as dg

    from unified_ai.definitions import build_definitions
    from unified_ai.project_tree import load_projects
    from unified_ai.runtime import load_settings

    settings = load_settings({"UNIFIED_AI_HOME": str(home)})
    defs = build_definitions(settings, load_projects(str(folder) if folder else None))
    # Run-status sensors are evaluated by the daemon against run events, not on a tick.
    sensors = [s for s in defs.sensors or [] if not isinstance(s, dg.RunStatusSensorDefinition)]
    slowest = 0.0
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        for sensor in sensors:
            with dg.build_sensor_context(
                instance=instance,
                definitions=defs,
                resources=defs.resources,
                sensor_name=sensor.name,
            ) as context:
                began = time.perf_counter()
                sensor(context)
                slowest = max(slowest, time.perf_counter() - began)
        total = time.perf_counter() - start
    return total, slowest, len(sensors)


def run(quick: bool, shared: Path) -> list[Row]:
    bundled = bundled_projects()
    first = len(bundled)
    ten, fifty = max(10, first + 1), max(50, first + 2)
    counts = (first, ten) if quick else (first, ten, fifty)
    reps = 1 if quick else 2
    rows = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        base = Stats([fresh(IMPORT_DAGSTER, clean_env()) for _ in range(reps)])
        loads, ticks = {}, {}
        for count in counts:
            folder = Path(tmp) / f"projects{count}" if count > first else None
            if folder is not None:
                write_projects(folder, count - first)
            home = Path(tmp) / f"home{count}"
            env = clean_env(UNIFIED_AI_HOME=str(home))
            if folder is not None:
                env["UNIFIED_AI_PROJECTS"] = str(folder)
            loads[count] = Stats([fresh(LOAD, env) for _ in range(reps)])
            ticks[count] = [tick_all(folder, home) for _ in range(reps)]
    rows.append(
        Row(
            "scaling",
            f"code-location load with all {first} bundled projects ({', '.join(bundled)})",
            loads[first],
            base,
            "`import dagster` in a fresh interpreter",
            target=BUNDLED_LOAD_TARGET,
        )
    )
    for count in counts[1:]:
        rows.append(
            Row(
                "scaling",
                f"code-location load with {count} project(s)",
                loads[count],
                base,
                "`import dagster` in a fresh interpreter",
            )
        )
    for count in counts[1:]:
        rows.append(
            Row(
                "scaling",
                f"code-location load, {count} projects vs the {first} bundled",
                loads[count],
                loads[first],
                f"the {first} bundled projects alone",
                target=round(count / first, 2),
                note="sub-linear: ratio below the ratio of project counts",
            )
        )
    for count in counts:
        total = Stats([t for t, _, _ in ticks[count]])
        slowest = max(s for _, s, _ in ticks[count])
        sensors = ticks[count][0][2]
        rows.append(
            Row(
                "scaling",
                f"every sensor ticked once, {count} project(s) ({sensors} sensors; run-status "
                "sensors react to runs, not ticks)",
                total,
                limit=60.0 if count == counts[-1] else None,
                note=f"slowest single sensor {slowest:.2f} s (Dagster's limit: 60 s)",
            )
        )
    return rows
