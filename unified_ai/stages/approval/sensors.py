"""Deploy when a valid approval lands (and only then, and only once)."""

import json
from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, DEPLOYMENT_APPROVAL
from unified_ai.policies.approval import ApprovalRecord, human_approval
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import key

INTERVAL_SECONDS = 15


def _record(metadata) -> ApprovalRecord:
    def value(name, default=None):
        entry = metadata.get(name)
        return default if entry is None else entry.value

    return ApprovalRecord(
        decision=str(value("decision", "")),
        approver=str(value("approver", "")),
        model_version=str(value("model_version", "")),
        evaluation_report_version=str(value("evaluation_report_version", "")),
        at=datetime.fromisoformat(str(value("at"))),
        valid=bool(value("valid", False)),
        reason=str(value("reason", "")),
    )


def build(project: ProjectConfig) -> list[dg.SensorDefinition]:
    approval_key = key(project, DEPLOYMENT_APPROVAL)
    rule = project.policy.approval

    @dg.sensor(
        name=names.approval_sensor(project.name),
        job_name=names.deploy_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Deploys {project.name}'s candidate when the approvals its policy requires "
        "have landed (deployed_model re-checks them).",
    )
    def approval_sensor(context: dg.SensorEvaluationContext):
        cursor = json.loads(context.cursor) if context.cursor else {}
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=approval_key, after_storage_id=cursor.get("storage_id")
            ),
            limit=100,
            ascending=True,
        ).records
        if not records:
            return dg.SkipReason("no new approvals")
        cursor["storage_id"] = records[-1].storage_id
        newest = records[-1]
        latest = _record(newest.asset_materialization.metadata)
        # Count the approvals recorded for this same model (read from recorded metadata only).
        history = context.instance.fetch_materializations(approval_key, limit=200).records
        same_model = [
            _record(r.asset_materialization.metadata)
            for r in history
            if r.asset_materialization.metadata.get("model_version")
            and r.asset_materialization.metadata["model_version"].value == latest.model_version
        ]
        decision = human_approval(
            rule,
            same_model,
            model_version=latest.model_version,
            report_version=latest.evaluation_report_version,
            now=datetime.now(timezone.utc),
        )
        if not decision.allowed:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(decision.reason), cursor=json.dumps(cursor)
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"approval:{latest.model_version}:{latest.evaluation_report_version}",
                    tags={
                        ACTOR_TAG: ",".join(decision.approvers),
                        **names.evidence_tags("approval", project.policy_version, {}),
                    },
                )
            ],
            cursor=json.dumps(cursor),
        )

    return [approval_sensor]
