"""Timeouts and the queue watch as policy: an overdue item takes `on_timeout`, told once."""

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from unified_ai.policies.review_answers import (
    ANSWERED,
    ESCALATED,
    OPEN,
    OVERDUE,
    TIMED_OUT,
    TIMEOUT_ACTION,
    TIMEOUT_REVIEWER,
    ReviewAnswer,
    ReviewRefused,
    check_review,
    item_state,
    timeout_of,
    timeout_record,
)
from unified_ai.policies.review_watch import (
    NAMED_ITEMS,
    is_above,
    queue_counts,
    size_alert,
    timeout_alert,
)
from unified_ai.projects.schema_review import ReviewPolicy

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=timezone.utc)
DUE = NOW + timedelta(hours=2)
LATE = DUE + timedelta(minutes=1)
POLICY = ReviewPolicy(audit_share=0.1, due_after="2h", notify_open_above=3)
DECLINE = POLICY.model_copy(update={"on_timeout": "decline"})


def _answer(who: str, answer: str | None, at: datetime) -> ReviewAnswer:
    return ReviewAnswer(
        review_id="i1",
        batch="b1",
        row_id="r1",
        reviewer=who,
        action="answer",
        answer=answer,
        comment="",
        at=at.isoformat(),
    )


def _timeout(policy: ReviewPolicy = POLICY, at: datetime = LATE) -> ReviewAnswer:
    return timeout_record(
        policy,
        review_id="i1",
        batch="b1",
        row_id="r1",
        model_answer="1",
        due_at=DUE,
        now=at,
        policy_version="p@1",
    )


def test_the_timeout_record_names_the_policy_when_and_what_and_carries_no_answer():
    kept = _timeout()
    assert (kept.reviewer, kept.action, kept.on_timeout) == (
        TIMEOUT_REVIEWER,
        TIMEOUT_ACTION,
        "keep_model_decision",
    )
    assert kept.reviewer == "policy:on_timeout"
    assert kept.answer is None  # the model's answer is kept, never recorded as a person's
    assert kept.model_answer == "1" and kept.at == LATE.isoformat()
    assert "on_timeout keep_model_decision" in kept.comment and "(1) stands" in kept.comment
    assert "2026-12-05 11:00 UTC" in kept.comment
    declined = _timeout(DECLINE)
    assert declined.on_timeout == "decline" and declined.answer is None
    assert "declined" in declined.comment
    # Stored and read back, the record still says what it did.
    assert ReviewAnswer.from_json(declined.to_json()) == declined


def test_an_overdue_item_is_timed_out_once_its_record_is_written():
    assert item_state(POLICY, [], DUE, LATE) == (OVERDUE, None)
    assert item_state(POLICY, [_timeout()], DUE, LATE) == (TIMED_OUT, None)
    assert item_state(DECLINE, [_timeout(DECLINE)], DUE, LATE) == (TIMED_OUT, None)
    # A late answer is still a person's answer (what on_timeout decided stays recorded).
    late = _answer("ana", "0", LATE + timedelta(minutes=5))
    assert item_state(POLICY, [_timeout(), late], DUE, LATE) == (ANSWERED, "0")
    assert timeout_of([late, _timeout()]) == _timeout()
    assert timeout_of([late]) is None


def test_an_item_answered_before_its_timeout_keeps_the_answer():
    early = _answer("ana", "0", NOW)
    assert item_state(POLICY, [early, _timeout()], DUE, LATE) == (ANSWERED, "0")
    four_eyes = POLICY.model_copy(update={"four_eyes": True})
    # One pair of eyes of two is not an answer: the item times out.
    assert item_state(four_eyes, [early, _timeout(four_eyes)], DUE, LATE) == (TIMED_OUT, None)
    disagree = [early, _answer("bo", "1", NOW + timedelta(minutes=1)), _timeout(four_eyes)]
    assert item_state(four_eyes, disagree, DUE, LATE) == (ESCALATED, None)


def test_a_timed_out_item_takes_a_late_answer_but_nobody_answers_as_the_policy():
    check_review(
        POLICY,
        reviewer="ana",
        action="answer",
        review_id="i1",
        answers=[_timeout()],
        state=TIMED_OUT,
    )
    with pytest.raises(ReviewRefused, match="are the policy's own"):
        check_review(
            POLICY,
            reviewer="Policy:on_timeout",
            action="answer",
            review_id="i1",
            answers=[],
            state=OPEN,
        )
    # A person can neither record a timeout: it is not one of their actions.
    with pytest.raises(ReviewRefused, match="'timeout' is not an action"):
        check_review(
            POLICY, reviewer="ana", action="timeout", review_id="i1", answers=[], state=OVERDUE
        )


def test_notify_open_above_is_a_count_and_optional():
    assert ReviewPolicy(audit_share=0.1).notify_open_above is None
    assert ReviewPolicy(audit_share=0.1, notify_open_above=0).notify_open_above == 0
    for wrong in (-1, 2.5, "ten"):
        with pytest.raises(ValidationError, match="notify_open_above"):
            ReviewPolicy(audit_share=0.1, notify_open_above=wrong)


def test_the_queue_passing_its_size_is_told_once_per_crossing():
    counts = queue_counts([OPEN] * 3 + [OVERDUE, ANSWERED, TIMED_OUT, TIMED_OUT])
    assert counts == {
        OPEN: 3,
        OVERDUE: 1,
        ANSWERED: 1,
        ESCALATED: 0,
        TIMED_OUT: 2,
        "waiting": 4,
    }
    assert not is_above(POLICY, 3) and is_above(POLICY, 4)
    assert size_alert(POLICY, 3, was_above=False) is None  # at the bound is not past it
    alert = size_alert(POLICY, 4, was_above=False)
    assert alert is not None and "4 item(s) wait" in alert.summary
    assert alert.evidence == {"waiting": 4, "notify_open_above": 3}
    assert size_alert(POLICY, 9, was_above=True) is None  # still above: told already
    unset = POLICY.model_copy(update={"notify_open_above": None})
    assert not is_above(unset, 10_000) and size_alert(unset, 10_000, was_above=False) is None


def test_items_that_timed_out_are_told_with_what_they_took():
    assert timeout_alert(POLICY, [], waiting=2) is None
    records = [
        timeout_record(
            DECLINE,
            review_id=f"i{n}",
            batch=f"b{n % 2}",
            row_id=str(n),
            model_answer="0",
            due_at=DUE,
            now=LATE,
        )
        for n in range(NAMED_ITEMS + 2)
    ]
    alert = timeout_alert(DECLINE, records, waiting=2)
    assert alert is not None
    assert "took on_timeout decline" in alert.summary and "and 2 more" in alert.summary
    assert alert.evidence == {
        "overdue": NAMED_ITEMS + 2,
        "on_timeout": "decline",
        "batches": "b0, b1",
        "waiting": 2,
    }
