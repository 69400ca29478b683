from datetime import datetime, timedelta, timezone

from unified_ai.policies.triggers import (
    LiveEvidence,
    drift_decision,
    live_action,
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


def live(
    value=0.6,
    previous=0.85,
    ci_high=0.7,
    age_hours=1.0,
    rows=500,
    paired_rows=400,
    paired_value=0.6,
    paired_previous=0.85,
    paired_ci_high=-0.15,
):
    """Evidence for deployment v2, with v1 (its rollback target) scored on the same rows."""
    return LiveEvidence(
        metric="roc_auc",
        deployment="v2",
        value=value,
        ci_high=ci_high,
        labeled_rows=rows,
        deployed_at=NOW - timedelta(hours=age_hours),
        previous_deployment="v1",
        previous_value=previous,
        paired_deployment="v1",
        paired_rows=paired_rows,
        paired_value=paired_value,
        paired_previous_value=paired_previous,
        paired_difference=None
        if paired_value is None or paired_previous is None
        else paired_value - paired_previous,
        paired_ci_high=paired_ci_high,
    )


def decide(evidence, rule=None, last=None, min_rows=100):
    return rollback_decision(
        rule or RollbackTrigger(bake_window_hours=24, margin=0.05),
        evidence,
        min_rows=min_rows,
        last_trigger=last,
        now=NOW,
    )


def test_rollback_inside_bake_window_when_clearly_worse_on_the_same_rows():
    decision = decide(live())
    assert decision.act and "on the same 400 labeled rows" in decision.reason
    assert "below the previous deployment" in decision.reason
    assert decision.evidence["paired_deployment"] == "v1"
    assert decision.evidence["paired_difference"] == "-0.2500"
    assert not decide(live(age_hours=30)).act
    assert not decide(live(paired_value=0.83)).act
    # An interval of the difference reaching zero is not "clearly" worse.
    assert not decide(live(paired_ci_high=0.01)).act
    recent = decide(live(), last=NOW - timedelta(minutes=5))
    assert not recent.act and "cooldown" in recent.reason


def test_rollback_ignores_the_predecessor_numbers_on_other_rows():
    # Last week v1 scored 0.85 on its own rows; this week, on the same rows, both score 0.6.
    both = decide(live(value=0.6, previous=0.85, paired_value=0.6, paired_previous=0.61))
    assert not both.act and not both.pending
    assert "both degrade together" in both.reason
    # No earlier deployment scored these rows: nothing to compare with, not a rollback.
    alone = decide(
        LiveEvidence("roc_auc", "v2", 0.5, 0.6, 500, NOW, "v1", 0.9)  # no paired evidence
    )
    assert not alone.act and "no live comparison" in alone.reason


def test_too_few_paired_rows_waits_with_a_reason():
    few = decide(live(paired_rows=30))
    assert not few.act and few.pending
    assert few.reason == (
        "waiting for paired evidence: 30 labeled rows scored by both deployment v2 and its "
        "predecessor v1 (need 100 with a measurable roc_auc)"
    )
    unmeasurable = decide(live(paired_value=None, paired_ci_high=None))
    assert not unmeasurable.act and unmeasurable.pending


def act(evidence, floor=0.7, min_labels=100):
    return live_action(
        RollbackTrigger(bake_window_hours=24, margin=0.05),
        PerformanceTrigger(floor=floor, min_labels=min_labels),
        evidence,
        last_rollback=None,
        last_retrain=None,
        now=NOW,
    )


def test_live_action_rolls_back_retrains_or_waits():
    worse = act(live())
    assert worse.action == "rollback" and worse.retrain is None
    # Both degrade together: no rollback; below the floor, so the loop retrains.
    together = act(live(paired_value=0.6, paired_previous=0.6, paired_ci_high=0.03))
    assert together.action == "retrain"
    assert "below the floor 0.7000" in together.reason and "no rollback" in together.reason
    # Too few rows both models scored: neither a rollback nor a retrain yet.
    waiting = act(live(paired_rows=20))
    assert waiting.action == "wait" and "waiting for paired evidence" in waiting.reason
    # Past the bake window a rollback is out of the question: the floor alone decides.
    late = act(live(age_hours=48, paired_rows=0))
    assert late.action == "retrain"
    healthy = act(live(value=0.8, paired_value=0.8, paired_previous=0.8, paired_ci_high=0.02))
    assert healthy.action == "wait" and "at or above" in healthy.reason


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
    for evidence in (
        live(paired_value=nan),
        live(paired_previous=nan),
        live(paired_ci_high=nan),
    ):
        rollback = decide(evidence)
        assert not rollback.act and "is not a number" in rollback.reason
