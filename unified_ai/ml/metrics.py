"""Metrics of each task, per segment, and paired bootstrap intervals. Pure numpy.

What a model's predictions look like depends on the project's task:

- binary classification: the probability of the positive class, shape (n,); targets 0/1;
- multiclass classification: one probability per class, shape (n, k), columns in the order of
  the project's class list; targets are class indices 0..k-1;
- regression: the predicted value, shape (n,); targets are the (finite) values.

The metric names and directions are `unified_ai.projects.tasks`; this module computes them.
Implemented with numpy so that a few hundred bootstrap resamples stay cheap.
"""

from typing import TYPE_CHECKING, Any

from unified_ai.projects.tasks import BINARY, LOWER_IS_BETTER, MULTICLASS, REGRESSION, metrics_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_EPS = float(__import__("sys").float_info.epsilon)  # what sklearn clips log loss with


def roc_auc(y: "np.ndarray", score: "np.ndarray") -> float | None:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks)."""
    import numpy as np
    from scipy.stats import rankdata

    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_metrics(y: "np.ndarray", proba: "np.ndarray", threshold: float) -> dict:
    """ROC AUC, F1, accuracy and log loss; AUC is None when only one class is present."""
    import numpy as np

    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    predicted = proba >= threshold
    actual = y == 1
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    return {
        "roc_auc": roc_auc(y, proba),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "accuracy": float(np.mean(predicted == actual)) if len(y) else 0.0,
        "log_loss": float(-np.mean(np.where(actual, np.log(clipped), np.log(1 - clipped)))),
    }


def per_class(y: "np.ndarray", proba: "np.ndarray") -> dict[str, "np.ndarray"]:
    """Per-class counts of a multiclass prediction: support, predicted, correct (arrays of k)."""
    import numpy as np

    k = proba.shape[1]
    predicted = np.argmax(proba, axis=1)
    correct = predicted == y
    return {
        "support": np.bincount(y, minlength=k).astype(float),
        "predicted": np.bincount(predicted, minlength=k).astype(float),
        "correct": np.bincount(y[correct], minlength=k).astype(float),
    }


def _ratios(numerator: "np.ndarray", denominator: "np.ndarray") -> "np.ndarray":
    """Per-class ratios, NaN where the denominator is 0."""
    import numpy as np

    out = np.full(len(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def multiclass_metrics(y: "np.ndarray", proba: "np.ndarray") -> dict:
    """Accuracy, macro F1, log loss, one-vs-rest ROC AUC, lowest per-class recall and precision.

    Classes absent from `y` are left out of the macro averages and of the per-class minima (as
    a class nobody had cannot be recalled); a class present but never predicted has precision 0.
    """
    import numpy as np

    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=float)
    counts = per_class(y, proba)
    present = counts["support"] > 0
    recall = _ratios(counts["correct"], counts["support"])
    never_predicted = counts["predicted"] == 0
    precision = np.where(never_predicted, 0.0, _ratios(counts["correct"], counts["predicted"]))
    f1 = _ratios(2 * counts["correct"], counts["support"] + counts["predicted"])
    picked = np.clip(proba[np.arange(len(y)), y], _EPS, 1.0) if len(y) else np.ones(0)
    each = [roc_auc((y == c).astype(int), proba[:, c]) for c in np.flatnonzero(present)]
    aucs = [a for a in each if a is not None]
    return {
        "accuracy": float(counts["correct"].sum() / len(y)) if len(y) else 0.0,
        "macro_f1": float(np.nanmean(f1[present])) if present.any() else 0.0,
        "log_loss": float(-np.mean(np.log(picked))) if len(y) else 0.0,
        "roc_auc_ovr": float(np.mean(aucs)) if len(aucs) >= 2 else None,
        "per_class_recall": float(np.min(recall[present])) if present.any() else None,
        "per_class_precision": float(np.min(precision[present])) if present.any() else None,
    }


def class_table(y: "np.ndarray", proba: "np.ndarray", classes: list) -> dict[str, dict]:
    """Precision, recall and rows of each class (by its label as text), for reports."""
    import numpy as np

    y = np.asarray(y, dtype=int)
    counts = per_class(y, np.asarray(proba, dtype=float))
    recall = _ratios(counts["correct"], counts["support"])
    precision = _ratios(counts["correct"], counts["predicted"])

    def number(value: float) -> float | None:
        return None if np.isnan(value) else float(value)

    return {
        str(label): {
            "precision": number(precision[i]),
            "recall": number(recall[i]),
            "n": int(counts["support"][i]),
        }
        for i, label in enumerate(classes)
    }


def regression_metrics(y: "np.ndarray", predicted: "np.ndarray") -> dict:
    """RMSE, MAE, R² and MAPE; MAPE is None when a target is zero (it would divide by zero)."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    error = np.asarray(predicted, dtype=float) - y
    if not len(y):
        return {"rmse": 0.0, "mae": 0.0, "r2": None, "mape": None}
    spread = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else None,
        "mape": float(np.mean(np.abs(error) / np.abs(y))) if np.all(y != 0) else None,
    }


def mape_note(y: "np.ndarray") -> str | None:
    """Why MAPE is not computed for these targets, or None when it is."""
    import numpy as np

    zeros = int(np.sum(np.asarray(y, dtype=float) == 0))
    if zeros:
        return f"not computed: the target is 0 in {zeros} of {len(y)} rows (it would divide by 0)"
    return None


