"""Which predictions of a batch go to people: the review routing rules (pure).

A row of a scored batch is routed when it is unsure (binary: its probability within `band` of
the threshold; multiclass: its top probability below a bound; regression: its value outside
a declared range, or a shadow model's value too far from it), when an input lies outside what
the model was trained on (a number beyond the training range, a category the training data
never had), or by a seeded random audit share. The daily cap and the per-segment quotas then
choose among those rows, deterministically: the most serious reason first, the most unsure
first within a reason, then a seeded draw. Nothing here reads storage or a clock: the stage
passes the training profile, the time and how many items were routed earlier today.
"""

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from unified_ai.names import ROW_ID
from unified_ai.policies.review_rows import (
    AUDIT,
    OUT_OF_RANGE,
    QUEUE_COLUMNS,
    REASON_SEPARATOR,
    REASONS,
    SHADOW_DISAGREEMENT,
    UNSEEN_CATEGORY,
    UNSURE,
    queue_rows,
    review_id,
    row_details,
    shadow_values,
)
from unified_ai.projects.schema_review import ReviewPolicy, check_review_task
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AUDIT",
    "OUT_OF_RANGE",
    "QUEUE_COLUMNS",
    "REASONS",
    "REASON_SEPARATOR",
    "SHADOW_DISAGREEMENT",
    "UNSEEN_CATEGORY",
    "UNSURE",
    "Routing",
    "TrainingProfile",
    "audit_draw",
    "beyond_training_rows",
    "flagged_rows",
    "review_id",
    "route_batch",
]


@dataclass(frozen=True)
class TrainingProfile:
    """What the model was trained on, as the out-of-range rule compares inputs with it.

    Attributes:
        ranges: Per numeric feature, the lowest and highest training value.
        categories: Per categorical feature, the training values as text (`class_key`, so
            3, 3.0 and "3" are one category).
        source: Where the profile comes from (shown in the queue's metadata).
    """

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    categories: Mapping[str, frozenset[str]] = field(default_factory=dict)
    source: str = ""

    @classmethod
    def of(
        cls,
        frame: "pd.DataFrame",
        numeric: Sequence[str],
        categorical: Sequence[str],
        source: str = "",
    ) -> "TrainingProfile":
        """The profile of the training rows `frame` (columns it lacks are left out)."""
        import pandas as pd

        ranges: dict[str, tuple[float, float]] = {}
        for column in numeric:
            if column in frame.columns:
                values = pd.to_numeric(frame[column], errors="coerce").dropna()
                if len(values):
                    ranges[column] = (float(values.min()), float(values.max()))
        # Each distinct value is put as text once, not each row: a train split of many rows
        # holds a few categories per feature.
        categories = {
            column: frozenset(_category_text(frame[column].dropna().unique()))
            for column in categorical
            if column in frame.columns
        }
        return cls(ranges=ranges, categories=categories, source=source)


@dataclass(frozen=True)
class Routing:
    """The routed rows of one batch and what the cap and the quotas left out.

    Attributes:
        rows: One row per routed prediction (`QUEUE_COLUMNS` and the segment columns).
        flagged: Rows each reason flagged, before the cap and the quotas.
        left_by_cap: Flagged rows not routed because the daily cap was reached.
        left_by_quota: Flagged rows not routed because their segment value had its quota.
    """

    rows: "pd.DataFrame"
    flagged: dict[str, int]
    left_by_cap: int = 0
    left_by_quota: int = 0

    def counts(self) -> dict[str, int]:
        """Routed rows per reason (a row with two reasons counts for both)."""
        found = dict.fromkeys(REASONS, 0)
        for text in self.rows["reasons"]:
            for reason in str(text).split(REASON_SEPARATOR):
                found[reason] += 1
        return found


def audit_draw(seed: int, batch: str, row_id: object) -> float:
    """A number in [0, 1) fixed by the seed, the batch and the row (the audit and tie draw)."""
    body = f"{seed}\0{batch}\0{row_id}".encode()
    return int.from_bytes(hashlib.blake2b(body, digest_size=8).digest(), "big") / 2.0**64


