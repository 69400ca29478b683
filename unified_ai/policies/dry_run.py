"""Replaying recorded evaluations and approvals under a different policy."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from unified_ai.payloads import ApprovalRecord
from unified_ai.policies.approval import deployment_approval_decision
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import Policy


@dataclass(frozen=True)
class Replay:
    """One recorded evaluation, what happened then, and what the new policy would decide."""

    report_version: str
    model_version: str
    evaluated_at: str
    promoted_then: bool
    allowed_now: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.promoted_then != self.allowed_now


def replay(
    policy: Policy,
    reports: Iterable[tuple[str, str, Mapping[str, Any]]],
    promoted: Mapping[str, datetime],
    approvals: list[ApprovalRecord],
) -> list[Replay]:
    """Decide each recorded report under `policy`.

    Args:
        policy: The policy to replay under.
        reports: (report version, created at, report body), oldest first.
        promoted: Report version → when its candidate was deployed, for those that were.
        approvals: Every recorded approval and rejection.
    """
    results = []
    for version, created_at, body in reports:
        reasons = [
            f"{name}: {result.reason}"
            for name, decide in GATES.items()
            if not (result := decide(body, policy)).passed
        ]
        decided_at = promoted.get(version) or datetime.fromisoformat(created_at)
        approval = deployment_approval_decision(
            policy.approval,
            body,
            [a for a in approvals if a.at <= decided_at],
            report_version=version,
            now=decided_at,
        )
        if not approval.allowed:
            reasons.append(f"approval: {approval.reason}")
        results.append(
            Replay(
                report_version=version,
                model_version=body["candidate"]["model_version"],
                evaluated_at=created_at,
                promoted_then=version in promoted,
                allowed_now=not reasons,
                reasons=reasons,
            )
        )
    return results
