"""Deterministic, stratified train/holdout split."""

from typing import TYPE_CHECKING

from unified_ai.lifetime import import_kept
from unified_ai.ml.targets import stratify_on
from unified_ai.names import ORIGIN, ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig


def split_frame(
    project: "ProjectConfig", frame: "pd.DataFrame"
) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Split into (train, holdout), stratified on the class, reproducible from the seed.

    Classification keeps each class's share on both sides; regression is split at random
    (`stratify_on`).

    Each row keeps its position in the training data as `_row_id`, so overlap between the
    two parts can be checked exactly. Only rows of the project's source are split: each falls
    on the same side whatever production rows join later (a champion is never compared on rows
    it was trained on). Labeled production rows (an `_origin` other than the source) are
    training rows, except the newest `training.production_data.recent_holdout_fraction` of
    them: the recent holdout, stored with the holdout (`holdout_parts` tells them apart).
    """
    import pandas as pd

    import_kept("scikit-learn", "sklearn.model_selection")
    from sklearn.model_selection import train_test_split

    with_ids = frame.reset_index(drop=True).assign(**{ROW_ID: range(len(frame))})
    from_source = with_ids[ORIGIN] == project.data.source if ORIGIN in with_ids.columns else None
    # Data stored before the project's source was renamed has no row of the new one: it is
    # split as a whole, as data without origins is.
    if from_source is not None and from_source.any():
        source, production = with_ids[from_source], with_ids[~from_source]
    else:
        source, production = with_ids, with_ids.iloc[:0]
    train, holdout = train_test_split(
        source,
        test_size=project.split.holdout_fraction,
        random_state=project.split.seed,
        stratify=stratify_on(project, source),
    )
    # The newest production rows (training data keeps them oldest first) are the recent
    # holdout: what the world looks like now, never trained on.
    recent = int(len(production) * project.training.production_data.recent_holdout_fraction)
    if recent:
        production, newest = production.iloc[:-recent], production.iloc[-recent:]
        holdout = pd.concat([holdout, newest])
    train = pd.concat([train, production]) if len(production) else train
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def holdout_parts(
    project: "ProjectConfig", holdout: "pd.DataFrame"
) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(static, recent) holdout: rows of the project's source, and labeled production rows."""
    if ORIGIN not in holdout.columns:
        return holdout, holdout.iloc[:0]
    from_source = holdout[ORIGIN] == project.data.source
    if not from_source.any():
        return holdout, holdout.iloc[:0]  # stored before the source was renamed
    return (
        holdout[from_source].reset_index(drop=True),
        holdout[~from_source].reset_index(drop=True),
    )


def overlapping_rows(train: "pd.DataFrame", holdout: "pd.DataFrame") -> int:
    """Number of row ids present in both parts (must be 0)."""
    return len(set(train[ROW_ID]) & set(holdout[ROW_ID]))
