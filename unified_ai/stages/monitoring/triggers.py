"""Triggers: sensors that act on what runs recorded.

Drift beyond the policy → retrain; the deployed model below the live floor → retrain; a fresh
deployment clearly worse than its predecessor on the same labeled rows → roll back. Each
decision is the policy's (`unified_ai.policies.triggers`), explains its skips, records its
evidence in run tags and honours the policy's cooldown, unless the retrain that started it
ended without a deployment and enough evidence arrived after its data was cut.
"""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import (
    ACTOR_TAG,
    CANDIDATE_VERSION_METADATA,
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    DRIFT_REPORT,
    EVALUATION_REPORT,
    GROUND_TRUTH,
    IDENTICAL_METADATA,
    LIVE_PERFORMANCE,
    TRAINING_DATA,
    VERSION_METADATA,
    sensor_names,
    training_loop_job,
)
from unified_ai.payloads import Approval, DriftSummary, LiveSummary
from unified_ai.policies.triggers import (
    Decision,
    LastRetrain,
    LiveEvidence,
    NewLabels,
    drift_decision,
    ground_truth_decision,
    live_action,
    reproduces_last_model,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key
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


def _evidence_tags(project: ProjectConfig, kind: str, evidence: dict[str, str]) -> dict[str, str]:
    return names.evidence_tags(kind, project.policy_version, evidence)


#: Runs that have not finished: a training loop in one of these states will read the newest
#: data when its steps run.
_IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _retrain_in_flight(instance: dg.DagsterInstance, project: ProjectConfig) -> str | None:
    """Why a retrain already on its way makes another one pointless, or None."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=training_loop_job(project.name), statuses=_IN_FLIGHT),
        limit=1,
    )
    if not records:
        return None
    run = records[0].dagster_run
    return (
        f"a retrain is already on its way (run {run.run_id[:8]}, {run.status.value.lower()}, "
        f"by {names.actor_of(run.tags)}); it trains on the newest data, this evidence included"
    )


def _newest(instance: dg.DagsterInstance, asset_key: dg.AssetKey):
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0] if records else None


def _last_retrain(
    instance: dg.DagsterInstance,
    project: ProjectConfig,
    *,
    fresh: bool,
    fresh_detail: str,
) -> LastRetrain | None:
    """What became of the retrain that cut the newest training data (recorded metadata only).

    Deployed: a deployment was stored after its data was cut. Otherwise it ended without one
    when its run failed (a gate or a step), its candidate was identical to the champion, a
    person rejected it, or its approval expired; else it is still waiting.
    """
    cut = _newest(instance, key(project, TRAINING_DATA))
    if cut is None:
        return None
    deployed = _newest(instance, key(project, DEPLOYED_MODEL))
    if deployed is not None and deployed.storage_id > cut.storage_id:
        version = value(metadata_values(deployed.asset_materialization), VERSION_METADATA)
        return LastRetrain(cut.run_id, "deployed", f"deployed {version} after its data was cut")

    def ended(detail: str) -> LastRetrain:
        return LastRetrain(cut.run_id, "no_deployment", detail, fresh, fresh_detail)

    run = instance.get_run_by_id(cut.run_id)
    if run is None:
        return ended("its run is no longer recorded")
    if run.status in _IN_FLIGHT:
        return LastRetrain(cut.run_id, "waiting", "is still running")
    if run.status != dg.DagsterRunStatus.SUCCESS:
        checks = [
            event.dagster_event.asset_check_evaluation_data
            for event in instance.all_logs(
                cut.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if event.dagster_event is not None
        ]
        failed = sorted({check.check_name for check in checks if not check.passed})
        return ended(f"gate {', '.join(failed)} failed" if failed else "its run failed")
    report = _newest(instance, key(project, EVALUATION_REPORT))
    values = metadata_values(report.asset_materialization) if report is not None else {}
    if report is None or report.storage_id < cut.storage_id:
        return ended("it evaluated no candidate")
    if value(values, IDENTICAL_METADATA) is True:
        return ended("its candidate was identical to the champion")
    candidate = value(values, CANDIDATE_VERSION_METADATA)
    for record in instance.fetch_materializations(
        key(project, DEPLOYMENT_APPROVAL), limit=50
    ).records:
        decided = Approval.record_from_metadata(
            metadata_values(record.asset_materialization),
            recorded_at=datetime.fromtimestamp(record.timestamp, timezone.utc),
        )
        if decided.valid and decided.decision == "reject" and decided.model_version == candidate:
            return ended(f"rejected by {decided.approver}")
    # A candidate left waiting longer than an approval lasts is taken as expired.
    ended_at = _run_end(instance, cut.run_id)
    expiry = project.policy.approval.expires_after_hours * 3600
    if ended_at is not None and datetime.now(timezone.utc).timestamp() - ended_at > expiry:
        return ended("its approval expired")
    return LastRetrain(cut.run_id, "waiting", f"has a candidate {candidate} waiting for approval")


def _run_end(instance: dg.DagsterInstance, run_id: str) -> float | None:
    records = instance.get_run_records(filters=dg.RunsFilter(run_ids=[run_id]), limit=1)
    return records[0].end_time if records else None


def _retrain(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    notifier: Notifier,
    decision: Decision,
    *,
    cursor: dict,
    run_key: str,
    actor: str,
    kind: str,
    job_name: str | None = None,
) -> dg.SensorResult:
    """Announce a retrain on the project's channels and request the training loop for it.

    Not when a training loop of the project is queued or running: two triggers seeing the same
    change (drift and falling live metrics, or new labels) would otherwise train twice.
    """
    in_flight = _retrain_in_flight(context.instance, project)
    if in_flight is not None:
        return dg.SensorResult(skip_reason=dg.SkipReason(in_flight), cursor=dump_cursor(cursor))
    notifier.notify(
        project.policy.notifications,
        project=project.name,
        event="retrain",
        summary=f"retraining: {decision.reason}",
        evidence=decision.evidence,
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                job_name=job_name,
                tags={ACTOR_TAG: actor, **_evidence_tags(project, kind, decision.evidence)},
            )
        ],
        cursor=dump_cursor(cursor),
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
        cut = _newest(context.instance, key(project, TRAINING_DATA))
        after_cut = cut is None or newest.storage_id > cut.storage_id
        last_retrain = _last_retrain(
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
            last_retrain=last_retrain,
        )
        if decision.act:
            labels, _ = _new_labels(context.instance, project)
            same = reproduces_last_model(labels, last_retrain)
            if same is not None:
                decision = Decision(False, f"{decision.reason}, but {same}", decision.evidence)
        if not decision.act:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(decision.reason), cursor=dump_cursor(cursor)
            )
        cursor["last_trigger"] = now.isoformat()
        return _retrain(
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
        "live metric is below the floor and the predecessor is no better (the world changed).",
    )
    def performance_trigger(context: dg.SensorEvaluationContext, notifier: Notifier):
        cursor = load_cursor(context)
        records = new_events(context.instance, live_key, cursor.get("storage_id"))
        if not records:
            return dg.SkipReason("no new live performance")
        newest = records[-1]
        cursor["storage_id"] = newest.storage_id
        summary = LiveSummary.from_metadata(metadata_values(newest.asset_materialization))
        live = LiveEvidence(
            metric=summary.metric,
            deployment=summary.deployment_version,
            value=summary.value,
            ci_high=summary.ci_high,
            labeled_rows=summary.labeled_rows,
            deployed_at=parse_time(summary.deployed_at),
            previous_deployment=summary.previous_deployment,
            previous_value=summary.previous_value,
            paired_deployment=summary.paired_deployment,
            paired_rows=summary.paired_rows,
            paired_value=summary.paired_value,
            paired_previous_value=summary.paired_previous_value,
            paired_difference=summary.paired_difference,
            paired_ci_high=summary.paired_ci_high,
            recent_paired_batches=summary.recent_paired_batches,
            recent_paired_rows=summary.recent_paired_rows,
            recent_paired_value=summary.recent_paired_value,
            recent_paired_previous_value=summary.recent_paired_previous_value,
            recent_paired_difference=summary.recent_paired_difference,
            recent_paired_ci_high=summary.recent_paired_ci_high,
            recent_batches=summary.recent_batches,
            recent_rows=summary.recent_rows,
            recent_value=summary.recent_value,
        )
        deployed = latest_values(context.instance, key(project, DEPLOYED_MODEL))
        live_now = value(deployed, VERSION_METADATA) if deployed is not None else None
        if live.deployment != live_now:
            # Computed before the deployment changed (a rollback or a new deployment landed
            # since): it is evidence about a model that is no longer live.
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"live performance of deployment {live.deployment} is stale: "
                    f"{live_now or 'nothing'} is deployed now"
                ),
                cursor=dump_cursor(cursor),
            )
        now = datetime.now(timezone.utc)
        triggers = project.policy.triggers
        labels, _ = _new_labels(context.instance, project)
        enough = triggers.ground_truth.min_new_labels
        last_retrain = _last_retrain(
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
            retrain_outcome=last_retrain,
        )
        if decided.action == "rollback":
            cursor["last_rollback"] = now.isoformat()
            tags = _evidence_tags(project, "live_degradation", decided.rollback.evidence)
            return dg.SensorResult(
                run_requests=[
                    rollback_run_request(
                        project,
                        reason=decided.reason,
                        trigger="performance_trigger",
                        # The deployment it was compared with on the same rows, nothing else.
                        to_version=live.paired_deployment or "",
                        run_key=f"rollback:{newest.storage_id}",
                        tags=tags,
                    )
                ],
                cursor=dump_cursor(cursor),
            )
        retrain = decided.retrain
        if decided.action == "wait" or retrain is None:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(decided.reason), cursor=dump_cursor(cursor)
            )
        same = reproduces_last_model(labels, last_retrain)
        if same is not None:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{retrain.reason}, but {same}"),
                cursor=dump_cursor(cursor),
            )
        cursor["last_retrain"] = now.isoformat()
        return _retrain(
            context,
            project,
            notifier,
            retrain,
            cursor=cursor,
            run_key=f"performance:{newest.storage_id}",
            actor="performance_trigger",
            kind="live_below_floor",
            job_name=training_loop_job(project.name),
        )

    return performance_trigger


def _new_labels(instance: dg.DagsterInstance, project: ProjectConfig) -> tuple[NewLabels, int]:
    """Labeled rows recorded after the newest training data, and the newest label event's id.

    Read from recorded metadata only: the newest `training_data` materialization is the cut;
    each batch labeled since counts with its newest ground truth's row count.
    """
    cut = instance.fetch_materializations(key(project, TRAINING_DATA), limit=1).records
    cut_record = cut[0] if cut else None
    after = cut_record.storage_id if cut_record is not None else None
    rows: dict[str, int] = {}
    newest = after or 0
    while True:
        records = new_events(instance, key(project, GROUND_TRUTH), after)
        for record in records:
            values = metadata_values(record.asset_materialization)
            rows[record.partition_key or "?"] = int(value(values, "dagster/row_count", 0))
            newest = record.storage_id
        if len(records) < 1000:
            break
        after = records[-1].storage_id
    cut_values = metadata_values(cut_record.asset_materialization) if cut_record else {}
    labels = NewLabels(
        rows=sum(rows.values()),
        batches=list(rows),
        cut_version=value(cut_values, VERSION_METADATA),
        cut_at=(
            datetime.fromtimestamp(cut_record.timestamp, timezone.utc).isoformat()
            if cut_record is not None
            else None
        ),
        included=project.training.production_data.include,
    )
    return labels, newest


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
        labels, newest = _new_labels(context.instance, project)
        cursor["storage_id"] = max(newest, fresh[0].storage_id)
        now = datetime.now(timezone.utc)
        rule = project.policy.triggers.ground_truth
        decision = ground_truth_decision(
            rule,
            labels,
            last_trigger=parse_time(cursor.get("last_trigger")),
            now=now,
            last_retrain=_last_retrain(
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
        return _retrain(
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


def build(project: ProjectConfig, jobs: dict) -> list[dg.SensorDefinition]:
    """Triggers of `project`; `jobs` are the project's job definitions by name."""
    return [
        build_drift_trigger(project),
        build_ground_truth_trigger(project),
        build_performance_trigger(
            project,
            [jobs[names.rollback_job(project.name)], jobs[training_loop_job(project.name)]],
        ),
    ]
