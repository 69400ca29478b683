"""Review routing of served rows and the state of a held answer (pure).

The endpoint routes the rows of each request by the rules the batch path uses
(`unified_ai.policies.review.route_batch`): unsure (binary band around the threshold, multiclass
top probability, regression outside a declared range), out of range against what the deployed
model was trained on, and the seeded audit share, within the daily cap. A request is routed as
one small batch: its rows all go to one inbox batch, whose name is part of each review id and of
the audit draw, so a served row keeps the id (and the draw) the batch path gives it when the
batch is scored later, and an answer recorded for either is the answer of both.

Routing costs little on the request path: `flagged` applies the per-row rules to the request's
plain arrays (no frame), and only the flagged rows (usually none) go through `route_batch`,
which builds the queue rows, ranks them and applies the cap and the quotas exactly as for a
batch (a flagged subset is ranked as the whole request would be: the other rows never enter
the order). Shadow disagreement is a batch-only rule: the endpoint scores with one model.

`held_state` says what a held row's answer is now: pending, answered (by the person, within
the due time), or timed out (past the due time, `on_timeout` applied on read: the model's
decision for `keep_model_decision`, declined for `decline`).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from unified_ai.names import ROW_ID
from unified_ai.policies.review import (
    Routing,
    TrainingProfile,
    audit_draw,
    audit_draws,
    route_batch,
)
from unified_ai.policies.review_answers import (
    ANSWERED,
    ESCALATED,
    OVERDUE,
    ReviewAnswer,
    item_state,
    label_value,
    timeout_of,
)
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "ANSWERED_STATUS",
    "PENDING_STATUS",
    "TIMED_OUT_STATUS",
    "flagged",
    "held_state",
    "route_served",
    "served_scores",
]

#: What a held row's answer is: waiting for a person, given by one, or taken by `on_timeout`.
PENDING_STATUS, ANSWERED_STATUS, TIMED_OUT_STATUS = "pending_review", "answered", "timed_out"


def served_scores(
    task: str, predicted: Any, class_keys: Sequence[str], threshold: float
) -> tuple["np.ndarray", list[Any]]:
    """(score per row as the rules read it, the model's answer per row) of served predictions.

    The score is the `predictions` frame's: binary `proba` (P(positive)), multiclass `proba`
    (the top probability), regression `prediction` (the value). The answer is the frame's
    `prediction`: binary 0/1 at the threshold, multiclass the class as text, regression the
    value.
    """
    import numpy as np

    values = np.asarray(predicted, dtype="float64")
    if task == MULTICLASS:
        best = values.argmax(axis=1) if len(values) else np.zeros(0, dtype=int)
        top = values[np.arange(len(values)), best] if len(values) else np.zeros(0)
        return top, [class_key_of(class_keys, i) for i in best.tolist()]
    if task == BINARY:
        return values, (values >= threshold).astype(int).tolist()
    return values, values.tolist()


def class_key_of(class_keys: Sequence[str], index: int) -> str:
    return class_key(class_keys[index]) if 0 <= index < len(class_keys) else str(index)


def flagged(
    review: ReviewPolicy,
    task: str,
    *,
    scores: "np.ndarray",
    row_ids: Sequence[str],
    batch: str,
    threshold: float,
    inputs: Mapping[str, Any] | None = None,
    profile: TrainingProfile | None = None,
) -> list[int]:
    """Positions of the rows any per-row rule routes (before the cap and the quotas).

    Args:
        review: The project's `policy.review`.
        task: The served model's task.
        scores: The rows' scores (`served_scores`).
        row_ids: The rows' ids (`<batch>:<n>`), part of the audit draw.
        batch: The inbox batch the rows are written to.
        threshold: The binary decision threshold.
        inputs: Per input column, its values in row order (numbers as floats, categories as
            text, missing as None or NaN); used by `out_of_range` only.
        profile: What the served model was trained on; without it `out_of_range` flags nothing.
    """
    # Plain Python: for the few rows of a request, cheaper than numpy's per-call overhead.
    values = scores.tolist()
    rule = review.unsure
    found: set[int] = set()
    if task == BINARY and rule.band is not None:
        band = rule.band
        found.update(i for i, v in enumerate(values) if abs(v - threshold) <= band)
    elif task == MULTICLASS and rule.top_probability_below is not None:
        bound = rule.top_probability_below
        found.update(i for i, v in enumerate(values) if v < bound)
    elif task == REGRESSION and rule.outside is not None:
        low, high = rule.outside
        found.update(i for i, v in enumerate(values) if v < low or v > high)
    if review.out_of_range and profile is not None and inputs is not None:
        found.update(_beyond_rows(inputs, profile, len(values)))
    if review.audit_share > 0:
        seed, share = review.seed, review.audit_share
        if len(row_ids) <= _PLAIN_ROWS:
            found.update(i for i, row in enumerate(row_ids) if audit_draw(seed, batch, row) < share)
        else:
            draw = audit_draws(seed, batch)
            found.update(i for i, row in enumerate(row_ids) if draw(row) < share)
    return sorted(found)


#: Up to this many rows, routing compares plain Python values (numpy's per-call overhead,
#: a few microseconds per column, is most of the work for the few rows of a request).
_PLAIN_ROWS = 32


def _beyond_rows(inputs: Mapping[str, Any], profile: TrainingProfile, n: int) -> list[int]:
    """Positions of the rows `_beyond` flags, on plain values for a request's few rows."""
    if n <= _PLAIN_ROWS:
        return [i for i, hit in enumerate(_beyond_plain(inputs, profile, n)) if hit]
    return _beyond(inputs, profile, n).nonzero()[0].tolist()


def _beyond(inputs: Mapping[str, Any], profile: TrainingProfile, n: int) -> "np.ndarray":
    """Rows with a number beyond its training range or a category training never had."""
    import numpy as np

    found = np.zeros(n, dtype=bool)
    for column, (low, high) in profile.ranges.items():
        if column in inputs:
            values = inputs[column]
            if not (isinstance(values, np.ndarray) and values.dtype.kind == "f"):
                values = np.asarray([np.nan if v is None else v for v in values], dtype="float64")
            with np.errstate(invalid="ignore"):
                found |= (values < low) | (values > high)  # a missing value is neither
    return found | np.asarray(_unseen_rows(inputs, profile, n), dtype=bool)


def _beyond_plain(inputs: Mapping[str, Any], profile: TrainingProfile, n: int) -> list[bool]:
    """`_beyond` on plain values: the same comparisons (NaN and None are never beyond)."""
    found = _unseen_rows(inputs, profile, n)
    for column, (low, high) in profile.ranges.items():
        if column in inputs:
            column_values = inputs[column]
            if hasattr(column_values, "tolist"):
                column_values = column_values.tolist()
            for i, v in enumerate(column_values):
                if v is not None and (float(v) < low or float(v) > high):
                    found[i] = True
    return found


def _unseen_rows(inputs: Mapping[str, Any], profile: TrainingProfile, n: int) -> list[bool]:
    """Per row, whether it holds a category training never had (`_unseen`)."""
    found = [False] * n
    for column, known in profile.categories.items():
        if column not in inputs:
            continue
        if n <= _PLAIN_ROWS:  # a request's few rows: judged one by one
            for i, v in enumerate(inputs[column]):
                if not (type(v) is str and v in known) and _unseen(v, known):
                    found[i] = True
        else:
            # A column holds a few categories over many rows. Keyed with the type: True, 1
            # and 1.0 are equal keys but not one category's text.
            judged: dict[tuple[type, Any], bool] = {}
            for i, v in enumerate(inputs[column]):
                try:
                    unseen = judged[type(v), v]
                except KeyError:
                    unseen = judged[type(v), v] = _unseen(v, known)
                except TypeError:  # not hashable: judged alone
                    unseen = _unseen(v, known)
                if unseen:
                    found[i] = True
    return found


def _unseen(value: Any, known: frozenset[str]) -> bool:
    """Whether a served category is one training never had (a missing value never is).

    Served rows hold the model's text of a category: a category trained as the number 1.0 is
    served as the text "1.0", which is the training category "1" (`class_key`: 1, 1.0 and "1"
    are one category).
    """
    if _missing(value):
        return False
    if class_key(value) in known:
        return False
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return True
        return class_key(number) not in known
    return True


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def route_served(
    review: ReviewPolicy,
    *,
    project: str,
    task: str,
    batch: str,
    now: datetime,
    positions: Sequence[int],
    row_ids: Sequence[str],
    scores: "np.ndarray",
    answers: Sequence[Any],
    model_version: str,
    threshold: float,
    classes: Sequence[object] | None,
    segments: Mapping[str, Sequence[Any]],
    inputs: Mapping[str, Sequence[Any]] | None,
    profile: TrainingProfile | None,
    routed_today: int,
) -> Routing:
    """The flagged rows of one request through `route_batch` (queue rows, cap, quotas).

    Args:
        review: The project's `policy.review`.
        project: The project's name (part of each review id).
        task: The served model's task.
        batch: The inbox batch the request's rows are written to.
        now: When the rows are routed (their due time is `now + review.due_after`).
        positions: The flagged rows (`flagged`), the only rows that can be routed.
        row_ids: The request's row ids, in row order.
        scores: The rows' scores (`served_scores`).
        answers: The model's answer per request row (`served_scores`).
        model_version: The `candidate_model` version that scored them.
        threshold: The binary decision threshold.
        classes: A multiclass model's classes.
        segments: Per segment column the request holds, its values in row order.
        inputs: Per input column, its values in row order (with `out_of_range`).
        profile: What the served model was trained on (with `out_of_range`).
        routed_today: Served items routed earlier the same UTC day (the daily cap).
    """
    import pandas as pd

    chosen = list(positions)
    score_column = "prediction" if task == REGRESSION else "proba"
    columns: dict[str, Any] = {ROW_ID: [row_ids[i] for i in chosen]}
    if task != REGRESSION:
        columns["proba"] = [float(scores[i]) for i in chosen]
    columns["prediction"] = [answers[i] for i in chosen]
    columns["model_version"] = [model_version] * len(chosen)
    columns.update({c: [values[i] for i in chosen] for c, values in segments.items()})
    frame = pd.DataFrame(columns)
    frame[score_column] = frame[score_column].astype("float64")
    use_profile = review.out_of_range and profile is not None and inputs is not None
    framed_inputs = None
    if use_profile and inputs is not None:
        framed_inputs = pd.DataFrame(
            {ROW_ID: columns[ROW_ID], **{c: [v[i] for i in chosen] for c, v in inputs.items()}}
        )
    return route_batch(
        frame,
        # Without a training profile `out_of_range` flags nothing here (and is not asked for).
        review=review if use_profile else review.model_copy(update={"out_of_range": False}),
        project=project,
        task=task,
        batch=batch,
        now=now,
        threshold=threshold,
        classes=classes,
        segments=list(segments),
        inputs=framed_inputs,
        profile=profile if use_profile else None,
        routed_today=routed_today,
    )


def held_state(
    review: ReviewPolicy,
    task: str,
    *,
    answers: Sequence[ReviewAnswer],
    due_at: datetime,
    now: datetime,
    model_answer: str | None,
) -> dict[str, Any]:
    """What a routed row's answer is now, as `GET .../reviews/{id}` gives it.

    Only answers recorded by the due time decide a held row: once it timed out, `on_timeout`
    took the decision and a later answer (still recorded, still ground truth) does not change
    what the client was told. Past the due time, the `on_timeout` a `timeout` record names
    holds; with no such record it is applied on read: `keep_model_decision` gives the model's
    decision, `decline` declines.

    Returns:
        `status` (`pending_review`, `answered` or `timed_out`), and with it `decision` (the
        task's form: binary 0/1, a class, a value; None when declined), `answered_by` /
        `answered_at` for a person's answer, `outcome` (the `on_timeout` applied), `escalated`
        while two reviewers disagree.
    """
    on_time = [a for a in answers if _at(a) <= due_at]
    state, agreed = item_state(review, on_time, due_at, now)
    if state == ANSWERED and agreed is not None:
        deciding = [a for a in on_time if a.action == "answer" and a.answer == agreed]
        return {
            "status": ANSWERED_STATUS,
            "decision": label_value(task, agreed),
            "answered_by": list(dict.fromkeys(a.reviewer for a in deciding)),
            "answered_at": deciding[-1].at if deciding else None,
        }
    if state == OVERDUE or (state == ESCALATED and now > due_at):
        # What `on_timeout` did when it was recorded (the queue's watch), else the policy's.
        recorded = timeout_of(answers)
        outcome = (recorded.on_timeout if recorded is not None else None) or review.on_timeout
        keep = outcome == "keep_model_decision"
        late = [a.answer for a in answers if a.action == "answer" and _at(a) > due_at]
        return {
            "status": TIMED_OUT_STATUS,
            "outcome": outcome,
            "decision": label_value(task, model_answer) if keep and model_answer else None,
            "declined": not keep,
            **({"late_answers": late} if late else {}),
        }
    return {"status": PENDING_STATUS, "escalated": state == ESCALATED}


def _at(answer: ReviewAnswer) -> datetime:
    return datetime.fromisoformat(answer.at)
