"""The recent window of `live_report`: the newest batches judged alone, beside the window."""

import numpy as np
import pandas as pd

from unified_ai.ml.live import live_report
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ROW_ID,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)


def batch(name: str, rows: int, *, live_right: bool, seed: int) -> tuple[str, pd.DataFrame]:
    """Rows scored by v2 (live) and v1 (shadow); the model that is right ranks the labels."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    good = np.clip(label * 0.6 + rng.random(rows) * 0.4, 0, 1)
    bad = 1 - good
    return name, pd.DataFrame(
        {
            ROW_ID: [f"{name}-{i}" for i in range(rows)],
            "label": label,
            "proba": good if live_right else bad,
            DEPLOYMENT_COLUMN: "v2",
            SHADOW_PREVIOUS_DEPLOYMENT: "v1",
            SHADOW_PREVIOUS_PROBA: bad if live_right else good,
        }
    )


def test_the_recent_window_sees_a_change_end_before_the_whole_window_does():
    batches = [batch(f"b{i}", 80, live_right=True, seed=i) for i in range(4)]
    batches += [batch(f"b{i}", 80, live_right=False, seed=i) for i in range(4, 6)]
    report = live_report(
        batches,
        "v2",
        metric="roc_auc",
        window=6,
        threshold=0.5,
        segments=[],
        min_segment_size=10,
        bootstrap_samples=50,
        confidence=0.95,
        gap_metric="true_positive_rate",
        shadow_deployment="v1",
        recent_paired=2,
        recent_current=2,
    )
    assert report["paired"]["rows"] == 480 and report["paired"]["difference"] > 0
    recent = report["recent_paired"]
    assert recent["batches"] == ["b4", "b5"] and recent["rows"] == 160
    assert recent["difference"] < -0.5 and recent["ci_high"] < 0
    own = report["recent_current"]
    assert own["batches"] == ["b4", "b5"] and own["labeled_rows"] == 160
    assert own["value"] < 0.2
    # Not asked for: not computed.
    plain = live_report(
        batches,
        "v2",
        metric="roc_auc",
        window=6,
        threshold=0.5,
        segments=[],
        min_segment_size=10,
        bootstrap_samples=10,
        confidence=0.95,
        gap_metric="true_positive_rate",
    )
    assert plain["recent_paired"] is None and plain["recent_current"] is None
