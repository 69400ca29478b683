"""What follows a gate's verdict outside the verdict itself: who is told, what MLflow records.

A gate check only judges (`unified_ai.policies.gates`) and records its verdict on its result:
the reason, the evaluation_report version it read and the candidate it judged (the metadata
keys below). Once the run that judged is over, the gate outcome sensor
(`unified_ai.stages.evaluation.sensors`) reads those results back and records them here, in
one place, so the notification and the registry tags of every gate are written the same way.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from unified_ai.names import CANDIDATE_VERSION_METADATA
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.notifications import Notifier

#: Check-result metadata a gate records for the outcome sensor (besides its evidence).
REASON_METADATA = "reason"
REPORT_VERSION_METADATA = "evaluation_report_version"
MLFLOW_VERSION_METADATA = "candidate_mlflow_version"
POLICY_VERSION_METADATA = "policy_version"


@dataclass(frozen=True)
class GateOutcome:
    """One gate's verdict in one run, as its check recorded it."""

    gate: str
    passed: bool
    reason: str
    run_id: str
    report_version: str | None
    candidate_version: str | None
    #: The candidate's registered MLflow model version; None when it was not registered.
    mlflow_version: str | None
    policy_version: str | None

    @classmethod
    def from_evaluation(cls, evaluation: dg.AssetCheckEvaluation, run_id: str) -> "GateOutcome":
        values: dict[str, Any] = {
            name: entry.value for name, entry in (evaluation.metadata or {}).items()
        }

        def text(name: str) -> str | None:
            value = values.get(name)
            return None if value is None else str(value)

        return cls(
            gate=evaluation.check_name,
            passed=evaluation.passed,
            reason=text(REASON_METADATA) or evaluation.description or "",
            run_id=run_id,
            report_version=text(REPORT_VERSION_METADATA),
            candidate_version=text(CANDIDATE_VERSION_METADATA),
            mlflow_version=text(MLFLOW_VERSION_METADATA),
            policy_version=text(POLICY_VERSION_METADATA),
        )


def verdict_metadata(
    reason: str,
    *,
    report_version: str,
    candidate_version: str | None,
    mlflow_version: str | None,
    policy_version: str,
) -> dict[str, Any]:
    """What a gate check records beside its verdict, so the outcome can be told later."""
    return {
        REASON_METADATA: reason,
        REPORT_VERSION_METADATA: report_version,
        CANDIDATE_VERSION_METADATA: candidate_version,
        POLICY_VERSION_METADATA: policy_version,
        **({MLFLOW_VERSION_METADATA: mlflow_version} if mlflow_version is not None else {}),
    }


def gate_outcomes(
    instance: dg.DagsterInstance, run_id: str, check_keys: Iterable[dg.AssetCheckKey]
) -> list[GateOutcome]:
    """The verdicts of the checks `check_keys` evaluated in run `run_id`, in evaluation order."""
    wanted = set(check_keys)
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    outcomes = []
    for record in records:
        evaluation = record.event_log_entry.asset_check_evaluation
        if evaluation is not None and evaluation.asset_check_key in wanted:
            outcomes.append(GateOutcome.from_evaluation(evaluation, run_id))
    return outcomes


def notify_gate_failures(
    project: ProjectConfig, outcomes: Iterable[GateOutcome], notifier: Notifier
) -> None:
    """Send one `gate_failed` notification per failed gate to the project's channels."""
    for outcome in outcomes:
        if outcome.passed:
            continue
        notifier.notify(
            project.policy.notifications,
            project=project.name,
            event="gate_failed",
            summary=f"{outcome.gate} failed for candidate {outcome.candidate_version}: "
            f"{outcome.reason}",
            evidence={
                "gate": outcome.gate,
                "policy_version": outcome.policy_version or project.policy_version,
            },
            run_id=outcome.run_id,
        )


def tag_gate_outcomes(
    project: ProjectConfig, outcomes: Iterable[GateOutcome], mlflow: MlflowRegistry
) -> None:
    """Tag the judged candidate's registered MLflow version with each gate's verdict.

    Writing the same tags again changes nothing, so a retry after a failure is safe.
    """
    for outcome in outcomes:
        if outcome.mlflow_version is None:
            continue
        mlflow.tag_version(
            project.model_name,
            outcome.mlflow_version,
            {
                f"gate.{outcome.gate}": "passed" if outcome.passed else "failed",
                f"gate.{outcome.gate}.reason": outcome.reason,
                "evaluation_report_version": outcome.report_version or "",
            },
        )
