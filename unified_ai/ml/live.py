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

from unified_ai.ml.metrics import segments_and_gaps, task_metrics
from unified_ai.names import (
    CLASS_PROBA_PREFIX,
    DEPLOYMENT_COLUMN,
    ROW_ID,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class LiveTask:
    """What reading a task's labeled predictions needs: the task and a model's classes.

    Attributes:
        task: The project's task (`unified_ai.projects.tasks`).
        classes: A multiclass model's classes, in the order of its `proba_<i>` columns.
    """

    task: str = BINARY
    classes: tuple = ()

    def truth(self, frame: "pd.DataFrame") -> "np.ndarray":
        """The `label` column as the task's metrics take it (multiclass: class indices).

        A multiclass label that is not one of the classes is -1 (`usable` leaves it out).
        """
        import numpy as np

        labels = frame["label"]
        if self.task == REGRESSION:
            return labels.to_numpy(dtype="float64")
        if self.task == MULTICLASS:
            index = {class_key(c): i for i, c in enumerate(self.classes)}
            return np.asarray([index.get(class_key(v), -1) for v in labels.tolist()], dtype=int)
        return labels.to_numpy()

    def usable(self, frame: "pd.DataFrame") -> "pd.DataFrame":
        """The rows whose label the task can measure (multiclass: one of the classes)."""
        if self.task != MULTICLASS or not len(frame):
            return frame
        return frame[self.truth(frame) >= 0]

    def live_scores(self, frame: "pd.DataFrame") -> "np.ndarray":
        """The live model's predictions in the task's shape, from the stored columns."""
        import numpy as np

        if self.task == REGRESSION:
            return frame["prediction"].to_numpy(dtype="float64")
        if self.task == MULTICLASS:
            columns = [f"{CLASS_PROBA_PREFIX}{i}" for i in range(len(self.classes))]
            if all(c in frame.columns for c in columns):
                return frame[columns].to_numpy(dtype="float64")
            index = {class_key(c): i for i, c in enumerate(self.classes)}
            chosen = np.asarray([index.get(class_key(v), 0) for v in frame["prediction"]])
            return self.from_primary(chosen)
        return frame["proba"].to_numpy(dtype="float64")

    def primary(self, scores: "np.ndarray") -> "np.ndarray":
        """The primary score of predictions in the task's shape (multiclass: the class index)."""
        import numpy as np

        if self.task == MULTICLASS:
            if not len(scores):
                return np.zeros(0)
            return np.argmax(scores, axis=1).astype("float64")
        return np.asarray(scores, dtype="float64")

    def from_primary(self, values: "np.ndarray") -> "np.ndarray":
        """Primary scores in the task's shape (multiclass: one-hot rows of the class index)."""
        import numpy as np

        values = np.asarray(values, dtype="float64")
        if self.task != MULTICLASS:
            return values
        onehot = np.zeros((len(values), len(self.classes)), dtype="float64")
        if len(values):
            onehot[np.arange(len(values)), values.astype(int)] = 1.0
        return onehot

    def metrics(self, y: "np.ndarray", scores: "np.ndarray", threshold: float) -> dict:
        return task_metrics(self.task, y, scores, threshold)

    def metric(self, y: "np.ndarray", scores: "np.ndarray", metric: str, threshold: float):
        """One metric of these rows, or None when it has no value (or there are no rows)."""
        if not len(y):
            return None
        return self.metrics(y, scores, threshold).get(metric)


_BINARY = LiveTask()


def metric_interval(
    y,
    proba,
    metric: str,
    threshold: float,
    samples: int,
    seed: int,
    confidence: float = 0.95,
    *,
    task: LiveTask = _BINARY,
):
    """Bootstrap interval of one metric at `confidence`, or (None, None) if it has no value."""
    import numpy as np

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        value = task.metric(y[idx], proba[idx], metric, threshold)
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
    task: LiveTask = _BINARY,
) -> dict[str, Any]:
    """`metric` of two models' scores of the same labeled rows, and the interval of live - other.

    `live` and `other` are in the task's shape (`LiveTask.from_primary` of shadow scores).
    The difference is in the metric's units, whichever way is better (for RMSE a positive
    difference means live is worse).

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
    live_value = task.metric(y, live, metric, threshold)
    other_value = task.metric(y, other, metric, threshold)
    result.update(live=live_value, other=other_value)
    if live_value is None or other_value is None:
        return result
    result["difference"] = live_value - other_value
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(samples):
        idx = rng.integers(0, len(y), len(y))
        a = task.metric(y[idx], live[idx], metric, threshold)
        b = task.metric(y[idx], other[idx], metric, threshold)
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
    task: LiveTask = _BINARY,
) -> dict[str, Any]:
    """Metrics of one deployment on its labeled rows, with an interval and per-segment view.

    The interval and the segment gaps use the project's evaluation settings, as the
    evaluation of the candidate did: `samples` bootstrap draws at `confidence`, and the
    policy's fairness metric (`gap_metric`).
    """
    labeled = task.usable(labeled)
    if len(labeled) == 0:
        return {"labeled_rows": 0, "value": None, "ci_low": None, "ci_high": None}
    y = task.truth(labeled)
    proba = task.live_scores(labeled)
    metrics = task.metrics(y, proba, threshold)
    low, high = metric_interval(y, proba, metric, threshold, samples, seed, confidence, task=task)
    present = [c for c in segments if c in labeled.columns]
    return {
        "labeled_rows": len(y),
        "metrics": metrics,
        "value": metrics.get(metric),
        "ci_low": low,
        "ci_high": high,
        "segments": segments_and_gaps(
            task.task, y, proba, labeled[present], threshold, gap_metric, min_segment_size
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
