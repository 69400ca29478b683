"""Live metrics use the project's evaluation settings: bootstrap samples, confidence, gap metric."""

import numpy as np
import pandas as pd

from unified_ai.ml.live import deployment_metrics, live_report, paired_difference
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)


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


def shadowed(rows: int = 400, seed: int = 0, live_noise: float = 0.7, shadow_noise: float = 0.7):
    """Labeled predictions of d2 with d1's shadow scores of the same rows (and candidate c3's)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, rows)

    def scores(noise):
        return np.clip(label * (1 - noise) + rng.random(rows) * noise, 0, 1)

    return pd.DataFrame(
        {
            "label": label,
            "proba": scores(live_noise),
            "region": rng.choice(["north", "south"], rows),
            DEPLOYMENT_COLUMN: "d2",
            SHADOW_PREVIOUS_DEPLOYMENT: "d1",
            SHADOW_PREVIOUS_PROBA: scores(shadow_noise),
            SHADOW_CANDIDATE_MODEL: "c3",
            SHADOW_CANDIDATE_PROBA: scores(0.2),
        }
    )


def paired(frame, **settings):
    return paired_difference(
        frame["label"].to_numpy(),
        frame["proba"].to_numpy(),
        frame[SHADOW_PREVIOUS_PROBA].to_numpy(),
        "roc_auc",
        0.5,
        **{"samples": 300, "confidence": 0.95, **settings},
    )


def test_the_paired_interval_is_reproducible_and_tells_a_worse_model():
    worse = shadowed(live_noise=0.95, shadow_noise=0.4)
    result = paired(worse)
    assert result == paired(worse)  # a fixed seed: a rerun decides the same
    assert result["rows"] == 400 and result["samples"] == 300
    assert result["difference"] == result["live"] - result["other"] < -0.2
    assert result["ci_low"] < result["difference"] < result["ci_high"] < 0
    # Two equally good models on the same rows: the interval straddles zero.
    same = paired(shadowed(live_noise=0.7, shadow_noise=0.7))
    assert same["ci_low"] < 0 < same["ci_high"]


def test_the_paired_interval_needs_both_classes():
    one_class = shadowed().assign(label=1)
    result = paired(one_class)
    assert result["live"] is None and result["difference"] is None
    assert result["ci_low"] is None and result["ci_high"] is None
    empty = paired(shadowed().iloc[:0])
    assert empty["rows"] == 0 and empty["difference"] is None


def test_the_live_report_compares_on_the_rows_both_models_scored():
    unshadowed = shadowed(seed=3).assign(
        **{SHADOW_PREVIOUS_DEPLOYMENT: None, SHADOW_PREVIOUS_PROBA: np.nan}
    )
    other_previous = shadowed(seed=4).assign(**{SHADOW_PREVIOUS_DEPLOYMENT: "d0"})
    batches = [
        ("b1", shadowed(seed=1, live_noise=0.95, shadow_noise=0.4)),
        ("b2", unshadowed),
        ("b3", other_previous),
    ]
    report = live_report(
        batches,
        "d2",
        metric="roc_auc",
        window=5,
        threshold=0.5,
        segments=["region"],
        min_segment_size=20,
        bootstrap_samples=100,
        confidence=0.95,
        gap_metric="true_positive_rate",
        shadow_deployment="d1",
        shadow_candidate="c3",
    )
    assert report["current"]["labeled_rows"] == 1200
    pair = report["paired"]
    # Only b1's rows were scored by d1 in the shadow: rows without a shadow or scored by
    # another deployment are not part of the comparison.
    assert pair["deployment"] == "d1" and pair["rows"] == 400 and pair["batches"] == ["b1"]
    assert pair["difference"] == pair["live"] - pair["previous"] and pair["ci_high"] < 0
    candidate = report["candidate"]
    assert candidate["model_version"] == "c3" and candidate["rows"] == 1200
    assert candidate["difference"] == candidate["candidate"] - candidate["champion"] > 0
    assert candidate["ci_low"] > 0
    none_asked = live_report(
        batches,
        "d2",
        metric="roc_auc",
        window=5,
        threshold=0.5,
        segments=["region"],
        min_segment_size=20,
        bootstrap_samples=100,
        confidence=0.95,
        gap_metric="true_positive_rate",
    )
    assert none_asked["paired"] is None and none_asked["candidate"] is None


def test_a_stored_ground_truth_with_repeated_labels_counts_each_row_once():
    """Ground truth stored before the one-label rule: repeats and conflicts cannot weigh."""
    from unified_ai.ml.live import rows_once
    from unified_ai.names import ROW_ID

    clean = labeled(rows=200, seed=3).assign(**{ROW_ID: [f"b:{i}" for i in range(200)]})
    wrong = clean.assign(error=(clean["label"] - clean["proba"]).abs()).nlargest(10, "error")
    repeated = pd.concat([wrong.drop(columns="error")] * 20)
    flipped = clean.iloc[:15].assign(label=lambda f: 1 - f["label"])
    stored = pd.concat([clean, repeated, flipped], ignore_index=True)

    once = rows_once(stored)
    assert len(once) == 185 and once[ROW_ID].is_unique
    assert not set(once[ROW_ID]) & set(flipped[ROW_ID])
    settings = {"metric": "roc_auc", "window": 5, "threshold": 0.5, "segments": ["region"]}
    common = {**settings, "min_segment_size": 20, "bootstrap_samples": 20, "confidence": 0.9}
    report = live_report([("b", stored)], "d1", **common, gap_metric="positive_rate")
    expected = live_report([("b", clean.iloc[15:])], "d1", **common, gap_metric="positive_rate")
    assert report["current"]["labeled_rows"] == 185
    assert report["current"]["value"] == expected["current"]["value"]
    assert rows_once(clean) is clean  # nothing to do: the frame is passed through


def test_one_label_per_row_counts_duplicates_once_and_quarantines_conflicts():
    from unified_ai.ml.validation import one_label_per_row

    labels = pd.DataFrame(
        {"id": ["a", "a", "a", "b", "c", "c", "d"], "label": [1, 1, 1, 0, 1, 0, 0]}
    )
    once = one_label_per_row(labels, "id", "label")
    assert once.labels.to_dict("list") == {"id": ["a", "b", "d"], "label": [1, 0, 0]}
    assert (once.rows, once.duplicate_rows) == (7, 2)
    assert (once.conflicting_ids, once.conflicting_rows) == (["c"], 2)
    assert once.describe() == [
        "2 exact duplicate label rows counted once",
        "1 row ids with conflicting labels quarantined (2 label rows; e.g. ['c'])",
    ]
    assert one_label_per_row(labels.iloc[[3, 6]], "id", "label").describe() == []
