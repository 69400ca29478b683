"""Sensors that watch a project's inbox: production batches, and their labels when they come.

Every file still waiting is considered on every tick (an old modification time does not hide
it); each file leads to exactly one run (its run key); labels that arrive before their batch is
scored wait, reported, and are retried every tick.
"""

from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, PREDICTIONS, PRODUCTION_BATCH, sensor_names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.inbox import Inbox, InboxFile, is_batch_name
from unified_ai.stages.common import batches_partitions, key
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    LISTED,
    dump_cursor,
    latest_values,
    listed,
    load_cursor,
    value,
)


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
    def batch_sensor(context: dg.SensorEvaluationContext, inbox: Inbox):
        old = load_cursor(context)
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
                cursor=dump_cursor(cursor),
            )
        notes = []
        if unusable:
            notes.append(
                f"{len(unusable)} not usable as batch names, left in place: {listed(unusable)}"
            )
        if registered:
            notes.append(
                f"{len(registered)} already registered (waiting for its run to archive it, or "
                f"delivered again), not scored twice: {listed(registered)}"
            )
        if writing:
            notes.append(f"{writing} being written (hidden names)")
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"no new batch files in {folder}" + (f" ({'; '.join(notes)})" if notes else "")
            ),
            cursor=dump_cursor(cursor),
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

    def not_scored(instance: dg.DagsterInstance, batch: str) -> str | None:
        """Why the batch has no predictions to join labels to, or None if it has."""
        if latest_values(instance, predictions_key, batch) is not None:
            return None
        stored = latest_values(instance, batch_key, batch)
        if stored is not None and value(stored, "quarantined", False):
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
    def labels_sensor(context: dg.SensorEvaluationContext, inbox: Inbox):
        old = load_cursor(context)
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
            shown = "; ".join(waiting[:LISTED])
            more = f" and {len(waiting) - LISTED} more" if len(waiting) > LISTED else ""
            notes.append(
                f"labels waiting for their batch (files kept, retried every tick): {shown}{more}"
            )
        if unusable:
            notes.append(f"labels files that can match no batch, left in place: {listed(unusable)}")
        if writing:
            notes.append(f"{writing} being written (hidden names)")
        if requests:
            for note in notes:
                context.log.info(f"{project.name}: {note}")
            return dg.SensorResult(run_requests=requests, cursor=dump_cursor(cursor))
        return dg.SensorResult(
            skip_reason=dg.SkipReason("; ".join(notes) or "no new label files"),
            cursor=dump_cursor(cursor),
        )

    return labels_sensor


def build(project: ProjectConfig) -> list[dg.SensorDefinition]:
    return [build_batch_sensor(project), build_labels_sensor(project)]
