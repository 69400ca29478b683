"""Reviewers' answers as policy: who may answer, what an answer is, what state an item is in.

Pure functions over a routed item and the answers recorded for it. People are compared by
`normalize_identity`, as approvers are, so `ana`, `Ana` and its fullwidth spelling are one
reviewer; records keep each name as it was given. The store side (where answers are written)
is `unified_ai.io.review_answers`; the command line, the HTTP route and the launchpad job all
go through it, so every way to answer is checked by these same rules.

An item nobody answered by its due time takes `policy.review.on_timeout`: the queue sensor
records it (`timeout_record`) under the system name `TIMEOUT_REVIEWER`, never a person's, and
the item no longer waits for anyone. Such a record is no answer: it never becomes ground truth,
whether the model's decision was kept or the item declined. A person may still answer it late
(the answer is ground truth; what `on_timeout` decided stays recorded).
"""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from unified_ai.projects.identity import expand_people, is_listed, normalize_identity
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, class_key

Action = Literal["answer", "skip"]
ACTIONS: tuple[str, ...] = ("answer", "skip")
#: The states of a routed item: waiting for a person, past its due time, answered (by as many
#: people as policy asks, all agreeing), or escalated (two reviewers disagreed).
OPEN, OVERDUE, ANSWERED, ESCALATED = "open", "overdue", "answered", "escalated"
#: Nobody answered by the due time and `on_timeout` was recorded for the item.
TIMED_OUT = "timed_out"
#: States that wait for a person, and those that no longer do (never to wait again).
WAITING: tuple[str, ...] = (OPEN, OVERDUE)
CLOSED: tuple[str, ...] = (ANSWERED, ESCALATED, TIMED_OUT)
#: The action of the record `on_timeout` leaves, and the name it is recorded under: a system
#: name (no person answered), which no reviewer may take.
TIMEOUT_ACTION = "timeout"
TIMEOUT_REVIEWER = "policy:on_timeout"
_SYSTEM_PREFIX = "policy:"


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
        on_timeout: On a `timeout` record only: what `policy.review.on_timeout` did
            (`keep_model_decision` or `decline`).
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
    on_timeout: str | None = None

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
            on_timeout=text("on_timeout"),
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
    item nobody answered by `due_at` is overdue (`on_timeout` applies to it) until its
    `timeout` record is written; then it is timed out, unless people answer it late.
    """
    needed = 2 if policy.four_eyes else 1
    counted: dict[str, ReviewAnswer] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        person = normalize_identity(answer.reviewer)
        if answer.action == "answer" and person not in counted:
            counted[person] = answer
    if (decided := _decided(counted, needed)) is not None:
        return decided
    if timeout_of(answers) is not None:
        return TIMED_OUT, None
    return (OVERDUE if now > due_at else OPEN), None


def _decided(counted: dict[str, ReviewAnswer], needed: int) -> tuple[str, str | None] | None:
    """Escalated or answered by the counted answers, or None while they are too few."""
    given = [a.answer for a in list(counted.values())[:needed]]
    if len(set(given)) > 1:
        return ESCALATED, None
    if len(given) >= needed:
        return ANSWERED, given[0]
    return None


def timeout_of(answers: Sequence[ReviewAnswer]) -> ReviewAnswer | None:
    """The `timeout` record among an item's records (the first, should there be two)."""
    found = sorted((a for a in answers if a.action == TIMEOUT_ACTION), key=lambda a: a.at)
    return found[0] if found else None


def timeout_record(
    policy: ReviewPolicy,
    *,
    review_id: str,
    batch: str,
    row_id: str,
    model_answer: str | None,
    due_at: datetime,
    now: datetime,
    policy_version: str | None = None,
) -> ReviewAnswer:
    """The record `on_timeout` leaves on an overdue item: who (a system name), when, what.

    It carries no answer: with `keep_model_decision` the model's answer stands as the decision
    (it is still not a label: nobody looked), with `decline` the item is declined.
    """
    what = (
        f"the model's answer ({model_answer}) stands"
        if policy.on_timeout == "keep_model_decision"
        else "declined"
    )
    return ReviewAnswer(
        review_id=review_id,
        batch=batch,
        row_id=row_id,
        reviewer=TIMEOUT_REVIEWER,
        action=TIMEOUT_ACTION,
        answer=None,
        comment=f"no answer by {due_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"on_timeout {policy.on_timeout}, {what}",
        at=now.astimezone(timezone.utc).isoformat(),
        model_answer=model_answer,
        policy_version=policy_version,
        on_timeout=policy.on_timeout,
    )


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
        ReviewRefused: No reviewer named (or a system name such as `TIMEOUT_REVIEWER`); the
            reviewer is not in `reviewers`; the item is answered or escalated already; this
            person answered it already (with `four_eyes` the second answer must come from
            someone else). A timed-out item takes a late answer.
    """
    if action not in ACTIONS:
        raise ReviewRefused(f"{action!r} is not an action ({', '.join(ACTIONS)})")
    if not normalize_identity(reviewer):
        raise ReviewRefused("no reviewer named")
    if normalize_identity(reviewer).startswith(_SYSTEM_PREFIX):
        raise ReviewRefused(f"{reviewer}: names starting {_SYSTEM_PREFIX} are the policy's own")
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
