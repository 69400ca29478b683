"""Nobody forgets the queue: `<project>__review_queue` of a project with `policy.review`.

Each tick reads the review queue and its answers from the lineage store (no run, no event
query) and:

- records `on_timeout` on every item (queued or served) past its due time that nobody
  answered (`unified_ai.io.review_watch.look_at_queue`); an item with that record is closed,
  so a rerun records nothing twice;
- tells the project's channels (`review_queue` event) about the items that just timed out,
  once each, and about the queue of items waiting for a person once it grows past
  `policy.review.notify_open_above`, once per crossing: the cursor remembers that the queue is
  above, and only a fall back to the bound or below re-arms the message.

The cursor also keeps the batches whose items are all closed, with their queue versions, and
the closed served items, so a tick reads only what may still wait for a person.
"""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.policies.review_watch import (
    QueueAlert,
    is_above,
    queue_counts,
    size_alert,
    timeout_alert,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.sensor_kit import INTERVAL_SECONDS, dump_cursor, load_cursor


def _tell(notifier: Notifier, project: ProjectConfig, alert: QueueAlert) -> None:
    notifier.notify(
        project.policy.notifications,
        project=project.name,
        event="review_queue",
        summary=alert.summary,
        evidence=alert.evidence,
    )


def build_review_queue_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    """The queue watch of a project with `policy.review`."""
    review = project.policy.review
    if review is None:
        raise ValueError(f"{project.name}: no policy.review, so no review queue to watch")
    bound = (
        f"more than {review.notify_open_above} items wait"
        if review.notify_open_above is not None
        else "items pass their due time"
    )

    @dg.sensor(
        name=names.review_queue_sensor(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Applies policy.review.on_timeout ({review.on_timeout}) to "
        f"{project.name}'s review items nobody answered within {review.due_after}, and tells "
        f"the project's channels when {bound} (once each).",
    )
    def review_queue_sensor(
        context: dg.SensorEvaluationContext, lineage: LineageStorage, notifier: Notifier
    ) -> dg.SensorResult:
        from unified_ai.io.review_watch import look_at_queue

        cursor = load_cursor(context)
        look = look_at_queue(
            lineage.store(),
            project,
            closed=cursor.get("closed"),
            closed_served=cursor.get("closed_served", []),
            now=datetime.now(timezone.utc),
        )
        counts = queue_counts(look.states.values())
        waiting = counts["waiting"]
        alerts = [
            timeout_alert(review, look.timed_out, waiting=waiting),
            size_alert(review, waiting, was_above=bool(cursor.get("above"))),
        ]
        for alert in alerts:
            if alert is not None:
                _tell(notifier, project, alert)
        told = [alert.summary for alert in alerts if alert is not None]
        skip = "; ".join(told) if told else f"{waiting} item(s) wait for a reviewer"
        cursor = {
            "above": is_above(review, waiting),
            "closed": look.closed,
            "closed_served": look.closed_served,
        }
        return dg.SensorResult(skip_reason=dg.SkipReason(skip), cursor=dump_cursor(cursor))

    return review_queue_sensor


def build_review_sensor_defs(project: ProjectConfig) -> list[dg.SensorDefinition]:
    """The review stage's sensors: the queue watch, for a project with `policy.review`."""
    return [build_review_queue_sensor(project)] if project.policy.review is not None else []
