"""Sensors of the event-driven loop.

They read file listings and recorded metadata only; every statistic is computed in runs. Each
explains its skips, and each trigger records its evidence in run tags and honours the policy's
cooldown.
"""

import json
from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import (
    ACTOR_TAG,
    DEPLOYED_MODEL,
    DRIFT_REPORT,
    LIVE_PERFORMANCE,
    PREDICTIONS,
    PRODUCTION_BATCH,
    VERSION_METADATA,
    sensor_names,
    training_loop_job,
)
from unified_ai.policies.triggers import (
    LiveEvidence,
    drift_decision,
    performance_decision,
    rollback_decision,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.automations import Automations
from unified_ai.resources.inbox import Inbox, InboxFile, is_batch_name
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import batches_partitions, key
from unified_ai.stages.rollback.jobs import rollback_run_request

INTERVAL_SECONDS = 15
_EVENTS_PER_TICK = 1000


def _paused(automations: Automations, name: str) -> dg.SkipReason | None:
    record = automations.paused(name)
    if record is None:
        return None
    return dg.SkipReason(
        f"paused at {record['at']}: {record['reason']} (resume with `unified-ai resume`)"
    )


_LISTED = 20  # names shown in one skip reason; the rest are counted


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _waiting_files(folder) -> tuple[list[InboxFile], list[str], int]:
    """(files that may be batches, unusable names, files still being written) in `folder`.

    Every file still waiting is considered, whatever its modification time: `mv`, `cp -p` and
    rsync keep the source's, so a newest-mtime cursor would skip them. Handled files leave the
    folder (runs move them to processed/ or quarantine/), so this is O(files waiting).
    """
    usable, unusable, writing = [], [], 0
    for entry in Inbox.files(folder):
        if entry.name.startswith("."):
            writing += 1  # written under a hidden name, renamed into place when complete
        elif is_batch_name(entry.name):
            usable.append(entry)
        else:
            unusable.append(entry.name)
    return usable, unusable, writing


def _report_once(context, cursor: dict, names: list[str], message: str) -> None:
    """Log a warning for each of `names` not warned about yet.

    The skip reason lists them all every tick; names that left the folder are forgotten, so the
    cursor stays as small as the folder.
    """
    reported = set(cursor.get("reported", [])) & set(names)
    for name in names:
        if name not in reported:
            context.log.warning(message.format(name=name))
            reported.add(name)
    cursor["reported"] = sorted(reported)


def build_batch_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    partitions = batches_partitions(project)
    name = sensor_names(project.name)[names.BATCHES]

    @dg.sensor(
        name=name,
        job_name=names.score_batch_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Registers each file waiting in {project.name}'s inbox as a batch partition "
        "and scores it (once: the run key is the file name).",
    )
    def batch_sensor(context: dg.SensorEvaluationContext, inbox: Inbox, automations: Automations):
        skip = _paused(automations, name)
        if skip:
            return skip
        old = json.loads(context.cursor) if context.cursor else {}
        cursor = {"reported": old.get("reported", [])}
        folder = inbox.folder(project)
        files, unusable, writing = _waiting_files(folder)
        usable, registered = [], []
        for entry in files:
            # A registered partition means the batch was seen: its run has not archived the
            # file yet, or the same name was delivered again (a batch is processed once).
            if context.instance.has_dynamic_partition(partitions.name, entry.name):
                registered.append(entry.name)
            else:
                usable.append(entry.name)
        _report_once(
            context,
            cursor,
            unusable,
            f"{project.name}: inbox file {{name!r}} is not a usable batch name (letters, digits, "
            ". _ -, ending .csv or .parquet); left in place",
        )
        if usable:
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        run_key=batch, partition_key=batch, tags={ACTOR_TAG: "batch_sensor"}
                    )
                    for batch in usable
                ],
                dynamic_partitions_requests=[partitions.build_add_request(usable)],
                cursor=json.dumps(cursor),
            )
        notes = []
        if unusable:
            notes.append(
                f"{len(unusable)} not usable as batch names, left in place: {_names(unusable)}"
            )
        if registered:
            notes.append(
                f"{len(registered)} already registered (waiting for its run to archive it, or "
                f"delivered again), not scored twice: {_names(registered)}"
            )
        if writing:
            notes.append(f"{writing} being written (hidden names)")
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"no new batch files in {folder}" + (f" ({'; '.join(notes)})" if notes else "")
            ),
            cursor=json.dumps(cursor),
        )

    return batch_sensor


