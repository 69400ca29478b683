"""Evaluation gates: blocking checks that stop deployment when policy is not met.

A gate only judges: it sends nothing and writes nothing outside its own result. Its result
carries what the gate outcome sensor needs to tell people and MLflow afterwards
(`unified_ai.stages.evaluation.gate_outcome`).
"""

import dagster as dg

from unified_ai.ml.artifacts import Report
from unified_ai.names import EVALUATION_REPORT
from unified_ai.payloads import EvaluationReport
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import key
from unified_ai.stages.evaluation.gate_outcome import verdict_metadata

GATE_DESCRIPTIONS = {
    "quality_floor": "The candidate meets every metric floor of the policy on the holdout.",
    "beats_champion": "The candidate is at least as good as the current champion on the same "
    "holdout (the first model passes).",
    "fairness_within_policy": "The largest gap of the policy's segment metric between segments "
    "is within the policy bound.",
}
#: Where a reader of any gate result finds the evidence.
_EVIDENCE = (
    " A result names the evaluation_report version it judged; that version's `plots` and "
    "`segments` metadata and its HTML page (`html_report_in_mlflow`) show why."
)


def build_gate_check(project: ProjectConfig, gate: str) -> dg.AssetChecksDefinition:
    decide = GATES[gate]
    report_key = key(project, EVALUATION_REPORT)

    @dg.asset_check(
        asset=report_key,
        name=gate,
        blocking=True,
        description=GATE_DESCRIPTIONS[gate] + _EVIDENCE,
    )
    def gate_check(
        context: dg.AssetCheckExecutionContext,
        lineage: LineageStorage,
        evaluation_report: Report,
    ) -> dg.AssetCheckResult:
        result = decide(evaluation_report.body, project.policy)
        candidate = EvaluationReport.from_body(
            evaluation_report.body, where=f"{project.name}/{EVALUATION_REPORT}"
        ).candidate
        # The report this check read is the one the step just made current.
        store = lineage.store()
        version = store.require_current(report_key.path)
        evidence = f"{project.name}/{EVALUATION_REPORT}@{version}"
        links = {
            "evaluation_report": dg.MetadataValue.path(
                str(store.version_dir(report_key.path, version))
            )
        }
        event = context.instance.get_latest_materialization_event(report_key)
        page = (
            event
            and event.asset_materialization
            and event.asset_materialization.metadata.get("html_report_in_mlflow")
        )
        if page is not None:
            links["html_report_in_mlflow"] = page
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{result.reason} (evidence: {evidence})",
            metadata={
                "evidence": dg.MetadataValue.json(result.evidence),
                **verdict_metadata(
                    result.reason,
                    report_version=version,
                    candidate_version=candidate.model_version,
                    mlflow_version=candidate.mlflow.version if candidate.mlflow else None,
                    policy_version=project.policy_version,
                ),
                **links,
            },
        )

    return gate_check


def build_evaluation_check_defs(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    return [build_gate_check(project, gate) for gate in GATES]
