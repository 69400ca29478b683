"""A person's decision: as `deployment_approval` stores it, and as the approval policy weighs it."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from unified_ai.payloads.reading import PayloadError, _known


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
    #: When the store or the Dagster instance recorded it (None: unknown). An approval dated
    #: later than its own recording is forged or from a wrong clock: it never counts.
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Approval:
    """What `deployment_approval` stores: one approval or rejection, valid or not."""

    project: str
    decision: str
    approver: str
    model_version: str
    evaluation_report_version: str
    at: str
    valid: bool
    authenticated: bool = False
    candidate_model_version: str | None = None
    comment: str = ""
    invalid_reason: str | None = None
    policy_version: str | None = None
    dagster_run_id: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Approval":
        approval = cls(**_known(cls, payload, where))
        if _aware_time(approval.at) is None:
            raise PayloadError(f"{where}: at: {approval.at!r} is not a time with a time zone")
        return approval

    @property
    def reason(self) -> str:
        return self.comment or self.invalid_reason or ""

    def metadata(self) -> dict[str, Any]:
        """What the materialization shows (and the approval sensor reads back)."""
        return {
            "decision": self.decision,
            "approver": self.approver or "(none)",
            "valid": self.valid,
            # Why it is invalid comes first here: that is what the person needs to see.
            "reason": self.invalid_reason or self.comment or "",
            "model_version": self.model_version,
            "evaluation_report_version": self.evaluation_report_version,
            "policy_version": self.policy_version or "",
            "at": self.at,
        }

    def record(self, recorded_at: str | None = None) -> ApprovalRecord:
        """The decision as the approval policy weighs it.

        Args:
            recorded_at: When the store recorded it (its manifest's `created_at`), if known.
        """
        return ApprovalRecord(
            decision=self.decision,
            approver=self.approver,
            model_version=self.model_version,
            evaluation_report_version=self.evaluation_report_version,
            at=datetime.fromisoformat(self.at),
            valid=self.valid,
            reason=self.reason,
            recorded_at=_aware_time(recorded_at) if recorded_at else None,
        )

    @staticmethod
    def record_from_metadata(
        values: Mapping[str, Any], recorded_at: datetime | None = None
    ) -> ApprovalRecord:
        """The decision, from the values of what `metadata()` wrote (the approval sensor).

        Metadata can be reported by anyone who reaches the webserver: a decision without a
        readable time with a time zone is kept as an invalid one, never counted.
        """
        at = _aware_time(values.get("at"))
        valid = bool(values.get("valid", False)) and at is not None
        reason = str(values.get("reason", ""))
        if at is None:
            reason = f"at: {values.get('at')!r} is not a time with a time zone"
        return ApprovalRecord(
            decision=str(values.get("decision", "")),
            approver=str(values.get("approver", "")),
            model_version=str(values.get("model_version", "")),
            evaluation_report_version=str(values.get("evaluation_report_version", "")),
            at=at or datetime.min.replace(tzinfo=timezone.utc),
            valid=valid,
            reason=reason,
            recorded_at=recorded_at,
        )


def _aware_time(value: Any) -> datetime | None:
    """`value` as a datetime with a time zone, or None when it is not one (or has none)."""
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.utcoffset() is not None else None
