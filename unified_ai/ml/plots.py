"""Small PNG plots for the Dagster UI and the lineage store, and the markdown that shows them.

matplotlib (Agg, no display) is imported inside the functions that draw. Every plot is a small
PNG: it is embedded in asset metadata, which lives in Dagster's event log.
"""

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from unified_ai.lifetime import import_kept
from unified_ai.projects.tasks import BINARY

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: The evaluation plots stored in each `evaluation_report` version, file name → title.
EVALUATION_PLOTS = {
    "roc.png": "ROC curve",
    "precision_recall.png": "Precision-recall curve",
    "calibration.png": "Calibration curve",
    "confusion_matrix.png": "Confusion matrix",
}
#: A regression report's plots, file name → title.
REGRESSION_PLOTS = {
    "predicted_vs_actual.png": "Predicted vs actual",
    "residuals_by_segment.png": "Residuals by segment",
}
#: A multiclass report's plots, file name → title.
MULTICLASS_PLOTS = {
    "confusion_matrix.png": "Confusion matrix",
    "per_class_precision_recall.png": "Per-class precision and recall",
}
#: Every evaluation plot's title, whatever the task (for showing a stored report's plots).
PLOT_TITLES = {**EVALUATION_PLOTS, **REGRESSION_PLOTS, **MULTICLASS_PLOTS}
#: Small enough for the event log (a few tens of KB per image), sharp enough to read.
_DPI = 80
_SIZE = (4.2, 3.2)
_COLOURS = {"candidate": "#1f77b4", "champion": "#ff7f0e"}
#: The champion is dashed so that a candidate equal to it stays visible under it.
_STYLES = {"champion": "--"}


def _line(label: str) -> dict:
    return {"label": label, "color": _COLOURS.get(label), "linestyle": _STYLES.get(label, "-")}


