"""Answers to routed predictions over HTTP: `POST /v1/projects/{project}/reviews`.

An answer becomes ground truth, as a label does, so the route is behind the same bearer token
as labels. The body is one answer, `{review_id, answer, by, comment}`; it is recorded by
`unified_ai.io.review_answers.record_review` (a served row routed to people: by
`unified_ai.io.review_served.record_served`, the same rules), as the command line and the
launchpad job record it, so the reviewer is checked against `policy.review.reviewers` and the
answer against the task by the same rules. `GET .../reviews/{review_id}` (same token) says
what an item's answer is now: pending, answered, or timed out (`on_timeout` applied).
Refusals are one line: an unknown item (404), a reviewer the policy does not allow (403), an
item answered already (409), an answer the task cannot take or a malformed body (422).
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.serving.refusal import Refusal

if TYPE_CHECKING:
    from unified_ai.io.store import LineageStore
    from unified_ai.projects.schema import ProjectConfig

#: The fields of a review body (`comment` may be left out).
FIELDS = ("review_id", "answer", "by", "comment")


@dataclass(frozen=True)
class ReviewBody:
    """One answer as posted."""

    review_id: str
    answer: str
    by: str
    comment: str


def review_body_schema() -> dict[str, Any]:
    """The `openapi_extra` of the reviews endpoint: one answer."""
    text = {"type": "string", "minLength": 1}
    schema = {
        "type": "object",
        "required": ["review_id", "answer", "by"],
        "properties": {
            "review_id": {**text, "description": "The item (`review_queue`'s `review_id`)."},
            "answer": {
                "type": ["string", "number"],
                "description": "Binary 0 or 1 (1: positive); multiclass one of the model's "
                "classes; regression a number.",
            },
            "by": {**text, "description": "Who answers: one of `policy.review.reviewers`."},
            "comment": {"type": "string", "description": "Why, in the reviewer's words."},
        },
        "additionalProperties": False,
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def review_body(body: bytes) -> ReviewBody:
    """The posted answer, checked for shape (not yet against the policy).

    Raises:
        Refusal: 400 for a body that is not JSON; 422 for unknown or missing fields, or an
            answer that is not text or a number.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise Refusal(400, "bad_request", f"request body is not valid JSON ({first})") from None
    if not isinstance(data, dict):
        raise Refusal(422, "invalid_review", "the body must be an object {review_id, answer, by}")
    extra = sorted(set(data) - set(FIELDS))
    if extra:
        raise Refusal(422, "invalid_review", f"unknown field(s) {extra} (fields: {FIELDS})")
    for name in ("review_id", "by"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise Refusal(422, "invalid_review", f"field {name!r} must be non-empty text")
    answer = data.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise Refusal(
            422,
            "invalid_review",
            f"field 'answer' is {answer!r}: give the answer as text or a number",
        )
    comment = data.get("comment") or ""
    if not isinstance(comment, str):
        raise Refusal(422, "invalid_review", "field 'comment' must be text")
    return ReviewBody(data["review_id"].strip(), str(answer), data["by"].strip(), comment)


def accept_review(store: "LineageStore", project: "ProjectConfig", body: bytes) -> dict[str, Any]:
    """Record one posted answer; the answer says what was recorded and the item's state.

    The item is a served row routed to people (`unified_ai.io.review_served`) or a row of a
    routed batch; both are answered by the same rules.

    Raises:
        Refusal: One line naming the item or the reviewer and why (see the module).
    """
    from unified_ai.io.review_served import record_any
    from unified_ai.policies.review_answers import ANSWERED, ESCALATED, ReviewRefused, may_review

    posted = review_body(body)
    review = _review_of(project)
    item = _item(store, project, posted.review_id)
    if not may_review(review, posted.by):
        raise Refusal(403, "not_a_reviewer", f"{posted.by} may not review {project.name} items")
    if item.state in (ANSWERED, ESCALATED):
        raise Refusal(409, "answered", f"item {item.review_id} is {item.state} already")
    try:
        record = record_any(
            store,
            project,
            item.review_id,
            reviewer=posted.by,
            answer=posted.answer,
            comment=posted.comment,
            batch=item.batch,
        )
    except ReviewRefused as exc:
        status = 409 if "already" in str(exc) else 422
        raise Refusal(status, "review_refused", str(exc)) from None
    state = _item(store, project, item.review_id)
    return {
        "review_id": record.review_id,
        "batch": record.batch,
        "row_id": record.row_id,
        "answer": record.answer,
        "by": record.reviewer,
        "at": record.at,
        "state": state.state,
    }


def _review_of(project: "ProjectConfig") -> Any:
    review = project.policy.review
    if review is None:
        raise Refusal(404, "not_found", f"{project.name}: no policy.review, so nothing is reviewed")
    return review


def _item(store: "LineageStore", project: "ProjectConfig", review_id: str) -> Any:
    """The routed item `review_id`, served or queued (404 when there is none)."""
    from unified_ai.io.review_answers import find_item
    from unified_ai.io.review_served import served_items
    from unified_ai.policies.review_answers import ReviewRefused

    try:
        served = served_items(store, project, review_ids=[review_id])
        return served[0] if served else find_item(store, project, review_id)
    except ReviewRefused as exc:
        raise Refusal(404, "unknown_review", str(exc)) from None


def review_state(
    store: "LineageStore", project: "ProjectConfig", review_id: str, now: Any = None
) -> dict[str, Any]:
    """`GET .../reviews/{review_id}`: what the routed item's answer is now.

    `status` is `pending_review`, `answered` (`decision` is the person's answer, in the task's
    form) or `timed_out` (past `due_at` with no answer by then: `on_timeout` applied on read,
    `decision` the model's for `keep_model_decision`, none and `declined` for `decline`).

    Args:
        store: The lineage store.
        project: The project.
        review_id: The item.
        now: When it is judged (default: now, UTC).

    Raises:
        Refusal: 404 for an unknown item or a project without `policy.review`.
    """
    from datetime import datetime, timezone

    from unified_ai.io.review_served import item_answers, served_item
    from unified_ai.policies.review_serving import held_state

    review = _review_of(project)
    now = now or datetime.now(timezone.utc)
    served = served_item(store, project.name, review_id)
    if served is not None:
        answers = item_answers(store, project.name, served)
        batch, row_id, reasons = served.batch, served.row_id, served.reasons
        routed_at, due_at, model_answer = served.routed_at, served.due_at, served.model_answer
    else:
        item = _item(store, project, review_id)
        answers = list(item.answers)
        batch, row_id, reasons = item.batch, item.row_id, item.reasons
        routed_at, due_at, model_answer = item.routed_at, item.due_at, item.model_answer
    state = held_state(
        review, project.task, answers=answers, due_at=due_at, now=now, model_answer=model_answer
    )
    return {
        "project": project.name,
        "review_id": review_id,
        **state,
        "batch": batch,
        "row_id": row_id,
        "reasons": reasons,
        "held": served is not None and served.held,
        "routed_at": routed_at.isoformat(),
        "due_at": due_at.isoformat(),
    }
