"""What follows a gate's verdict outside the verdict itself: who is told, what MLflow records.

A gate check only judges (`unified_ai.policies.gates`); its outcome is recorded here, in one
place, so the notification and the registry tags of every gate are written the same way. The
check calls it as soon as it has judged: a failed blocking check stops the run, so nothing
downstream would run to record it, and the person is told in the same run, as before.
"""

from unified_ai.payloads import ModelSummary
from unified_ai.policies.gates import GateResult
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.notifications import Notifier


def record_gate_outcome(
    project: ProjectConfig,
    gate: str,
    result: GateResult,
    candidate: ModelSummary,
    *,
    report_version: str,
    run_id: str,
    notifier: Notifier,
    mlflow: MlflowRegistry,
) -> None:
    """Notify the project's channels of a failed gate and tag the candidate's MLflow version.

    Args:
        project: The project whose candidate was judged.
        gate: The gate's name (`unified_ai.policies.gates.GATES`).
        result: The gate's verdict.
        candidate: The judged candidate, as the evaluation report names it.
        report_version: The evaluation_report version the gate read.
        run_id: The Dagster run that judged it.
        notifier: Sends the `gate_failed` notification.
        mlflow: Tags the candidate's registered version (when it has one).
    """
    if not result.passed:
        notifier.notify(
            project.policy.notifications,
            project=project.name,
            event="gate_failed",
            summary=f"{gate} failed for candidate {candidate.model_version}: {result.reason}",
            evidence={"gate": gate, "policy_version": project.policy_version},
            run_id=run_id,
        )
    if candidate.mlflow is not None:
        mlflow.tag_version(
            project.model_name,
            candidate.mlflow.version,
            {
                f"gate.{gate}": "passed" if result.passed else "failed",
                f"gate.{gate}.reason": result.reason,
                "evaluation_report_version": report_version,
            },
        )
