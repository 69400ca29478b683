"""Drift check on a large batch vs a plain numpy/scipy per-column KS + PSI floor, same run.

Target: `unified_ai.ml.drift.drift_scores` takes at most 2x the floor (Evidently's default
preset takes ~15x on this size; the product renders Evidently's page from a sample instead).

    python benchmarks/drift.py [--rows 1000000] [--columns 20]
"""

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from unified_ai.ml.drift import drift_scores


def floor(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """The least work a per-column KS + decile PSI can do."""
    out = {}
    for column in reference.columns:
        ref = reference[column].to_numpy()
        cur = current[column].to_numpy()
        edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
        expected = np.bincount(np.searchsorted(edges, ref), minlength=10) / len(ref)
        actual = np.bincount(np.searchsorted(edges, cur), minlength=10) / len(cur)
        expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
        psi = float(np.sum((actual - expected) * np.log(actual / expected)))
        out[column] = (psi, ks_2samp(ref, cur, method="asymp").statistic)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(args.columns)]
    reference = pd.DataFrame(rng.normal(size=(args.rows, args.columns)), columns=names)
    current = pd.DataFrame(rng.normal(0.1, 1.1, size=(args.rows, args.columns)), columns=names)

    start = time.perf_counter()
    floor(reference, current)
    floor_time = time.perf_counter() - start
    start = time.perf_counter()
    result = drift_scores(reference, current, names, [], psi_threshold=0.2)
    ours = time.perf_counter() - start

    print(f"| drift check, {args.rows:,} rows x {args.columns} columns | seconds |")
    print("|---|---|")
    print(f"| numpy/scipy KS + PSI floor | {floor_time:.2f} |")
    print(f"| unified_ai drift_scores | {ours:.2f} |")
    ratio = ours / floor_time
    print(
        f"\nratio {ratio:.2f}x the floor (target <= 2x: {'met' if ratio <= 2 else 'MISSED'}); "
        f"drifted share {result['drifted_share']:.2f}"
    )


if __name__ == "__main__":
    main()
