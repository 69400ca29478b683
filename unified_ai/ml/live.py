"""Live performance of deployments from labeled predictions. Pure numpy/pandas.

Besides each deployment's own rows, models are compared on the same labeled rows: every batch
is also scored in the shadow by the deployment a rollback would restore and by a candidate
waiting for approval, and the difference gets a paired bootstrap interval (the same resampled
rows for both models, a fixed seed, so a rerun gives the same numbers).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.ml.evaluation import classification_metrics, segments_and_gaps
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ROW_ID,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)

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


def paired_difference(
    y,
    live,
    other,
    metric: str,
    threshold: float,
    *,
    samples: int,
    confidence: float,
    seed: int = 0,
) -> dict[str, Any]:
    """`metric` of two models' scores of the same labeled rows, and the interval of live - other.

    Rows are resampled in pairs: each bootstrap draw scores both models on the same rows, so
    what changed in the world cancels out and what is left is the difference between the
    models. Draws where the metric has no value (one class only, for ROC AUC) are left out.

    Returns:
        `rows`, `live`, `other`, `difference` (live - other) and its `ci_low`/`ci_high`
        (None when not measurable), and how many draws the interval rests on.
    """
    import numpy as np

    y = np.asarray(y)
    live = np.asarray(live, dtype=float)
    other = np.asarray(other, dtype=float)
    result: dict[str, Any] = {
        "rows": len(y),
        "live": None,
        "other": None,
        "difference": None,
        "ci_low": None,
        "ci_high": None,
        "samples": 0,
        "confidence": confidence,
    }
    if len(y) == 0:
        return result
    live_value = classification_metrics(y, live, threshold)[metric]
    other_value = classification_metrics(y, other, threshold)[metric]
    result.update(live=live_value, other=other_value)
    if live_value is None or other_value is None:
        return result
    result["difference"] = live_value - other_value
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        a = classification_metrics(y[idx], live[idx], threshold)[metric]
        b = classification_metrics(y[idx], other[idx], threshold)[metric]
        if a is not None and b is not None:
            differences.append(a - b)
    if differences:
        tail = (1 - confidence) / 2
        result.update(
            ci_low=float(np.quantile(differences, tail)),
            ci_high=float(np.quantile(differences, 1 - tail)),
            samples=len(differences),
        )
    return result


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


def rows_once(labeled: "pd.DataFrame") -> "pd.DataFrame":
    """Each scored row of a batch once, with one label, however its labels arrived.

    `ground_truth` stores one label per row id; a version stored before that rule held every
    label row joined to its prediction, so a row labeled five times weighed five times and a
    row labeled both ways counted twice. The same rule is applied here (exact repeats once,
    conflicting labels left out), so the join can never multiply rows in live metrics.
    """
    from unified_ai.ml.validation import one_label_per_row

    if ROW_ID not in labeled.columns or "label" not in labeled.columns:
        return labeled
    if not labeled[ROW_ID].duplicated().any():
        return labeled
    return one_label_per_row(labeled, ROW_ID, "label").labels


@dataclass(frozen=True)
class _Settings:
    """How a live report measures: the metric, its threshold and the evaluation's settings."""

    metric: str
    threshold: float
    segments: list[str]
    min_segment_size: int
    bootstrap_samples: int
    confidence: float
    gap_metric: str


_Batches = list[tuple[str, "pd.DataFrame"]]


def _last_batches(batches: _Batches, deployment: str, window: int) -> _Batches:
    """The rows `deployment` scored, in its last `window` batches that hold any."""
    own = [(b, f[f[DEPLOYMENT_COLUMN] == deployment]) for b, f in batches]
    return [(b, f) for b, f in own if len(f)][-window:]


def _previous_deployment(batches: _Batches, current_deployment: str) -> str | None:
    """The deployment that scored the most recent rows before the current one, if any."""
    for _, frame in reversed(batches):
        others = frame[frame[DEPLOYMENT_COLUMN] != current_deployment][DEPLOYMENT_COLUMN]
        if len(others):
            return str(others.iloc[-1])
    return None


def _summary(chosen: _Batches, settings: _Settings) -> dict[str, Any]:
    """`deployment_metrics` over the rows of the chosen batches, naming the batches."""
    import pandas as pd

    rows = pd.concat([f for _, f in chosen]) if chosen else pd.DataFrame(columns=["label", "proba"])
    result = deployment_metrics(
        rows,
        settings.metric,
        settings.threshold,
        settings.segments,
        settings.min_segment_size,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
        gap_metric=settings.gap_metric,
    )
    result["batches"] = [b for b, _ in chosen]
    return result


