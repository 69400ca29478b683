"""A self-contained HTML evaluation page built with Evidently (no network needed to view it)."""

from typing import TYPE_CHECKING

from unified_ai.lifetime import import_evidently

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def classification_page(
    y: "np.ndarray",
    candidate: "np.ndarray",
    champion: "np.ndarray | None",
    segments: "pd.DataFrame",
) -> str:
    """Evidently's classification preset: candidate as current data, champion as reference."""
    return evaluation_page("binary_classification", y, candidate, champion, segments)


def evaluation_page(
    task: str,
    y: "np.ndarray",
    candidate: "np.ndarray",
    champion: "np.ndarray | None",
    segments: "pd.DataFrame",
    classes: list | None = None,
) -> str:
    """Evidently's preset of the task: candidate as current data, champion as reference.

    Args:
        task: The project's task (`unified_ai.projects.tasks`).
        y: The holdout's target as models learn it (binary 0/1, class index, value).
        candidate: The candidate's predictions in the task's shape (`unified_ai.ml.metrics`).
        champion: The champion's, or None.
        segments: The holdout's segment columns.
        classes: A multiclass model's class list (the labels of the class indices).
    """
    import_evidently()
    import pandas as pd
    from evidently import (
        BinaryClassification,
        DataDefinition,
        Dataset,
        MulticlassClassification,
        Regression,
        Report,
    )
    from evidently.presets import ClassificationPreset, RegressionPreset

    from unified_ai.projects.tasks import MULTICLASS, REGRESSION, class_key

    segment_columns = list(segments.columns)
    labels = [class_key(c) for c in classes or []]
    # Evidently finds a class's probability column by the class label itself; a label that
    # collides with another column leaves the page without probabilities (labels only).
    taken = {*segment_columns, "target", "prediction"}
    proba_columns = labels if len(set(labels)) == len(labels) and not taken & set(labels) else []
    if task == REGRESSION:
        preset = RegressionPreset()
        definition = DataDefinition(
            regression=[Regression(target="target", prediction="prediction")],
            categorical_columns=segment_columns,
            numerical_columns=["target", "prediction"],
        )
    elif task == MULTICLASS:
        preset = ClassificationPreset()
        definition = DataDefinition(
            classification=[
                MulticlassClassification(
                    target="target",
                    prediction_labels="prediction",
                    prediction_probas=proba_columns or None,
                )
            ],
            categorical_columns=[*segment_columns, "target", "prediction"],
        )
    else:
        preset = ClassificationPreset()
        definition = DataDefinition(
            classification=[BinaryClassification(target="target", prediction_probas="prediction")],
            categorical_columns=segment_columns,
        )

    def frame(predicted):
        import numpy as np

        data = segments.reset_index(drop=True).astype("string").fillna("<missing>").copy()
        if task == MULTICLASS:
            data["target"] = np.asarray(labels, dtype=object)[np.asarray(y, dtype=int)]
            data["prediction"] = np.asarray(labels, dtype=object)[np.argmax(predicted, axis=1)]
            for i, column in enumerate(proba_columns):
                data[column] = np.asarray(predicted, dtype=float)[:, i]
        else:
            data["target"] = y
            data["prediction"] = predicted
        return Dataset.from_pandas(pd.DataFrame(data), data_definition=definition)

    reference = frame(champion) if champion is not None else None
    snapshot = Report([preset]).run(frame(candidate), reference)
    return snapshot.get_html_str(as_iframe=False)
