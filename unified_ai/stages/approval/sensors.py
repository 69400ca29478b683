"""Deploy when a valid approval lands (and only then, and only once)."""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, DEPLOYMENT_APPROVAL
from unified_ai.payloads import Approval, ApprovalRecord
from unified_ai.policies.approval import human_approval
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import key
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    dump_cursor,
    load_cursor,
    metadata_values,
    new_events,
)


def _record(event) -> ApprovalRecord:
    """The decision an approval's materialization recorded (see `Approval.metadata`).

    The event's own time is when the instance recorded it: an approval dated later than that
    (reported with forged metadata) never counts.
    """
    return Approval.record_from_metadata(
        metadata_values(event.asset_materialization),
        recorded_at=datetime.fromtimestamp(event.timestamp, timezone.utc),
    )


def build_approval_sensor_defs(project: ProjectConfig) -> list[dg.SensorDefinition]:
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
        cursor = load_cursor(context)
        records = new_events(context.instance, approval_key, cursor.get("storage_id"), limit=100)
        if not records:
            return dg.SkipReason("no new approvals")
        cursor["storage_id"] = records[-1].storage_id
        latest = _record(records[-1])
        # Count the approvals recorded for this same model (read from recorded metadata only).
        history = context.instance.fetch_materializations(approval_key, limit=200).records
        same_model = [
            _record(r)
            for r in history
            if metadata_values(r.asset_materialization).get("model_version") == latest.model_version
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
                skip_reason=dg.SkipReason(decision.reason), cursor=dump_cursor(cursor)
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
            cursor=dump_cursor(cursor),
        )

    return [approval_sensor]