def audit_draws(seed: int, batch: str) -> Callable[[object], float]:
    """`audit_draw` of one seed and batch, for many rows: the same numbers, less work a row.

    The hash of the seed and batch is computed once and copied for each row.
    """
    digest = _row_digests(seed, batch)
    return lambda row_id: int.from_bytes(digest(row_id), "big") / 2.0**64


def _row_digests(seed: int, batch: str) -> Callable[[object], bytes]:
    """The 8-byte digest `audit_draw` hashes for each row id of one seed and batch."""
    copy = hashlib.blake2b(f"{seed}\0{batch}\0".encode(), digest_size=8).copy

    def digest(row_id: object) -> bytes:
        hashed = copy()
        hashed.update(str(row_id).encode())
        return hashed.digest()

    return digest


def route_batch(
    predictions: "pd.DataFrame",
    *,
    review: ReviewPolicy,
    project: str,
    task: str,
    batch: str,
    now: datetime,
    threshold: float = 0.5,
    classes: Sequence[object] | None = None,
    segments: Sequence[str] = (),
    inputs: "pd.DataFrame | None" = None,
    profile: TrainingProfile | None = None,
    routed_today: int = 0,
) -> Routing:
    """The rows of a scored batch that go to people, with why, and the answers to compare.

    Args:
        predictions: The batch's `predictions` frame (the tasks contract's columns, the
            shadow columns, the segment columns the batch has).
        review: The project's `policy.review`.
        project: The project's name (part of each review id).
        task: The deployed model's task (decides the `unsure` rule and the answers' shape).
        batch: The batch id (partition key): part of the review ids and of the audit draw.
        now: When the rows are routed (their due time is `now + review.due_after`).
        threshold: The binary decision threshold the predictions were made at.
        classes: A multiclass model's classes (the shadow's class index names one).
        segments: The project's segment columns (those the frame has are kept on each row;
            a quota's column the frame lacks counts every row as one missing value).
        inputs: The batch's input rows (by `ROW_ID`); needed by `out_of_range` only.
        profile: What the model was trained on; needed by `out_of_range` only.
        routed_today: Items routed earlier the same UTC day by other batches (the daily cap).

    Raises:
        ValueError: The policy sets an `unsure` rule of another task, or `out_of_range` is set
            and no inputs or profile are given.
    """
    import numpy as np

    _check_routing(review, task, now)
    frame = predictions.reset_index(drop=True)
    n = len(frame)
    flags: dict[str, np.ndarray] = {}
    unsure, closeness = _unsure(frame, review, task, threshold)
    flags[UNSURE] = unsure
    flags[SHADOW_DISAGREEMENT] = _disagreement(frame, review, task)
    outside, unseen, aligned = _beyond_rows(frame, review, inputs, profile)
    flags[OUT_OF_RANGE] = _any(outside.values(), n)
    flags[UNSEEN_CATEGORY] = _any(unseen.values(), n)
    draws = _draws(review, batch, frame)
    flags[AUDIT] = draws < review.audit_share
    order = _routing_order(flags, closeness, draws)
    room = n if review.daily_cap is None else max(review.daily_cap - routed_today, 0)
    chosen, left_by_quota = _within_quotas(frame, order, review.segment_quotas, room)
    chosen = np.sort(chosen)
    rows = queue_rows(
        frame.iloc[chosen],
        {reason: mask[chosen] for reason, mask in flags.items()},
        details=row_details(frame, chosen, review, task, threshold, outside, unseen, aligned),
        project=project,
        batch=batch,
        task=task,
        threshold=threshold,
        classes=classes,
        segments=[c for c in segments if c in frame.columns],
        now=now,
        due=now + review.due,
    )
    left_by_cap = len(order) - len(chosen) - left_by_quota
    return Routing(
        rows=rows,
        flagged={reason: int(mask.sum()) for reason, mask in flags.items()},
        left_by_cap=left_by_cap,
        left_by_quota=left_by_quota,
    )


def _check_routing(review: ReviewPolicy, task: str, now: datetime) -> None:
    """Refuse a policy of another task, a naive `now` or an unknown task (ValueError)."""
    check_review_task(review, task)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("review routing: `now` needs a time zone")
    if task not in (BINARY, MULTICLASS, REGRESSION):
        raise ValueError(f"review routing: unknown task {task!r}")


