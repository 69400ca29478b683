"""What assets hand each other through the store, as frozen typed records.

Each record has one writer (`to_payload`, or `to_body` for the evaluation report) and one reader
(`from_payload`/`from_body`). They are stored as JSON objects, exactly the shape earlier versions
stored, so every stored version stays readable: a reader ignores fields it does not know and
refuses, in one line naming the asset@version and the field, a payload that lacks one it needs.
Pure: no Dagster import.
"""

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any


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


class PayloadError(ValueError):
    """A stored payload lacks a field its reader needs (or is not a JSON object)."""


def _known(cls, payload: Any, where: str) -> dict[str, Any]:
    """The fields of `cls` present in `payload`; one-line error when a required one is missing."""
    if not isinstance(payload, Mapping):
        raise PayloadError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    values = {f.name: payload[f.name] for f in fields(cls) if f.name in payload}
    missing = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in values
    ]
    if missing:
        raise PayloadError(f"{where}: lacks {', '.join(missing)}")
    return values


# -- the evaluation report -------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """A model version registered in MLflow."""

    version: str
    run_id: str
    model_uri: str

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Registration":
        return cls(**_known(cls, payload, f"{where}: mlflow"))


@dataclass(frozen=True)
class ModelSummary:
    """One model scored on the holdout: its version, registration, trainer and results."""

    model_version: str | None
    metrics: dict[str, float | None]
    fairness: dict[str, Any]
    mlflow: Registration | None = None
    trained_by: str | None = None

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "ModelSummary":
        values = _known(cls, payload, where)
        if values.get("mlflow") is not None:
            values["mlflow"] = Registration.from_payload(values["mlflow"], where=where)
        return cls(**values)

    def to_payload(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "mlflow": asdict(self.mlflow) if self.mlflow else None,
            "trained_by": self.trained_by,
            "metrics": self.metrics,
            "fairness": self.fairness,
        }

    @property
    def largest_gap(self) -> float | None:
        """The largest segment gap of the policy's fairness metric (None when none measured)."""
        return (self.fairness.get("largest") or {}).get("gap")


@dataclass(frozen=True)
class EvaluationReport:
    """The body of `evaluation_report`: candidate and champion on the same holdout.

    The policies (`unified_ai.policies`) read the JSON body itself: it is what a dry run
    replays, years later, under another policy.
    """

    project: str
    policy_version: str
    holdout_rows: int
    positive_rate: float | None
    threshold: float
    candidate: ModelSummary
    champion: ModelSummary | None = None
    comparison: dict[str, Any] | None = None
    #: `{"identical": bool, "reason": str}` when there is a champion: whether the candidate
    #: is the champion again (same holdout predictions, or the same stored model).
    identical: dict[str, Any] | None = None

    def to_body(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "policy_version": self.policy_version,
            "holdout_rows": self.holdout_rows,
            "positive_rate": self.positive_rate,
            "threshold": self.threshold,
            "candidate": self.candidate.to_payload(),
            "champion": self.champion.to_payload() if self.champion else None,
            "comparison": self.comparison,
            "identical": self.identical,
        }

    @classmethod
    def from_body(cls, body: Any, *, where: str) -> "EvaluationReport":
        values = _known(cls, body, where)
        values["candidate"] = ModelSummary.from_payload(
            values["candidate"], where=f"{where}: candidate"
        )
        if values.get("champion") is not None:
            values["champion"] = ModelSummary.from_payload(
                values["champion"], where=f"{where}: champion"
            )
        return cls(**values)


