"""Deterministic, stratified train/holdout split."""

from typing import TYPE_CHECKING

from unified_ai.ml.data import binary_target
from unified_ai.names import ROW_ID

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import ProjectConfig


def split_frame(
    project: "ProjectConfig", frame: "pd.DataFrame"
) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """Split into (train, holdout), stratified on the target, reproducible from the seed.

    Each row keeps its position in the training data as `_row_id`, so overlap between the
    two parts can be checked exactly.
    """
    from sklearn.model_selection import train_test_split

    with_ids = frame.reset_index(drop=True).assign(**{ROW_ID: range(len(frame))})
    train, holdout = train_test_split(
        with_ids,
        test_size=project.split.holdout_fraction,
        random_state=project.split.seed,
        stratify=binary_target(project, with_ids),
    )
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def overlapping_rows(train: "pd.DataFrame", holdout: "pd.DataFrame") -> int:
    """Number of row ids present in both parts (must be 0)."""
    return len(set(train[ROW_ID]) & set(holdout[ROW_ID]))
