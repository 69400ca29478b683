"""What the triggers read from recorded metadata: the live performance and drift summaries.

Dagster metadata has no null, so a missing value is recorded as `NONE` and read back as None.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

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
    "recent_paired_ci_low",
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
    Every value is in the metric's units and direction: for a lower-is-better metric (RMSE) a
    positive difference means the first model is worse.
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
    #: The lower end of the recent paired interval (a lower-is-better metric is worse above 0).
    recent_paired_ci_low: float | None = None

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
            recent_paired_ci_low=recent_paired.get("ci_low"),
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
