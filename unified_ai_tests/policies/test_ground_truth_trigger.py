"""The new-ground-truth trigger's decision."""

from datetime import datetime, timedelta, timezone

from unified_ai.policies.triggers import NewLabels, ground_truth_decision
from unified_ai.projects.schema import GroundTruthTrigger

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def labels(rows: int, *, included: bool = True, cut: str | None = "abc123") -> NewLabels:
    return NewLabels(
        rows=rows, batches=["b1.csv", "b2.csv"], cut_version=cut, cut_at="t", included=included
    )


def test_enough_new_labels_retrain_with_evidence():
    decision = ground_truth_decision(
        GroundTruthTrigger(min_new_labels=100), labels(120), last_trigger=None, now=NOW
    )
    assert decision.act
    assert "120 labeled rows from 2 batches arrived since training data abc123" in decision.reason
    assert decision.evidence["new_labels"] == "120"
    assert decision.evidence["batches"] == "b1.csv,b2.csv"
    assert decision.evidence["training_data"] == "abc123"


def test_too_few_labels_cooldown_switched_off_and_unused_labels_explain_the_skip():
    rule = GroundTruthTrigger(min_new_labels=100, cooldown_minutes=30)
    few = ground_truth_decision(rule, labels(99), last_trigger=None, now=NOW)
    assert not few.act and few.reason.endswith("(need 100)")
    cooling = ground_truth_decision(
        rule, labels(500), last_trigger=NOW - timedelta(minutes=10), now=NOW
    )
    assert not cooling.act and "cooldown (20 min left)" in cooling.reason
    off = ground_truth_decision(
        GroundTruthTrigger(enabled=False), labels(500), last_trigger=None, now=NOW
    )
    assert not off.act and "switched off" in off.reason
    unused = ground_truth_decision(rule, labels(500, included=False), last_trigger=None, now=NOW)
    assert not unused.act and "training.production_data.include is false" in unused.reason
    untrained = ground_truth_decision(rule, labels(500, cut=None), last_trigger=None, now=NOW)
    assert not untrained.act and "no training data yet" in untrained.reason
