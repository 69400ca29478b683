"""A self-contained HTML evaluation page built with Evidently (no network needed to view it)."""

from typing import TYPE_CHECKING

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
    import pandas as pd
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    segment_columns = list(segments.columns)
    definition = DataDefinition(
        classification=[BinaryClassification(target="target", prediction_probas="prediction")],
        categorical_columns=segment_columns,
    )

    def frame(proba):
        data = segments.reset_index(drop=True).astype("string").fillna("<missing>").copy()
        data["target"] = y
        data["prediction"] = proba
        return Dataset.from_pandas(pd.DataFrame(data), data_definition=definition)

    reference = frame(champion) if champion is not None else None
    snapshot = Report([ClassificationPreset()]).run(frame(candidate), reference)
    return snapshot.get_html_str(as_iframe=False)
