"""Store + load of a 1M-row frame through the lineage IO manager vs raw Parquet, same run.

Target: the IO manager reaches at least 0.8x the raw `to_parquet`/`read_parquet` throughput
(it adds content hashing, checksums on load, a manifest, fsync and an atomic rename).

    python benchmarks/io_throughput.py [--rows 1000000] [--repeat 3]
"""

import argparse
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from unified_ai.io.manager import LineageIOManager
from unified_ai.resources.storage import LineageStorage


def make_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=rows) for i in range(8)})
    frame["segment"] = rng.choice(["a", "b", "c", "d"], size=rows)
    frame["label"] = rng.integers(0, 2, rows)
    return frame


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    frame = make_frame(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.parquet"

        raw_values = iter([frame.assign(run=i) for i in range(args.repeat)])

        def raw() -> None:
            next(raw_values).to_parquet(raw_path, index=False)
            pd.read_parquet(raw_path)

        manager = LineageIOManager(storage=LineageStorage(root=str(Path(tmp) / "store")))
        key = dg.AssetKey(["bench", "frame"])
        # A different value each time (made before timing) so every store is a new version.
        values = iter([frame.assign(run=i) for i in range(args.repeat)])
        # Contexts are built before timing: building one starts an ephemeral instance.
        contexts = iter(
            [
                (dg.build_output_context(asset_key=key), dg.build_input_context(asset_key=key))
                for _ in range(args.repeat)
            ]
        )

        def through_manager() -> None:
            output_context, input_context = next(contexts)
            manager.handle_output(output_context, next(values))
            manager.load_input(input_context)

        raw_time = best_of(args.repeat, raw)
        manager_time = best_of(args.repeat, through_manager)
    megabytes = frame.memory_usage(deep=True).sum() / 1e6
    ratio = raw_time / manager_time
    print(f"| path | seconds (store+load, best of {args.repeat}) | MB/s in memory |")
    print("|---|---|---|")
    print(f"| raw to_parquet/read_parquet | {raw_time:.3f} | {megabytes / raw_time:.0f} |")
    print(f"| lineage IO manager | {manager_time:.3f} | {megabytes / manager_time:.0f} |")
    verdict = "meets" if ratio >= 0.8 else "MISSES"
    print(
        f"\nIO manager throughput = {ratio:.2f}x raw ({verdict} the >= 0.8x target); "
        f"{args.rows:,} rows, {megabytes:.0f} MB in memory"
    )


if __name__ == "__main__":
    main()
