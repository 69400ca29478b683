"""The ground-truth trigger: retrain when enough labeled production rows arrived since the cut."""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import GROUND_TRUTH, sensor_names, training_loop_job
from unified_ai.policies.triggers import ground_truth_decision
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key
from unified_ai.stages.monitoring.retrain_history import last_retrain, new_labels
from unified_ai.stages.monitoring.retrain_request import request_retrain
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    dump_cursor,
    load_cursor,
    new_events,
    parse_time,
)


def build_ground_truth_trigger(project: ProjectConfig) -> dg.SensorDefinition:
    truth_key = key(project, GROUND_TRUTH)
    name = sensor_names(project.name)[names.GROUND_TRUTH_ROLE]

    @dg.sensor(
        name=name,
        job_name=training_loop_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains {project.name} when enough labeled production rows arrived "
        "since its training data was cut (policy.triggers.ground_truth, with a cooldown).",
    )
    def ground_truth_trigger(context: dg.SensorEvaluationContext, notifier: Notifier):
        cursor = load_cursor(context)
        fresh = new_events(context.instance, truth_key, cursor.get("storage_id"), limit=1)
        if not fresh:
            return dg.SkipReason("no new ground truth")
        labels, newest = new_labels(context.instance, project)
        cursor["storage_id"] = max(newest, fresh[0].storage_id)
        now = datetime.now(timezone.utc)
        rule = project.policy.triggers.ground_truth
        decision = ground_truth_decision(
            rule,
            labels,
            last_trigger=parse_time(cursor.get("last_trigger")),
            now=now,
            last_retrain=last_retrain(
                context.instance,
                project,
                fresh=labels.rows >= rule.min_new_labels,
                fresh_detail=f"{labels.rows} labeled rows since its data was cut "
                f"(re-arms at {rule.min_new_labels})",
            ),
        )
        if not decision.act:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(decision.reason), cursor=dump_cursor(cursor)
            )
        cursor["last_trigger"] = now.isoformat()
        return request_retrain(
            context,
            project,
            notifier,
            decision,
            cursor=cursor,
            run_key=f"ground_truth:{newest}",
            actor="ground_truth_trigger",
            kind="new_ground_truth",
        )

    return ground_truth_trigger
