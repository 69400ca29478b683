"""Live performance of deployments from labeled predictions. Pure numpy/pandas.

Besides each deployment's own rows, models are compared on the same labeled rows: every batch
is also scored in the shadow by the deployment a rollback would restore and by a candidate
waiting for approval, and the difference gets a paired bootstrap interval (the same resampled
rows for both models, a fixed seed, so a rerun gives the same numbers).

Every task is measured in its own metrics (`unified_ai.ml.metrics.task_metrics`) from the
stored `predictions` columns (`unified_ai.ml.batch_scoring.prediction_columns`): binary from
`proba` and the 0/1 `label`; multiclass from `proba_<i>` and the class `label` (text) indexed
into the model's `classes`; regression from `prediction` and the numeric `label`. Shadow
columns hold each model's primary score (multiclass: the predicted class index), so a paired
multiclass comparison judges the two models' predicted classes.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

# The metrics of one deployment and of two models on the same rows live in their own module;
# re-exported so existing imports keep working.
from unified_ai.ml.live_metrics import _BINARY
from unified_ai.ml.live_metrics import LiveTask as LiveTask
from unified_ai.ml.live_metrics import deployment_metrics as deployment_metrics
from unified_ai.ml.live_metrics import metric_interval as metric_interval
from unified_ai.ml.live_metrics import paired_difference as paired_difference
from unified_ai.ml.live_metrics import rows_once as rows_once
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.tasks import BINARY, class_key

if TYPE_CHECKING:
    import pandas as pd


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
    task: LiveTask = _BINARY


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
        task=settings.task,
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
    import numpy as np
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
    task = settings.task
    rows = task.usable(rows)
    # Both sides as primary scores: a shadow stored one number per row (multiclass: its class).
    if len(rows):
        live = task.from_primary(task.primary(task.live_scores(rows)))
        other = task.from_primary(rows[shadow].to_numpy(dtype="float64"))
    else:
        live = other = np.zeros(0)
    first, second = (other, live) if shadow_first else (live, other)
    comparison = paired_difference(
        task.truth(rows) if len(rows) else np.zeros(0),
        first,
        second,
        settings.metric,
        settings.threshold,
        samples=settings.bootstrap_samples,
        confidence=settings.confidence,
        seed=seed,
        task=task,
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


def _recent_paired(
    current: _Batches, shadow_deployment: str, recent_paired: int, settings: _Settings
) -> dict[str, Any]:
    """The current deployment against the previous one over its last `recent_paired` batches."""
    recent = current[-recent_paired:]
    found = _against_previous(recent, shadow_deployment, settings, seed=3)
    return {
        "deployment": found.pop("deployment"),
        "window_batches": recent_paired,
        **found,
    }


def _recent_current(current: _Batches, recent_current: int, settings: _Settings) -> dict[str, Any]:
    """The current deployment's own metric over its last `recent_current` batches."""
    import pandas as pd

    chosen = current[-recent_current:]
    rows = settings.task.usable(pd.concat([f for _, f in chosen])) if chosen else None
    value = None
    if rows is not None and len(rows):
        task = settings.task
        value = task.metric(
            task.truth(rows), task.live_scores(rows), settings.metric, settings.threshold
        )
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
    task: str = BINARY,
    classes: list | None = None,
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

    `task` and `classes` (the deployed model's, multiclass) say how labels and predictions are
    read (`LiveTask`); every number is in the metric's own units and direction (for RMSE a
    higher value, and a positive live - previous difference, is worse).
    """
    settings = _Settings(
        metric,
        threshold,
        segments,
        min_segment_size,
        bootstrap_samples,
        confidence,
        gap_metric,
        LiveTask(task, tuple(classes or ())),
    )
    batches = [(batch, rows_once(frame)) for batch, frame in batches]
    current = _last_batches(batches, current_deployment, window)
    previous_deployment = _previous_deployment(batches, current_deployment)
    report: dict[str, Any] = {
        "metric": metric,
        "task": task,
        "classes": [class_key(c) for c in classes or []],
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
        report["recent_paired"] = _recent_paired(
            current, shadow_deployment, recent_paired, settings
        )
    if recent_current is not None:
        report["recent_current"] = _recent_current(current, recent_current, settings)
    if shadow_candidate is not None:
        report["candidate"] = _candidate(current, shadow_candidate, settings)
    if previous_deployment is not None:
        chosen = _last_batches(batches, previous_deployment, window)
        report["previous"] = {"deployment": previous_deployment, **_summary(chosen, settings)}
    return report
