"""Recent evidence first, evidence re-arms a trigger, no no-op deployments: the pure rules."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from pydantic import ValidationError

from unified_ai.ml.evaluation import same_model
from unified_ai.policies.approval import (
    auto_approval,
    check_new_approval,
    deployment_approval_decision,
    identical_to_champion,
)
from unified_ai.policies.triggers import (
    LastRetrain,
    LiveEvidence,
    NewLabels,
    cooldown_hold,
    drift_decision,
    ground_truth_decision,
    performance_decision,
    reproduces_last_model,
    rollback_decision,
)
from unified_ai.projects.schema import (
    ApprovalPolicy,
    DriftTrigger,
    GroundTruthTrigger,
    PerformanceTrigger,
    RollbackTrigger,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
EARLIER = NOW - timedelta(minutes=10)

# v2 learned a change that has ended: over the whole window it still looks better than v1
# (+0.02), but on the last 2 batches it is far worse (-0.20, interval below zero).
ENDED = LiveEvidence(
    metric="roc_auc",
    deployment="v2",
    value=0.70,
    ci_high=0.75,
    labeled_rows=800,
    deployed_at=NOW - timedelta(hours=2),
    previous_deployment="v1",
    previous_value=0.8,
    paired_deployment="v1",
    paired_rows=800,
    paired_value=0.70,
    paired_previous_value=0.68,
    paired_difference=0.02,
    paired_ci_high=0.06,
    recent_paired_batches=2,
    recent_paired_rows=200,
    recent_paired_value=0.60,
    recent_paired_previous_value=0.80,
    recent_paired_difference=-0.20,
    recent_paired_ci_high=-0.12,
    recent_batches=2,
    recent_rows=200,
    recent_value=0.60,
)


def test_the_recent_window_rolls_back_when_the_whole_window_does_not():
    rule = RollbackTrigger(margin=0.05, recent_rows=150)
    decided = rollback_decision(rule, ENDED, min_rows=50, last_trigger=None, now=NOW)
    assert decided.act
    assert decided.evidence["decided_by"] == "recent_window"
    assert "of the last 2 batches" in decided.reason and "whole window: +0.0200" in decided.reason
    # The same rule, margin and interval: inside the margin, or an interval reaching zero, waits.
    for within in (
        replace(ENDED, recent_paired_difference=-0.04),
        replace(ENDED, recent_paired_ci_high=0.01),
    ):
        kept = rollback_decision(rule, within, min_rows=50, last_trigger=None, now=NOW)
        assert not kept.act and kept.evidence["decided_by"] == "none"
        assert "nor on the last 2 batches" in kept.reason
    # Too few recent rows to judge: the recent window says nothing.
    few = rollback_decision(
        RollbackTrigger(recent_rows=201), ENDED, min_rows=50, last_trigger=None, now=NOW
    )
    assert not few.act and "the recent window has 200 paired rows (judged from 201)" in few.reason


def test_the_bake_window_decides_first_and_says_so():
    worse = replace(ENDED, paired_difference=-0.2, paired_ci_high=-0.1)
    decided = rollback_decision(RollbackTrigger(), worse, min_rows=50, last_trigger=None, now=NOW)
    assert decided.act and decided.evidence["decided_by"] == "bake_window"
    assert "decided by the bake window" in decided.reason


def test_the_performance_floor_also_reads_the_recent_window():
    rule = PerformanceTrigger(floor=0.65, min_labels=50, recent_rows=150)
    decided = performance_decision(rule, ENDED, last_trigger=None, now=NOW)
    assert decided.act and decided.evidence["decided_by"] == "recent_window"
    assert "0.6000 over the last 2 batches" in decided.reason
    few = performance_decision(
        rule.model_copy(update={"recent_rows": 300}), ENDED, last_trigger=None, now=NOW
    )
    assert not few.act and few.evidence["decided_by"] == "none"


def rejected(fresh: bool) -> LastRetrain:
    return LastRetrain("abcdef123456", "no_deployment", "rejected by alice", fresh, "250 rows")


def test_a_retrain_that_deployed_nothing_holds_no_cooldown_against_fresh_evidence():
    assert cooldown_hold("drift", 60, EARLIER, NOW, rejected(True)) is None
    held = cooldown_hold("drift", 60, EARLIER, NOW, rejected(False))
    assert held is not None and held.minutes == 50
    assert held.rule.startswith(
        "held by policy.triggers.drift.cooldown_minutes: the last retrain (run abcdef12)"
    )
    assert "deployed nothing (rejected by alice)" in held.rule and "(250 rows)" in held.rule
    deployed = LastRetrain("abcdef123456", "deployed", "deployed d1 after its data was cut")
    assert "deployed d1" in cooldown_hold("drift", 60, EARLIER, NOW, deployed).rule
    assert cooldown_hold("drift", 60, NOW - timedelta(hours=2), NOW, rejected(False)) is None


def test_each_trigger_is_rearmed_and_names_the_rule_that_holds_it():
    labels = NewLabels(500, ["b1"], "cut1", "t", True)
    gt = GroundTruthTrigger(min_new_labels=200, cooldown_minutes=60)
    rearmed = ground_truth_decision(
        gt, labels, last_trigger=EARLIER, now=NOW, last_retrain=rejected(True)
    )
    assert rearmed.act and rearmed.evidence["rearmed"] == "250 rows"
    held = ground_truth_decision(
        gt, labels, last_trigger=EARLIER, now=NOW, last_retrain=rejected(False)
    )
    assert not held.act and "policy.triggers.ground_truth.cooldown_minutes" in held.reason
    args = {"share": 0.9, "drifted": ["a"], "batch": "b", "last_trigger": EARLIER, "now": NOW}
    assert drift_decision(DriftTrigger(), **args, last_retrain=rejected(True)).act
    cooling = drift_decision(DriftTrigger(), **args, last_retrain=rejected(False))
    assert "policy.triggers.drift.cooldown_minutes" in cooling.reason
    floor = PerformanceTrigger(floor=0.9, min_labels=50)
    assert performance_decision(
        floor, ENDED, last_trigger=EARLIER, now=NOW, last_retrain=rejected(True)
    ).act
    held = performance_decision(
        floor, ENDED, last_trigger=EARLIER, now=NOW, last_retrain=rejected(False)
    )
    assert "policy.triggers.performance.cooldown_minutes" in held.reason


def test_a_trigger_says_when_a_retrain_would_only_reproduce_the_champion():
    deployed = LastRetrain("r", "deployed", "deployed d1")
    none_new = NewLabels(0, [], "cut1", "t", True)
    assert reproduces_last_model(none_new, deployed) == (
        "a retrain would only reproduce the champion: no labeled rows arrived since its "
        "training data cut1 was cut"
    )
    assert reproduces_last_model(replace(none_new, rows=1), deployed) is None
    # Training ignores production rows: only the source can change it, which no trigger sees.
    assert reproduces_last_model(replace(none_new, included=False), deployed) is None


REPORT = {
    "candidate": {"model_version": "m2", "fairness": {"largest": {"gap": 0.0}}},
    "champion": {"model_version": "m1", "fairness": {"largest": {"gap": 0.0}}},
    "comparison": {"metrics": {"roc_auc": {"difference": 0.0}}},
    "identical": {"identical": True, "reason": "the same predictions on all 240 holdout rows"},
}


def test_an_identical_candidate_is_never_approved_by_policy_or_a_person():
    why = identical_to_champion(REPORT)
    assert why == (
        "candidate m2 is identical to the champion m1 (the same predictions on all 240 holdout "
        "rows): deploying it would change nothing"
    )
    auto = ApprovalPolicy(mode="auto")
    assert not auto_approval(auto, REPORT).allowed
    differs = {**REPORT, "identical": {"identical": False, "reason": "differ"}}
    assert auto_approval(auto, differs).allowed
    for mode in ("never", "auto", "required"):
        decided = deployment_approval_decision(
            ApprovalPolicy(mode=mode), REPORT, [], report_version="r", now=NOW
        )
        assert not decided.allowed and decided.reason == why
    args = {
        "approver": "alice",
        "requested_version": "m2",
        "candidate_version": "m2",
        "trained_by": None,
        "identical": why,
    }
    policy = ApprovalPolicy(mode="required", four_eyes=False)
    assert check_new_approval(policy, decision="approve", **args) == why
    assert check_new_approval(policy, decision="reject", **args) is None  # stopping is fine


def test_identical_means_the_same_stored_model_or_the_same_predictions():
    a = np.array([0.1, 0.7, 0.4])
    assert same_model("m1", "m1", a, a + 1)["identical"]
    assert (
        same_model("m2", "m1", a, a.copy())["reason"]
        == "the same predictions on all 3 holdout rows"
    )
    assert not same_model("m2", "m1", a, a + 1e-12)["identical"]


@pytest.mark.parametrize(
    "rule, field, bad",
    [
        (RollbackTrigger, "recent_batches", 0),
        (RollbackTrigger, "recent_rows", 0),
        (PerformanceTrigger, "recent_batches", 10_001),
        (PerformanceTrigger, "recent_rows", -1),
    ],
)
def test_recent_window_fields_out_of_range_are_refused(rule, field, bad):
    with pytest.raises(ValidationError, match=field):
        rule(**{field: bad})
