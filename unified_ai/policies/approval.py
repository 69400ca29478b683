"""Human approval as policy: who may approve what, when it counts, when policy approves.

Pure functions over recorded approvals and evaluation reports. People are compared by
`normalize_identity`, so `alice`, `Alice`, `alice` with a zero-width space inside and its
fullwidth spelling are one person; records and messages keep each name as it was given.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from unified_ai.payloads import ApprovalRecord
from unified_ai.projects.identity import expand_people, is_listed, normalize_identity
from unified_ai.projects.schema import LOWER_IS_BETTER, ApprovalPolicy, DeploymentWindow

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: How far an approval's time may be ahead of the clock that reads it (or of the time it was
#: recorded) and still count: clocks of two machines differ by seconds, not by hours. An
#: approval dated later than that never counts, so it cannot outlive its expiry.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ApprovalDecision:
    allowed: bool
    reason: str
    approvers: list[str] = field(default_factory=list)


def dated_in_future(at: datetime, reference: datetime, what: str = "now") -> str | None:
    """Why a decision dated `at` is refused, or None when it is not in the future.

    Args:
        at: The time the decision carries.
        reference: Now, or when the decision was recorded.
        what: How to name `reference` in the reason ("now", "it was recorded").

    Returns:
        None when `at` is at most `CLOCK_SKEW` later than `reference`; else one line. A time
        without a time zone is refused too: it cannot be compared with anything.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        return f"dated {at.isoformat()} without a time zone"
    if at - reference > CLOCK_SKEW:
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        return (
            f"dated {at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, in the future: later than "
            f"{what} ({reference.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC) by more than the "
            f"{minutes}-minute clock-skew allowance"
        )
    return None


def _future(record: ApprovalRecord, now: datetime) -> str | None:
    """Why `record` is dated in the future (of now, or of its own recording), or None."""
    return dated_in_future(record.at, now) or (
        dated_in_future(record.at, record.recorded_at, "it was recorded")
        if record.recorded_at is not None
        else None
    )


def allowed_approvers(policy: ApprovalPolicy) -> set[str] | None:
    """Names allowed to approve, as written in the policy, or None when anyone may."""
    return expand_people(policy.approvers, policy.groups)


def may_approve(policy: ApprovalPolicy, name: str) -> bool:
    """Whether the current policy lets this person approve (names compared normalised)."""
    return is_listed(name, allowed_approvers(policy))


def same_person(first: str | None, second: str | None) -> bool:
    """Whether two names are one person; an empty or missing name matches nobody."""
    if not first or not second:
        return False
    person = normalize_identity(first)
    return bool(person) and person == normalize_identity(second)


def check_new_approval(
    policy: ApprovalPolicy,
    *,
    approver: str,
    decision: str,
    requested_version: str,
    candidate_version: str | None,
    trained_by: str | None,
    identical: str | None = None,
) -> str | None:
    """Why a new approval or rejection is invalid, or None when it is valid.

    Rejections by anyone allowed to approve are always valid (stopping is never blocked by
    four-eyes); approvals must be for the current candidate, not by its trainer, and not of a
    candidate identical to the champion (`identical`: why, from `identical_to_champion`).
    """
    if not normalize_identity(approver):
        return "no approver named"
    if not may_approve(policy, approver):
        allowed = sorted(allowed_approvers(policy) or (), key=normalize_identity)
        return f"{approver} may not approve (allowed: {', '.join(allowed)})"
    if requested_version != candidate_version:
        return (
            f"version {requested_version} is not the current candidate {candidate_version}; "
            "approvals are pinned to one model version"
        )
    if decision == "approve" and policy.four_eyes and same_person(approver, trained_by):
        return f"four-eyes: {approver} triggered the training of {candidate_version}"
    if decision == "approve" and identical:
        return identical
    return None


def _window_open(window: DeploymentWindow, now: datetime) -> bool:
    clock = now.strftime("%H:%M")
    today = _DAYS[now.weekday()]
    if not window.overnight:
        return today in window.days and window.start <= clock <= window.end
    # Overnight: the hours after midnight belong to the day the window started.
    yesterday = _DAYS[(now.weekday() - 1) % 7]
    return (today in window.days and clock >= window.start) or (
        yesterday in window.days and clock <= window.end
    )


def _describe_window(window: DeploymentWindow) -> str:
    wrap = " (next day)" if window.overnight else ""
    return f"{','.join(window.days)} {window.start}-{window.end}{wrap} UTC"


def in_deployment_window(policy: ApprovalPolicy, now: datetime) -> str | None:
    """None if deploying now is allowed, else why not.

    `now` is UTC; both the start and the end minute are inside a window. A window whose start is
    later than its end runs past midnight into the next day (see `DeploymentWindow`).
    """
    if not policy.deployment_windows:
        return None
    if any(_window_open(window, now) for window in policy.deployment_windows):
        return None
    spans = "; ".join(_describe_window(w) for w in policy.deployment_windows)
    return f"{now:%a %H:%M} UTC is outside the deployment windows ({spans})"


