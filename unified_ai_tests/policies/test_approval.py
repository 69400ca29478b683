from datetime import datetime, timedelta, timezone

from unified_ai.payloads import ApprovalRecord
from unified_ai.policies.approval import (
    CLOCK_SKEW,
    allowed_approvers,
    auto_approval,
    check_new_approval,
    dated_in_future,
    deployment_approval_decision,
    in_deployment_window,
)
from unified_ai.projects.schema import ApprovalPolicy

MONDAY_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def report(improvement=0.02, gap=0.05, champion_gap=0.05, champion=True):
    body = {
        "candidate": {"model_version": "m2", "fairness": {"largest": {"gap": gap}}},
        "champion": None,
        "comparison": None,
    }
    if champion:
        body["champion"] = {"fairness": {"largest": {"gap": champion_gap}}}
        body["comparison"] = {"metrics": {"roc_auc": {"difference": improvement}}}
    return body


def test_groups_expand_and_empty_means_anyone():
    policy = ApprovalPolicy(approvers=["ann", "group:risk"], groups={"risk": ["bo", "cy"]})
    assert allowed_approvers(policy) == {"ann", "bo", "cy"}
    assert allowed_approvers(ApprovalPolicy()) is None


def test_rejections_are_not_blocked_by_four_eyes():
    policy = ApprovalPolicy(four_eyes=True)
    args = {"requested_version": "m", "candidate_version": "m", "trained_by": "ann"}
    assert check_new_approval(policy, approver="ann", decision="reject", **args) is None
    assert "four-eyes" in check_new_approval(policy, approver="ann", decision="approve", **args)


def test_deployment_windows():
    policy = ApprovalPolicy(
        deployment_windows=[{"days": ["mon"], "start": "09:00", "end": "17:00"}]
    )
    assert in_deployment_window(policy, MONDAY_NOON) is None
    late = in_deployment_window(policy, MONDAY_NOON.replace(hour=20))
    assert late == "Mon 20:00 UTC is outside the deployment windows (mon 09:00-17:00 UTC)"
    decision = deployment_approval_decision(
        ApprovalPolicy(mode="never", deployment_windows=policy.deployment_windows),
        report(),
        [],
        report_version="r",
        now=MONDAY_NOON + timedelta(days=1),
    )
    assert not decision.allowed and "outside the deployment windows" in decision.reason


def test_auto_approval_margin_gap_and_first_model():
    policy = ApprovalPolicy(mode="auto", auto_approve={"min_improvement": 0.01})
    assert auto_approval(policy, report(improvement=0.02)).allowed
    assert not auto_approval(policy, report(improvement=0.005)).allowed
    wider = auto_approval(policy, report(gap=0.09, champion_gap=0.05))
    assert not wider.allowed and "segment gap grows from 0.0500 to 0.0900" in wider.reason
    assert auto_approval(policy, report(champion=False)).allowed
    strict = ApprovalPolicy(mode="auto", auto_approve={"first_model": False})
    assert not auto_approval(strict, report(champion=False)).allowed


def test_approvals_pinned_to_report_and_expiring():
    policy = ApprovalPolicy(mode="required", expires_after_hours=1)
    fresh = ApprovalRecord("approve", "bo", "m2", "r2", MONDAY_NOON, True)
    other_report = ApprovalRecord("approve", "cy", "m2", "r1", MONDAY_NOON, True)
    decision = deployment_approval_decision(
        policy, report(), [fresh, other_report], report_version="r2", now=MONDAY_NOON
    )
    assert decision.allowed and decision.approvers == ["bo"]
    later = MONDAY_NOON + timedelta(hours=2)
    expired = deployment_approval_decision(
        policy, report(), [fresh], report_version="r2", now=later
    )
    assert not expired.allowed and "0 of 1" in expired.reason


def test_overnight_window_belongs_to_the_day_it_starts():
    policy = ApprovalPolicy(
        deployment_windows=[{"days": ["fri"], "start": "22:00", "end": "02:00"}]
    )
    friday = datetime(2026, 12, 4, tzinfo=timezone.utc)
    inside = [
        friday.replace(hour=22),
        friday.replace(hour=23, minute=59),
        friday + timedelta(days=1, hours=1, minutes=30),
        friday + timedelta(days=1, hours=2),
    ]
    for now in inside:
        assert in_deployment_window(policy, now) is None, now
    outside = [
        friday.replace(hour=21, minute=59),
        friday.replace(hour=1),
        friday + timedelta(days=1, hours=2, minutes=1),
        friday + timedelta(days=1, hours=23),
    ]
    for now in outside:
        assert in_deployment_window(policy, now) is not None, now
    assert in_deployment_window(policy, friday.replace(hour=1)) == (
        "Fri 01:00 UTC is outside the deployment windows (fri 22:00-02:00 (next day) UTC)"
    )


def test_auto_approval_never_passes_on_nan():
    policy = ApprovalPolicy(mode="auto", auto_approve={"min_improvement": 0.01})
    nan = float("nan")
    worse = auto_approval(policy, report(improvement=nan))
    assert not worse.allowed and "roc_auc improvement is not a number" in worse.reason
    gap = auto_approval(policy, report(gap=nan))
    assert not gap.allowed and "segment gap is not a number" in gap.reason
    champion_gap = auto_approval(policy, report(champion_gap=nan))
    assert not champion_gap.allowed and "segment gap is not a number" in champion_gap.reason


def test_approvals_dated_in_the_future_never_count():
    policy = ApprovalPolicy(mode="required", expires_after_hours=1)
    args = {"report_version": "r2", "now": MONDAY_NOON}

    def approval(at, recorded_at=None):
        return ApprovalRecord("approve", "bo", "m2", "r2", at, True, recorded_at=recorded_at)

    # Within the clock-skew allowance: a clock a little ahead still counts.
    skewed = approval(MONDAY_NOON + CLOCK_SKEW)
    assert deployment_approval_decision(policy, report(), [skewed], **args).allowed
    ahead = approval(MONDAY_NOON + timedelta(days=365))
    refused = deployment_approval_decision(policy, report(), [ahead], **args)
    assert not refused.allowed
    assert "not counted: bo (dated 2027-11-30 12:00 UTC, in the future: later than now" in (
        refused.reason
    )
    # Dated an hour after it was recorded: it does not come alive when that hour arrives.
    sleeper = approval(MONDAY_NOON + timedelta(hours=1), recorded_at=MONDAY_NOON)
    for now in (MONDAY_NOON, MONDAY_NOON + timedelta(hours=1, minutes=30)):
        decision = deployment_approval_decision(
            policy, report(), [sleeper], report_version="r2", now=now
        )
        assert not decision.allowed and "in the future" in decision.reason
    # A time without a time zone compares with nothing: refused, never a crash.
    naive = approval(MONDAY_NOON.replace(tzinfo=None))
    decision = deployment_approval_decision(policy, report(), [naive], **args)
    assert not decision.allowed and "without a time zone" in decision.reason
    assert dated_in_future(MONDAY_NOON, MONDAY_NOON) is None