# -- the deployment manifest -----------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """What `deployed_model` stores: which model serves, why it was allowed, by whom, when.

    Only `model_version` is required of a stored manifest: the rest is what the deployment
    recorded (hand-made or partial manifests, as tests and benchmarks write, read with defaults).
    """

    model_version: str
    project: str = ""
    model_uri: str = ""
    mlflow_model_version: str | None = None
    mlflow_run_id: str | None = None
    mlflow_alias: str | None = None
    evaluation_report_version: str | None = None
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    approval: dict[str, Any] = field(default_factory=dict)
    policy_version: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    deployed_at: str | None = None
    deployed_by: str | None = None
    dagster_run_id: str | None = None
    previous_mlflow_champion: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Deployment":
        return cls(**_known(cls, payload, where))

    @property
    def gates_passed(self) -> bool:
        """Whether every gate it records passed (a deployment without gates never did)."""
        return bool(self.gates) and all(g.get("passed") for g in self.gates.values())


# -- a person's decision ---------------------------------------------------------------------


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


# -- the record a rollback leaves ------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """What `incidents` stores for a rollback: both deployments with their reports, and why."""

    project: str
    kind: str
    opened_at: str
    reason: str | None
    trigger: str
    actor: str | None
    policy_version: str
    rolled_back_from: dict[str, Any]
    rolled_back_to: dict[str, Any]
    dagster_run_id: str | None = None
    live_metrics: dict[str, Any] | None = field(default=None)

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Incident":
        return cls(**_known(cls, payload, where))


# -- what the triggers read from recorded metadata -------------------------------------------
#: What an asset records for a value it does not have (Dagster metadata has no null).
NONE = "none"


def _recorded(values: Mapping[str, Any], name: str, default: Any = None) -> Any:
    found = values.get(name)
    return default if found is None or found == NONE else found


def _number(value: float | None) -> float | str:
    return NONE if value is None else float(value)


#: `LiveSummary` fields that are numbers or None (recorded as `NONE`).
_LIVE_NUMBERS = (
    "value",
    "ci_low",
    "ci_high",
    "previous_value",
    "paired_value",
    "paired_previous_value",
    "paired_difference",
    "paired_ci_low",
    "paired_ci_high",
    "candidate_value",
    "candidate_champion_value",
    "candidate_difference",
    "candidate_ci_low",
    "candidate_ci_high",
    "recent_paired_value",
    "recent_paired_previous_value",
    "recent_paired_difference",
    "recent_paired_ci_high",
    "recent_value",
)


@dataclass(frozen=True)
class LiveSummary:
    """What `live_performance` records in its metadata, and the performance trigger reads.

    `previous_*` is the predecessor on its own (earlier) rows: context. `paired_*` compares the
    deployed model with `paired_deployment`, the deployment a rollback would restore, on the same
    labeled rows (scored by it in the shadow): `paired_difference` is live - previous with its
    bootstrap interval; the rollback decision reads these. `candidate_*` compares a candidate
    waiting for approval (scored in the shadow) with the deployed model on the same rows:
    `candidate_difference` is candidate - champion. `recent_paired_*` is the paired comparison
    over the last `recent_paired_batches` batches alone, `recent_*` the deployed model's own
    metric over its last `recent_batches` (the newest evidence, judged beside the window).
    """

    metric: str
    deployment_version: str
    deployed_at: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    labeled_rows: int
    previous_deployment: str | None
    previous_value: float | None
    paired_deployment: str | None = None
    paired_rows: int = 0
    paired_value: float | None = None
    paired_previous_value: float | None = None
    paired_difference: float | None = None
    paired_ci_low: float | None = None
    paired_ci_high: float | None = None
    candidate_model: str | None = None
    candidate_rows: int = 0
    candidate_value: float | None = None
    candidate_champion_value: float | None = None
    candidate_difference: float | None = None
    candidate_ci_low: float | None = None
    candidate_ci_high: float | None = None
    recent_paired_batches: int = 0
    recent_paired_rows: int = 0
    recent_paired_value: float | None = None
    recent_paired_previous_value: float | None = None
    recent_paired_difference: float | None = None
    recent_paired_ci_high: float | None = None
    recent_batches: int = 0
    recent_rows: int = 0
    recent_value: float | None = None

    def metadata(self) -> dict[str, Any]:
        values = asdict(self)
        for name in _LIVE_NUMBERS:
            values[name] = _number(values[name])
        for name in ("deployed_at", "previous_deployment", "paired_deployment", "candidate_model"):
            values[name] = values[name] or NONE
        return values

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any]) -> "LiveSummary":
        """Read back what `metadata()` wrote (older records lack the paired fields: defaults)."""
        known = {f.name: _recorded(values, f.name) for f in fields(cls)}
        known.update(
            metric=str(known["metric"] or "roc_auc"),
            deployment_version=str(known["deployment_version"] or ""),
            labeled_rows=int(known["labeled_rows"] or 0),
            paired_rows=int(known["paired_rows"] or 0),
            candidate_rows=int(known["candidate_rows"] or 0),
            **{
                name: int(known[name] or 0)
                for name in (
                    "recent_paired_batches",
                    "recent_paired_rows",
                    "recent_batches",
                    "recent_rows",
                )
            },
        )
        return cls(**known)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], *, deployed_at: str | None) -> "LiveSummary":
        """The summary of a report `unified_ai.ml.live.live_report` wrote."""
        current = report["current"]
        previous = report.get("previous") or {}
        paired = report.get("paired") or {}
        candidate = report.get("candidate") or {}
        recent_paired = report.get("recent_paired") or {}
        recent = report.get("recent_current") or {}
        return cls(
            metric=report["metric"],
            deployment_version=current["deployment"],
            deployed_at=deployed_at,
            value=current["value"],
            ci_low=current["ci_low"],
            ci_high=current["ci_high"],
            labeled_rows=current["labeled_rows"],
            previous_deployment=previous.get("deployment"),
            previous_value=previous.get("value"),
            paired_deployment=paired.get("deployment"),
            paired_rows=paired.get("rows", 0),
            paired_value=paired.get("live"),
            paired_previous_value=paired.get("previous"),
            paired_difference=paired.get("difference"),
            paired_ci_low=paired.get("ci_low"),
            paired_ci_high=paired.get("ci_high"),
            candidate_model=candidate.get("model_version"),
            candidate_rows=candidate.get("rows", 0),
            candidate_value=candidate.get("candidate"),
            candidate_champion_value=candidate.get("champion"),
            candidate_difference=candidate.get("difference"),
            candidate_ci_low=candidate.get("ci_low"),
            candidate_ci_high=candidate.get("ci_high"),
            recent_paired_batches=len(recent_paired.get("batches", [])),
            recent_paired_rows=recent_paired.get("rows", 0),
            recent_paired_value=recent_paired.get("live"),
            recent_paired_previous_value=recent_paired.get("previous"),
            recent_paired_difference=recent_paired.get("difference"),
            recent_paired_ci_high=recent_paired.get("ci_high"),
            recent_batches=len(recent.get("batches", [])),
            recent_rows=recent.get("labeled_rows", 0),
            recent_value=recent.get("value"),
        )


@dataclass(frozen=True)
class DriftSummary:
    """What `drift_report` records in its metadata, and the drift trigger reads."""

    drifted_share: float
    drifted_columns: list[str]
    batch: str

    def metadata(self) -> dict[str, Any]:
        return {
            "drifted_share": float(self.drifted_share),
            "drifted_columns": ", ".join(self.drifted_columns) or NONE,
            "batch": self.batch,
        }

    @classmethod
    def from_metadata(cls, values: Mapping[str, Any], *, batch: str = "?") -> "DriftSummary":
        columns = str(_recorded(values, "drifted_columns", ""))
        return cls(
            drifted_share=float(_recorded(values, "drifted_share", 0.0)),
            drifted_columns=[c for c in columns.split(", ") if c and c != NONE],
            batch=str(_recorded(values, "batch", batch)),
        )
