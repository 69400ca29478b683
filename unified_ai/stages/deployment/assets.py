"""Deployment: promote the evaluated candidate to champion, or roll back to an earlier one."""

from typing import Literal

import dagster as dg
from pydantic import Field

from unified_ai.io.store import utc_now
from unified_ai.names import (
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    EVALUATION_REPORT,
    PATH_METADATA,
    TRIGGER_METADATA,
    VERSION_METADATA,
)
from unified_ai.payloads import Deployment
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import approval_records, evaluation_report
from unified_ai.resources.mlflow_registry import CHAMPION, MlflowRegistry
from unified_ai.resources.notifications import Notifier
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key, run_actor, stage_tags
from unified_ai.stages.gate_records import require_gates
from unified_ai.stages.placement import stage_op_tags


class DeploymentConfig(dg.Config):
    """How to materialize `deployed_model`.

    `deploy` (the default) promotes the candidate of the current evaluation report if every
    gate passed on it. `rollback` restores an earlier deployment without recomputing anything.
    """

    action: Literal["deploy", "rollback"] = "deploy"
    if_not_approved: Literal["fail", "wait"] = Field(
        default="fail",
        description="deploy: when policy's approvals are not met yet, fail (a person asked to "
        "deploy) or store nothing and wait for the approval sensor (the training loop)",
    )
    to_version: str = Field(
        default="",
        description="rollback: deployment or model version to restore; empty = the previous "
        "deployment that passed its gates",
    )
    reason: str = Field(default="", description="rollback: why (kept in the incident)")
    trigger: str = Field(
        default="manual", description="rollback: who or what asked for it (person, sensor)"
    )


def _deploy(context, project, config, mlflow, lineage):
    """Yield the deployment manifest, or nothing while the loop waits for an approval."""
    from datetime import datetime, timezone

    from unified_ai.policies.approval import deployment_approval_decision

    report_key = key(project, EVALUATION_REPORT)
    reader = lineage.reader(context)
    report_version = reader.require_current(report_key.path)
    # Re-check the gates ourselves: a run that selects only this asset skips the checks.
    decision = require_gates(context.instance, report_key, report_version, GATES)
    # Read exactly the version whose gates were just verified.
    stored, report = evaluation_report(reader, project.name, report_version)
    candidate = report.candidate
    approval = deployment_approval_decision(
        project.policy.approval,
        stored.body,
        approval_records(reader, project.name),
        report_version=report_version,
        now=datetime.now(timezone.utc),
    )
    if not approval.allowed:
        if config.if_not_approved == "wait":
            # The loop has done its part; the approval sensor deploys once a person approves.
            context.log.info(f"{project.name}: not deployed yet: {approval.reason}")
            return
        raise dg.Failure(
            description=f"{project.name}/deployed_model: refusing to deploy model "
            f"{candidate.model_version}: {approval.reason}"
        )
    registered = candidate.mlflow
    if registered is None:
        raise dg.Failure(
            description=f"{project.name}/evaluation_report@{report_version}: the candidate "
            "has no MLflow registration to deploy"
        )
    previous = mlflow.champion_version(project.model_name)
    mlflow.set_champion(project.model_name, registered.version)
    manifest = Deployment(
        project=project.name,
        model_version=candidate.model_version,
        model_uri=registered.model_uri,
        mlflow_model_version=registered.version,
        mlflow_run_id=registered.run_id,
        mlflow_alias=CHAMPION,
        evaluation_report_version=report_version,
        gates={
            name: {"passed": record.passed, "description": record.description}
            for name, record in decision.records.items()
        },
        approval={"reason": approval.reason, "approvers": approval.approvers},
        policy_version=project.policy_version,
        metrics=candidate.metrics,
        deployed_at=utc_now(),
        deployed_by=run_actor(context),
        dagster_run_id=context.run_id,
        previous_mlflow_champion=previous,
    )
    mlflow.record_deployment(project.model_name, manifest.to_payload(), previous=previous)
    yield dg.Output(
        manifest.to_payload(),
        metadata={
            "action": "deploy",
            "model_version": manifest.model_version,
            "model_uri": manifest.model_uri,
            "evaluation_report_version": report_version,
            "approval": approval.reason,
            "approvers": ", ".join(approval.approvers) or "none needed",
            "policy_version": project.policy_version,
            "previous_mlflow_champion": previous or "none",
        },
    )


def _rollback(context, project, config, mlflow, lineage, notifier) -> dg.MaterializeResult:
    from unified_ai.policies.rollback import RollbackError
    from unified_ai.stages.rollback.perform import perform_rollback

    try:
        outcome = perform_rollback(
            store=lineage.reader(context).store,  # moves a pointer: no value is stored
            registry=mlflow,
            project=project,
            requested=config.to_version or None,
            reason=config.reason,
            actor=run_actor(context),
            run_id=context.run_id,
        )
    except RollbackError as exc:
        raise dg.Failure(
            description=f"{project.name}/deployed_model: rollback refused: {exc}"
        ) from None
    notifier.notify(
        project.policy.notifications,
        project=project.name,
        event="rollback",
        summary=f"rolled back ({config.trigger}): {config.reason}",
        evidence={"from": outcome.rolled_back_from, "to": outcome.rolled_back_to},
        run_id=context.run_id,
    )
    store = lineage.reader(context).store
    path = key(project, DEPLOYED_MODEL).path
    # No IO-manager write: the restored version already exists; its pointer has moved.
    return dg.MaterializeResult(
        metadata={
            "action": "rollback",
            VERSION_METADATA: outcome.rolled_back_to,
            PATH_METADATA: dg.MetadataValue.path(
                str(store.version_dir(path, outcome.rolled_back_to))
            ),
            "rolled_back_from": outcome.rolled_back_from,
            "rolled_back_to": outcome.rolled_back_to,
            "model_version": outcome.to_deployment.model_version,
            "model_uri": outcome.to_deployment.model_uri,
            "reason": config.reason,
            TRIGGER_METADATA: config.trigger,
        }
    )


def build_deployed_model(project: ProjectConfig) -> dg.AssetsDefinition:
    report_key = key(project, EVALUATION_REPORT)

    @dg.asset(
        key=key(project, DEPLOYED_MODEL),
        deps=[report_key, key(project, DEPLOYMENT_APPROVAL)],
        tags=stage_tags("deployment"),
        output_required=False,
        description="The deployment manifest of the champion: model version, evaluation report, "
        "gate results and policy. Refuses to deploy unless every gate passed on the current "
        "report; with `action: rollback` restores an earlier deployment.",
        metadata=asset_metadata(project),
        kinds={"mlflow", "json"},
        op_tags=stage_op_tags(project, "deployment"),
    )
    def deployed_model(
        context: dg.AssetExecutionContext,
        config: DeploymentConfig,
        mlflow: MlflowRegistry,
        lineage: LineageStorage,
        notifier: Notifier,
    ):
        if config.action == "rollback":
            yield _rollback(context, project, config, mlflow, lineage, notifier)
        else:
            yield from _deploy(context, project, config, mlflow, lineage)

    return deployed_model


def build_deployment_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_deployed_model(project)]
