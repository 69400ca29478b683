"""Reviewers' answers as policy: who may answer, what an answer is, an item's state."""

from datetime import datetime, timedelta, timezone

import pytest

from unified_ai.policies.review_answers import (
    ANSWERED,
    ESCALATED,
    OPEN,
    OVERDUE,
    ReviewAnswer,
    ReviewRefused,
    answer_text,
    check_review,
    item_state,
    may_review,
)
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)
DUE = NOW + timedelta(hours=2)
POLICY = ReviewPolicy(
    audit_share=0.1, reviewers=["group:risk", "dana"], groups={"risk": ["ana", "bo"]}
)
FOUR_EYES = POLICY.model_copy(update={"four_eyes": True})


def _answer(who: str, answer: str | None, minutes: int = 0, action: str = "answer"):
    return ReviewAnswer(
        review_id="i1",
        batch="b1",
        row_id="r1",
        reviewer=who,
        action=action,
        answer=answer,
        comment="",
        at=(NOW + timedelta(minutes=minutes)).isoformat(),
    )


def test_reviewers_are_the_policys_names_and_groups_compared_normalised():
    assert may_review(POLICY, "ana") and may_review(POLICY, "Dana")
    assert may_review(POLICY, "\uff21na")  # fullwidth A
    assert may_review(POLICY, "b\u200bo")  # a zero-width space inside
    assert not may_review(POLICY, "eve")
    assert not may_review(POLICY, "\u200b")
    assert may_review(ReviewPolicy(audit_share=0.1), "anyone")


def test_a_reviewer_outside_the_group_is_refused():
    with pytest.raises(ReviewRefused, match=r"eve may not review \(allowed: ana, bo, dana\)"):
        check_review(
            POLICY, reviewer="eve", action="answer", review_id="i1", answers=[], state=OPEN
        )
    with pytest.raises(ReviewRefused, match="no reviewer named"):
        check_review(POLICY, reviewer=" ", action="answer", review_id="i1", answers=[], state=OPEN)


def test_one_person_answers_an_item_once_and_a_settled_item_takes_no_more():
    earlier = [_answer("ana", "1")]
    with pytest.raises(ReviewRefused, match="ANA answered item i1 already"):
        check_review(
            FOUR_EYES, reviewer="ANA", action="answer", review_id="i1", answers=earlier, state=OPEN
        )
    check_review(
        FOUR_EYES, reviewer="bo", action="answer", review_id="i1", answers=earlier, state=OPEN
    )
    for state in (ANSWERED, ESCALATED):
        with pytest.raises(ReviewRefused, match=f"is {state} already"):
            check_review(
                POLICY, reviewer="bo", action="skip", review_id="i1", answers=[], state=state
            )
    # A skip is no answer: the same person may still answer later.
    skipped = [_answer("ana", None, action="skip")]
    check_review(
        POLICY, reviewer="ana", action="answer", review_id="i1", answers=skipped, state=OPEN
    )
    # Overdue items still take answers (a late answer still teaches).
    check_review(POLICY, reviewer="ana", action="answer", review_id="i1", answers=[], state=OVERDUE)
    with pytest.raises(ReviewRefused, match="not an action"):
        check_review(
            POLICY, reviewer="ana", action="approve", review_id="i1", answers=[], state=OPEN
        )


def test_item_states():
    assert item_state(POLICY, [], DUE, NOW) == (OPEN, None)
    assert item_state(POLICY, [], DUE, DUE + timedelta(seconds=1)) == (OVERDUE, None)
    assert item_state(POLICY, [_answer("ana", None, action="skip")], DUE, NOW) == (OPEN, None)
    assert item_state(POLICY, [_answer("ana", "1")], DUE, NOW) == (ANSWERED, "1")
    # Four eyes: one answer is not enough; two who agree settle it; two who differ escalate.
    assert item_state(FOUR_EYES, [_answer("ana", "1")], DUE, NOW) == (OPEN, None)
    assert item_state(FOUR_EYES, [_answer("ana", "1"), _answer("Ana", "0", 1)], DUE, NOW) == (
        OPEN,
        None,
    )  # one person twice counts once
    agree = [_answer("ana", "1"), _answer("bo", "1", 5)]
    assert item_state(FOUR_EYES, agree, DUE, NOW) == (ANSWERED, "1")
    differ = [_answer("ana", "1"), _answer("bo", "0", 5)]
    assert item_state(FOUR_EYES, differ, DUE, NOW) == (ESCALATED, None)


@pytest.mark.parametrize(
    ("task", "given", "classes", "stored"),
    [
        (BINARY, "1", None, "1"),
        (BINARY, " 0 ", None, "0"),
        (MULTICLASS, "employed", ["employed", "retired", "student"], "employed"),
        (MULTICLASS, "3.0", [1, 2, 3], "3"),
        (REGRESSION, "12.50", None, "12.5"),
        (REGRESSION, "-3", None, "-3.0"),
    ],
)
def test_answers_in_the_tasks_terms(task, given, classes, stored):
    assert answer_text(task, given, classes) == stored


@pytest.mark.parametrize(
    ("task", "given", "classes", "expected"),
    [
        (BINARY, "yes", None, "a binary answer is 0 or 1"),
        (BINARY, "2", None, "a binary answer is 0 or 1"),
        (MULTICLASS, "unemployed", ["employed", "retired", "student"], "not one of the model"),
        (REGRESSION, "lots", None, "a regression answer is a number"),
        (REGRESSION, "nan", None, "not a finite number"),
        (REGRESSION, "inf", None, "not a finite number"),
    ],
)
def test_answers_the_task_cannot_take_are_refused(task, given, classes, expected):
    with pytest.raises(ReviewRefused, match=expected):
        answer_text(task, given, classes)


def test_records_round_trip_through_json():
    record = _answer("ana", "1")
    assert ReviewAnswer.from_json(record.to_json()) == record
