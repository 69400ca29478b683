"""One look at a project's review items: apply due timeouts, read what still waits.

The queue sensor (`unified_ai.stages.review.sensors`) looks once per tick. Items of the batch
queue (`review_queue` partitions) and served items (`unified_ai.io.review_served`) are both
looked at; an item nobody answered by its due time gets its `on_timeout` record
(`unified_ai.io.review_answers.time_out`) and waits no more, so a second look writes nothing
again.

An item that no longer waits (answered, escalated or timed out) never waits again, so what the
last look found closed (batches at their queue version, served items by id) is not read
again: a tick reads only what may still wait for a person. Pure: no Dagster import.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from unified_ai.io.review_answers import ReviewItem, batch_items, queue_versions, time_out
from unified_ai.io.review_served import REVIEW_SERVED, served_items, served_review_ids
from unified_ai.io.store import LineageStore
from unified_ai.policies.review_answers import CLOSED, OVERDUE, TIMED_OUT, ReviewAnswer
from unified_ai.projects.schema import ProjectConfig

__all__ = ["MAX_CLOSED_SERVED", "QueueLook", "apply_timeouts", "look_at_queue"]

#: Closed served items remembered between looks (beyond it, some are read again: harmless).
MAX_CLOSED_SERVED = 10_000


@dataclass(frozen=True)
class QueueLook:
    """What one look found and did.

    Attributes:
        timed_out: The `timeout` records written at this look.
        states: The state of each item read (after the timeouts), by review id: every item
            still waiting for a person is among them.
        closed: Batch → queue version of each batch whose items are all closed.
        closed_served: The ids of served items that are closed.
    """

    timed_out: list[ReviewAnswer]
    states: dict[str, str]
    closed: dict[str, str]
    closed_served: list[str]


def look_at_queue(
    store: LineageStore,
    project: ProjectConfig,
    *,
    closed: Mapping[str, str] | None = None,
    closed_served: Iterable[str] = (),
    now: datetime | None = None,
) -> QueueLook:
    """Apply due timeouts and read the items' states, skipping what was closed last time.

    Args:
        store: The lineage store.
        project: A project with `policy.review`.
        closed: Batch → queue version of the batches closed at the last look (a batch routed
            anew has a new version, and is read).
        closed_served: The served items closed at the last look.
        now: The time due times are compared with (default: now, UTC).
    """
    now = now or datetime.now(timezone.utc)
    known = dict(closed or {})
    records: list[ReviewAnswer] = []
    states: dict[str, str] = {}
    still_closed: dict[str, str] = {}
    for batch, version in queue_versions(store, project.name).items():
        if known.get(batch) == version:
            still_closed[batch] = version
            continue
        after = _look(store, project, list(batch_items(store, project, batch, now)), now, records)
        states.update(after)
        if all(state in CLOSED for state in after.values()):
            still_closed[batch] = version
    skipped = set(closed_served)
    fresh = [i for i in served_review_ids(store, project.name) if i not in skipped]
    # A served item's own due time wins over its batch's (it is what the client was told).
    served = served_items(store, project, review_ids=fresh, now=now)
    states.update(_look(store, project, served, now, records, served=True))
    closed_ids = [i for i in fresh if states.get(i) in CLOSED]
    kept = [*(i for i in closed_served if i not in closed_ids), *closed_ids]
    return QueueLook(
        timed_out=records,
        states=states,
        closed=still_closed,
        closed_served=kept[-MAX_CLOSED_SERVED:],
    )


def _look(
    store: LineageStore,
    project: ProjectConfig,
    items: Iterable[ReviewItem],
    now: datetime,
    records: list[ReviewAnswer],
    *,
    served: bool = False,
) -> dict[str, str]:
    """Time out the overdue `items` (appending to `records`); each item's state after."""
    states = {}
    for item in items:
        if item.state == OVERDUE:
            upstream = None
            if served:
                path = [project.name, REVIEW_SERVED, item.review_id]
                upstream = {"/".join(path): store.require_current(path)}
            records.append(time_out(store, project, item, now=now, upstream=upstream))
            states[item.review_id] = TIMED_OUT
        else:
            states[item.review_id] = item.state
    return states


def apply_timeouts(
    store: LineageStore, project: ProjectConfig, *, now: datetime | None = None
) -> list[ReviewAnswer]:
    """Record `on_timeout` on every item past its due time with no answer; the new records.

    Idempotent: an item with its record is timed out, not overdue, so a rerun records nothing
    twice. Items answered or escalated are left alone.
    """
    return look_at_queue(store, project, now=now).timed_out