def _pyplot():
    import matplotlib

    # Agg draws without a display; set before pyplot is imported anywhere in this process.
    matplotlib.use("Agg", force=True)
    import_kept("matplotlib", "matplotlib.pyplot")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    import io

    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def markdown_image(title: str, png: bytes) -> str:
    """A markdown image with the PNG inline as a data URI (the Dagster UI renders it)."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{title}](data:image/png;base64,{encoded})"


def evaluation_plots(
    y: "np.ndarray", probas: Mapping[str, "np.ndarray"], threshold: float
) -> dict[str, bytes]:
    """ROC, precision-recall, calibration and confusion matrices, one line per model.

    Args:
        y: The holdout's binary target (0/1).
        probas: Model label (`candidate`, `champion`) → predicted probability of class 1.
        threshold: The decision threshold of the confusion matrix.

    Returns:
        File name (see `EVALUATION_PLOTS`) → PNG bytes.
    """
    import numpy as np
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    y = np.asarray(y)
    both_classes = len(np.unique(y)) == 2
    plots: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    for label, proba in probas.items():
        if both_classes:
            fpr, tpr, _ = roc_curve(y, proba)
            ax.plot(fpr, tpr, **_line(label))
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    if both_classes:
        ax.legend(loc="lower right", fontsize=8)
    plots["roc.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=_SIZE)
    for label, proba in probas.items():
        if both_classes:
            precision, recall, _ = precision_recall_curve(y, proba)
            ax.plot(recall, precision, **_line(label))
    ax.axhline(float(y.mean()) if len(y) else 0.0, color="#999999", linestyle=":", linewidth=1)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall", ylim=(0, 1.02))
    if both_classes:
        ax.legend(loc="lower left", fontsize=8)
    plots["precision_recall.png"] = _png(fig)

    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle=":", linewidth=1)
    for label, proba in probas.items():
        if both_classes:
            observed, predicted = calibration_curve(y, proba, n_bins=10, strategy="quantile")
            ax.plot(predicted, observed, marker="o", markersize=3, **_line(label))
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate")
    ax.set_title("Calibration (deciles)")
    if both_classes:
        ax.legend(loc="upper left", fontsize=8)
    plots["calibration.png"] = _png(fig)

    fig, axes = plt.subplots(1, len(probas), figsize=(2.3 * len(probas) + 0.4, 2.6), squeeze=False)
    for ax, (label, proba) in zip(axes[0], probas.items(), strict=True):
        predicted = np.asarray(proba) >= threshold
        matrix = np.array(
            [
                [np.sum(~predicted & (y == 0)), np.sum(predicted & (y == 0))],
                [np.sum(~predicted & (y == 1)), np.sum(predicted & (y == 1))],
            ]
        )
        ax.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            dark = count > matrix.max() / 2
            ax.text(col, row, str(count), ha="center", va="center", color="white" if dark else "k")
        ax.set_xticks([0, 1], ["0", "1"])
        ax.set_yticks([0, 1], ["0", "1"])
        ax.set(xlabel="predicted", ylabel="actual", title=f"{label} (≥ {threshold:g})")
    plots["confusion_matrix.png"] = _png(fig)
    return plots


def task_evaluation_plots(
    task: str,
    y: "np.ndarray",
    probas: Mapping[str, "np.ndarray"],
    threshold: float,
    *,
    segments: "pd.DataFrame | None" = None,
    classes: Sequence | None = None,
) -> dict[str, bytes]:
    """The evaluation plots of the project's task, candidate beside champion where there is one.

    Binary: `evaluation_plots`. Regression: predicted vs actual and residuals by segment
    (`REGRESSION_PLOTS`). Multiclass: confusion matrices and per-class precision and recall
    (`MULTICLASS_PLOTS`).

    Args:
        task: The project's task (`unified_ai.projects.tasks`).
        y: The holdout's target as models learn it (0/1, class index, value).
        probas: Model label (`candidate`, `champion`) → predictions in the task's shape.
        threshold: The binary decision threshold.
        segments: The holdout's segment columns (regression residuals are drawn per segment).
        classes: A multiclass model's class list (the labels of the class indices).
    """
    from unified_ai.projects.tasks import MULTICLASS, REGRESSION

    if task == REGRESSION:
        return regression_plots(y, probas, segments)
    if task == MULTICLASS:
        return multiclass_plots(y, probas, list(classes or []))
    return evaluation_plots(y, probas, threshold)


def regression_plots(
    y: "np.ndarray",
    predicted: Mapping[str, "np.ndarray"],
    segments: "pd.DataFrame | None" = None,
) -> dict[str, bytes]:
    """Predicted vs actual (one scatter per model) and residuals by segment (box per segment).

    Returns:
        File name (see `REGRESSION_PLOTS`) → PNG bytes.
    """
    import numpy as np

    plt = _pyplot()
    y = np.asarray(y, dtype=float)
    plots: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=_SIZE)
    if len(y):
        low, high = float(np.min(y)), float(np.max(y))
        ax.plot([low, high], [low, high], color="#999999", linestyle=":", linewidth=1)
    for label, values in predicted.items():
        style = _line(label)
        ax.scatter(
            y, np.asarray(values, dtype=float), s=6, alpha=0.5, color=style["color"], label=label
        )
    ax.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual")
    if predicted:
        ax.legend(loc="upper left", fontsize=8)
    plots["predicted_vs_actual.png"] = _png(fig)

    # Residual = predicted - actual: above 0 the model over-predicts that segment.
    groups: list[tuple[str, np.ndarray]] = []
    for column, series in segments.items() if segments is not None else []:
        values = series.astype("string").fillna("<missing>").to_numpy()
        for value in sorted(set(values)):
            groups.append((f"{column}={value}", values == value))
    if not groups:
        groups = [("all rows", np.ones(len(y), dtype=bool))]
    width = 0.8 / max(len(predicted), 1)
    fig, ax = plt.subplots(figsize=(max(_SIZE[0], 0.9 * len(groups) + 1.5), _SIZE[1]))
    ax.axhline(0.0, color="#999999", linestyle=":", linewidth=1)
    for offset, (label, values) in enumerate(predicted.items()):
        residuals = np.asarray(values, dtype=float) - y
        data = [residuals[mask] if mask.any() else np.zeros(1) for _, mask in groups]
        positions = np.arange(len(groups)) + (offset - (len(predicted) - 1) / 2) * width
        box = ax.boxplot(
            data, positions=positions, widths=width * 0.9, showfliers=False, patch_artist=True
        )
        for patch in box["boxes"]:
            patch.set(facecolor=_COLOURS.get(label, "#cccccc"), alpha=0.6)
        ax.plot([], [], color=_COLOURS.get(label), linewidth=6, alpha=0.6, label=label)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups], rotation=20, fontsize=7)
    ax.set(ylabel="predicted - actual", title="Residuals by segment")
    ax.legend(loc="best", fontsize=8)
    plots["residuals_by_segment.png"] = _png(fig)
    return plots


def multiclass_plots(
    y: "np.ndarray", probas: Mapping[str, "np.ndarray"], classes: list
) -> dict[str, bytes]:
    """A confusion matrix per model and per-class precision and recall, models side by side.

    Returns:
        File name (see `MULTICLASS_PLOTS`) → PNG bytes.
    """
    import numpy as np

    from unified_ai.ml.metrics import class_table

    plt = _pyplot()
    y = np.asarray(y, dtype=int)
    labels = [str(c) for c in classes]
    k = len(labels)
    plots: dict[str, bytes] = {}

    side = 0.45 * k + 1.2
    fig, axes = plt.subplots(
        1, len(probas), figsize=(side * len(probas) + 0.4, side), squeeze=False
    )
    for ax, (label, proba) in zip(axes[0], probas.items(), strict=True):
        predicted = np.argmax(np.asarray(proba, dtype=float), axis=1)
        matrix = np.zeros((k, k), dtype=int)
        np.add.at(matrix, (y, predicted), 1)
        ax.imshow(matrix, cmap="Blues")
        for (row, col), count in np.ndenumerate(matrix):
            dark = count > matrix.max() / 2
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "k",
            )
        ax.set_xticks(range(k), labels, rotation=45, fontsize=7)
        ax.set_yticks(range(k), labels, fontsize=7)
        ax.set(xlabel="predicted", ylabel="actual", title=label)
    plots["confusion_matrix.png"] = _png(fig)

    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.6 * k + 3), 2.8), sharey=True)
    width = 0.8 / max(len(probas), 1)
    for offset, (label, proba) in enumerate(probas.items()):
        table = class_table(y, proba, labels)
        positions = np.arange(k) + (offset - (len(probas) - 1) / 2) * width
        for ax, measure in zip(axes, ("precision", "recall"), strict=True):
            heights = [table[c][measure] or 0.0 for c in labels]
            ax.bar(positions, heights, width=width, color=_COLOURS.get(label), label=label)
    for ax, measure in zip(axes, ("precision", "recall"), strict=True):
        ax.set_xticks(range(k), labels, rotation=45, fontsize=7)
        ax.set(title=f"Per-class {measure}", ylim=(0, 1.02))
    axes[0].legend(loc="lower left", fontsize=7)
    plots["per_class_precision_recall.png"] = _png(fig)
    return plots


def series_plot(
    points: Sequence[Mapping[str, Any]],
    *,
    value: str,
    group: str,
    title: str,
    ylabel: str,
    threshold: float | None = None,
) -> bytes:
    """A value over batches, one line per `group` (a model, a deployment), in `points` order.

    Args:
        points: Dicts with a `batch` label, the `value` and the `group` key; None values skip.
        value: The key of the plotted number.
        group: The key that splits the points into lines.
        title: The plot title.
        ylabel: The y axis label.
        threshold: A horizontal policy line, if any.
    """
    plt = _pyplot()
    batches = list(dict.fromkeys(str(p["batch"]) for p in points))
    position = {batch: index for index, batch in enumerate(batches)}
    lines: dict[str, list[tuple[int, float]]] = {}
    for point in points:
        if point.get(value) is None:
            continue
        lines.setdefault(str(point.get(group)), []).append(
            (position[str(point["batch"])], float(point[value]))
        )
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    for label, xy in lines.items():
        xs, ys = zip(*xy, strict=True)
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="#d62728", linestyle="--", linewidth=1, label="policy")
    # Batch names are long (file names): label only a few of them.
    step = max(1, len(batches) // 6)
    ticks = list(range(0, len(batches), step))
    ax.set_xticks(ticks, [batches[i][:14] for i in ticks], rotation=20, fontsize=7)
    ax.set(ylabel=ylabel, title=title)
    if lines or threshold is not None:
        ax.legend(fontsize=7, loc="best")
    return _png(fig)


def live_metric_points(
    batches: Sequence[tuple[str, Any]],
    *,
    metric: str,
    threshold: float,
    last: int,
    task: str = BINARY,
    classes: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """The metric per labeled batch for each deployment that scored it, oldest first.

    Rows a deployment scored live count for it; the predecessor's shadow scores of the same
    rows (when recorded) count for `<predecessor> (shadow)`, so both lines share batches. The
    rows are read as the live report reads them (`unified_ai.ml.live.LiveTask`): binary
    `proba`, multiclass `proba_<i>` (the shadow: the predicted class index), regression
    `prediction`; a multiclass label outside `classes` is left out.

    Args:
        batches: (batch, labeled predictions) oldest first, as `live_report` takes them.
        metric: The policy's live metric (one of the task's).
        threshold: The decision threshold (binary only).
        last: How many of the newest batches to show.
        task: The project's task (`unified_ai.projects.tasks`).
        classes: The deployed model's classes (multiclass), in its `proba_<i>` order.
    """
    from unified_ai.ml.live import LiveTask
    from unified_ai.names import (
        DEPLOYMENT_COLUMN,
        SHADOW_PREVIOUS_DEPLOYMENT,
        SHADOW_PREVIOUS_PROBA,
    )

    reader = LiveTask(task=task, classes=tuple(classes or ()))
    points = []
    for batch, frame in list(batches)[-last:]:
        usable = reader.usable(frame)
        for deployment, rows in usable.groupby(DEPLOYMENT_COLUMN, sort=False):
            value = reader.metric(reader.truth(rows), reader.live_scores(rows), metric, threshold)
            points.append({"batch": batch, "model": str(deployment), "value": value})
        if SHADOW_PREVIOUS_PROBA in frame.columns and SHADOW_PREVIOUS_DEPLOYMENT in frame.columns:
            shadow = usable.dropna(subset=[SHADOW_PREVIOUS_PROBA])
            for deployment, rows in shadow.groupby(SHADOW_PREVIOUS_DEPLOYMENT, sort=False):
                scores = reader.from_primary(rows[SHADOW_PREVIOUS_PROBA].to_numpy())
                value = reader.metric(reader.truth(rows), scores, metric, threshold)
                points.append({"batch": batch, "model": f"{deployment} (shadow)", "value": value})
    return points


def live_metric_markdown(
    batches: Sequence[tuple[str, Any]],
    *,
    metric: str,
    threshold: float,
    floor: float | None,
    last: int,
    task: str = BINARY,
    classes: Sequence[Any] | None = None,
) -> str:
    """The live metric over batches for the live model and its predecessor, as markdown.

    For a lower-is-better metric (RMSE, MAE, log loss) the policy line is a ceiling.
    """
    points = live_metric_points(
        batches, metric=metric, threshold=threshold, last=last, task=task, classes=classes
    )
    png = series_plot(
        points,
        value="value",
        group="model",
        title=f"Live {metric} per labeled batch (by deployment)",
        ylabel=metric,
        threshold=floor,
    )
    return markdown_image(f"live {metric}", png)
