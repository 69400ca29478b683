"""A production batch scored: the stored predictions frame and the shadow sample (pure)."""

import zlib
from typing import TYPE_CHECKING, Any

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


def scored_frame(
    batch: "pd.DataFrame",
    proba: Any,
    *,
    segments: list[str],
    threshold: float,
    deployment: str,
    model_version: str,
    task: str = BINARY,
    classes: list | None = None,
) -> "pd.DataFrame":
    """The batch's row ids and segment columns with the live model's predictions.

    The prediction columns depend on the task (`prediction_columns`).

    Args:
        batch: The production rows.
        proba: The live model's predictions in its task's shape (binary: the positive-class
            probability of each row).
        segments: The project's segment columns (those the batch has are kept).
        threshold: A binary row is predicted positive at or above it.
        deployment: The deployment version that scored the batch.
        model_version: The model version that deployment serves.
        task: The model's task.
        classes: A multiclass model's classes, in the order of its probability columns.
    """
    keep = [ROW_ID, *[c for c in segments if c in batch.columns]]
    scored = batch[keep].copy()
    for name, values in prediction_columns(task, proba, threshold, classes).items():
        scored[name] = values
    scored[DEPLOYMENT_COLUMN] = deployment
    scored["model_version"] = model_version
    return scored


def prediction_columns(
    task: str, predicted: Any, threshold: float, classes: list | None = None
) -> dict[str, Any]:
    """The stored prediction columns of one task's predictions, in column order.

    - binary: `proba` (P(positive)), `prediction` (0/1 at `threshold`);
    - multiclass: `prediction` (the class label as text), `proba` (the probability of that
      class: the model's confidence), `proba_<i>` per class i of `classes`;
    - regression: `prediction` (the predicted value).
    """
    import numpy as np

    if task == BINARY:
        proba = np.asarray(predicted, dtype="float64")
        return {"proba": proba, "prediction": (proba >= threshold).astype(int)}
    if task == REGRESSION:
        return {"prediction": np.asarray(predicted, dtype="float64")}
    if task == MULTICLASS:
        matrix = np.asarray(predicted, dtype="float64")
        labels = np.asarray([class_key(c) for c in classes or []], dtype=object)
        chosen = np.argmax(matrix, axis=1) if len(matrix) else np.zeros(0, dtype=int)
        columns: dict[str, Any] = {
            "prediction": labels[chosen] if len(labels) else np.asarray([], dtype=object),
            "proba": matrix[np.arange(len(matrix)), chosen] if len(matrix) else np.zeros(0),
        }
        for i in range(matrix.shape[1] if matrix.ndim == 2 else 0):
            columns[f"{CLASS_PROBA_PREFIX}{i}"] = matrix[:, i]
        return columns
    raise ValueError(f"unknown task {task!r}")


def primary_score(task: str, predicted: Any) -> "np.ndarray":
    """One number per row that stands for a model's prediction (the shadow columns hold it).

    Binary: P(positive); multiclass: the predicted class index (as a float); regression: the
    predicted value.
    """
    import numpy as np

    if task == MULTICLASS:
        matrix = np.asarray(predicted, dtype="float64")
        return np.argmax(matrix, axis=1).astype("float64") if len(matrix) else np.zeros(0)
    return np.asarray(predicted, dtype="float64")


def scoring_metadata(task: str, scored: "pd.DataFrame", classes: list | None) -> dict[str, Any]:
    """What `predictions` metadata says about the batch's predictions, by task.

    Binary: `positive_rate`; regression: the mean, lowest and highest prediction; multiclass:
    the class list (index order of `proba_<i>`) and the share of rows given each class.
    """
    import numpy as np

    if task == BINARY:
        return {"positive_rate": float(scored["prediction"].mean()) if len(scored) else 0.0}
    if task == REGRESSION:
        values = scored["prediction"].to_numpy(dtype="float64")
        if not len(values):
            return {"mean_prediction": 0.0}
        return {
            "mean_prediction": float(np.mean(values)),
            "min_prediction": float(np.min(values)),
            "max_prediction": float(np.max(values)),
        }
    labels = [class_key(c) for c in classes or []]
    counts = scored["prediction"].astype(str).value_counts()
    total = max(len(scored), 1)
    return {
        "classes": labels,
        "class_shares": {label: float(counts.get(label, 0)) / total for label in labels},
    }


def non_finite_scores(batch: "pd.DataFrame", proba: Any) -> tuple[int, Any] | None:
    """(how many rows have a NaN or infinite score, the row id of the first), or None.

    `proba` is one score per row, or a row of class probabilities per row.
    """
    import numpy as np

    bad = ~np.isfinite(np.asarray(proba, dtype="float64"))
    if bad.ndim == 2:
        bad = bad.any(axis=1)
    if not bad.any():
        return None
    first = batch[ROW_ID].iloc[int(np.flatnonzero(bad)[0])] if ROW_ID in batch else "?"
    return int(bad.sum()), first


def empty_shadow_columns() -> dict[str, Any]:
    """The shadow columns of `predictions` when no shadow model scored the batch.

    Always all four, so every batch's frame has one shape.
    """
    import numpy as np

    return {
        SHADOW_PREVIOUS_DEPLOYMENT: None,
        SHADOW_PREVIOUS_PROBA: np.nan,
        SHADOW_CANDIDATE_MODEL: None,
        SHADOW_CANDIDATE_PROBA: np.nan,
    }


def shadow_rows(rows: int, most: int, batch: str) -> "np.ndarray":
    """Positions of the rows the shadow models score: all, or a sample of `most` of them.

    A shadow is compared on labeled rows; on a large batch a sample of them is as good and
    saves scoring every row again per shadow model. The sample is seeded by the batch name, so
    every shadow model scores the same rows.
    """
    import numpy as np

    if rows <= most:
        return np.arange(rows)
    seed = zlib.crc32(batch.encode())
    return np.sort(np.random.default_rng(seed).choice(rows, most, False))