def _beyond_rows(
    frame: "pd.DataFrame",
    review: ReviewPolicy,
    inputs: "pd.DataFrame | None",
    profile: TrainingProfile | None,
) -> "tuple[dict[str, Any], dict[str, Any], pd.DataFrame | None]":
    """(outside, unseen, aligned inputs) of the batch's rows; all empty without `out_of_range`.

    Raises:
        ValueError: `out_of_range` is set and no inputs or profile are given.
    """
    outside: dict[str, Any] = {}
    unseen: dict[str, Any] = {}
    aligned = None
    if review.out_of_range:
        if inputs is None or profile is None:
            raise ValueError("review routing: out_of_range needs the batch's inputs and profile")
        aligned = inputs.set_index(ROW_ID).reindex(frame[ROW_ID]).reset_index(drop=True)
        outside, unseen = _beyond_training(aligned, profile)
    return outside, unseen, aligned


def _routing_order(flags: Mapping[str, Any], closeness: Any, draws: Any) -> Any:
    """Positions of the flagged rows in the order they are offered to the cap and quotas."""
    import numpy as np

    n = len(draws)
    rank = np.full(n, len(REASONS))
    for position, reason in reversed(list(enumerate(REASONS))):
        rank = np.where(flags[reason], position, rank)
    flagged = np.flatnonzero(rank < len(REASONS))
    # How unsure orders only the rows whose first reason is `unsure`: an audit sample or the
    # out-of-range rows would otherwise lean toward the threshold.
    closeness = np.where(rank == REASONS.index(UNSURE), closeness, 0.0)
    # Most serious reason first; within it the most unsure first; then the seeded draw.
    return flagged[np.lexsort((draws[flagged], closeness[flagged], rank[flagged]))]


def _any(masks: Iterable[Any], n: int) -> Any:
    import numpy as np

    found = np.zeros(n, dtype=bool)
    for mask in masks:
        found |= mask
    return found


def _unsure(frame: "pd.DataFrame", review: ReviewPolicy, task: str, threshold: float):
    """(rows the task's `unsure` rule flags, how close each is to sure: 0 is least sure)."""
    import numpy as np

    n, rule = len(frame), review.unsure
    if task == BINARY and rule.band is not None:
        distance = np.abs(frame["proba"].to_numpy(dtype="float64") - threshold)
        return distance <= rule.band, distance / rule.band
    if task == MULTICLASS and rule.top_probability_below is not None:
        top = frame["proba"].to_numpy(dtype="float64")
        return top < rule.top_probability_below, top / rule.top_probability_below
    if task == REGRESSION and rule.outside is not None:
        low, high = rule.outside
        value = frame["prediction"].to_numpy(dtype="float64")
        # Further outside is less sure: rank by the negative distance past the bound.
        past = np.maximum(low - value, value - high)
        return past > 0, -past
    return np.zeros(n, dtype=bool), np.zeros(n)


def _disagreement(frame: "pd.DataFrame", review: ReviewPolicy, task: str):
    """Regression rows where a shadow's value is further than the bound from the model's."""
    import numpy as np

    bound = review.unsure.shadow_disagreement_above
    if task != REGRESSION or bound is None:
        return np.zeros(len(frame), dtype=bool)
    value = frame["prediction"].to_numpy(dtype="float64")
    shadows = shadow_values(frame).to_numpy(dtype="float64")
    gaps = np.abs(shadows - value[:, None])
    # A shadow that did not score the row (NaN) disagrees with nothing.
    return (np.where(np.isnan(gaps), -np.inf, gaps) > bound).any(axis=1)


def _category_text(values: Any) -> list[str]:
    """Each value as text (`values`: a Series or the array `unique()` gives)."""
    return [class_key(v) for v in values.tolist()]


