from datetime import datetime, timedelta, timezone

from unified_ai.policies.triggers import (
    LiveEvidence,
    drift_decision,
    performance_decision,
    rollback_decision,
)
from unified_ai.projects.schema import DriftTrigger, PerformanceTrigger, RollbackTrigger

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def test_drift_acts_above_threshold_and_respects_cooldown_and_switch():
    rule = DriftTrigger(max_drifted_share=0.3, cooldown_minutes=60)
    args = {"drifted": ["a"], "batch": "b1", "now": NOW}
    assert not drift_decision(rule, share=0.2, last_trigger=None, **args).act
    act = drift_decision(rule, share=0.5, last_trigger=None, **args)
    assert act.act and act.evidence["drifted_share"] == "0.500"
    cooling = drift_decision(rule, share=0.5, last_trigger=NOW - timedelta(minutes=10), **args)
    assert not cooling.act and "cooldown ends in 50 min" in cooling.reason
    assert drift_decision(rule, share=0.5, last_trigger=NOW - timedelta(hours=2), **args).act
    off = drift_decision(DriftTrigger(enabled=False), share=0.9, last_trigger=None, **args)
    assert not off.act and "switched off" in off.reason


def live(value=0.6, previous=0.85, ci_high=0.7, age_hours=1.0, rows=500):
    return LiveEvidence(
        metric="roc_auc",
        deployment="v2",
        value=value,
        ci_high=ci_high,
        labeled_rows=rows,
        deployed_at=NOW - timedelta(hours=age_hours),
        previous_deployment="v1",
        previous_value=previous,
    )


def test_rollback_inside_bake_window_when_clearly_worse():
    rule = RollbackTrigger(bake_window_hours=24, margin=0.05)
    decision = rollback_decision(rule, live(), last_trigger=None, now=NOW)
    assert decision.act and "below the previous deployment's 0.8500" in decision.reason
    assert not rollback_decision(rule, live(age_hours=30), last_trigger=None, now=NOW).act
    assert not rollback_decision(rule, live(value=0.83), last_trigger=None, now=NOW).act
    # A wide interval reaching the predecessor's value is not "clearly" worse.
    assert not rollback_decision(rule, live(ci_high=0.9), last_trigger=None, now=NOW).act
    assert not rollback_decision(rule, live(previous=None), last_trigger=None, now=NOW).act
    recent = rollback_decision(rule, live(), last_trigger=NOW - timedelta(minutes=5), now=NOW)
    assert not recent.act and "cooldown" in recent.reason


def test_performance_floor_needs_enough_labels():
    rule = PerformanceTrigger(floor=0.7, min_labels=100)
    assert performance_decision(rule, live(value=0.6), last_trigger=None, now=NOW).act
    few = performance_decision(rule, live(value=0.6, rows=10), last_trigger=None, now=NOW)
    assert not few.act and "only 10 labeled rows" in few.reason
    assert not performance_decision(rule, live(value=0.75), last_trigger=None, now=NOW).act


def test_nan_evidence_never_triggers_an_automation():
    nan = float("nan")
    drift = drift_decision(
        DriftTrigger(), share=nan, drifted=[], batch="b1", last_trigger=None, now=NOW
    )
    assert not drift.act and "drifted share is not a number" in drift.reason
    perf = performance_decision(PerformanceTrigger(), live(value=nan), last_trigger=None, now=NOW)
    assert not perf.act and "is not a number" in perf.reason
    for evidence in (live(value=nan), live(previous=nan), live(ci_high=nan)):
        rollback = rollback_decision(RollbackTrigger(), evidence, last_trigger=None, now=NOW)
        assert not rollback.act and "is not a number" in rollback.reason
