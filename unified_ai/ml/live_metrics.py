"""Live metrics of one deployment's labeled predictions, and paired comparisons of two models.

The building blocks of `unified_ai.ml.live.live_report`: how a task's labeled predictions are
read (`LiveTask`), bootstrap intervals of a metric and of a paired difference, and each scored
row counted once. Pure numpy/pandas.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.ml.metrics import segments_and_gaps, task_metrics
from unified_ai.names import (
    CLASS_PROBA_PREFIX,
    ROW_ID,
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
