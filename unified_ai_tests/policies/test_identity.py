"""One person is one approver, however their name is typed; policy is checked at deploy time."""

from datetime import datetime, timezone

import pytest

from unified_ai.payloads import ApprovalRecord
from unified_ai.policies.approval import (
    check_new_approval,
    deployment_approval_decision,
    human_approval,
)
from unified_ai.projects.identity import normalize_identity
from unified_ai.projects.schema import ApprovalPolicy

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
FULLWIDTH = "\uff41\uff4c\uff49\uff43\uff45"
SPELLINGS = [
    "alice",
    "Alice",
    "ali\u200bce",
    FULLWIDTH,
    " ALICE\u00a0",
    "\u2060alice",
    "al\u3164ice\ufe0f",
    "a\u034flice\u202e",
]


def approve(name: str, minute: int = 0) -> ApprovalRecord:
    return ApprovalRecord("approve", name, "m2", "r2", NOON.replace(minute=minute), True)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_spellings_of_one_name_normalise_alike(spelling):
    assert normalize_identity(spelling) == "alice"


def test_normalisation_keeps_distinct_people_distinct_and_collapses_whitespace():
    assert normalize_identity("Ann  Lee") == normalize_identity("ann lee") == "ann lee"
    assert normalize_identity("ann") != normalize_identity("anne")
    assert normalize_identity("\u200b \u200d") == ""


def test_variants_of_one_name_count_as_one_approver():
    policy = ApprovalPolicy(mode="required", required_approvals=2)
    records = [approve(name, minute) for minute, name in enumerate(SPELLINGS)]
    later = NOON.replace(minute=45)  # after every approval: those dated later do not count
    decision = human_approval(policy, records, model_version="m2", report_version="r2", now=later)
    assert not decision.allowed and "1 of 2" in decision.reason
    assert decision.approvers == ["alice"]  # the name as first given, not the normalised form
    both = human_approval(
        policy, [*records, approve("Bob", 30)], model_version="m2", report_version="r2", now=later
    )
    assert both.allowed and both.approvers == ["alice", "Bob"]


def test_allow_list_and_four_eyes_compare_normalised_names():
    policy = ApprovalPolicy(approvers=["Alice", "group:risk"], groups={"risk": ["Bob"]})
    args = {"requested_version": "m", "candidate_version": "m", "decision": "approve"}
    assert check_new_approval(policy, approver=FULLWIDTH, trained_by="carol", **args) is None
    assert check_new_approval(policy, approver="bob", trained_by="carol", **args) is None
    refused = check_new_approval(policy, approver="Alice", trained_by="alice", **args)
    assert refused == "four-eyes: Alice triggered the training of m"
    invisible = check_new_approval(policy, approver="\u200b", trained_by=None, **args)
    assert invisible == "no approver named"
    outsider = check_new_approval(policy, approver="mallory", trained_by=None, **args)
    assert outsider == "mallory may not approve (allowed: Alice, Bob)"


def test_approval_from_someone_removed_from_policy_no_longer_counts():
    before = ApprovalPolicy(mode="required", approvers=["alice", "bob"])
    after = ApprovalPolicy(mode="required", approvers=["bob"])
    records = [approve("Alice")]
    args = {"model_version": "m2", "report_version": "r2", "now": NOON}
    assert human_approval(before, records, **args).allowed
    dropped = human_approval(after, records, **args)
    assert not dropped.allowed and "0 of 1" in dropped.reason
    report = {"candidate": {"model_version": "m2", "trained_by": "carol"}, "champion": None}
    decision = deployment_approval_decision(after, report, records, report_version="r2", now=NOON)
    assert not decision.allowed and "0 of 1" in decision.reason


def test_four_eyes_is_rechecked_at_deploy_time():
    # The approval was recorded while four-eyes was off; the current policy turns it on.
    policy = ApprovalPolicy(mode="required", four_eyes=True)
    report = {"candidate": {"model_version": "m2", "trained_by": "alice"}, "champion": None}
    records = [approve("ALICE")]
    decision = deployment_approval_decision(policy, report, records, report_version="r2", now=NOON)
    assert not decision.allowed and "0 of 1" in decision.reason
    lax = ApprovalPolicy(mode="required", four_eyes=False)
    assert deployment_approval_decision(lax, report, records, report_version="r2", now=NOON).allowed
