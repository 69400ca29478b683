"""The performance trigger: roll back a fresh deployment, or retrain below the live floor.

Rolls back when a fresh deployment does clearly worse than its predecessor on the same labeled
rows (shadow scores, bake window); retrains when the live metric is below the floor and the
predecessor is no better (the world changed). The choice is `policies.triggers.live_action`'s.
When neither acts, the same event's model-people agreement may still ask for a retrain
(`agreement_trigger`, with `policy.triggers.agreement`).
"""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import (
    DEPLOYED_MODEL,
    LIVE_PERFORMANCE,
    VERSION_METADATA,
    sensor_names,
    training_loop_job,
)
from unified_ai.payloads import LiveSummary
from unified_ai.policies.live_reading import live_evidence
from unified_ai.policies.triggers import (
    LiveAction,
    LiveEvidence,
    live_action,
    reproduces_last_model,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key
from unified_ai.stages.monitoring.agreement_trigger import (
    AgreementEvidence,
    agreement_evidence,
    agreement_retrain,
)
from unified_ai.stages.monitoring.retrain_history import last_retrain, new_labels
from unified_ai.stages.monitoring.retrain_request import evidence_tags, request_retrain
from unified_ai.stages.rollback.jobs import rollback_run_request
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    dump_cursor,
    latest_values,
    load_cursor,
    metadata_values,
    new_events,
    parse_time,
    value,
)


def build_performance_trigger(project: ProjectConfig, jobs: list) -> dg.SensorDefinition:
    live_key = key(project, LIVE_PERFORMANCE)
    name = sensor_names(project.name)[names.PERFORMANCE]

    @dg.sensor(
        name=name,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=jobs,  # each request names its job: the rollback or the training loop
        description=f"Rolls {project.name} back when a fresh deployment does clearly worse than "
        "its predecessor on the same labeled rows (shadow scores, bake window); retrains when the "
        "live metric is below the floor (above it for a lower-is-better metric such as RMSE) and "
        "the predecessor is no better (the world changed); with policy.triggers.agreement, "
        "retrains when reviewers agree with the model less than its floor.",
    )
    def performance_trigger(context: dg.SensorEvaluationContext, notifier: Notifier):
        cursor = load_cursor(context)
        records = new_events(context.instance, live_key, cursor.get("storage_id"))
        if not records:
            return dg.SkipReason("no new live performance")
        newest = records[-1]
        cursor["storage_id"] = newest.storage_id
        values = metadata_values(newest.asset_materialization)
        summary = LiveSummary.from_metadata(values)
        live = live_evidence(summary, deployed_at=parse_time(summary.deployed_at))
        stale = _stale(context.instance, project, live)
        if stale is not None:
            return dg.SensorResult(skip_reason=dg.SkipReason(stale), cursor=dump_cursor(cursor))
        return _act(
            context,
            project,
            notifier,
            live,
            cursor=cursor,
            event=newest.storage_id,
            agreement=agreement_evidence(values),
        )

    return performance_trigger


def _stale(instance: dg.DagsterInstance, project: ProjectConfig, live: LiveEvidence) -> str | None:
    """Why `live` is about a model that is no longer live, or None when it is the live one."""
    deployed = latest_values(instance, key(project, DEPLOYED_MODEL))
    live_now = value(deployed, VERSION_METADATA) if deployed is not None else None
    if live.deployment == live_now:
        return None
    # Computed before the deployment changed (a rollback or a new deployment landed since): it
    # is evidence about a model that is no longer live.
    return (
        f"live performance of deployment {live.deployment} is stale: "
        f"{live_now or 'nothing'} is deployed now"
    )


def _act(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    notifier: Notifier,
    live: LiveEvidence,
    *,
    cursor: dict,
    event: int,
    agreement: AgreementEvidence | None = None,
) -> dg.SensorResult:
    """Roll back, retrain or wait, as `live_action` decides on `live` (the event's evidence).

    When it waits (not for a rollback's paired rows), `agreement` may still ask for a retrain.
    """
    now = datetime.now(timezone.utc)
    triggers = project.policy.triggers
    labels, _ = new_labels(context.instance, project)
    enough = triggers.ground_truth.min_new_labels
    retrained = last_retrain(
        context.instance,
        project,
        fresh=labels.rows >= enough,
        fresh_detail=f"{labels.rows} labeled rows since its data was cut (re-arms at {enough})",
    )
    decided = live_action(
        triggers.rollback,
        triggers.performance,
        live,
        last_rollback=parse_time(cursor.get("last_rollback")),
        last_retrain=parse_time(cursor.get("last_retrain")),
        now=now,
        retrain_outcome=retrained,
    )
    if decided.action == "rollback":
        cursor["last_rollback"] = now.isoformat()
        return _roll_back(project, decided, live, cursor=cursor, event=event)
    retrain = decided.retrain
    if decided.action == "wait" or retrain is None:
        reason = decided.reason
        if agreement is not None and not decided.rollback.pending:
            found = agreement_retrain(
                context,
                project,
                notifier,
                agreement,
                labels=labels,
                retrained=retrained,
                cursor=cursor,
                event=event,
                now=now,
            )
            if isinstance(found, dg.SensorResult):
                return found
            reason = f"{reason}; {found}"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=dump_cursor(cursor))
    same = reproduces_last_model(labels, retrained)
    if same is not None:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{retrain.reason}, but {same}"),
            cursor=dump_cursor(cursor),
        )
    cursor["last_retrain"] = now.isoformat()
    return request_retrain(
        context,
        project,
        notifier,
        retrain,
        cursor=cursor,
        run_key=f"performance:{event}",
        actor="performance_trigger",
        kind="live_below_floor",
        job_name=training_loop_job(project.name),
    )


def _roll_back(
    project: ProjectConfig, decided: LiveAction, live: LiveEvidence, *, cursor: dict, event: int
) -> dg.SensorResult:
    """Request the rollback `decided` chose, to the deployment `live` was compared with."""
    tags = evidence_tags(project, "live_degradation", decided.rollback.evidence)
    return dg.SensorResult(
        run_requests=[
            rollback_run_request(
                project,
                reason=decided.reason,
                trigger="performance_trigger",
                # The deployment it was compared with on the same rows, nothing else.
                to_version=live.paired_deployment or "",
                run_key=f"rollback:{event}",
                tags=tags,
            )
        ],
        cursor=dump_cursor(cursor),
    )
