"""Nobody forgets the queue: `<project>__review_queue` applies timeouts and tells people once."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from unified_ai import names
from unified_ai.cli import main
from unified_ai.io.reader import StoreReader
from unified_ai.io.review_answers import answered_labels, answers_of, read_items, record_review
from unified_ai.policies.review_answers import (
    ANSWERED,
    TIMED_OUT,
    TIMEOUT_ACTION,
    TIMEOUT_REVIEWER,
    ReviewRefused,
)
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import project_defs, store
from unified_ai_tests.flows.monitoring_helpers import Receiver, SensorDriver
from unified_ai_tests.flows.review_helpers import route_rows

SENSOR = names.review_queue_sensor("small")


def _policy(url: str, on_timeout: str = "keep_model_decision") -> str:
    return f"""\
  review:
    audit_share: 1.0
    due_after: 2h
    on_timeout: {on_timeout}
    notify_open_above: 3
    reviewers: [group:risk]
    groups: {{risk: [ana, bo]}}
  notifications:
    - {{type: webhook, url: '{url}'}}
"""


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.close()


def _watched(home, projects_dir, instance, monkeypatch, receiver, on_timeout: str):
    """The project, its lineage store and a driver ticking its queue sensor."""
    path = write_project(projects_dir, policy_extra=_policy(receiver.url, on_timeout))
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    return load_project_file(path), store(home), SensorDriver(defs, instance)


def _told(receiver) -> list[dict]:
    return [m for m in receiver.messages if m["event"] == "review_queue"]


def test_the_queue_passing_its_size_is_told_once_per_crossing(
    home, projects_dir, instance, monkeypatch, receiver
):
    project, lineage, driver = _watched(
        home, projects_dir, instance, monkeypatch, receiver, "keep_model_decision"
    )
    now = datetime.now(timezone.utc)
    assert "0 item(s) wait" in driver.tick(SENSOR).skip  # no queue yet
    first = route_rows(project, lineage, "b1", ["r0", "r1", "r2"], now)
    driver.tick(SENSOR)
    assert _told(receiver) == []  # three wait: at the bound, not past it

    route_rows(project, lineage, "b2", ["r3", "r4"], now)
    tick = driver.tick(SENSOR)
    [message] = _told(receiver)
    assert message["project"] == "small"
    assert "5 item(s) wait for a reviewer" in message["summary"]
    assert message["evidence"] == {"waiting": 5, "notify_open_above": 3}
    assert "5 item(s) wait" in tick.skip
    for _ in range(2):
        driver.tick(SENSOR)
    assert len(_told(receiver)) == 1  # still above: not told again

    for review_id in first:
        record_review(lineage, project, review_id, reviewer="ana", answer="1")
    driver.tick(SENSOR)  # two wait: back under the bound, re-armed
    assert len(_told(receiver)) == 1
    route_rows(project, lineage, "b3", ["r5", "r6"], now)
    driver.tick(SENSOR)
    assert len(_told(receiver)) == 2  # a new crossing is told again
    assert "4 item(s) wait" in _told(receiver)[-1]["summary"]


@pytest.mark.parametrize("on_timeout", ["keep_model_decision", "decline"])
def test_overdue_items_take_on_timeout_once_and_are_no_ground_truth(
    home, projects_dir, instance, monkeypatch, receiver, on_timeout
):
    project, lineage, driver = _watched(
        home, projects_dir, instance, monkeypatch, receiver, on_timeout
    )
    routed_at = datetime.now(timezone.utc) - timedelta(hours=3)  # due an hour ago
    answered, *late = route_rows(project, lineage, "b1", ["r0", "r1", "r2"], routed_at)
    record_review(
        lineage, project, answered, reviewer="ana", answer="0", now=routed_at + timedelta(hours=1)
    )

    driver.tick(SENSOR)
    [message] = _told(receiver)
    assert (
        f"2 item(s) passed their due time (2h) with no answer and took on_timeout "
        f"{on_timeout}" in message["summary"]
    )
    assert all(review_id in message["summary"] for review_id in late)
    assert message["evidence"]["on_timeout"] == on_timeout
    assert message["evidence"]["overdue"] == 2 and message["evidence"]["batches"] == "b1"

    # Each timed-out item has one record saying who (the policy), when and what.
    records = [a for a in answers_of(lineage, "small", "b1") if a.action == TIMEOUT_ACTION]
    assert sorted(r.review_id for r in records) == sorted(late)
    assert {(r.reviewer, r.on_timeout, r.answer) for r in records} == {
        (TIMEOUT_REVIEWER, on_timeout, None)
    }
    assert all(datetime.fromisoformat(r.at) > routed_at + timedelta(hours=2) for r in records)
    history = lineage.history([project.name, names.REVIEWS, names.PARTITIONS, "b1"])
    assert [h.actor for h in history].count(TIMEOUT_REVIEWER) == 2
    items = {item.review_id: item for item in read_items(lineage, project)}
    assert items[answered].state == ANSWERED
    assert {(items[i].state, items[i].timed_out) for i in late} == {(TIMED_OUT, on_timeout)}

    # A rerun records nothing twice and tells nothing again.
    for _ in range(2):
        driver.tick(SENSOR)
    assert len(_told(receiver)) == 1
    assert len(answers_of(lineage, "small", "b1")) == 3
    with pytest.raises(ReviewRefused, match="are the policy's own"):
        record_review(lineage, project, late[0], reviewer=TIMEOUT_REVIEWER, answer="1")

    # Only the person's answer is ground truth: a kept model decision is nobody's answer.
    labels = answered_labels(StoreReader(lineage), project, "b1")
    assert list(labels[names.ROW_ID]) == [items[answered].row_id]
    assert list(labels["label"]) == [0]
    status = json.loads(CliRunner().invoke(main, ["status", "small", "--json"]).output)
    assert status["review"] == {
        "open": 0,
        "overdue": 0,
        "answered": 1,
        "escalated": 0,
        "timed_out": 2,
        "waiting": 0,
        "items": 3,
    }
    table = CliRunner().invoke(main, ["status", "small"])
    assert table.exit_code == 0, table.output
    assert "review queue" in table.output and "timed out" in table.output

    # A person may still answer late: that answer is ground truth, the timeout stays recorded.
    record_review(lineage, project, late[0], reviewer="bo", answer="1", comment="late")
    labels = answered_labels(StoreReader(lineage), project, "b1")
    assert sorted(labels["label"]) == [0, 1]
    assert len([a for a in answers_of(lineage, "small", "b1") if a.action == TIMEOUT_ACTION]) == 2
    driver.tick(SENSOR)
    assert len(_told(receiver)) == 1


def test_only_reviewed_projects_have_a_queue_watch(home, projects_dir, monkeypatch):
    write_project(projects_dir, name="plain")
    write_project(projects_dir, policy_extra="  review: {audit_share: 0.1}\n")
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    sensors = {sensor.name for sensor in defs.sensors}
    assert SENSOR in sensors and names.review_queue_sensor("plain") not in sensors
    status = json.loads(CliRunner().invoke(main, ["status", "plain", "--json"]).output)
    assert status["review"] is None


def test_a_held_served_item_past_due_takes_on_timeout_too(
    home, projects_dir, instance, monkeypatch, receiver
):
    from unified_ai.io.review_served import REVIEW_SERVED, ServedItem, store_served

    project, lineage, driver = _watched(
        home, projects_dir, instance, monkeypatch, receiver, "decline"
    )
    now = datetime.now(timezone.utc)
    item = ServedItem(
        review_id="00aa11bb22cc33dd",
        batch="serve-x.csv",
        row_id="serve-x.csv:0",
        reasons="audit",
        detail="",
        model_answer="1",
        model_score=0.7,
        model_version="m1",
        deployment_version="d1",
        routed_at=now - timedelta(hours=3),
        due_at=now - timedelta(hours=1),
        held=True,
    )
    store_served(lineage, project, [item])
    driver.tick(SENSOR)
    [message] = _told(receiver)
    assert item.review_id in message["summary"] and "on_timeout decline" in message["summary"]
    [record] = answers_of(lineage, "small", item.batch)
    assert (record.review_id, record.action, record.reviewer, record.on_timeout) == (
        item.review_id,
        TIMEOUT_ACTION,
        TIMEOUT_REVIEWER,
        "decline",
    )
    # The record's lineage names the served item it timed out.
    path = [project.name, names.REVIEWS, names.PARTITIONS, item.batch]
    [manifest] = lineage.versions(path)
    assert f"small/{REVIEW_SERVED}/{item.review_id}" in manifest.upstream
    driver.tick(SENSOR)
    assert len(_told(receiver)) == 1 and len(answers_of(lineage, "small", item.batch)) == 1
    status = json.loads(CliRunner().invoke(main, ["status", "small", "--json"]).output)
    assert (status["review"]["timed_out"], status["review"]["waiting"]) == (1, 0)
