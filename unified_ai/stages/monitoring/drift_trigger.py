"""The drift trigger: retrain when a batch's share of drifted columns exceeds the policy."""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import DRIFT_REPORT, TRAINING_DATA, sensor_names, training_loop_job
from unified_ai.payloads import DriftSummary
from unified_ai.policies.triggers import Decision, drift_decision, reproduces_last_model
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key
from unified_ai.stages.monitoring.retrain_history import last_retrain, new_labels, newest_record
from unified_ai.stages.monitoring.retrain_request import request_retrain
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    dump_cursor,
    load_cursor,
    metadata_values,
    new_events,
    parse_time,
)


def build_drift_trigger(project: ProjectConfig) -> dg.SensorDefinition:
    report_key = key(project, DRIFT_REPORT)
    name = sensor_names(project.name)[names.DRIFT]

    @dg.sensor(
        name=name,
        job_name=training_loop_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains {project.name} when a batch's share of drifted columns exceeds "
        "the policy (with a cooldown).",
    )
    def drift_trigger(context: dg.SensorEvaluationContext, notifier: Notifier):
        cursor = load_cursor(context)
        records = new_events(context.instance, report_key, cursor.get("storage_id"))
        if not records:
            return dg.SkipReason("no new drift reports")
        now = datetime.now(timezone.utc)
        rule = project.policy.triggers.drift
        last = parse_time(cursor.get("last_trigger"))
        cursor["storage_id"] = records[-1].storage_id
        # The most drifted of the new reports decides; the others are covered by it.
        summaries = [
            (
                DriftSummary.from_metadata(
                    metadata_values(r.asset_materialization), batch=r.partition_key or "?"
                ),
                r,
            )
            for r in records
        ]
        drift, newest = max(summaries, key=lambda pair: pair[0].drifted_share)
        cut = newest_record(context.instance, key(project, TRAINING_DATA))
        after_cut = cut is None or newest.storage_id > cut.storage_id
        retrained = last_retrain(
            context.instance,
            project,
            fresh=after_cut,
            fresh_detail=f"drift report of batch {drift.batch} "
            + ("stored after the cut" if after_cut else "is older than the cut"),
        )
        decision = drift_decision(
            rule,
            share=drift.drifted_share,
            drifted=drift.drifted_columns,
            batch=drift.batch,
            last_trigger=last,
            now=now,
            last_retrain=retrained,
        )
        if decision.act:
            labels, _ = new_labels(context.instance, project)
            same = reproduces_last_model(labels, retrained)
            if same is not None:
                decision = Decision(False, f"{decision.reason}, but {same}", decision.evidence)
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
            run_key=f"drift:{newest.storage_id}",
            actor="drift_trigger",
            kind="drift",
        )

    return drift_trigger