def _finite(value: Any) -> float | None:
    """The value as a float, or None when it is missing or not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def identical_to_champion(report: Mapping[str, Any]) -> str | None:
    """Why deploying this evaluated candidate would change nothing, or None.

    The evaluation marks a candidate identical when it is the champion again (the same stored
    model, or the same prediction on every holdout row): a deployment of it is a no-op that
    resets the bake window and makes the live comparison pair a model with itself.
    """
    found = report.get("identical") or {}
    if found.get("identical") is not True:
        return None
    candidate = (report.get("candidate") or {}).get("model_version")
    champion = (report.get("champion") or {}).get("model_version")
    return (
        f"candidate {candidate} is identical to the champion {champion} "
        f"({found.get('reason', 'same predictions')}): deploying it would change nothing"
    )


def auto_approval(policy: ApprovalPolicy, report: Mapping[str, Any]) -> ApprovalDecision:
    """Whether policy approves this evaluated candidate by itself (never an identical one)."""
    rule = policy.auto_approve
    identical = identical_to_champion(report)
    if identical:
        return ApprovalDecision(False, identical)
    champion = report.get("champion")
    if champion is None and report.get("champion_note"):
        # The champion predicts something else (the project changed its task or classes):
        # nothing measured this candidate against it, so policy cannot approve it alone.
        return ApprovalDecision(
            False, f"the champion is not comparable ({report['champion_note']}): a person decides"
        )
    if champion is None:
        if rule.first_model:
            return ApprovalDecision(True, "auto-approved by policy: first model", ["policy"])
        return ApprovalDecision(False, "the first model needs a person's approval")
    compared = ((report.get("comparison") or {}).get("metrics") or {}).get(rule.metric)
    if compared is None:
        why = (report.get("metric_notes") or {}).get(rule.metric, "no interval was computed")
        return ApprovalDecision(
            False,
            f"{rule.metric} of candidate and champion is not compared ({why}): a person decides",
        )
    difference = _finite(compared.get("difference"))
    if difference is None:
        # NaN compares false with everything: without this it would pass as "not below".
        return ApprovalDecision(
            False, f"{rule.metric} improvement is not a number: a person decides"
        )
    improvement = -difference if rule.metric in LOWER_IS_BETTER else difference
    if improvement < rule.min_improvement:
        return ApprovalDecision(
            False,
            f"{rule.metric} improvement {improvement:+.4f} is below the auto-approval margin "
            f"{rule.min_improvement:+.4f}",
        )
    # A missing gap (no segment large enough) is no gap; a NaN gap is unknown.
    gap = _finite(report["candidate"]["fairness"]["largest"]["gap"] or 0.0)
    champion_gap = _finite(champion["fairness"]["largest"]["gap"] or 0.0)
    if gap is None or champion_gap is None:
        return ApprovalDecision(False, "segment gap is not a number: a person decides")
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
    trained_by: str | None = None,
) -> ApprovalDecision:
    """Enough valid, unexpired approvals for exactly this model and report, none rejected.

    Approvals are re-checked against the *current* policy: one from a person it no longer
    allows, or (with four-eyes) from whoever triggered the training, does not count. Several
    spellings of one name count once. An approval dated later than `now` (beyond `CLOCK_SKEW`)
    does not count: it would otherwise never expire. A valid rejection always stops the model,
    even if its author has since left the allow-list: stopping is never undone by a policy edit.
    """
    relevant = sorted((r for r in records if r.model_version == model_version), key=lambda r: r.at)
    rejections = [r for r in relevant if r.valid and r.decision == "reject"]
    if rejections:
        last = rejections[-1]
        return ApprovalDecision(
            False, f"rejected by {last.approver} at {last.at:%Y-%m-%d %H:%M}: {last.reason}"
        )
    expiry = timedelta(hours=policy.expires_after_hours)
    approvers: list[str] = []
    counted: set[str] = set()
    ignored: list[str] = []
    for record in relevant:
        if not record.valid or record.decision != "approve":
            continue
        if record.evaluation_report_version != report_version:
            continue  # pinned to the report it was given on
        future = _future(record, now)
        if future:
            ignored.append(f"{record.approver} ({future})")
            continue
        if now - record.at > expiry:
            continue
        if not may_approve(policy, record.approver):
            ignored.append(f"{record.approver} (not an approver under the current policy)")
            continue
        if policy.four_eyes and same_person(record.approver, trained_by):
            ignored.append(f"{record.approver} (four-eyes: triggered the training)")
            continue
        person = normalize_identity(record.approver)
        if person not in counted:
            counted.add(person)
            approvers.append(record.approver)
    if len(approvers) >= policy.required_approvals:
        return ApprovalDecision(True, f"approved by {', '.join(approvers)}", approvers)
    have = f"{len(approvers)} of {policy.required_approvals}"
    not_counted = f"; not counted: {', '.join(dict.fromkeys(ignored))}" if ignored else ""
    return ApprovalDecision(
        False,
        f"waiting for approval of model {model_version}: {have} valid, unexpired approvals"
        f"{not_counted}",
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
    identical = identical_to_champion(report)
    if identical:
        return ApprovalDecision(False, identical)
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
        trained_by=report["candidate"].get("trained_by"),
    )
    if not human.allowed and policy.mode == "auto":
        return ApprovalDecision(False, f"{auto.reason}; {human.reason}", human.approvers)
    return human
