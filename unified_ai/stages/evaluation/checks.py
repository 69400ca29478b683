"""Evaluation gates: blocking checks that stop deployment when policy is not met."""

import dagster as dg

from unified_ai.names import EVALUATION_REPORT
from unified_ai.payloads import EvaluationReport
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key

GATE_DESCRIPTIONS = {
    "quality_floor": "The candidate meets every metric floor of the policy on the holdout.",
    "beats_champion": "The candidate is at least as good as the current champion on the same "
    "holdout (the first model passes).",
    "fairness_within_policy": "The largest gap of the policy's segment metric between segments "
    "is within the policy bound.",
}


def build_gate_check(project: ProjectConfig, gate: str) -> dg.AssetChecksDefinition:
    decide = GATES[gate]

    @dg.asset_check(
        asset=key(project, EVALUATION_REPORT),
        name=gate,
        blocking=True,
        description=GATE_DESCRIPTIONS[gate],
    )
    def gate_check(
        context: dg.AssetCheckExecutionContext, notifier: Notifier, evaluation_report
    ) -> dg.AssetCheckResult:
        result = decide(evaluation_report.body, project.policy)
        candidate = EvaluationReport.from_body(
            evaluation_report.body, where=f"{project.name}/{EVALUATION_REPORT}"
        ).candidate
        if not result.passed:
            notifier.notify(
                project.policy.notifications,
                project=project.name,
                event="gate_failed",
                summary=f"{gate} failed for candidate {candidate.model_version}: {result.reason}",
                evidence={"gate": gate, "policy_version": project.policy_version},
                run_id=context.run.run_id,
            )
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.reason,
            metadata={
                "evidence": dg.MetadataValue.json(result.evidence),
                "policy_version": project.policy_version,
            },
        )

    return gate_check


def build(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    return [build_gate_check(project, gate) for gate in GATES]
