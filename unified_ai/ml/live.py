"""Live performance of deployments from labeled predictions. Pure numpy/pandas."""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.evaluation import classification_metrics, segments_and_gaps
from unified_ai.names import DEPLOYMENT_COLUMN

if TYPE_CHECKING:
    import pandas as pd


def metric_interval(
    y, proba, metric: str, threshold: float, samples: int, seed: int, confidence: float = 0.95
):
    """Bootstrap interval of one metric at `confidence`, or (None, None) if it has no value."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        value = classification_metrics(y[idx], proba[idx], threshold)[metric]
        if value is not None:
            values.append(value)
    if not values:
        return None, None
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def deployment_metrics(
    labeled: "pd.DataFrame",
    metric: str,
    threshold: float,
    segments: list[str],
    min_segment_size: int,
    *,
    samples: int,
    confidence: float,
    gap_metric: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of one deployment on its labeled rows, with an interval and per-segment view.

    The interval and the segment gaps use the project's evaluation settings, as the
    evaluation of the candidate did: `samples` bootstrap draws at `confidence`, and the
    policy's fairness metric (`gap_metric`).
    """
    y = labeled["label"].to_numpy()
    proba = labeled["proba"].to_numpy()
    if len(y) == 0:
        return {"labeled_rows": 0, "value": None, "ci_low": None, "ci_high": None}
    metrics = classification_metrics(y, proba, threshold)
    low, high = metric_interval(y, proba, metric, threshold, samples, seed, confidence)
    present = [c for c in segments if c in labeled.columns]
    return {
        "labeled_rows": len(y),
        "metrics": metrics,
        "value": metrics[metric],
        "ci_low": low,
        "ci_high": high,
        "segments": segments_and_gaps(
            y, proba, labeled[present], threshold, gap_metric, min_segment_size
        ),
    }


def live_report(
    batches: list[tuple[str, "pd.DataFrame"]],
    current_deployment: str,
    *,
    metric: str,
    window: int,
    threshold: float,
    segments: list[str],
    min_segment_size: int,
    bootstrap_samples: int,
    confidence: float,
    gap_metric: str,
) -> dict[str, Any]:
    """The current deployment over its last `window` labeled batches, and its predecessor.

    `batches` are (batch, labeled predictions) oldest first; each row says which deployment
    scored it. The predecessor is the deployment that scored the most recent rows before the
    current one, measured over its own last `window` batches.
    """
    import pandas as pd

    def last_batches(deployment: str) -> list[tuple[str, pd.DataFrame]]:
        own = [(b, f[f[DEPLOYMENT_COLUMN] == deployment]) for b, f in batches]
        return [(b, f) for b, f in own if len(f)][-window:]

    current = last_batches(current_deployment)
    previous_deployment = None
    for _, frame in reversed(batches):
        others = frame[frame[DEPLOYMENT_COLUMN] != current_deployment][DEPLOYMENT_COLUMN]
        if len(others):
            previous_deployment = str(others.iloc[-1])
            break

    def summary(chosen):
        rows = (
            pd.concat([f for _, f in chosen])
            if chosen
            else pd.DataFrame(columns=["label", "proba"])
        )
        result = deployment_metrics(
            rows,
            metric,
            threshold,
            segments,
            min_segment_size,
            samples=bootstrap_samples,
            confidence=confidence,
            gap_metric=gap_metric,
        )
        result["batches"] = [b for b, _ in chosen]
        return result

    report = {
        "metric": metric,
        "window_batches": window,
        "current": {"deployment": current_deployment, **summary(current)},
        "previous": None,
    }
    if previous_deployment is not None:
        report["previous"] = {
            "deployment": previous_deployment,
            **summary(last_batches(previous_deployment)),
        }
    return report