def _paired(
    window_batches: _Batches,
    shadow: str,
    owner_column: str,
    owner: str,
    settings: _Settings,
    *,
    shadow_first: bool,
    seed: int,
) -> dict[str, Any]:
    """The current deployment's rows of the window that `owner` scored in the shadow."""
    import pandas as pd

    chosen = [
        (b, f[f[owner_column] == owner].dropna(subset=[shadow]))
        for b, f in window_batches
        if owner_column in f.columns and shadow in f.columns
    ]
    chosen = [(b, f) for b, f in chosen if len(f)]
    rows = (
        pd.concat([f for _, f in chosen])
        if chosen
        else pd.DataFrame(columns=["label", "proba", shadow])
    )
    first, second = (shadow, "proba") if shadow_first else ("proba", shadow)
    comparison = paired_difference(
        rows["label"].to_numpy(),
        rows[first].to_numpy(),
        rows[second].to_numpy(),
        settings.metric,
        settings.threshold,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
        seed=seed,
    )
    return {**comparison, "batches": [b for b, _ in chosen]}


def _against_previous(
    window_batches: _Batches, shadow_deployment: str, settings: _Settings, *, seed: int
) -> dict[str, Any]:
    """The current deployment against the one a rollback would restore, on the same rows."""
    found = _paired(
        window_batches,
        SHADOW_PREVIOUS_PROBA,
        SHADOW_PREVIOUS_DEPLOYMENT,
        shadow_deployment,
        settings,
        shadow_first=False,
        seed=seed,
    )
    # difference = live - previous: below zero, the live model does worse on these rows.
    return {"deployment": shadow_deployment, "previous": found.pop("other"), **found}


def _recent_current(current: _Batches, recent_current: int, settings: _Settings) -> dict[str, Any]:
    """The current deployment's own metric over its last `recent_current` batches."""
    import pandas as pd

    chosen = current[-recent_current:]
    rows = pd.concat([f for _, f in chosen]) if chosen else None
    value = None
    if rows is not None and len(rows):
        value = classification_metrics(
            rows["label"].to_numpy(), rows["proba"].to_numpy(), settings.threshold
        )[settings.metric]
    return {
        "window_batches": recent_current,
        "labeled_rows": 0 if rows is None else len(rows),
        "value": value,
        "batches": [b for b, _ in chosen],
    }


def _candidate(current: _Batches, shadow_candidate: str, settings: _Settings) -> dict[str, Any]:
    """A model version waiting for approval against the current deployment, on the same rows."""
    found = _paired(
        current,
        SHADOW_CANDIDATE_PROBA,
        SHADOW_CANDIDATE_MODEL,
        shadow_candidate,
        settings,
        shadow_first=True,
        seed=2,
    )
    # Oriented as the approver reads it: difference = candidate - champion.
    return {
        "model_version": shadow_candidate,
        "candidate": found.pop("live"),
        "champion": found.pop("other"),
        **found,
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
    shadow_deployment: str | None = None,
    shadow_candidate: str | None = None,
    recent_paired: int | None = None,
    recent_current: int | None = None,
) -> dict[str, Any]:
    """The current deployment over its last `window` labeled batches, and its predecessor.

    `batches` are (batch, labeled predictions) oldest first; each row says which deployment
    scored it, and counts once (`rows_once`). The predecessor is the deployment that scored
    the most recent rows before the current one, measured over its own last `window` batches
    (other rows: context only).

    `paired` compares the current deployment with `shadow_deployment` (the deployment a
    rollback would restore) on the rows of that window both scored; `candidate` compares
    `shadow_candidate` (a model version waiting for approval) with the current deployment on
    the rows of that window it scored in the shadow. Each is None when not asked for.

    `recent` judges the newest evidence alone: the paired comparison over the current
    deployment's last `recent_paired` batches, and its own metric over its last
    `recent_current` batches (no interval: the floor reads the value). A change that ends
    shows there first, long before it outweighs the older batches of the whole window.
    """
    settings = _Settings(
        metric, threshold, segments, min_segment_size, bootstrap_samples, confidence, gap_metric
    )
    batches = [(batch, rows_once(frame)) for batch, frame in batches]
    current = _last_batches(batches, current_deployment, window)
    previous_deployment = _previous_deployment(batches, current_deployment)
    report: dict[str, Any] = {
        "metric": metric,
        "window_batches": window,
        "current": {"deployment": current_deployment, **_summary(current, settings)},
        "previous": None,
        "paired": None,
        "candidate": None,
        "recent_paired": None,
        "recent_current": None,
    }
    if shadow_deployment is not None:
        report["paired"] = _against_previous(current, shadow_deployment, settings, seed=1)
    if shadow_deployment is not None and recent_paired is not None:
        recent = current[-recent_paired:]
        found = _against_previous(recent, shadow_deployment, settings, seed=3)
        report["recent_paired"] = {
            "deployment": found.pop("deployment"),
            "window_batches": recent_paired,
            **found,
        }
    if recent_current is not None:
        report["recent_current"] = _recent_current(current, recent_current, settings)
    if shadow_candidate is not None:
        report["candidate"] = _candidate(current, shadow_candidate, settings)
    if previous_deployment is not None:
        chosen = _last_batches(batches, previous_deployment, window)
        report["previous"] = {"deployment": previous_deployment, **_summary(chosen, settings)}
    return report
