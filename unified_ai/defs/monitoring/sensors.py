"""Sensors of the event-driven loop.

They read file listings and recorded metadata only; every statistic is computed in runs. Each
explains its skips, and each trigger records its evidence in run tags and honours the policy's
cooldown.
"""

import json
from datetime import datetime, timezone

import dagster as dg

from unified_ai.defs.keys import (
    DEPLOYED_MODEL,
    DRIFT_REPORT,
    LIVE_PERFORMANCE,
    batches_partitions,
    key,
    training_loop_job_name,
)
from unified_ai.defs.monitoring.jobs import batch_job_name, labels_job_name
from unified_ai.defs.rollback.jobs import ACTOR_TAG, rollback_job_name, rollback_run_request
from unified_ai.policies.triggers import (
    LiveEvidence,
    drift_decision,
    performance_decision,
    rollback_decision,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.automations import Automations
from unified_ai.resources.inbox import Inbox, is_batch_name
from unified_ai.resources.notifications import Notifier

INTERVAL_SECONDS = 15
_EVENTS_PER_TICK = 1000


#: Which stored assets each automation reads or acts on when it fires next.
CONSUMES: dict[str, set[str]] = {
    "batches": {"deployed_model", "candidate_model", "train_split"},
    "labels": {"predictions", "deployed_model"},
    "drift": {"drift_report", "train_split", "training_data"},
    "performance": {"live_performance", "deployed_model", "training_data", "evaluation_report"},
}


def sensor_names(project: ProjectConfig) -> dict[str, str]:
    """Sensor name by role (see `CONSUMES` for what each role depends on)."""
    return {
        "batches": f"{project.name}__batch_sensor",
        "labels": f"{project.name}__labels_sensor",
        "drift": f"{project.name}__drift_trigger",
        "performance": f"{project.name}__performance_trigger",
    }


def _paused(automations: Automations, name: str) -> dg.SkipReason | None:
    record = automations.paused(name)
    if record is None:
        return None
    return dg.SkipReason(
        f"paused at {record['at']}: {record['reason']} (resume with `unified-ai resume`)"
    )


def _new_files(listing, cursor: dict) -> list[tuple[str, float]]:
    """Files newer than the cursor (mtime, then names already seen at that mtime)."""
    last = cursor.get("mtime", 0.0)
    seen = set(cursor.get("names", []))
    return [(n, m) for n, m in listing if m > last or (m == last and n not in seen)]


def _advance(cursor: dict, files) -> str:
    if not files:
        return json.dumps(cursor)
    newest = max(m for _, m in files)
    names = [n for n, m in files if m == newest]
    if newest == cursor.get("mtime"):
        names = sorted({*cursor.get("names", []), *names})
    return json.dumps({"mtime": newest, "names": names})


def build_batch_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    partitions = batches_partitions(project)
    name = sensor_names(project)["batches"]

    @dg.sensor(
        name=name,
        job_name=batch_job_name(project),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Registers each new file in {project.name}'s inbox as a batch partition and "
        "scores it (once: the run key is the file name).",
    )
    def batch_sensor(context: dg.SensorEvaluationContext, inbox: Inbox, automations: Automations):
        skip = _paused(automations, name)
        if skip:
            return skip
        cursor = json.loads(context.cursor) if context.cursor else {}
        files = _new_files(Inbox.listing(inbox.folder(project)), cursor)
        usable = []
        for file_name, _ in files:
            if not is_batch_name(file_name):
                context.log.warning(
                    f"{project.name}: inbox file {file_name!r} is not a usable batch name "
                    "(letters, digits, . _ -, ending .csv or .parquet); left in place"
                )
            elif context.instance.has_dynamic_partition(partitions.name, file_name):
                # Rewritten or touched again: a batch file is processed once.
                context.log.info(f"{project.name}: batch {file_name} was already registered")
            else:
                usable.append(file_name)
        if not usable:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"no new batch files in {inbox.folder(project)}"),
                cursor=_advance(cursor, files),
            )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=batch, partition_key=batch, tags={ACTOR_TAG: "batch_sensor"})
                for batch in usable
            ],
            dynamic_partitions_requests=[partitions.build_add_request(usable)],
            cursor=_advance(cursor, files),
        )

    return batch_sensor


