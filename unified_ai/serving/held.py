"""Served rows routed to people (`policy.review`): route, keep, and hold the decision.

Built only for a project with `policy.review`; without one the endpoint does no review work at
all. Per request, `route` applies the per-row rules to the request's plain arrays
(`unified_ai.policies.review_serving.flagged`, a comparison per row and, with an audit share,
one hash per row); only flagged rows (usually none) are ranked and capped through the batch
path's `route_batch`. `keep` stores the routed rows (`unified_ai.io.review_served`), one
version per item, off the event loop. With `hold_decision`, a routed row is answered
`status: pending_review` with its review id and due time instead of the model's answer; without
it the answer is the model's, and the row is still queued for people to see.

The daily cap counts the served items routed since midnight UTC by every process serving the
project: each process counts its own at once, and the others' by listing the stored items
(reading only ids it has not seen) when it starts and, off the request path, after keeping
routed rows once its count is `RECOUNT_SECONDS` old. The request path itself never reads the
store to route. With `serve --workers N`, a process deciding on a stale count may so pass the
cap by the rows of one request before it counts again. Served rows reach the batch path later
(the inbox), where they are routed again under the same ids: not counted twice, as the batch
path counts only its own materializations.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from unified_ai.policies.review_rows import REASON_SEPARATOR
from unified_ai.policies.review_serving import (
    PENDING_STATUS,
    flagged,
    route_served,
    served_scores,
)
from unified_ai.serving.refusal import RETRY, Refusal

if TYPE_CHECKING:
    from unified_ai.io.review_served import ServedItem
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig
    from unified_ai.serving.follower import Served
    from unified_ai.serving.plain_rows import CheckedRows

log = logging.getLogger("unified_ai.serving")

#: How old a process's count of today's served items may be before it lists the store again.
RECOUNT_SECONDS = 2.0


@dataclass(frozen=True)
class Routed:
    """The routed rows of one request: the items to keep, and their positions in the answer."""

    items: "list[ServedItem]"
    positions: list[int]
    held: bool


class ServedReviews:
    """Routes one project's served rows by its `policy.review` and keeps the routed ones.

    Args:
        project: The project (it has `policy.review`).
        store: The lineage store the items are kept in.
    """

    def __init__(self, project: "ProjectConfig", store: "LineageStore"):
        review = project.policy.review
        assert review is not None, "ServedReviews needs policy.review"
        self.project = project
        self.review = review
        self.store = store
        self._lock = threading.Lock()
        self._day: date | None = None
        self._today: set[str] = set()  # ids routed today (this process's, and others' seen)
        self._seen: dict[str, date] = {}  # every stored id read, and its routing day
        self._counted_at = -float("inf")
        self.recount()  # what other processes routed today, before the first request

    @property
    def held(self) -> bool:
        """Whether a routed row's answer waits for a person (`hold_decision`)."""
        return self.review.hold_decision

    # -- routing -----------------------------------------------------------------------------

    def route(
        self,
        served: "Served",
        predicted: Any,
        ids: Sequence[str],
        checked: "CheckedRows | None" = None,
        inputs: Any = None,
    ) -> Routed | None:
        """The rows of one scored request that go to people (None: none does).

        Args:
            served: The deployment that scored them.
            predicted: Its predictions (the task's shape).
            ids: The rows' ids (`<batch>:<n>`: one batch per request).
            checked: The request's checked rows (the fast path), or
            inputs: its model inputs as a frame (the batch path); for `out_of_range` and the
                segment values.
        """
        project, review = self.project, self.review
        if not ids:
            return None
        batch = ids[0].rpartition(":")[0]  # the writer's ids: `<batch>:<n>`, one batch
        threshold = project.evaluation.threshold
        scores, answers = served_scores(served.task, predicted, served.class_keys, threshold)
        profile = served.review_profile
        compared = review.out_of_range and profile is not None
        columns = _columns(checked, inputs) if compared else None
        positions = flagged(
            review,
            served.task,
            scores=scores,
            row_ids=ids,
            batch=batch,
            threshold=threshold,
            inputs=columns,
            profile=profile,
        )
        if not positions:
            return None
        now = datetime.now(timezone.utc)
        if review.daily_cap is not None:
            with self._lock:
                if self._routed_today(now) >= review.daily_cap:
                    # The day's cap is reached: the rows keep the model's answer, at the cost
                    # of the per-row check alone (ranking them would route none).
                    return None
        columns = columns if columns is not None else _columns(checked, inputs)
        with self._lock:
            earlier = self._routed_today(now)
            routing = route_served(
                review,
                project=project.name,
                task=served.task,
                batch=batch,
                now=now,
                positions=positions,
                row_ids=ids,
                scores=scores,
                answers=answers,
                model_version=served.model_version,
                threshold=threshold,
                classes=list(served.class_keys) or None,
                segments={c: columns[c] for c in project.segments if c in columns},
                inputs=columns if compared else None,
                profile=profile,
                routed_today=earlier,
            )
            from unified_ai.io.review_served import served_items_of

            items = served_items_of(
                routing.rows,
                held=review.hold_decision,
                deployment_version=served.deployment_version,
                classes=served.class_keys,
                segments=project.segments,
            )
            for item in items:  # reserved under the cap
                self._today.add(item.review_id)
                self._seen[item.review_id] = item.routed_at.astimezone(timezone.utc).date()
        if not items:
            return None
        where = {row_id: i for i, row_id in enumerate(ids)}
        return Routed(items, [where[item.row_id] for item in items], review.hold_decision)

    def _routed_today(self, now: datetime) -> int:
        """Served items routed since midnight UTC, as counted so far (no IO: lock held)."""
        if self.review.daily_cap is None:
            return 0
        day = now.astimezone(timezone.utc).date()
        if day != self._day:
            self._day = day
            self._today = {i for i, routed in self._seen.items() if routed == day}
        return len(self._today)

    def recount(self) -> None:
        """Count the items every process routed today, reading only ids not seen before.

        Off the request path: when the service is built, and after routed items are kept
        (in a worker thread) once the count is `RECOUNT_SECONDS` old. The store is read
        without the lock; the count is merged under it.
        """
        from unified_ai.io.review_served import served_item, served_review_ids

        if self.review.daily_cap is None:
            return
        name = self.project.name
        self._counted_at = time.monotonic()
        found: dict[str, date] = {}
        try:
            for review_id in served_review_ids(self.store, name):
                if review_id not in self._seen:
                    item = served_item(self.store, name, review_id)
                    if item is not None:
                        found[review_id] = item.routed_at.astimezone(timezone.utc).date()
        except Exception as exc:  # counted again next time; the own count still holds
            log.warning("%s: served review items could not be counted (%s)", name, exc)
        with self._lock:
            self._seen.update(found)
            today = self._day or datetime.now(timezone.utc).date()
            self._today.update(i for i, routed in found.items() if routed == today)

    # -- keeping and answering ---------------------------------------------------------------

    def keep(self, routed: Routed) -> None:
        """Store the routed items (one version each); on failure they are no longer reserved.

        Raises:
            Exception: The store's error, when an item could not be written.
        """
        from unified_ai.io.review_served import store_served

        try:
            store_served(self.store, self.project, routed.items)
        except Exception:
            with self._lock:
                for item in routed.items:
                    self._today.discard(item.review_id)
                    self._seen.pop(item.review_id, None)
            raise
        if time.monotonic() - self._counted_at >= RECOUNT_SECONDS:
            self.recount()

    def settle(self, result: dict[str, Any], routed: Routed) -> dict[str, Any]:
        """Keep the routed rows for people; the answer, held rows answered `pending_review`.

        A held row whose item cannot be kept is not answered with a decision the policy says
        must wait: the request is refused (503). Without `hold_decision` the answer stands and
        the failure is logged (the row still reaches the batch path, which routes it again).
        """
        try:
            self.keep(routed)
        except Exception as exc:
            where = f"{self.project.name}: routed rows could not be kept for review"
            log.error("%s", where, exc_info=exc)
            if routed.held:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise Refusal(
                    503, "review_unavailable", f"{where} ({first}); retry", headers=RETRY
                ) from None
            return result
        return self.answer(result, routed)

    @staticmethod
    def answer(result: dict[str, Any], routed: Routed) -> dict[str, Any]:
        """The predict answer with each held row's decision replaced by `pending_review`."""
        if not routed.held:
            return result
        rows = result["predictions"]
        for position, item in zip(routed.positions, routed.items, strict=True):
            row = rows[position]
            rows[position] = {
                "row_id": row["row_id"],
                "status": PENDING_STATUS,
                "review_id": item.review_id,
                "due_at": item.due_at.isoformat(),
                "reasons": item.reasons.split(REASON_SEPARATOR),
                "model_version": row["model_version"],
                "deployment_version": row["deployment_version"],
            }
        return result


def settled(
    reviews: ServedReviews | None, result: dict[str, Any], routed: Routed | None
) -> dict[str, Any]:
    """`result` once its routed rows are kept (`ServedReviews.settle`); as it is without any."""
    if reviews is None or routed is None:
        return result
    return reviews.settle(result, routed)


def _columns(checked: "CheckedRows | None", inputs: Any) -> dict[str, Any]:
    """Per request column, its values in row order (from the fast path or the batch path)."""
    if checked is not None:
        return checked.written
    if inputs is None:
        return {}
    return {str(c): inputs[c].tolist() for c in inputs.columns}
