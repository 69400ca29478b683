"""Live metrics use the project's evaluation settings: bootstrap samples, confidence, gap metric."""

import numpy as np
import pandas as pd

from unified_ai.ml.live import deployment_metrics, live_report
from unified_ai.names import DEPLOYMENT_COLUMN


def labeled(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)
    proba = np.clip(label * 0.3 + rng.random(rows) * 0.7, 0, 1)
    region = rng.choice(["north", "south"], rows)
    return pd.DataFrame({"label": label, "proba": proba, "region": region, DEPLOYMENT_COLUMN: "d1"})


def measure(frame, **settings):
    defaults = {"samples": 200, "confidence": 0.95, "gap_metric": "true_positive_rate"}
    return deployment_metrics(frame, "roc_auc", 0.5, ["region"], 20, **{**defaults, **settings})


def test_the_interval_follows_the_confidence_and_the_samples():
    frame = labeled()
    wide = measure(frame, confidence=0.99)
    narrow = measure(frame, confidence=0.5)
    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]
    few = measure(frame, samples=50)
    many = measure(frame, samples=2000)
    assert (few["ci_low"], few["ci_high"]) != (many["ci_low"], many["ci_high"])


def test_segments_use_the_policy_fairness_metric():
    result = measure(labeled(), gap_metric="positive_rate")
    assert result["segments"]["metric"] == "positive_rate"


def test_the_live_report_passes_the_settings_on():
    batches = [("b1", labeled(seed=1)), ("b2", labeled(seed=2))]
    common = {"metric": "roc_auc", "window": 5, "threshold": 0.5, "segments": ["region"]}
    report = live_report(
        batches,
        "d1",
        **common,
        min_segment_size=20,
        bootstrap_samples=100,
        confidence=0.5,
        gap_metric="positive_rate",
    )
    current = report["current"]
    assert current["segments"]["metric"] == "positive_rate"
    wider = live_report(
        batches,
        "d1",
        **common,
        min_segment_size=20,
        bootstrap_samples=100,
        confidence=0.99,
        gap_metric="positive_rate",
    )["current"]
    assert wider["ci_low"] < current["ci_low"] and current["ci_high"] < wider["ci_high"]