def build_labels_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    partitions_name = batches_partitions(project).name
    name = sensor_names(project)["labels"]

    @dg.sensor(
        name=name,
        job_name=labels_job_name(project),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Picks up ground-truth files in {project.name}'s inbox/labels and updates "
        "live performance.",
    )
    def labels_sensor(context: dg.SensorEvaluationContext, inbox: Inbox, automations: Automations):
        skip = _paused(automations, name)
        if skip:
            return skip
        cursor = json.loads(context.cursor) if context.cursor else {}
        files = _new_files(Inbox.listing(inbox.labels_folder(project)), cursor)
        requests, unknown = [], []
        for batch, mtime in files:
            if context.instance.has_dynamic_partition(partitions_name, batch):
                requests.append(
                    dg.RunRequest(
                        run_key=f"labels:{batch}:{mtime}",
                        partition_key=batch,
                        tags={ACTOR_TAG: "labels_sensor"},
                    )
                )
            else:
                unknown.append(batch)
        for batch in unknown:
            context.log.warning(
                f"{project.name}: labels file {batch!r} matches no known batch; left in place"
            )
        reason = None
        if not requests:
            reason = dg.SkipReason(
                f"labels for unknown batches: {', '.join(unknown)} (files kept)"
                if unknown
                else "no new label files"
            )
        return dg.SensorResult(
            run_requests=requests, skip_reason=reason, cursor=_advance(cursor, files)
        )

    return labels_sensor


def _new_events(context, asset_key: dg.AssetKey, after: int | None):
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, after_storage_id=after),
        limit=_EVENTS_PER_TICK,
        ascending=True,
    ).records
    return records


def _value(metadata, name: str, default=None):
    entry = metadata.get(name)
    if entry is None:
        return default
    value = entry.value
    return default if value == "none" else value


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _evidence_tags(project: ProjectConfig, kind: str, evidence: dict[str, str]) -> dict[str, str]:
    """What triggered a run, the evidence, and the policy that decided, as run tags."""
    tags = {"unified_ai/trigger": kind, "unified_ai/policy_version": project.policy_version}
    tags.update({f"unified_ai/evidence.{k}": str(v)[:250] for k, v in evidence.items()})
    return tags


def build_drift_trigger(project: ProjectConfig) -> dg.SensorDefinition:
    report_key = key(project, DRIFT_REPORT)
    name = sensor_names(project)["drift"]

    @dg.sensor(
        name=name,
        job_name=training_loop_job_name(project),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrains {project.name} when a batch's share of drifted columns exceeds "
        "the policy (with a cooldown).",
    )
    def drift_trigger(
        context: dg.SensorEvaluationContext, automations: Automations, notifier: Notifier
    ):
        skip = _paused(automations, name)
        if skip:
            return skip
        cursor = json.loads(context.cursor) if context.cursor else {}
        records = _new_events(context, report_key, cursor.get("storage_id"))
        if not records:
            return dg.SkipReason("no new drift reports")
        now = datetime.now(timezone.utc)
        rule = project.policy.triggers.drift
        last = _time(cursor.get("last_trigger"))
        cursor["storage_id"] = records[-1].storage_id
        # The most drifted of the new reports decides; the others are covered by it.
        newest = max(
            records,
            key=lambda r: _value(r.asset_materialization.metadata, "drifted_share", 0.0),
        )
        metadata = newest.asset_materialization.metadata
        decision = drift_decision(
            rule,
            share=float(_value(metadata, "drifted_share", 0.0)),
            drifted=[
                c
                for c in str(_value(metadata, "drifted_columns", "")).split(", ")
                if c and c != "none"
            ],
            batch=str(_value(metadata, "batch", newest.partition_key or "?")),
            last_trigger=last,
            now=now,
        )
        if not decision.act:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(decision.reason), cursor=json.dumps(cursor)
            )
        cursor["last_trigger"] = now.isoformat()
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
                    run_key=f"drift:{newest.storage_id}",
                    tags={
                        ACTOR_TAG: "drift_trigger",
                        **_evidence_tags(project, "drift", decision.evidence),
                    },
                )
            ],
            cursor=json.dumps(cursor),
        )

    return drift_trigger


