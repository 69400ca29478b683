"""Answers recorded in the lineage store: four eyes, escalation, overdue items, concurrency."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from unified_ai.io.review_answers import answers_of, find_item, read_items, record_review
from unified_ai.policies.review_answers import (
    ANSWERED,
    ESCALATED,
    OPEN,
    OVERDUE,
    ReviewRefused,
)
from unified_ai_tests.flows.review_helpers import NOW, routed_batch


@pytest.fixture
def queued(tmp_path, projects_dir):
    """A four-eyes project and a store holding one routed batch of four rows."""
    project, store, ids, _ = routed_batch(tmp_path, projects_dir, ["r0", "r1", "r2", "r3"])
    return project, store, ids


def test_four_eyes_two_who_agree_answer_two_who_differ_escalate(queued):
    project, store, (first, second, *_) = queued
    record_review(store, project, first, reviewer="ana", answer="1", now=NOW)
    assert find_item(store, project, first, now=NOW).state == OPEN  # one pair of eyes
    record_review(store, project, first, reviewer="Bo", answer="1", comment="agree", now=NOW)
    item = find_item(store, project, first, now=NOW)
    assert (item.state, item.agreed) == (ANSWERED, "1")

    record_review(store, project, second, reviewer="ana", answer="1", now=NOW)
    record_review(store, project, second, reviewer="chen", answer="0", now=NOW)
    assert find_item(store, project, second, now=NOW).state == ESCALATED
    with pytest.raises(ReviewRefused, match=f"item {second} is escalated already"):
        record_review(store, project, second, reviewer="bo", answer="1", now=NOW)
    third = queued[2][2]
    record_review(store, project, third, reviewer="ana", answer="1", now=NOW)
    with pytest.raises(ReviewRefused, match=r"ana answered item \w+ already \(four-eyes"):
        record_review(store, project, third, reviewer="ana", answer="0", now=NOW)


def test_a_reviewer_outside_the_group_is_refused_and_nothing_is_stored(queued):
    project, store, (first, *_) = queued
    with pytest.raises(ReviewRefused, match=r"eve may not review \(allowed: ana, bo, chen\)"):
        record_review(store, project, first, reviewer="eve", answer="1", now=NOW)
    with pytest.raises(ReviewRefused, match="a binary answer is 0 or 1"):
        record_review(store, project, first, reviewer="ana", answer="approve", now=NOW)
    with pytest.raises(ReviewRefused, match="no routed item nope"):
        record_review(store, project, "nope", reviewer="ana", answer="1", now=NOW)
    assert answers_of(store, project.name, "b1") == []


def test_overdue_items_and_late_answers(queued):
    project, store, ids = queued
    later = NOW + timedelta(hours=2, minutes=1)
    assert {item.state for item in read_items(store, project, now=later)} == {OVERDUE}
    record_review(store, project, ids[0], reviewer="ana", answer="0", now=later)
    record_review(store, project, ids[0], reviewer="bo", answer="0", now=later)
    assert find_item(store, project, ids[0], now=later).state == ANSWERED


def test_answers_recorded_at_once_are_all_kept(queued):
    project, store, ids = queued

    def answer(args):
        review_id, who = args
        return record_review(store, project, review_id, reviewer=who, answer="1", now=NOW)

    jobs = [(review_id, who) for review_id in ids for who in ("ana", "bo")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(answer, jobs))
    recorded = answers_of(store, project.name, "b1")
    assert sorted((a.review_id, a.reviewer) for a in recorded) == sorted(jobs)
    assert {item.state for item in read_items(store, project, now=NOW)} == {ANSWERED}
