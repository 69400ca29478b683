"""Nobody forgets the queue: when a project's review queue is worth telling people about.

Pure rules over counted item states. Two things are told, each once: the queue of items
waiting for a person growing past `policy.review.notify_open_above` (told again only after it
fell back to the bound or below and grew past it anew), and items that passed their due time
with no answer and took `on_timeout` (each item once: its `timeout` record is written once).
The sensor that applies them is `unified_ai.stages.review.sensors`.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from unified_ai.policies.review_answers import (
    ANSWERED,
    ESCALATED,
    OPEN,
    OVERDUE,
    TIMED_OUT,
    ReviewAnswer,
)
from unified_ai.projects.schema_review import ReviewPolicy

#: Item ids named in one message; the rest are counted.
NAMED_ITEMS = 10
#: The states counted, in the order `unified-ai status` shows them.
COUNTED = (OPEN, OVERDUE, ANSWERED, ESCALATED, TIMED_OUT)


@dataclass(frozen=True)
class QueueAlert:
    """What to tell the project's channels (`review_queue` event)."""

    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


def queue_counts(states: Iterable[str]) -> dict[str, int]:
    """How many items are in each state (every state named, zero included), and `waiting`.

    `waiting` is open plus overdue: the items a person still has to answer.
    """
    found = Counter(states)
    counts = {state: found.get(state, 0) for state in COUNTED}
    return {**counts, "waiting": counts[OPEN] + counts[OVERDUE]}


def is_above(policy: ReviewPolicy, waiting: int) -> bool:
    """Whether `waiting` items are more than `notify_open_above` (never, when it is unset)."""
    return policy.notify_open_above is not None and waiting > policy.notify_open_above


def size_alert(policy: ReviewPolicy, waiting: int, *, was_above: bool) -> QueueAlert | None:
    """The message when the waiting queue grew past `notify_open_above` since the last look.

    Args:
        policy: The project's `policy.review`.
        waiting: Items waiting for a person now.
        was_above: Whether they were above the bound at the last look (False at the first).

    Returns:
        None unless the queue crossed the bound upwards: staying above tells nothing again.
    """
    if was_above or not is_above(policy, waiting):
        return None
    return QueueAlert(
        summary=f"{waiting} item(s) wait for a reviewer, more than "
        f"policy.review.notify_open_above ({policy.notify_open_above})",
        evidence={"waiting": waiting, "notify_open_above": policy.notify_open_above},
    )


def timeout_alert(
    policy: ReviewPolicy, records: Sequence[ReviewAnswer], *, waiting: int
) -> QueueAlert | None:
    """The message for items that passed their due time and took `on_timeout` just now.

    Args:
        policy: The project's `policy.review`.
        records: The `timeout` records written at this look (none: nothing to tell).
        waiting: Items still waiting for a person.
    """
    if not records:
        return None
    ids = [record.review_id for record in records]
    named = ", ".join(ids[:NAMED_ITEMS]) + (
        f" and {len(ids) - NAMED_ITEMS} more" if len(ids) > NAMED_ITEMS else ""
    )
    return QueueAlert(
        summary=f"{len(ids)} item(s) passed their due time ({policy.due_after}) with no "
        f"answer and took on_timeout {policy.on_timeout}: {named}",
        evidence={
            "overdue": len(ids),
            "on_timeout": policy.on_timeout,
            "batches": ", ".join(sorted({record.batch for record in records})),
            "waiting": waiting,
        },
    )