def build_performance_trigger(project: ProjectConfig, jobs: list) -> dg.SensorDefinition:
    live_key = key(project, LIVE_PERFORMANCE)
    name = sensor_names(project)["performance"]

    @dg.sensor(
        name=name,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        jobs=jobs,  # each request names its job: the rollback or the training loop
        description=f"Rolls {project.name} back when a fresh deployment does clearly worse live "
        "than its predecessor (bake window); retrains when the live metric is below the floor.",
    )
    def performance_trigger(
        context: dg.SensorEvaluationContext, automations: Automations, notifier: Notifier
    ):
        skip = _paused(automations, name)
        if skip:
            return skip
        cursor = json.loads(context.cursor) if context.cursor else {}
        records = _new_events(context, live_key, cursor.get("storage_id"))
        if not records:
            return dg.SkipReason("no new live performance")
        newest = records[-1]
        cursor["storage_id"] = newest.storage_id
        metadata = newest.asset_materialization.metadata
        live = LiveEvidence(
            metric=str(_value(metadata, "metric", "roc_auc")),
            deployment=str(_value(metadata, "deployment_version", "")),
            value=_value(metadata, "value"),
            ci_high=_value(metadata, "ci_high"),
            labeled_rows=int(_value(metadata, "labeled_rows", 0)),
            deployed_at=_time(_value(metadata, "deployed_at")),
            previous_deployment=_value(metadata, "previous_deployment"),
            previous_value=_value(metadata, "previous_value"),
        )
        deployed = context.instance.get_latest_materialization_event(key(project, DEPLOYED_MODEL))
        live_now = (
            _value(deployed.asset_materialization.metadata, "lineage/version")
            if (deployed and deployed.asset_materialization)
            else None
        )
        if live.deployment != live_now:
            # Computed before the deployment changed (a rollback or a new deployment landed
            # since): it is evidence about a model that is no longer live.
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"live performance of deployment {live.deployment} is stale: "
                    f"{live_now or 'nothing'} is deployed now"
                ),
                cursor=json.dumps(cursor),
            )
        now = datetime.now(timezone.utc)
        triggers = project.policy.triggers
        rollback = rollback_decision(
            triggers.rollback, live, last_trigger=_time(cursor.get("last_rollback")), now=now
        )
        if rollback.act:
            cursor["last_rollback"] = now.isoformat()
            tags = _evidence_tags(project, "live_degradation", rollback.evidence)
            return dg.SensorResult(
                run_requests=[
                    rollback_run_request(
                        project,
                        reason=rollback.reason,
                        trigger="performance_trigger",
                        to_version=live.previous_deployment or "",
                        run_key=f"rollback:{newest.storage_id}",
                        tags=tags,
                    )
                ],
                cursor=json.dumps(cursor),
            )
        retrain = performance_decision(
            triggers.performance, live, last_trigger=_time(cursor.get("last_retrain")), now=now
        )
        if not retrain.act:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{rollback.reason}; {retrain.reason}"),
                cursor=json.dumps(cursor),
            )
        cursor["last_retrain"] = now.isoformat()
        notifier.notify(
            project.policy.notifications,
            project=project.name,
            event="retrain",
            summary=f"retraining: {retrain.reason}",
            evidence=retrain.evidence,
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"performance:{newest.storage_id}",
                    job_name=training_loop_job_name(project),
                    tags={
                        ACTOR_TAG: "performance_trigger",
                        **_evidence_tags(project, "live_below_floor", retrain.evidence),
                    },
                )
            ],
            cursor=json.dumps(cursor),
        )

    return performance_trigger


def build(project: ProjectConfig, jobs: dict) -> list[dg.SensorDefinition]:
    """Sensors of `project`; `jobs` are the project's job definitions by name."""
    return [
        build_batch_sensor(project),
        build_labels_sensor(project),
        build_drift_trigger(project),
        build_performance_trigger(
            project,
            [jobs[rollback_job_name(project)], jobs[training_loop_job_name(project)]],
        ),
    ]
