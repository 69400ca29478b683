"""The record of reviewers' answers to routed predictions, beside the project's assets.

Each answer (or skip) is its own immutable version under `<project>/reviews/partitions/<batch>`
and a pointer move whose history entry names the reviewer: nothing is read, changed and written
back, so two people answering at the same moment never lose one another's answer, and the
history is the hash-chained audit of who answered what when. `record_review` is the one way
to answer: the command line calls it, and the HTTP route and the launchpad job are meant to,
so every way is checked by the same rules (`unified_ai.policies.review_answers`). Pure: no
Dagster import.

Items nobody answered by their due time take `on_timeout` through `time_out` (the queue
sensor applies it, `unified_ai.io.review_watch`): one record per item, under the system name
`policy:on_timeout`, written like an answer, so the same history says when and what. An item
with that record waits for nobody, and the record is never a label.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from unified_ai.io.json_records import put_record
from unified_ai.io.reader import StoreReader
from unified_ai.io.store import LineageStore
from unified_ai.names import (
    CANDIDATE_MODEL,
    PARTITIONS,
    REVIEW_ACTION,
    REVIEW_ID,
    REVIEW_QUEUE,
    REVIEWER_COLUMN,
    REVIEWS,
    ROW_ID,
)
from unified_ai.policies.review_answers import (
    ANSWERED,
    TIMED_OUT,
    ReviewAnswer,
    ReviewRefused,
    answer_text,
    check_review,
    item_state,
    label_value,
    timeout_of,
    timeout_record,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.tasks import MULTICLASS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ReviewItem",
    "ReviewRefused",
    "answered_labels",
    "answers_of",
    "batch_items",
    "find_item",
    "queue_batches",
    "queue_versions",
    "read_items",
    "record_review",
    "time_out",
]


@dataclass(frozen=True)
class ReviewItem:
    """One routed prediction with its answers so far and the state they put it in."""

    review_id: str
    batch: str
    row_id: str
    reasons: str
    detail: str
    model_answer: str | None
    shadow_answer: str | None
    model_version: str | None
    routed_at: datetime
    due_at: datetime
    state: str
    agreed: str | None = None
    answers: tuple[ReviewAnswer, ...] = field(default_factory=tuple)

    @property
    def timed_out(self) -> str | None:
        """What `on_timeout` did to this item (`keep_model_decision`, `decline`), or None."""
        record = timeout_of(self.answers) if self.state == TIMED_OUT else None
        return record.on_timeout if record is not None else None


def _review_of(project: ProjectConfig):
    if project.policy.review is None:
        raise ReviewRefused(f"{project.name}: no policy.review, so nothing is reviewed")
    return project.policy.review


def queue_batches(store: LineageStore, project: str) -> list[str]:
    """The batches with a stored `review_queue` partition, in name order."""
    return list(queue_versions(store, project))


def queue_versions(store: LineageStore, project: str) -> dict[str, str]:
    """The current `review_queue` version of each batch that has one, in batch name order."""
    folder = store.asset_dir([project, REVIEW_QUEUE]) / PARTITIONS
    if not folder.exists():
        return {}
    found = {}
    for batch in store.names(folder):
        version = (
            None if batch.startswith(".") else store.current_version(_queue_path(project, batch))
        )
        if version:
            found[batch] = version
    return dict(sorted(found.items()))


def _queue_path(project: str, batch: str) -> list[str]:
    return [project, REVIEW_QUEUE, PARTITIONS, batch]


def _answers_path(project: str, batch: str) -> list[str]:
    return [project, REVIEWS, PARTITIONS, batch]


def answers_of(store: LineageStore, project: str, batch: str) -> list[ReviewAnswer]:
    """Every answer and skip recorded for the items of `batch`, oldest first."""
    path = _answers_path(project, batch)
    if store.current_version(path) is None:
        return []
    found = [
        ReviewAnswer.from_json(store.read_value(path, m.version)) for m in store.versions(path)
    ]
    return sorted(found, key=lambda a: (a.at, a.reviewer))


def batch_items(
    store: LineageStore, project: ProjectConfig, batch: str, now: datetime
) -> Iterator[ReviewItem]:
    """The routed items of `batch`'s current queue, with their states at `now`."""
    review = _review_of(project)
    path = _queue_path(project.name, batch)
    rows = store.read_value(path, store.require_current(path))
    by_item: dict[str, list[ReviewAnswer]] = {}
    for answer in answers_of(store, project.name, batch):
        by_item.setdefault(answer.review_id, []).append(answer)
    for row in rows.to_dict("records"):
        answers = by_item.get(row[REVIEW_ID], [])
        due_at = row["due_at"].to_pydatetime()
        state, agreed = item_state(review, answers, due_at, now)
        yield ReviewItem(
            review_id=row[REVIEW_ID],
            batch=batch,
            row_id=str(row[ROW_ID]),
            reasons=row["reasons"],
            detail=row["detail"],
            model_answer=_text(row.get("model_answer")),
            shadow_answer=_text(row.get("shadow_answer")),
            model_version=_text(row.get("model_version")),
            routed_at=row["routed_at"].to_pydatetime(),
            due_at=due_at,
            state=state,
            agreed=agreed,
            answers=tuple(answers),
        )


