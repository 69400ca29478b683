"""Agreement between the deployed model and the people who reviewed its predictions. Pure pandas.

A reviewed row is a ground-truth row whose label is a reviewer's answer (`_origin: review`):
`ground_truth` has already decided which answers count (one person's, or two agreeing with
four-eyes; skips, escalated and open items give none) and joined the row's prediction and
segment values, so agreement is read from the same labeled batches as the live metrics.

The person agrees with the model when the answer is the model's: binary the same 0/1
`prediction`, multiclass the same class (`class_key`, so `3` and `3.0` are one class),
regression a value within a tolerance of the `prediction`: `tolerance` target units when the
policy declares one, else 10 % of the person's value (`RELATIVE_TOLERANCE`).
"""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.live_metrics import rows_once
from unified_ai.names import DEPLOYMENT_COLUMN, ORIGIN, REVIEW_ORIGIN
from unified_ai.projects.tasks import MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: The `live_performance` metadata entry holding the agreement (JSON); the trigger reads it.
AGREEMENT_METADATA = "agreement"
#: Regression without a declared tolerance: agree within this share of the person's value.
RELATIVE_TOLERANCE = 0.1
#: Segment values shown per segment column (the most answered first); the rest are counted.
SHOWN_VALUES = 50


def agreement_rule(task: str, tolerance: float | None) -> str:
    """How a person's answer is judged to agree with the model's, in words."""
    if task != REGRESSION:
        return "same class" if task == MULTICLASS else "same label"
    if tolerance is not None:
        return f"within {tolerance:g} of the predicted value"
    return f"within {RELATIVE_TOLERANCE:.0%} of the person's value"


def agrees(task: str, frame: "pd.DataFrame", tolerance: float | None = None) -> "np.ndarray":
    """Per row of `frame` (`label`: the person's answer; `prediction`: the model's), agreement."""
    import numpy as np

    if not len(frame):
        return np.zeros(0, dtype=bool)
    if task == REGRESSION:
        person = frame["label"].to_numpy(dtype="float64")
        model = frame["prediction"].to_numpy(dtype="float64")
        allowed = tolerance if tolerance is not None else RELATIVE_TOLERANCE * np.abs(person)
        return np.abs(model - person) <= allowed
    if task == MULTICLASS:
        pairs = zip(frame["label"].tolist(), frame["prediction"].tolist(), strict=True)
        return np.asarray([class_key(a) == class_key(b) for a, b in pairs], dtype=bool)
    person = frame["label"].to_numpy(dtype="float64")
    model = frame["prediction"].to_numpy(dtype="float64")
    return person == model


def reviewed_rows(frame: "pd.DataFrame") -> "pd.DataFrame":
    """The rows of a labeled batch whose label is a reviewer's answer."""
    if ORIGIN not in frame.columns or "prediction" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[ORIGIN] == REVIEW_ORIGIN]


def _share(answers: int, agreed: int) -> dict[str, Any]:
    return {
        "answers": answers,
        "agreed": agreed,
        "agreement": agreed / answers if answers else None,
    }


def _by_segment(rows: "pd.DataFrame", agreed: "np.ndarray", segments: list[str]) -> dict:
    """{segment column: {value: counts and share}}, the most answered values first."""
    found: dict[str, dict[str, Any]] = {}
    for column in segments:
        if column not in rows.columns:
            continue
        values = rows[column].astype(object).where(rows[column].notna(), "(missing)")
        table: dict[str, Any] = {}
        for value, count in values.astype(str).value_counts().head(SHOWN_VALUES).items():
            chosen = (values.astype(str) == value).to_numpy()
            table[str(value)] = _share(int(count), int(agreed[chosen].sum()))
        found[column] = table
    return found


def agreement_report(
    batches: list[tuple[str, "pd.DataFrame"]],
    deployment: str,
    *,
    task: str,
    segments: list[str],
    window: int,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """Model-people agreement of `deployment` over its last `window` reviewed batches.

    `batches` are (batch, labeled predictions) oldest first, as `live_report` takes them; a
    row counts once (`rows_once`) and only when `deployment` scored it. Batches without a
    reviewed row of the deployment do not use up the window.

    Returns:
        `deployment`, `rule` (how agreement was judged), `window_batches`, `batches`,
        `answers`, `agreed`, `agreement` (a share, None without answers) and `segments`:
        {column: {value: {answers, agreed, agreement}}}.
    """
    import numpy as np
    import pandas as pd

    chosen = []
    for batch, frame in batches:
        own = frame[frame[DEPLOYMENT_COLUMN] == deployment] if DEPLOYMENT_COLUMN in frame else frame
        rows = reviewed_rows(rows_once(own))
        if len(rows):
            chosen.append((batch, rows))
    chosen = chosen[-window:]
    rows = pd.concat([f for _, f in chosen]) if chosen else pd.DataFrame()
    agreed = agrees(task, rows, tolerance) if len(rows) else np.zeros(0, dtype=bool)
    return {
        "deployment": deployment,
        "rule": agreement_rule(task, tolerance),
        "window_batches": window,
        "batches": [b for b, _ in chosen],
        **_share(len(rows), int(agreed.sum())),
        "segments": _by_segment(rows, agreed, segments) if len(rows) else {},
    }
