"""Served rows routed to people, beside the project's assets; and answering them.

Each routed served row is its own immutable version under `<project>/review_served/<review id>`
and a pointer move: the endpoint never reads, changes and writes back a shared file, so
concurrent requests (and the processes of `serve --workers N`) never lose one another's items,
and an item is found by its id with one pointer read. The id is the one the batch path gives
the same row (`review_id(project, batch, row_id)`, the batch being the inbox batch the row is
written to), and answers are recorded where the batch path's are
(`<project>/reviews/partitions/<batch>`), so an answer to a served item is also the answer to
that row when its batch is routed, and becomes ground truth with it.

Answering goes through the rules every way to answer uses (`unified_ai.policies.review_answers`):
`record_any` answers a served item or a queued one by its id, for the command line, the HTTP
route and anything else that answers. Pure: no Dagster import.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from unified_ai.io.json_records import put_record
from unified_ai.io.review_answers import (
    ReviewItem,
    answers_of,
    checked_record,
    read_items,
    record_review,
    write_record,
)
from unified_ai.io.store import LineageStore
from unified_ai.names import PARTITIONS, REVIEW_ID, REVIEWS, ROW_ID
from unified_ai.policies.review_answers import (
    ReviewAnswer,
    ReviewRefused,
    item_state,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.tasks import MULTICLASS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "REVIEW_SERVED",
    "ServedItem",
    "all_items",
    "record_any",
    "record_served",
    "served_item",
    "served_items",
    "served_review_ids",
    "store_served",
]

#: Where routed served rows are kept: `<project>/review_served/<review id>`.
REVIEW_SERVED = "review_served"
#: The pointer action of a stored served item (its history names the endpoint's process).
ROUTE_ACTION = "route"


@dataclass(frozen=True)
class ServedItem:
    """One routed served row, as stored.

    Attributes:
        review_id: Its id (the batch path's id of the same row).
        batch: The inbox batch the row is written to.
        row_id: The row id the endpoint answered with.
        reasons: Why it was routed (`REASON_SEPARATOR`-joined, most serious first).
        detail: What the reasons saw, in one line.
        model_answer: The model's answer as text (binary 0/1, a class, a value).
        model_score: The model's score (probability, top probability, value).
        model_version: The `candidate_model` version that scored it.
        deployment_version: The `deployed_model` version that served it.
        routed_at: When it was routed.
        due_at: When `on_timeout` applies to it.
        held: Whether the client was answered `pending_review` (policy `hold_decision`).
        classes: A multiclass model's classes as text (what an answer may be).
        segments: The row's segment values.
    """

    review_id: str
    batch: str
    row_id: str
    reasons: str
    detail: str
    model_answer: str | None
    model_score: float | None
    model_version: str | None
    deployment_version: str | None
    routed_at: datetime
    due_at: datetime
    held: bool
    classes: tuple[str, ...] = ()
    segments: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in _TEXT_FIELDS},
            "model_score": self.model_score,
            "routed_at": self.routed_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "held": self.held,
            "classes": list(self.classes),
            "segments": dict(self.segments),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "ServedItem":
        score = body.get("model_score")

        def text(name: str) -> str | None:
            value = body.get(name)
            return None if value is None else str(value)

        return cls(
            review_id=str(body["review_id"]),
            batch=str(body["batch"]),
            row_id=str(body["row_id"]),
            reasons=str(body.get("reasons") or ""),
            detail=str(body.get("detail") or ""),
            model_answer=text("model_answer"),
            model_version=text("model_version"),
            deployment_version=text("deployment_version"),
            model_score=None if score is None else float(score),
            routed_at=datetime.fromisoformat(body["routed_at"]),
            due_at=datetime.fromisoformat(body["due_at"]),
            held=bool(body.get("held")),
            classes=tuple(body.get("classes") or ()),
            segments=dict(body.get("segments") or {}),
        )


_TEXT_FIELDS = (
    "review_id",
    "batch",
    "row_id",
    "reasons",
    "detail",
    "model_answer",
    "model_version",
    "deployment_version",
)


def _item_path(project: str, review_id: str) -> list[str]:
    return [project, REVIEW_SERVED, review_id]


def _answers_path(project: str, batch: str) -> list[str]:
    return [project, REVIEWS, PARTITIONS, batch]


def served_items_of(
    rows: "pd.DataFrame",
    *,
    held: bool,
    deployment_version: str,
    classes: Iterable[str] = (),
    segments: Iterable[str] = (),
) -> list[ServedItem]:
    """The queue rows of a request (`route_batch`'s) as items to store."""
    classes = tuple(classes)
    segments = [c for c in segments if c in rows.columns]
    items = []
    for row in rows.to_dict("records"):
        score = row.get("model_score")
        items.append(
            ServedItem(
                review_id=str(row[REVIEW_ID]),
                batch=str(row["batch"]),
                row_id=str(row[ROW_ID]),
                reasons=str(row["reasons"]),
                detail=str(row["detail"]),
                model_answer=_text(row.get("model_answer")),
                model_score=None if score is None or score != score else float(score),
                model_version=_text(row.get("model_version")),
                deployment_version=deployment_version,
                routed_at=row["routed_at"].to_pydatetime(),
                due_at=row["due_at"].to_pydatetime(),
                held=held,
                classes=classes,
                segments={c: _plain(row[c]) for c in segments},
            )
        )
    return items


def _text(value: Any) -> str | None:
    return None if value is None or value != value else str(value)


def _plain(value: Any) -> Any:
    if value is None or value != value:
        return None
    return value.item() if hasattr(value, "item") else value


def store_served(store: LineageStore, project: ProjectConfig, items: Iterable[ServedItem]) -> None:
    """Store each item as its own version and point its path at it (no shared file)."""
    for item in items:
        put_record(
            store,
            project,
            _item_path(project.name, item.review_id),
            item.to_json(),
            action=ROUTE_ACTION,
            actor="serve",
            reason=f"routed {item.row_id}: {item.reasons}"
            + (" (decision held)" if item.held else ""),
        )


def served_item(store: LineageStore, project: str, review_id: str) -> ServedItem | None:
    """The stored served item `review_id`, or None (one pointer read)."""
    found = served_item_version(store, project, review_id)
    return found[0] if found is not None else None


def served_item_version(
    store: LineageStore, project: str, review_id: str
) -> tuple[ServedItem, list[str], str] | None:
    """(the stored served item `review_id`, its asset path, its version), or None."""
    if not _plain_id(review_id):
        return None
    path = _item_path(project, review_id)
    version = store.current_version(path)
    if version is None:
        return None
    return ServedItem.from_json(store.read_value(path, version)), path, version


def _plain_id(review_id: str) -> bool:
    """Whether `review_id` can be a stored id (hex; never a path or a hidden name)."""
    return 0 < len(review_id) <= 64 and all(c in "0123456789abcdef" for c in review_id)


def served_review_ids(store: LineageStore, project: str) -> list[str]:
    """The ids of every stored served item (one listing)."""
    folder = store.asset_dir([project, REVIEW_SERVED])
    if not folder.exists():
        return []
    return sorted(name for name in store.names(folder) if _plain_id(name))


def _as_review_item(
    project: ProjectConfig, item: ServedItem, answers: list[ReviewAnswer], now: datetime
) -> ReviewItem:
    review = _review_of(project)
    state, agreed = item_state(review, answers, item.due_at, now)
    return ReviewItem(
        review_id=item.review_id,
        batch=item.batch,
        row_id=item.row_id,
        reasons=item.reasons,
        detail=item.detail,
        model_answer=item.model_answer,
        shadow_answer=None,
        model_version=item.model_version,
        routed_at=item.routed_at,
        due_at=item.due_at,
        state=state,
        agreed=agreed,
        answers=tuple(answers),
    )


def _review_of(project: ProjectConfig):
    if project.policy.review is None:
        raise ReviewRefused(f"{project.name}: no policy.review, so nothing is reviewed")
    return project.policy.review


def item_answers(store: LineageStore, project: str, item: ServedItem) -> list[ReviewAnswer]:
    """The answers and skips recorded for one served item, oldest first."""
    return [a for a in answers_of(store, project, item.batch) if a.review_id == item.review_id]


def served_items(
    store: LineageStore,
    project: ProjectConfig,
    *,
    batch: str | None = None,
    review_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[ReviewItem]:
    """Every served item (or those of `batch`, or those named) with its state (as listed)."""
    _review_of(project)
    now = now or datetime.now(timezone.utc)
    ids = served_review_ids(store, project.name) if review_ids is None else review_ids
    stored = [served_item(store, project.name, i) for i in ids]
    found = [item for item in stored if item is not None and batch in (None, item.batch)]
    by_batch: dict[str, list[ReviewAnswer]] = {}
    for item in found:
        if item.batch not in by_batch:
            by_batch[item.batch] = answers_of(store, project.name, item.batch)
    return [
        _as_review_item(
            project, item, [a for a in by_batch[item.batch] if a.review_id == item.review_id], now
        )
        for item in found
    ]


def all_items(
    store: LineageStore,
    project: ProjectConfig,
    *,
    batch: str | None = None,
    now: datetime | None = None,
) -> list[ReviewItem]:
    """Queued and served items together, each id once (oldest first).

    A served row routed again when its batch is scored has the same id: it is listed once,
    with the served item's due time (the one the client was told).
    """
    now = now or datetime.now(timezone.utc)
    served = served_items(store, project, batch=batch, now=now)
    ids = {item.review_id for item in served}
    queued = [i for i in read_items(store, project, batch=batch, now=now) if i.review_id not in ids]
    return sorted([*queued, *served], key=lambda i: (i.routed_at, i.batch, i.review_id))


def record_served(
    store: LineageStore,
    project: ProjectConfig,
    item: ServedItem,
    *,
    reviewer: str,
    action: str = "answer",
    answer: str | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> ReviewAnswer:
    """Record one person's answer to (or skip of) a served item; the rules of `record_review`.

    Raises:
        ReviewRefused: One line naming the reviewer or the item and why.
    """
    review = _review_of(project)
    now = now or datetime.now(timezone.utc)
    answers = item_answers(store, project.name, item)
    state, _ = item_state(review, answers, item.due_at, now)
    record = checked_record(
        project,
        item,
        answers=answers,
        state=state,
        classes=lambda: list(item.classes) if project.task == MULTICLASS else None,
        reviewer=reviewer,
        action=action,
        answer=answer,
        comment=comment,
        now=now,
    )
    source = _item_path(project.name, item.review_id)
    # The served item answered is in the answer's lineage.
    write_record(store, project, record, upstream={"/".join(source): store.require_current(source)})
    return record


def record_any(
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
    """Answer (or skip) a served item or a queued one by its id, by the same rules.

    Raises:
        ReviewRefused: One line naming the reviewer or the item and why.
    """
    _review_of(project)
    item = served_item(store, project.name, review_id)
    if item is not None and batch in (None, item.batch):
        return record_served(
            store,
            project,
            item,
            reviewer=reviewer,
            action=action,
            answer=answer,
            comment=comment,
            now=now,
        )
    return record_review(
        store,
        project,
        review_id,
        reviewer=reviewer,
        action=action,
        answer=answer,
        comment=comment,
        batch=batch,
        now=now,
    )
