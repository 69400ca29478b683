"""Store + load of a 1M-row frame through the lineage IO manager vs raw Parquet, same run.

Target: the IO manager reaches at least 0.8x the raw `to_parquet`/`read_parquet` throughput
(it adds content hashing, checksums on load, a manifest, fsync and an atomic rename).

    python -m benchmarks --only io_throughput [--quick]
"""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from benchmarks.harness import Row, repeat
from unified_ai.resources.io_manager import LineageIOManager
from unified_ai.resources.storage import LineageStorage


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["segment"] = rng.choice(["a", "b", "c", "d"], size=rows)
    frame["label"] = rng.integers(0, 2, rows)
    return frame


def run(quick: bool, shared: Path) -> list[Row]:
    rows = 50_000 if quick else 1_000_000
    reps = 2 if quick else 3
    frame = make_frame(rows)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        raw_path = Path(tmp) / "raw.parquet"
        raw_values = iter([frame.assign(run=i) for i in range(reps)])

        def raw() -> None:
            next(raw_values).to_parquet(raw_path, index=False)
            pd.read_parquet(raw_path)

        manager = LineageIOManager(storage=LineageStorage(root=str(Path(tmp) / "store")))
        key = dg.AssetKey(["bench", "frame"])
        # A different value each time (made before timing) so every store is a new version.
        values = iter([frame.assign(run=i) for i in range(reps)])
        # Contexts are built before timing: building one starts an ephemeral instance.
        contexts = iter(
            [
                (dg.build_output_context(asset_key=key), dg.build_input_context(asset_key=key))
                for _ in range(reps)
            ]
        )

        def through_manager() -> None:
            output_context, input_context = next(contexts)
            manager.handle_output(output_context, next(values))
            manager.load_input(input_context)

        raw_time = repeat(reps, raw)
        manager_time = repeat(reps, through_manager)
    megabytes = frame.memory_usage(deep=True).sum() / 1e6
    return [
        Row(
            "io_throughput",
            f"store + load of {rows:,} rows ({megabytes:.0f} MB) through the lineage IO manager",
            manager_time,
            raw_time,
            "raw to_parquet + read_parquet",
            target=1.25,
            note="time ratio <= 1.25x = throughput >= 0.8x raw",
        )
    ]
