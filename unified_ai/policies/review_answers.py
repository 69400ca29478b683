"""Reviewers' answers as policy: who may answer, what an answer is, what state an item is in.

Pure functions over a routed item and the answers recorded for it. People are compared by
`normalize_identity`, as approvers are, so `ana`, `Ana` and its fullwidth spelling are one
reviewer; records keep each name as it was given. The store side (where answers are written)
is `unified_ai.io.review_answers`; the command line, the HTTP route and the launchpad job all
go through it, so every way to answer is checked by these same rules.
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from unified_ai.projects.identity import expand_people, is_listed, normalize_identity
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

Action = Literal["answer", "skip"]
ACTIONS: tuple[str, ...] = ("answer", "skip")
#: The states of a routed item: waiting for a person, past its due time, answered (by as many
#: people as policy asks, all agreeing), or escalated (two reviewers disagreed).
OPEN, OVERDUE, ANSWERED, ESCALATED = "open", "overdue", "answered", "escalated"


class ReviewRefused(ValueError):
    """An answer the policy does not accept (one line: who, which item, why)."""


@dataclass(frozen=True)
class ReviewAnswer:
    """One person's answer to (or skip of) one routed prediction, as recorded.

    Attributes:
        review_id: The item (`review_queue`'s `review_id`).
        batch: The batch it was routed from.
        row_id: The production row.
        reviewer: Who, as given.
        action: `answer`, or `skip` (the item stays open for someone else).
        answer: The answer in the task's terms as text (binary `0`/`1`, a class label, a
            value); None for a skip.
        comment: Why, in the reviewer's words.
        at: When it was recorded (UTC, ISO 8601).
        model_answer: What the model had answered (for agreement between model and people).
        policy_version: The project's policy when it was recorded.
    """

    review_id: str
    batch: str
    row_id: str
    reviewer: str
    action: str
    answer: str | None
    comment: str
    at: str
    model_answer: str | None = None
    policy_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> "ReviewAnswer":
        def text(name: str) -> str | None:
            value = body.get(name)
            return None if value is None else str(value)

        return cls(
            review_id=str(body["review_id"]),
            batch=str(body["batch"]),
            row_id=str(body["row_id"]),
            reviewer=str(body["reviewer"]),
            action=str(body["action"]),
            answer=text("answer"),
            comment=str(body.get("comment") or ""),
            at=str(body["at"]),
            model_answer=text("model_answer"),
            policy_version=text("policy_version"),
        )


def allowed_reviewers(policy: ReviewPolicy) -> set[str] | None:
    """Names allowed to review, as written in the policy, or None when anyone may."""
    return expand_people(policy.reviewers, policy.groups)


def may_review(policy: ReviewPolicy, name: str) -> bool:
    """Whether the policy lets this person answer (names compared normalised)."""
    return is_listed(name, allowed_reviewers(policy))


def answer_text(task: str, answer: str, classes: Sequence[object] | None = None) -> str:
    """A reviewer's answer in the task's terms, as stored (the form ground truth takes).

    Binary: `0` or `1` (the positive label is 1); multiclass: one of the model's classes
    (`class_key`, so `3` and `3.0` are one class); regression: a finite number.

    Raises:
        ReviewRefused: The answer is not one the task can take.
    """
    text = answer.strip()
    if task == BINARY:
        if text not in ("0", "1"):
            raise ReviewRefused(f"answer {answer!r}: a binary answer is 0 or 1 (1: positive)")
        return text
    if task == MULTICLASS:
        known = [class_key(c) for c in classes or []]
        # `3.0` typed for class 3 is class 3, as in labels (digits only: never `nan` or `inf`).
        key = class_key(float(text)) if text.replace(".", "", 1).isdigit() else text
        if key not in known:
            raise ReviewRefused(
                f"answer {answer!r} is not one of the model's classes: {', '.join(known)}"
            )
        return key
    if task == REGRESSION:
        try:
            value = float(text)
        except ValueError:
            raise ReviewRefused(f"answer {answer!r}: a regression answer is a number") from None
        if not math.isfinite(value):
            raise ReviewRefused(f"answer {answer!r}: not a finite number")
        return repr(value)
    raise ReviewRefused(f"unknown task {task!r}")


def label_value(task: str, text: str) -> object:
    """A stored answer (`answer_text`) as a `ground_truth` label of the task.

    The form `unified_ai.ml.label_join.label_column` gives inbox labels: binary the int 0/1,
    multiclass the class label as text, regression a float.
    """
    if task == BINARY:
        return int(text)
    if task == REGRESSION:
        return float(text)
    return text


def item_state(
    policy: ReviewPolicy, answers: Sequence[ReviewAnswer], due_at: datetime, now: datetime
) -> tuple[str, str | None]:
    """(state of one item, its agreed answer or None) given its recorded answers.

    An item needs one person's answer, or two different people's with `four_eyes`; the first
    answers count (later ones are extra opinions). Two that differ escalate the item. An
    item nobody answered by `due_at` is overdue (`on_timeout` applies to it).
    """
    needed = 2 if policy.four_eyes else 1
    counted: dict[str, ReviewAnswer] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        person = normalize_identity(answer.reviewer)
        if answer.action == "answer" and person not in counted:
            counted[person] = answer
    given = [a.answer for a in list(counted.values())[:needed]]
    if len(set(given)) > 1:
        return ESCALATED, None
    if len(given) >= needed:
        return ANSWERED, given[0]
    return (OVERDUE if now > due_at else OPEN), None


def check_review(
    policy: ReviewPolicy,
    *,
    reviewer: str,
    action: str,
    review_id: str,
    answers: Sequence[ReviewAnswer],
    state: str,
) -> None:
    """Refuse an answer or skip the policy does not accept.

    Raises:
        ReviewRefused: No reviewer named; the reviewer is not in `reviewers`; the item is
            answered or escalated already; this person answered it already (with
            `four_eyes` the second answer must come from someone else).
    """
    if action not in ACTIONS:
        raise ReviewRefused(f"{action!r} is not an action ({', '.join(ACTIONS)})")
    if not normalize_identity(reviewer):
        raise ReviewRefused("no reviewer named")
    if not may_review(policy, reviewer):
        allowed = sorted(allowed_reviewers(policy) or (), key=normalize_identity)
        raise ReviewRefused(f"{reviewer} may not review (allowed: {', '.join(allowed)})")
    if state in (ANSWERED, ESCALATED):
        raise ReviewRefused(f"item {review_id} is {state} already")
    person = normalize_identity(reviewer)
    for earlier in answers:
        if earlier.action == "answer" and normalize_identity(earlier.reviewer) == person:
            extra = " (four-eyes: the second answer comes from someone else)"
            raise ReviewRefused(
                f"{reviewer} answered item {review_id} already"
                + (extra if policy.four_eyes else "")
            )
