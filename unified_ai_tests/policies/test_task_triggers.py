"""Triggers and the rollback rule honour the live metric's direction (RMSE: lower is better)."""

from datetime import datetime, timedelta, timezone

from unified_ai.payloads import LiveSummary
from unified_ai.policies.live_reading import live_evidence
from unified_ai.policies.triggers import (
    LiveEvidence,
    live_action,
    performance_decision,
    rollback_decision,
)
from unified_ai.projects.schema import PerformanceTrigger, RollbackTrigger

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)


def rmse(value=4.0, *, paired=(4.0, 4.0), ci=(-0.2, 0.2), recent=None, previous=4.0):
    """Regression evidence for deployment v2 (RMSE), v1 scored on the same rows."""
    live_value, previous_value = paired
    return LiveEvidence(
        metric="rmse",
        deployment="v2",
        value=value,
        ci_high=None,
        labeled_rows=500,
        deployed_at=NOW - timedelta(hours=1),
        previous_deployment="v1",
        previous_value=previous,
        paired_deployment="v1",
        paired_rows=400,
        paired_value=live_value,
        paired_previous_value=previous_value,
        paired_difference=live_value - previous_value,
        paired_ci_low=ci[0],
        paired_ci_high=ci[1],
        recent_batches=1 if recent is not None else 0,
        recent_rows=300 if recent is not None else 0,
        recent_value=recent,
    )


CEILING = PerformanceTrigger(metric="rmse", floor=6.0, min_labels=50, recent_rows=150)


def test_a_regression_deployment_whose_rmse_rises_above_the_ceiling_triggers():
    high = performance_decision(CEILING, rmse(7.5), last_trigger=None, now=NOW)
    assert high.act and "above the ceiling 6.0000" in high.reason
    low = performance_decision(CEILING, rmse(3.0), last_trigger=None, now=NOW)
    assert not low.act and "at or below 6.0000" in low.reason
    recent = performance_decision(CEILING, rmse(5.0, recent=8.0), last_trigger=None, now=NOW)
    assert recent.act and recent.evidence["decided_by"] == "recent_window"
    cooling = performance_decision(
        CEILING, rmse(7.5), last_trigger=NOW - timedelta(minutes=5), now=NOW
    )
    assert not cooling.act and "> 6.0000" in cooling.reason


def test_a_higher_is_better_metric_still_triggers_below_its_floor():
    rule = PerformanceTrigger(metric="macro_f1", floor=0.6, min_labels=50)
    evidence = LiveEvidence(
        metric="macro_f1",
        deployment="v2",
        value=0.5,
        ci_high=None,
        labeled_rows=500,
        deployed_at=None,
        previous_deployment=None,
        previous_value=None,
    )
    decided = performance_decision(rule, evidence, last_trigger=None, now=NOW)
    assert decided.act and "below the floor" in decided.reason


def test_a_fresh_deployment_clearly_worse_in_rmse_than_its_predecessor_rolls_back():
    rule = RollbackTrigger(margin=0.5)
    worse = rmse(paired=(6.0, 4.0), ci=(1.2, 2.8))
    decided = rollback_decision(rule, worse, min_rows=50, last_trigger=None, now=NOW)
    assert decided.act and "2.0000 above the previous deployment" in decided.reason
    action = live_action(rule, CEILING, worse, last_rollback=None, last_retrain=None, now=NOW)
    assert action.action == "rollback"


def test_a_lower_rmse_than_the_predecessor_is_never_a_rollback():
    rule = RollbackTrigger(margin=0.5)
    better = rmse(paired=(3.0, 5.0), ci=(-2.8, -1.2))
    decided = rollback_decision(rule, better, min_rows=50, last_trigger=None, now=NOW)
    assert not decided.act and "interval above 0" in decided.reason
    # Worse by more than the margin but the interval reaches below zero: not clearly worse.
    unsure = rmse(paired=(5.0, 4.0), ci=(-0.1, 2.0))
    assert not rollback_decision(rule, unsure, min_rows=50, last_trigger=None, now=NOW).act


def test_the_summary_carries_the_lower_interval_ends_to_the_rollback():
    report = {
        "metric": "rmse",
        "current": {
            "deployment": "v2",
            "value": 6.0,
            "ci_low": 5.5,
            "ci_high": 6.5,
            "labeled_rows": 400,
        },
        "previous": {"deployment": "v1", "value": 4.0},
        "paired": {
            "deployment": "v1",
            "rows": 400,
            "live": 6.0,
            "previous": 4.0,
            "difference": 2.0,
            "ci_low": 1.5,
            "ci_high": 2.5,
        },
        "recent_paired": {
            "batches": ["b3"],
            "rows": 200,
            "live": 6.0,
            "previous": 4.0,
            "difference": 2.0,
            "ci_low": 1.1,
            "ci_high": 2.9,
        },
    }
    summary = LiveSummary.from_report(report, deployed_at=None)
    read = LiveSummary.from_metadata(summary.metadata())
    evidence = live_evidence(read, deployed_at=NOW - timedelta(hours=1))
    assert evidence.paired_ci_low == 1.5 and evidence.recent_paired_ci_low == 1.1
    assert evidence.lower_is_better
    decided = rollback_decision(
        RollbackTrigger(margin=0.5), evidence, min_rows=50, last_trigger=None, now=NOW
    )
    assert decided.act