def _text(value: Any) -> str | None:
    return None if value is None or value != value else str(value)


def read_items(
    store: LineageStore,
    project: ProjectConfig,
    *,
    batch: str | None = None,
    now: datetime | None = None,
) -> list[ReviewItem]:
    """The routed items of one batch, or of every batch, with their states (oldest first)."""
    now = now or datetime.now(timezone.utc)
    batches = [batch] if batch is not None else queue_batches(store, project.name)
    items = [item for b in batches for item in batch_items(store, project, b, now)]
    return sorted(items, key=lambda item: (item.routed_at, item.batch, item.review_id))


def find_item(
    store: LineageStore,
    project: ProjectConfig,
    review_id: str,
    *,
    batch: str | None = None,
    now: datetime | None = None,
) -> ReviewItem:
    """The routed item `review_id` (searched in `batch`, or in every batch).

    Raises:
        ReviewRefused: No routed item has that id.
    """
    for item in read_items(store, project, batch=batch, now=now):
        if item.review_id == review_id:
            return item
    where = f" in batch {batch}" if batch else ""
    raise ReviewRefused(f"{project.name}: no routed item {review_id}{where}")


def record_review(
    store: LineageStore,
    project: ProjectConfig,
    review_id: str,
    *,
    reviewer: str,
    action: str = "answer",
    answer: str | None = None,
    comment: str = "",
    batch: str | None = None,
    now: datetime | None = None,
) -> ReviewAnswer:
    """Record one person's answer to (or skip of) a routed item; returns the record.

    The reviewer is checked against `policy.review.reviewers` (names compared as for
    approvals), the item must be open or overdue and not answered by this person before, and
    the answer must be one the task can take (a multiclass answer one of the classes of the
    model that made the prediction).

    Raises:
        ReviewRefused: One line naming the reviewer or the item and why.
    """
    now = now or datetime.now(timezone.utc)
    item = find_item(store, project, review_id, batch=batch, now=now)
    record = checked_record(
        project,
        item,
        answers=item.answers,
        state=item.state,
        classes=lambda: _classes(store, project, item),
        reviewer=reviewer,
        action=action,
        answer=answer,
        comment=comment,
        now=now,
    )
    write_record(store, project, record)
    return record


def checked_record(
    project: ProjectConfig,
    item: Any,
    *,
    answers: "Sequence[ReviewAnswer]",
    state: str,
    classes: Callable[[], list | None],
    reviewer: str,
    action: str,
    answer: str | None,
    comment: str,
    now: datetime,
) -> ReviewAnswer:
    """One person's answer to (or skip of) `item`, checked by the policy's rules; not stored.

    Args:
        project: The project (its `policy.review` and task).
        item: A queued or served item (`review_id`, `batch`, `row_id`, `model_answer`).
        answers: The item's records so far.
        state: The item's state now.
        classes: Gives a multiclass answer's possible classes (read only for an answer).
        reviewer: Who answers.
        action: `answer` or `skip`.
        answer: The answer (an answer needs one).
        comment: Why, in their words.
        now: When.

    Raises:
        ReviewRefused: One line naming the reviewer or the item and why.
    """
    review = _review_of(project)
    check_review(
        review,
        reviewer=reviewer,
        action=action,
        review_id=item.review_id,
        answers=answers,
        state=state,
    )
    text = None
    if action == "answer":
        if answer is None:
            raise ReviewRefused(f"item {item.review_id}: an answer needs a value")
        text = answer_text(project.task, answer, classes())
    return ReviewAnswer(
        review_id=item.review_id,
        batch=item.batch,
        row_id=item.row_id,
        reviewer=reviewer,
        action=action,
        answer=text,
        comment=comment,
        at=now.astimezone(timezone.utc).isoformat(),
        model_answer=item.model_answer,
        policy_version=project.policy_version,
    )


def write_record(
    store: LineageStore,
    project: ProjectConfig,
    record: ReviewAnswer,
    reason: str | None = None,
    *,
    upstream: dict[str, str] | None = None,
) -> None:
    """Store one record as its own version and move the pointer under its reviewer's name.

    Its lineage is `upstream` (a served item's version), else the batch's current queue
    version; `reason` (the history's) defaults to the action, the item and the answer.
    """
    if reason is None:
        answered = f": {record.answer}" if record.answer is not None else ""
        reason = f"{record.action} {record.review_id}{answered}"
    path = _answers_path(project.name, record.batch)
    if upstream is None:
        queue = _queue_path(project.name, record.batch)
        # The queue version the item was answered from is in the answer's lineage.
        upstream = {"/".join(queue): store.require_current(queue)}
    put_record(
        store,
        project,
        path,
        record.to_json(),
        action=REVIEW_ACTION,
        actor=record.reviewer,
        reason=reason,
        upstream=upstream,
    )


