"""Human approval as policy: who may approve what, when it counts, when policy approves.

Pure functions over recorded approvals and evaluation reports.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from unified_ai.projects.schema import LOWER_IS_BETTER, ApprovalPolicy

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ApprovalRecord:
    """One recorded decision of a person (as stored by `deployment_approval`)."""

    decision: str  # approve | reject
    approver: str
    model_version: str
    evaluation_report_version: str
    at: datetime
    valid: bool
    reason: str = ""


@dataclass(frozen=True)
class ApprovalDecision:
    allowed: bool
    reason: str
    approvers: list[str] = field(default_factory=list)


def allowed_approvers(policy: ApprovalPolicy) -> set[str] | None:
    """Names allowed to approve, or None when anyone may."""
    if not policy.approvers:
        return None
    names: set[str] = set()
    for entry in policy.approvers:
        if entry.startswith("group:"):
            names.update(policy.groups[entry.removeprefix("group:")])
        else:
            names.add(entry)
    return names


def check_new_approval(
    policy: ApprovalPolicy,
    *,
    approver: str,
    decision: str,
    requested_version: str,
    candidate_version: str,
    trained_by: str | None,
) -> str | None:
    """Why a new approval or rejection is invalid, or None when it is valid.

    Rejections by anyone allowed to approve are always valid (stopping is never blocked by
    four-eyes); approvals must be for the current candidate and not by its trainer.
    """
    if not approver.strip():
        return "no approver named"
    allowed = allowed_approvers(policy)
    if allowed is not None and approver not in allowed:
        return f"{approver} may not approve (allowed: {', '.join(sorted(allowed))})"
    if requested_version != candidate_version:
        return (
            f"version {requested_version} is not the current candidate {candidate_version}; "
            "approvals are pinned to one model version"
        )
    if decision == "approve" and policy.four_eyes and trained_by and approver == trained_by:
        return f"four-eyes: {approver} triggered the training of {candidate_version}"
    return None


def in_deployment_window(policy: ApprovalPolicy, now: datetime) -> str | None:
    """None if deploying now is allowed, else why not."""
    if not policy.deployment_windows:
        return None
    day = _DAYS[now.weekday()]
    clock = now.strftime("%H:%M")
    for window in policy.deployment_windows:
        if day in window.days and window.start <= clock <= window.end:
            return None
    spans = "; ".join(
        f"{','.join(w.days)} {w.start}-{w.end} UTC" for w in policy.deployment_windows
    )
    return f"{now:%a %H:%M} UTC is outside the deployment windows ({spans})"


def auto_approval(policy: ApprovalPolicy, report: Mapping[str, Any]) -> ApprovalDecision:
    """Whether policy approves this evaluated candidate by itself."""
    rule = policy.auto_approve
    champion = report.get("champion")
    if champion is None:
        if rule.first_model:
            return ApprovalDecision(True, "auto-approved by policy: first model", ["policy"])
        return ApprovalDecision(False, "the first model needs a person's approval")
    difference = report["comparison"]["metrics"][rule.metric]["difference"]
    improvement = -difference if rule.metric in LOWER_IS_BETTER else difference
    if improvement < rule.min_improvement:
        return ApprovalDecision(
            False,
            f"{rule.metric} improvement {improvement:+.4f} is below the auto-approval margin "
            f"{rule.min_improvement:+.4f}",
        )
    gap = report["candidate"]["fairness"]["largest"]["gap"] or 0.0
    champion_gap = champion["fairness"]["largest"]["gap"] or 0.0
    if gap > champion_gap + rule.max_gap_increase:
        return ApprovalDecision(
            False, f"segment gap grows from {champion_gap:.4f} to {gap:.4f}: a person decides"
        )
    return ApprovalDecision(
        True,
        f"auto-approved by policy: {rule.metric} {improvement:+.4f} and no segment gap worsened",
        ["policy"],
    )


def human_approval(
    policy: ApprovalPolicy,
    records: Iterable[ApprovalRecord],
    *,
    model_version: str,
    report_version: str,
    now: datetime,
) -> ApprovalDecision:
    """Enough valid, unexpired approvals for exactly this model and report, none rejected."""
    relevant = sorted((r for r in records if r.model_version == model_version), key=lambda r: r.at)
    rejections = [r for r in relevant if r.valid and r.decision == "reject"]
    if rejections:
        last = rejections[-1]
        return ApprovalDecision(
            False, f"rejected by {last.approver} at {last.at:%Y-%m-%d %H:%M}: {last.reason}"
        )
    expiry = timedelta(hours=policy.expires_after_hours)
    approvers: list[str] = []
    for record in relevant:
        if not record.valid or record.decision != "approve":
            continue
        if record.evaluation_report_version != report_version:
            continue  # pinned to the report it was given on
        if now - record.at > expiry:
            continue
        if record.approver not in approvers:
            approvers.append(record.approver)
    if len(approvers) >= policy.required_approvals:
        return ApprovalDecision(True, f"approved by {', '.join(approvers)}", approvers)
    have = f"{len(approvers)} of {policy.required_approvals}"
    return ApprovalDecision(
        False,
        f"waiting for approval of model {model_version}: {have} valid, unexpired approvals",
        approvers,
    )


def deployment_approval_decision(
    policy: ApprovalPolicy,
    report: Mapping[str, Any],
    records: Iterable[ApprovalRecord],
    *,
    report_version: str,
    now: datetime,
) -> ApprovalDecision:
    """The whole rule: windows, then `never` / `auto` / `required`."""
    outside = in_deployment_window(policy, now)
    if outside:
        return ApprovalDecision(False, outside)
    if policy.mode == "never":
        return ApprovalDecision(True, "policy requires no approval", [])
    if policy.mode == "auto":
        auto = auto_approval(policy, report)
        if auto.allowed:
            return auto
    human = human_approval(
        policy,
        records,
        model_version=report["candidate"]["model_version"],
        report_version=report_version,
        now=now,
    )
    if not human.allowed and policy.mode == "auto":
        return ApprovalDecision(False, f"{auto.reason}; {human.reason}", human.approvers)
    return human
