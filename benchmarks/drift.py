"""Drift check on a large batch vs a plain numpy/scipy per-column KS + PSI floor, same run.

Target: `unified_ai.ml.drift.drift_scores` takes at most 2x the floor (Evidently's default
preset takes ~15x on this size; the product renders Evidently's page from a sample instead).

    python -m benchmarks --only drift [--quick]
"""

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from benchmarks.harness import Row, repeat
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


def run(quick: bool, shared: Path) -> list[Row]:
    rows, columns = (50_000, 20) if quick else (1_000_000, 20)
    reps = 2 if quick else 3
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(columns)]
    reference = pd.DataFrame(rng.normal(size=(rows, columns)), columns=names)
    current = pd.DataFrame(rng.normal(0.1, 1.1, size=(rows, columns)), columns=names)
    floor_time = repeat(reps, lambda: floor(reference, current))
    ours = repeat(reps, lambda: drift_scores(reference, current, names, [], psi_threshold=0.2))
    return [
        Row(
            "drift",
            f"drift_scores, {rows:,} rows x {columns} columns",
            ours,
            floor_time,
            "numpy/scipy per-column KS + decile PSI",
            target=2.0,
        )
    ]