def time_out(
    store: LineageStore,
    project: ProjectConfig,
    item: ReviewItem,
    *,
    now: datetime,
    upstream: dict[str, str] | None = None,
) -> ReviewAnswer:
    """Record `on_timeout` on one overdue item, beside its answers; returns the record.

    The record names the system (`TIMEOUT_REVIEWER`), when and which `on_timeout`, and its
    version names what the item was read from: the batch's `review_queue` version, or
    `upstream` (a served item's own version).
    """
    review = _review_of(project)
    record = timeout_record(
        review,
        review_id=item.review_id,
        batch=item.batch,
        row_id=item.row_id,
        model_answer=item.model_answer,
        due_at=item.due_at,
        now=now,
        policy_version=project.policy_version,
    )
    reason = f"timeout {item.review_id}: {review.on_timeout}"
    write_record(store, project, record, reason, upstream=upstream)
    return record


def _classes(store: LineageStore, project: ProjectConfig, item: ReviewItem) -> list | None:
    """The classes of the model that made a multiclass prediction (its card's order)."""
    if project.task != MULTICLASS or item.model_version is None:
        return None
    model = StoreReader(store).read_value([project.name, CANDIDATE_MODEL], item.model_version)
    return list(model.classes or [])


def answered_labels(
    reader: StoreReader, project: ProjectConfig, batch: str, *, now: datetime | None = None
) -> "pd.DataFrame":
    """The answered items of `batch` as labels: `ROW_ID`, `label` and `REVIEWER_COLUMN`.

    The batch's items are its queue's rows and the rows the endpoint routed into it that its
    queue does not hold (`unified_ai.io.review_served`). An item counts once it is answered as
    policy asks (one person, or two agreeing with `four_eyes`); open, overdue, skipped, timed
    out and escalated items give no label. The label takes the task's form (`label_value`);
    `REVIEWER_COLUMN` names who gave it. When any item counts, the queue version, the served
    items used and every answer version of the batch are noted in `reader`'s lineage, so what
    is stored from these labels names the reviews it came from.
    """
    import pandas as pd

    from unified_ai.io.review_served import served_item_version

    columns = [ROW_ID, "label", REVIEWER_COLUMN]
    empty = pd.DataFrame(columns=columns)
    review = project.policy.review
    queue, path = _queue_path(project.name, batch), _answers_path(project.name, batch)
    if review is None or reader.current_version(path) is None:
        return empty
    now = now or datetime.now(timezone.utc)
    store = reader.store  # read untracked; noted below only when used
    manifests = store.versions(path)
    by_item: dict[str, list[ReviewAnswer]] = {}
    for manifest in manifests:
        answer = ReviewAnswer.from_json(store.read_value(path, manifest.version))
        by_item.setdefault(answer.review_id, []).append(answer)
    queue_version = reader.current_version(queue)
    rows = store.read_value(queue, queue_version).to_dict("records") if queue_version else []
    # (review id, row id, due time, where the item is stored: None for the queue's rows)
    items: list[tuple[str, Any, datetime, tuple[list[str], str] | None]] = [
        (r[REVIEW_ID], r[ROW_ID], r["due_at"].to_pydatetime(), None) for r in rows
    ]
    queued = {r[REVIEW_ID] for r in rows}
    for review_id in by_item.keys() - queued:
        served = served_item_version(store, project.name, review_id)
        if served is not None and served[0].batch == batch:
            item, item_path, version = served
            items.append((review_id, item.row_id, item.due_at, (item_path, version)))
    found: list[tuple[Any, Any, str]] = []
    used: list[tuple[list[str], str | None]] = []
    for review_id, row_id, due_at, stored in items:
        answers = by_item.get(review_id, [])
        state, agreed = item_state(review, answers, due_at, now) if answers else (None, None)
        if state != ANSWERED or agreed is None:
            continue
        names = list(
            dict.fromkeys(
                a.reviewer for a in answers if a.action == "answer" and a.answer == agreed
            )
        )
        found.append((row_id, label_value(project.task, agreed), ", ".join(names)))
        used.append(stored if stored is not None else (queue, queue_version))
    if not found:
        return empty
    for asset_path, noted in dict.fromkeys((tuple(p), v) for p, v in used):
        if noted is not None:
            reader.record(list(asset_path), noted)
    for manifest in manifests:
        reader.record(path, manifest.version)
    return pd.DataFrame(found, columns=columns)
