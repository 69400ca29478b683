"""What a routed prediction says: its reasons, what they saw, and both models' answers (pure).

The rows of `review_queue` as `unified_ai.policies.review` builds them: one text column of
reasons (most serious first), one line of detail for the person who reviews it, the model's
answer and score, the shadow's answer and score (a waiting candidate's, else the deployment a
rollback would restore), when it was routed and when it is due.
"""

import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from unified_ai.names import (
    REVIEW_ID,
    ROW_ID,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import pandas as pd

#: Why a row is routed, most serious first: the order in which the cap and the quotas take rows.
OUT_OF_RANGE = "out_of_range"
UNSEEN_CATEGORY = "unseen_category"
UNSURE = "unsure"
SHADOW_DISAGREEMENT = "shadow_disagreement"
AUDIT = "audit"
REASONS = (OUT_OF_RANGE, UNSEEN_CATEGORY, UNSURE, SHADOW_DISAGREEMENT, AUDIT)

#: Columns of a routed row (plus the batch's segment columns, after `ROW_ID`).
QUEUE_COLUMNS = (
    REVIEW_ID,
    "batch",
    ROW_ID,
    "reasons",
    "detail",
    "model_answer",
    "model_score",
    "shadow_model",
    "shadow_answer",
    "shadow_score",
    "model_version",
    "routed_at",
    "due_at",
)
#: Separates the reasons of a row in the stored `reasons` column (one text column keeps the
#: stored frame one shape whether a batch routes rows or not).
REASON_SEPARATOR = ","


def review_id(project: str, batch: str, row_id: object) -> str:
    """A short, stable id of one prediction of one batch (the same on every rerun)."""
    body = f"{project}\0{batch}\0{row_id}".encode()
    return hashlib.blake2b(body, digest_size=8).hexdigest()


def shadow_values(frame: "pd.DataFrame") -> "pd.DataFrame":
    """The shadow scores of each row: candidate first (the model that may replace this one)."""
    import numpy as np
    import pandas as pd

    columns = {}
    for column in (SHADOW_CANDIDATE_PROBA, SHADOW_PREVIOUS_PROBA):
        values = frame[column] if column in frame.columns else np.nan
        columns[column] = pd.to_numeric(pd.Series(values, index=frame.index), errors="coerce")
    return pd.DataFrame(columns, index=frame.index)


def row_details(
    frame: "pd.DataFrame",
    chosen: Any,
    review: ReviewPolicy,
    task: str,
    threshold: float,
    outside: Mapping[str, Any],
    unseen: Mapping[str, Any],
    aligned: "pd.DataFrame | None",
) -> list[str]:
    """One line per routed row saying what its reasons saw (for the person who reviews it).

    `aligned` holds the batch's inputs in the rows' order (None without `out_of_range`).
    """
    rule = review.unsure
    score_column = "prediction" if task == REGRESSION else "proba"
    scores = frame[score_column].to_numpy(dtype="float64") if len(frame) else []
    shadows = shadow_values(frame)
    shadow_arrays = {name: shadows[name].to_numpy(dtype="float64") for name in shadows.columns}
    inputs = {} if aligned is None else {c: aligned[c].to_numpy() for c in {*outside, *unseen}}
    lines = []
    for position in chosen:
        parts = [
            f"{column}={_shown(inputs[column][position])} outside the training range"
            for column, mask in outside.items()
            if mask[position]
        ]
        parts += [
            f"{column}={inputs[column][position]!r} never seen in training"
            for column, mask in unseen.items()
            if mask[position]
        ]
        score = float(scores[position])
        if task == BINARY and rule.band is not None and abs(score - threshold) <= rule.band:
            parts.append(f"probability {score:.3f} within {rule.band} of {threshold}")
        bound = rule.top_probability_below
        if task == MULTICLASS and bound is not None and score < bound:
            parts.append(f"top probability {score:.3f} below {bound}")
        if task == REGRESSION and rule.outside is not None:
            low, high = rule.outside
            if not low <= score <= high:
                parts.append(f"value {score:.6g} outside [{low:g}, {high:g}]")
        gap = rule.shadow_disagreement_above
        for name, values in shadow_arrays.items():
            shadow = values[position]
            if task == REGRESSION and gap is not None and abs(shadow - score) > gap:  # NaN: no
                parts.append(f"{name} {shadow:.6g} differs by more than {gap:g}")
        lines.append("; ".join(parts))
    return lines


def queue_rows(
    rows: "pd.DataFrame",
    flags: Mapping[str, Any],
    *,
    details: list[str],
    project: str,
    batch: str,
    task: str,
    threshold: float,
    classes: Sequence[object] | None,
    segments: Sequence[str],
    now: datetime,
    due: datetime,
) -> "pd.DataFrame":
    """The stored queue rows: ids, reasons, both answers, the due time."""
    import numpy as np
    import pandas as pd

    n = len(rows)
    reasons = [REASON_SEPARATOR.join(r for r in REASONS if flags[r][i]) for i in range(n)]
    shadows = shadow_values(rows)
    candidate = shadows[SHADOW_CANDIDATE_PROBA].to_numpy(dtype="float64")
    previous = shadows[SHADOW_PREVIOUS_PROBA].to_numpy(dtype="float64")
    use_candidate = ~np.isnan(candidate)
    shadow_score = np.where(use_candidate, candidate, previous)
    shadow_owner = np.where(
        use_candidate,
        _texts(rows, SHADOW_CANDIDATE_MODEL),
        _texts(rows, SHADOW_PREVIOUS_DEPLOYMENT),
    )
    model_score = (rows["prediction"] if task == REGRESSION else rows["proba"]).to_numpy(
        dtype="float64"
    )
    queue = pd.DataFrame(
        {
            REVIEW_ID: [review_id(project, batch, r) for r in rows[ROW_ID]],
            "batch": batch,
            ROW_ID: rows[ROW_ID].to_numpy(),
            **{column: rows[column].to_numpy() for column in segments},
            "reasons": pd.Series(reasons, dtype=object),
            "detail": pd.Series(details, dtype=object),
            "model_answer": pd.Series([_answer(task, v) for v in rows["prediction"]], dtype=object),
            "model_score": model_score,
            "shadow_model": pd.Series(
                [o if s == s else None for o, s in zip(shadow_owner, shadow_score, strict=True)],
                dtype=object,
            ),
            "shadow_answer": pd.Series(
                [_shadow_answer(task, s, threshold, classes) for s in shadow_score], dtype=object
            ),
            "shadow_score": shadow_score,
            "model_version": _texts(rows, "model_version"),
            "routed_at": pd.Series([now] * n, dtype="datetime64[ns, UTC]"),
            "due_at": pd.Series([due] * n, dtype="datetime64[ns, UTC]"),
        }
    )
    return queue[[REVIEW_ID, "batch", ROW_ID, *segments, *QUEUE_COLUMNS[3:]]]


def _shown(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _texts(rows: "pd.DataFrame", column: str) -> Any:
    import numpy as np

    if column not in rows.columns:
        return np.full(len(rows), None, dtype=object)
    return np.asarray([None if v is None or v != v else str(v) for v in rows[column]], dtype=object)


def _answer(task: str, value: Any) -> str:
    """The model's answer as text: binary 0/1, a multiclass label, a regression value."""
    return repr(float(value)) if task == REGRESSION else class_key(value)


def _shadow_answer(
    task: str, score: float, threshold: float, classes: Sequence[object] | None
) -> str | None:
    """A shadow's answer in the model's terms (its score is the primary score of its task)."""
    if math.isnan(score):
        return None
    if task == BINARY:
        return "1" if score >= threshold else "0"
    if task == MULTICLASS:
        index = int(score)
        known = list(classes or [])
        return class_key(known[index]) if 0 <= index < len(known) else str(index)
    return repr(float(score))