def _labels_run_key(entry: InboxFile) -> str:
    """A run key stable for one delivery of a labels file.

    The same file is ingested once; new content under the same name (corrected labels) once
    more. Name, size and modification time identify it without reading it every tick.
    """
    return f"labels:{entry.name}:{entry.size}:{entry.mtime:.6f}"


def build_labels_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    partitions_name = batches_partitions(project).name
    predictions_key = key(project, PREDICTIONS)
    batch_key = key(project, PRODUCTION_BATCH)
    name = sensor_names(project.name)[names.LABELS]

    def materialized(instance: dg.DagsterInstance, asset_key: dg.AssetKey, batch: str):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[batch]), limit=1
        ).records
        return records[0].asset_materialization if records else None

    def not_scored(instance: dg.DagsterInstance, batch: str) -> str | None:
        """Why the batch has no predictions to join labels to, or None if it has."""
        if materialized(instance, predictions_key, batch) is not None:
            return None
        stored = materialized(instance, batch_key, batch)
        if stored is not None and _value(stored.metadata, "quarantined", False):
            return "batch quarantined, never scored"
        return "batch not scored yet"

    @dg.sensor(
        name=name,
        job_name=names.ingest_labels_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Picks up ground-truth files in {project.name}'s inbox/labels and updates "
        "live performance once their batch is scored (labels that arrive first wait, reported).",
    )
    def labels_sensor(context: dg.SensorEvaluationContext, inbox: Inbox, automations: Automations):
        skip = _paused(automations, name)
        if skip:
            return skip
        old = json.loads(context.cursor) if context.cursor else {}
        requested_keys: dict[str, str] = old.get("requested", {})
        since: dict[str, str] = old.get("waiting", {})
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        files, unusable, writing = _waiting_files(inbox.labels_folder(project))
        requests, waiting = [], []
        cursor: dict = {"requested": {}, "waiting": {}}
        for entry in files:
            run_key = _labels_run_key(entry)
            if requested_keys.get(entry.name) == run_key:
                # Requested already; the file stays until its run archives it.
                cursor["requested"][entry.name] = run_key
                continue
            # Without predictions a labels run could join nothing, and with its key used it
            # would never be retried: the labels wait until their batch is scored.
            why = (
                not_scored(context.instance, entry.name)
                if context.instance.has_dynamic_partition(partitions_name, entry.name)
                else "batch not registered"
            )
            if why is None:
                requests.append(
                    dg.RunRequest(
                        run_key=run_key, partition_key=entry.name, tags={ACTOR_TAG: "labels_sensor"}
                    )
                )
                cursor["requested"][entry.name] = run_key
                continue
            first = since.get(entry.name)
            if first is None:
                context.log.warning(
                    f"{project.name}: labels file {entry.name!r} waits for its batch ({why}); "
                    "kept and retried every tick"
                )
            cursor["waiting"][entry.name] = first or now
            waiting.append(f"{entry.name} ({why}) since {first or now}")
        for bad in unusable:
            if bad not in since:
                context.log.warning(
                    f"{project.name}: labels file {bad!r} can match no batch (not a batch name); "
                    "left in place"
                )
            cursor["waiting"][bad] = since.get(bad, now)
        notes = []
        if waiting:
            shown = "; ".join(waiting[:_LISTED])
            more = f" and {len(waiting) - _LISTED} more" if len(waiting) > _LISTED else ""
            notes.append(
                f"labels waiting for their batch (files kept, retried every tick): {shown}{more}"
            )
        if unusable:
            notes.append(f"labels files that can match no batch, left in place: {_names(unusable)}")
        if writing:
            notes.append(f"{writing} being written (hidden names)")
        if requests:
            for note in notes:
                context.log.info(f"{project.name}: {note}")
            return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
        return dg.SensorResult(
            skip_reason=dg.SkipReason("; ".join(notes) or "no new label files"),
            cursor=json.dumps(cursor),
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
    return names.evidence_tags(kind, project.policy_version, evidence)


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
    name = sensor_names(project.name)[names.PERFORMANCE]

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
            _value(deployed.asset_materialization.metadata, VERSION_METADATA)
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
                    job_name=training_loop_job(project.name),
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
            [jobs[names.rollback_job(project.name)], jobs[training_loop_job(project.name)]],
        ),
    ]
