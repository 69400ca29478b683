"""A production batch scored: the stored predictions frame and the shadow sample (pure)."""

import zlib
from typing import TYPE_CHECKING, Any

from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ROW_ID,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)

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
) -> "pd.DataFrame":
    """The batch's row ids and segment columns with the live model's scores and decisions.

    Args:
        batch: The production rows.
        proba: The live model's positive-class probability of each row.
        segments: The project's segment columns (those the batch has are kept).
        threshold: A row is predicted positive at or above it.
        deployment: The deployment version that scored the batch.
        model_version: The model version that deployment serves.
    """
    keep = [ROW_ID, *[c for c in segments if c in batch.columns]]
    scored = batch[keep].copy()
    scored["proba"] = proba
    scored["prediction"] = (proba >= threshold).astype(int)
    scored[DEPLOYMENT_COLUMN] = deployment
    scored["model_version"] = model_version
    return scored


def non_finite_scores(batch: "pd.DataFrame", proba: Any) -> tuple[int, Any] | None:
    """(how many scores are NaN or infinite, the row id of the first), or None when none is."""
    import numpy as np

    bad = ~np.isfinite(np.asarray(proba, dtype="float64"))
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
