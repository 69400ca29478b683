"""The evaluation report: candidate and champion scored on the same holdout."""

from dataclasses import asdict, dataclass
from typing import Any

from unified_ai.payloads.reading import _known


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
    #: Multiclass: precision, recall and rows of each class (label → values); else None.
    per_class: dict[str, Any] | None = None

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
            "per_class": self.per_class,
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
    #: The project's task (reports stored before tasks were binary).
    task: str = "binary_classification"
    #: Multiclass: the candidate's classes, in the order of its probability columns.
    classes: list[Any] | None = None
    #: Metric → why it was not computed (for example MAPE when a target is 0).
    metric_notes: dict[str, str] | None = None
    #: Why the deployed champion was not compared (another task or class list), else None.
    champion_note: str | None = None

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
            "task": self.task,
            "classes": self.classes,
            "metric_notes": self.metric_notes,
            "champion_note": self.champion_note,
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
