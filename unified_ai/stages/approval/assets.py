"""Human approval as an asset.

A person materializes `deployment_approval` with typed config, from the UI launchpad or with
`unified-ai approve/reject`; every decision, valid or not, is kept.
"""

from typing import Any, Literal

import dagster as dg
from pydantic import Field

from unified_ai.io.store import utc_now
from unified_ai.names import DEPLOYMENT_APPROVAL, EVALUATION_REPORT, LIVE_PERFORMANCE
from unified_ai.payloads import NONE, Approval
from unified_ai.policies.approval import check_new_approval, identical_to_champion, same_person
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import evaluation_report
from unified_ai.resources.identity import Identity
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key, stage_tags


class ApprovalConfig(dg.Config):
    """A person's decision on one evaluated model version."""

    model_version: str = Field(description="candidate_model version (see evaluation_report)")
    decision: Literal["approve", "reject"] = "approve"
    approver: str = Field(default="", description="who decides (checked against policy)")
    comment: str = ""


def _shadow_evidence(reader, project: ProjectConfig, model_version: str) -> dict[str, Any]:
    """The candidate beside the champion on the same production rows, as last measured.

    `live_performance` compares a candidate waiting for approval (scored in the shadow) with the
    deployed model on the labeled rows both scored; the approval records what the person saw.
    """
    path = key(project, LIVE_PERFORMANCE).path
    version = reader.current_version(path)
    live = reader.read_value(path, version) if version else {}
    found = live.get("candidate")
    if not found or found.get("model_version") != model_version or not found.get("rows"):
        return {
            "shadow_rows": 0,
            "shadow_comparison": f"no labeled production rows scored by model {model_version} "
            "in the shadow yet",
        }
    metric = live.get("metric", "")

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    interval = (
        f"[{found['ci_low']:+.4f}, {found['ci_high']:+.4f}]"
        if found.get("ci_low") is not None and found.get("ci_high") is not None
        else "n/a"
    )
    difference = found.get("difference")
    table = (
        f"| on the same {found['rows']} labeled rows | {metric} |\n|---|---|\n"
        f"| candidate {model_version} (shadow) | {number(found.get('candidate'))} |\n"
        f"| champion (live) | {number(found.get('champion'))} |\n"
        f"| difference | {'n/a' if difference is None else f'{difference:+.4f}'} {interval} |"
    )
    return {
        "shadow_rows": int(found["rows"]),
        "shadow_metric": metric,
        "shadow_candidate_value": NONE if found.get("candidate") is None else found["candidate"],
        "shadow_champion_value": NONE if found.get("champion") is None else found["champion"],
        "shadow_difference": NONE if difference is None else difference,
        "shadow_comparison": dg.MetadataValue.md(table),
    }


def build_deployment_approval(project: ProjectConfig) -> dg.AssetsDefinition:
    report_key = key(project, EVALUATION_REPORT)

    @dg.asset(
        key=key(project, DEPLOYMENT_APPROVAL),
        deps=[report_key],
        tags=stage_tags("approval"),
        description="A person's approval or rejection of the evaluated candidate, pinned to one "
        "model version and its evaluation report. Invalid decisions are recorded with the "
        "reason and never deploy.",
        metadata=asset_metadata(project),
        kinds={"json"},
    )
    def deployment_approval(
        context: dg.AssetExecutionContext,
        config: ApprovalConfig,
        lineage: LineageStorage,
        identity: Identity,
        mlflow: MlflowRegistry,
    ):
        reader = lineage.reader(context)
        report_version = reader.require_current(report_key.path)
        _, report = evaluation_report(reader, project.name, report_version)
        candidate = report.candidate
        declared = config.approver.strip()
        authenticated = identity.authenticated(context)
        invalid = None
        if identity.tag and authenticated is None:
            invalid = f"no authenticated user in run tag {identity.tag}"
        elif authenticated is not None and declared and not same_person(declared, authenticated):
            invalid = f"declared approver {declared} is not the signed-in user {authenticated}"
        approver = authenticated or declared
        invalid = invalid or check_new_approval(
            project.policy.approval,
            approver=approver,
            decision=config.decision,
            requested_version=config.model_version,
            candidate_version=candidate.model_version,
            trained_by=candidate.trained_by,
            identical=identical_to_champion(report.to_body()),
        )
        approval = Approval(
            project=project.name,
            decision=config.decision,
            approver=approver,
            authenticated=authenticated is not None,
            model_version=config.model_version,
            evaluation_report_version=report_version,
            candidate_model_version=candidate.model_version,
            comment=config.comment,
            valid=invalid is None,
            invalid_reason=invalid,
            at=utc_now(),
            policy_version=project.policy_version,
            dagster_run_id=context.run_id,
        )
        yield dg.Output(
            approval.to_payload(),
            metadata={
                **approval.metadata(),
                **_shadow_evidence(reader, project, config.model_version),
            },
        )
        if candidate.mlflow is not None and config.model_version == candidate.model_version:
            mlflow.record_approval(
                project.model_name, candidate.mlflow.version, approval.to_payload()
            )
        if invalid:
            # Recorded above (the audit keeps it); the run fails so the person sees why.
            raise dg.Failure(
                description=f"{project.name}/deployment_approval: {config.decision} refused: "
                f"{invalid}"
            )

    return deployment_approval


def build_approval_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_deployment_approval(project)]