def task_metrics(task: str, y: "np.ndarray", predicted: "np.ndarray", threshold: float) -> dict:
    """Every metric of `task` (`unified_ai.projects.tasks.TASK_METRICS`) for these rows."""
    if task == BINARY:
        return binary_metrics(y, predicted, threshold)
    if task == MULTICLASS:
        return multiclass_metrics(y, predicted)
    if task == REGRESSION:
        return regression_metrics(y, predicted)
    raise ValueError(f"unknown task {task!r}")


def segment_metrics(task: str, y: "np.ndarray", predicted: "np.ndarray", threshold: float) -> dict:
    """Metrics of one segment, including those fairness gaps are measured in."""
    import numpy as np

    n = len(y)
    if task == BINARY:
        decided = (np.asarray(predicted) >= threshold).astype(int)
        positives = y == 1
        metrics = binary_metrics(y, predicted, threshold)
        metrics.pop("log_loss")
        recalled = decided[positives]
        metrics["true_positive_rate"] = float(recalled.mean()) if len(recalled) else None
        metrics["positive_rate"] = float(decided.mean()) if n else None
        metrics["positives"] = int(np.sum(positives))
    elif task == MULTICLASS:
        metrics = multiclass_metrics(y, predicted)
        counts = per_class(np.asarray(y, dtype=int), np.asarray(predicted, dtype=float))
        present = counts["support"] > 0
        recall = _ratios(counts["correct"], counts["support"])
        metrics["macro_recall"] = float(np.mean(recall[present])) if present.any() else None
    else:
        metrics = regression_metrics(y, predicted)
        error = np.asarray(predicted, dtype=float) - np.asarray(y, dtype=float)
        metrics["mean_signed_error"] = float(error.mean()) if n else None
    metrics["n"] = n
    return metrics


def segments_and_gaps(
    task: str,
    y: "np.ndarray",
    predicted: "np.ndarray",
    segments: "pd.DataFrame",
    threshold: float,
    gap_metric: str,
    min_segment_size: int,
) -> dict:
    """Per-segment metrics for each segment column and the largest gap of `gap_metric`.

    Segments smaller than `min_segment_size` are reported but excluded from the gap.
    """
    by_column: dict[str, Any] = {}
    largest: dict[str, Any] = {"column": None, "gap": 0.0, "low": None, "high": None}
    for column in segments.columns:
        values = segments[column].astype("string").fillna("<missing>").to_numpy()
        groups = {}
        for value in sorted(set(values)):
            mask = values == value
            groups[value] = segment_metrics(task, y[mask], predicted[mask], threshold)
        eligible = {
            k: v[gap_metric]
            for k, v in groups.items()
            if v["n"] >= min_segment_size and v[gap_metric] is not None
        }
        gap = None
        if len(eligible) >= 2:
            low = min(eligible, key=eligible.__getitem__)
            high = max(eligible, key=eligible.__getitem__)
            gap = float(eligible[high] - eligible[low])
            if gap >= largest["gap"]:
                largest = {"column": column, "gap": gap, "low": low, "high": high}
        by_column[column] = {"segments": groups, "gap": gap, "eligible": sorted(eligible)}
    return {"metric": gap_metric, "by_column": by_column, "largest": largest}


def _resample_usable(task: str, y: "np.ndarray") -> bool:
    """Whether a bootstrap resample can measure the task's metrics at all."""
    import numpy as np

    if task == REGRESSION:
        return len(y) > 1 and bool(np.ptp(y) > 0)
    return len(np.unique(y)) >= 2


def paired_bootstrap(
    task: str,
    y: "np.ndarray",
    candidate: "np.ndarray",
    champion: "np.ndarray",
    threshold: float,
    samples: int,
    confidence: float,
    seed: int,
) -> dict:
    """Bootstrap interval of candidate - champion for each metric, resampling rows in pairs.

    A metric that cannot be computed (for example MAPE when a target is 0) has no interval.
    """
    import numpy as np

    names = metrics_of(task)
    rng = np.random.default_rng(seed)
    n = len(y)
    diffs: dict[str, list[float]] = {m: [] for m in names}
    kept = 0
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        yy = y[idx]
        if not _resample_usable(task, yy):
            continue
        kept += 1
        a = task_metrics(task, yy, candidate[idx], threshold)
        b = task_metrics(task, yy, champion[idx], threshold)
        for m in names:
            if a[m] is not None and b[m] is not None:
                diffs[m].append(a[m] - b[m])
    point_a = task_metrics(task, y, candidate, threshold)
    point_b = task_metrics(task, y, champion, threshold)
    alpha = (1 - confidence) / 2
    result = {}
    for m in names:
        values = np.asarray(diffs[m])
        if point_a[m] is None or point_b[m] is None or not len(values):
            continue
        result[m] = {
            "difference": float(point_a[m] - point_b[m]),
            "ci_low": float(np.quantile(values, alpha)),
            "ci_high": float(np.quantile(values, 1 - alpha)),
            "better": "lower" if m in LOWER_IS_BETTER else "higher",
        }
    return {"confidence": confidence, "samples": kept, "metrics": result}