def flagged_rows(
    predictions: "pd.DataFrame",
    *,
    review: ReviewPolicy,
    task: str,
    batch: str,
    threshold: float = 0.5,
) -> Any:
    """Which rows the rules on the predictions alone route, as a boolean array in row order.

    Those are `unsure`, shadow disagreement and the audit draw, before the cap and the quotas;
    `beyond_training_rows` judges the inputs.
    """
    frame = predictions.reset_index(drop=True)
    flagged, _ = _unsure(frame, review, task, threshold)
    flagged = flagged | _disagreement(frame, review, task)
    if review.audit_share > 0:  # no draw is below 0: the hashes would be wasted
        flagged |= _draws(review, batch, frame) < review.audit_share
    return flagged


def _draws(review: ReviewPolicy, batch: str, frame: "pd.DataFrame") -> Any:
    return audit_draw_array(review.seed, batch, frame[ROW_ID].tolist())


def audit_draw_array(seed: int, batch: str, row_ids: Sequence[object]) -> Any:
    """`audit_draw` of each row id, as a float64 array in their order (a batch's many rows)."""
    import numpy as np

    digests = b"".join(map(_row_digests(seed, batch), row_ids))
    # The digests as big-endian 64-bit integers, each divided as `audit_draw` divides it.
    return np.frombuffer(digests, dtype=">u8") / 2.0**64


def beyond_training_rows(inputs: "pd.DataFrame", profile: TrainingProfile) -> Any:
    """Which input rows `out_of_range` routes, as a boolean array in row order.

    A row is routed for a value beyond its feature's training range or a category the model
    never trained on.
    """
    outside, unseen = _beyond_training(inputs.reset_index(drop=True), profile)
    return _any([*outside.values(), *unseen.values()], len(inputs))


def _beyond_training(aligned: "pd.DataFrame", profile: TrainingProfile):
    """Per feature, the rows beyond its training range / with a category never trained on."""
    import numpy as np
    import pandas as pd

    outside = {}
    for column, (low, high) in profile.ranges.items():
        if column in aligned.columns:
            values = pd.to_numeric(aligned[column], errors="coerce").to_numpy(dtype="float64")
            with np.errstate(invalid="ignore"):
                outside[column] = (values < low) | (values > high)  # a missing value is neither
    unseen = {}
    for column, known in profile.categories.items():
        if column in aligned.columns:
            unseen[column] = _unseen_categories(aligned[column], known)
    return outside, unseen


def _unseen_categories(values: "pd.Series", known: frozenset[str]) -> Any:
    """The rows of `values` holding a category (`class_key`) not in `known`; missing is not.

    A categorical column holds a few distinct values over many rows: each distinct value is
    put as text once, not each row (a 1M-row batch has a handful per feature).
    """
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = np.asarray(uniques, dtype=object).tolist()
    unknown = np.array([class_key(v) not in known for v in distinct] + [False], dtype=bool)
    return unknown[codes]  # a missing value's code is -1: the trailing False


def _within_quotas(
    frame: "pd.DataFrame", order: Any, quotas: Mapping[str, int | float], room: int
) -> tuple[Any, int]:
    """(positions taken in `order` within the room and the quotas, rows a quota left out).

    A count quota bounds how many items of one segment value a batch routes; a share bounds
    it to that share of what the batch can route (its flagged rows within the room, rounded
    up, so a share never rounds a value down to nothing).
    """
    import numpy as np

    if not quotas:
        return order[:room], 0
    budget = min(room, len(order))
    limits = {
        column: quota if isinstance(quota, int) else math.ceil(quota * budget)
        for column, quota in quotas.items()
    }
    values = {
        column: (frame[column].astype(object).where(frame[column].notna(), None).tolist())
        if column in frame.columns
        else [None] * len(frame)
        for column in quotas
    }
    taken: list[int] = []
    used: dict[str, dict[object, int]] = {column: {} for column in quotas}
    skipped = 0
    for position in order:
        if len(taken) >= room:
            break
        keys = {column: values[column][position] for column in quotas}
        if any(used[c].get(k, 0) >= limits[c] for c, k in keys.items()):
            skipped += 1
            continue
        for column, value in keys.items():
            used[column][value] = used[column].get(value, 0) + 1
        taken.append(int(position))
    return np.asarray(taken, dtype=int), skipped
