"""Human approval as an asset.

A person materializes `deployment_approval` with typed config, from the UI launchpad or with
`unified-ai approve/reject`; every decision, valid or not, is kept.
"""

from datetime import datetime
from typing import Literal

import dagster as dg
from pydantic import Field

from unified_ai.io.reader import StoreReader
from unified_ai.io.store import utc_now
from unified_ai.names import DEPLOYMENT_APPROVAL, EVALUATION_REPORT
from unified_ai.policies.approval import ApprovalRecord, check_new_approval, same_person
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key


class ApprovalConfig(dg.Config):
    """A person's decision on one evaluated model version."""

    model_version: str = Field(description="candidate_model version (see evaluation_report)")
    decision: Literal["approve", "reject"] = "approve"
    approver: str = Field(default="", description="who decides (checked against policy)")
    comment: str = ""


class Identity(dg.ConfigurableResource):
    """Where a trusted user name comes from, if anywhere.

    Dagster OSS has no login: by default the approver is *declared* in the config. Behind an
    authenticating proxy that sets a run tag with the signed-in user, name that tag here
    (`UNIFIED_AI_IDENTITY_TAG`); the declared approver must then match it.
    """

    tag: str = ""

    def authenticated(self, context) -> str | None:
        return context.run.tags.get(self.tag) if self.tag else None


def approval_records(store: StoreReader, project: ProjectConfig) -> list[ApprovalRecord]:
    """Every recorded approval and rejection of the project, oldest first."""
    path = key(project, DEPLOYMENT_APPROVAL).path
    records = []
    for manifest in store.versions(path):
        payload = store.read_value(path, manifest.version)
        records.append(
            ApprovalRecord(
                decision=payload["decision"],
                approver=payload["approver"],
                model_version=payload["model_version"],
                evaluation_report_version=payload["evaluation_report_version"],
                at=datetime.fromisoformat(payload["at"]),
                valid=payload["valid"],
                reason=payload.get("comment") or payload.get("invalid_reason") or "",
            )
        )
    return sorted(records, key=lambda r: r.at)


def build_deployment_approval(project: ProjectConfig) -> dg.AssetsDefinition:
    report_key = key(project, EVALUATION_REPORT)

    @dg.asset(
        key=key(project, DEPLOYMENT_APPROVAL),
        deps=[report_key],
        group_name="approval",
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
    ):
        reader = lineage.reader(context)
        report_version = reader.require_current(report_key.path)
        candidate = reader.read_value(report_key.path, report_version).body["candidate"]
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
            candidate_version=candidate["model_version"],
            trained_by=candidate.get("trained_by"),
        )
        record = {
            "project": project.name,
            "decision": config.decision,
            "approver": approver,
            "authenticated": authenticated is not None,
            "model_version": config.model_version,
            "evaluation_report_version": report_version,
            "candidate_model_version": candidate["model_version"],
            "comment": config.comment,
            "valid": invalid is None,
            "invalid_reason": invalid,
            "at": utc_now(),
            "policy_version": project.policy_version,
            "dagster_run_id": context.run_id,
        }
        yield dg.Output(
            record,
            metadata={
                "decision": config.decision,
                "approver": approver or "(none)",
                "valid": invalid is None,
                "reason": invalid or config.comment or "",
                "model_version": config.model_version,
                "evaluation_report_version": report_version,
                "policy_version": project.policy_version,
                "at": record["at"],
            },
        )
        if invalid:
            # Recorded above (the audit keeps it); the run fails so the person sees why.
            raise dg.Failure(
                description=f"{project.name}/deployment_approval: {config.decision} refused: "
                f"{invalid}"
            )

    return deployment_approval


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_deployment_approval(project)]
