"""Sensors that watch a project's inbox: production batches, and their labels when they come.

Every file still waiting is considered on every tick (an old modification time does not hide
it); each file leads to exactly one run (its run key); labels that arrive before their batch is
scored wait, reported, and run as soon as the batch is scored. Labels that wait longer than
`monitoring.label_expiry_hours` are moved to labels/expired/ with a reason file, never deleted.
"""

import time
from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, PREDICTIONS, PRODUCTION_BATCH, sensor_names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.inbox import EXPIRED, Inbox, InboxFile, LabelFile, is_batch_name
from unified_ai.stages.common import batches_partitions, key
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    LISTED,
    dump_cursor,
    latest_values,
    listed,
    load_cursor,
    metadata_values,
    new_events,
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


def _labels_run_key(entry: InboxFile | LabelFile) -> str:
    """A run key stable for one delivery of a labels file.

    The same file is ingested once; new content under the same name (corrected labels) once
    more. Name, size and modification time identify it without reading it every tick.
    """
    return f"labels:{entry.name}:{entry.size}:{entry.mtime:.6f}"


#: Seconds a tick spends at most moving expired labels files; the rest go on the next ticks (a
#: move is a copy on object stores, and a tick must stay far inside Dagster's 60 s limit).
EXPIRE_SECONDS = 5.0
#: A file that arrived this long before the previous tick's listing is still asked about, as
#: if new: an object store or a network disk dates a file by its own clock, which may run
#: behind ours.
ARRIVAL_SLACK_SECONDS = 120
#: Waiting files shown with their reason in a skip message (each reason costs two queries).
SHOWN_WAITING = 5
#: Batch names per query when asking which batches have predictions.
NAMES_PER_QUERY = 500
#: `predictions` events read per query.
PAGE = 1000


def now_seconds() -> float:
    """The labels sensor's clock (seconds since the epoch): when waiting files expire."""
    return time.time()


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_labels_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    partitions_name = batches_partitions(project).name
    predictions_key = key(project, PREDICTIONS)
    batch_key = key(project, PRODUCTION_BATCH)
    name = sensor_names(project.name)[names.LABELS]
    expiry_hours = project.monitoring.label_expiry_hours

    def why_waiting(instance: dg.DagsterInstance, batch: str) -> str:
        """Why a batch without predictions has none (two queries: asked for shown files only)."""
        if not instance.has_dynamic_partition(partitions_name, batch):
            return "batch not registered"
        stored = latest_values(instance, batch_key, batch)
        if stored is not None and value(stored, "quarantined", False):
            return "batch quarantined, never scored"
        return "batch not scored yet"

    def newly_scored(instance: dg.DagsterInstance, after: int) -> tuple[set[str], int]:
        """Batches scored since event `after`, and the newest event seen (one query a page)."""
        scored: set[str] = set()
        while True:
            records = new_events(instance, predictions_key, after, limit=PAGE)
            scored.update(r.partition_key for r in records if r.partition_key)
            if records:
                after = records[-1].storage_id
            if len(records) < PAGE:
                return scored, after

    def never_scored(instance: dg.DagsterInstance, batches: list[str]) -> dict[str, str]:
        """Why each of `batches` (none has predictions) has none, for expiry reason files.

        One query per `NAMES_PER_QUERY` names (was the batch stored, quarantined?) and one
        for the registered batches: asked only on a tick that expires files.
        """
        if not batches:
            return {}
        registered = set(instance.get_dynamic_partitions(partitions_name))
        quarantined: dict[str, bool] = {}
        for start in range(0, len(batches), NAMES_PER_QUERY):
            chunk = batches[start : start + NAMES_PER_QUERY]
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=batch_key, asset_partitions=chunk),
                limit=4 * len(chunk),
            ).records
            for record in records:  # newest first: the first of a batch is its latest
                if record.partition_key and record.partition_key not in quarantined:
                    stored = metadata_values(record.asset_materialization)
                    quarantined[record.partition_key] = bool(value(stored, "quarantined", False))
        return {
            b: "its batch never arrived"
            if b not in registered
            else "its batch arrived but was never stored"
            if b not in quarantined
            else "its batch was quarantined, never scored"
            if quarantined[b]
            else "its batch was stored but not scored"
            for b in batches
        }

    def scored_among(instance: dg.DagsterInstance, batches: list[str]) -> set[str]:
        """Which of `batches` have predictions: one query per `NAMES_PER_QUERY` names."""
        scored: set[str] = set()
        for start in range(0, len(batches), NAMES_PER_QUERY):
            chunk = batches[start : start + NAMES_PER_QUERY]
            limit = 4 * len(chunk)
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=predictions_key, asset_partitions=chunk),
                limit=limit,
            ).records
            scored.update(r.partition_key for r in records if r.partition_key)
            if len(records) == limit:  # batches scored many times each: ask the rest one by one
                scored.update(
                    b
                    for b in chunk
                    if b not in scored and latest_values(instance, predictions_key, b) is not None
                )
        return scored

    @dg.sensor(
        name=name,
        job_name=names.ingest_labels_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Picks up ground-truth files in {project.name}'s inbox/labels and updates "
        "live performance once their batch is scored (labels that arrive first wait, reported; "
        f"after monitoring.label_expiry_hours ({expiry_hours:g} h) they are moved to "
        "labels/expired/ with a reason file).",
    )
    def labels_sensor(context: dg.SensorEvaluationContext, inbox: Inbox):
        """One tick: one listing, one query for newly scored batches, a cursor.

        The cursor holds the files whose runs were requested, the newest `predictions` event
        seen and when the folder was last listed. A waiting file is asked about when it
        arrives (batched queries); after that only a new `predictions` event of its batch
        makes it runnable, so 10,000 waiting files cost a listing, not 10,000 queries.
        """
        instance = context.instance
        old = load_cursor(context)
        requested_keys: dict[str, str] = old.get("requested", {})
        listed_before: float | None = old.get("listed_at")
        if "scored_after" in old and listed_before is not None:
            fresh, scored_after = newly_scored(instance, int(old["scored_after"]))
        else:  # first tick (or a cursor of an earlier version): every waiting file is new
            newest = instance.fetch_materializations(predictions_key, limit=1).records
            fresh, scored_after, listed_before = set(), newest[0].storage_id if newest else 0, None
        listed_at = now_seconds()
        folder = inbox.labels_folder(project)
        cursor: dict = {"requested": {}, "scored_after": scored_after, "listed_at": listed_at}
        waiting: list[LabelFile] = []
        unusable: list[LabelFile] = []
        writing = 0
        for entry in Inbox.label_files(folder):
            if entry.name.startswith("."):
                writing += 1  # written under a hidden name, renamed into place when complete
            elif not is_batch_name(entry.name):
                unusable.append(entry)
            elif (done := requested_keys.get(entry.name)) and done == _labels_run_key(entry):
                # Requested already; the file stays until its run archives it.
                cursor["requested"][entry.name] = done
            else:
                waiting.append(entry)

        # Files that arrived since the last listing are new; the slack asks about a few more.
        new_since = float("-inf") if listed_before is None else listed_before
        ask_since = new_since - ARRIVAL_SLACK_SECONDS
        # Without predictions a labels run could join nothing, and with its key used it would
        # never be retried: the labels wait until their batch is scored.
        unknown = [
            e.name
            for e in waiting
            if e.name not in fresh and (e.arrived >= ask_since or e.name in requested_keys)
        ]
        scored = fresh | scored_among(instance, unknown)
        requests, still = [], []
        for entry in waiting:
            if entry.name in scored:
                run_key = _labels_run_key(entry)
                requests.append(
                    dg.RunRequest(
                        run_key=run_key, partition_key=entry.name, tags={ACTOR_TAG: "labels_sensor"}
                    )
                )
                cursor["requested"][entry.name] = run_key
            else:
                still.append(entry)

        # Files that waited past the policy time are moved aside, oldest first.
        deadline = listed_at - expiry_hours * 3600
        due = sorted((e for e in [*still, *unusable] if e.arrived < deadline), key=_arrival)
        why = never_scored(instance, [e.name for e in due if is_batch_name(e.name)])
        expired = []
        started = time.monotonic()
        for entry in due:
            if time.monotonic() - started > EXPIRE_SECONDS:
                break
            reason = (
                f"{project.name}: labels file {entry.name!r} waited from {_stamp(entry.arrived)} "
                f"to {_stamp(listed_at)} for its batch "
                f"({why.get(entry.name, 'not a batch name: it can match no batch')}), longer "
                f"than monitoring.label_expiry_hours ({expiry_hours:g} h); moved here by the "
                "labels sensor, never deleted: move it back into the labels folder to deliver it "
                "again"
            )
            if inbox.expire(folder, entry.name, reason) is not None:
                expired.append(entry.name)
        if expired:
            context.log.warning(
                f"{project.name}: {len(expired)} labels files waited longer than "
                f"monitoring.label_expiry_hours ({expiry_hours:g} h) for their batch and were "
                f"moved to {folder / EXPIRED} (each with a reason file): {listed(expired)}"
            )
        gone = set(expired)
        still = [e for e in still if e.name not in gone]
        unusable = [e for e in unusable if e.name not in gone]

        # Each file is warned about once, when it arrives (at most `LISTED` by name a tick).
        reasons: dict[str, str] = {}

        def reason(batch: str) -> str:
            if batch not in reasons:
                reasons[batch] = why_waiting(instance, batch)
            return reasons[batch]

        arrived = [e for e in still if e.arrived >= new_since]
        for entry in arrived[:SHOWN_WAITING]:
            context.log.warning(
                f"{project.name}: labels file {entry.name!r} waits for its batch "
                f"({reason(entry.name)}); kept and retried every tick, moved to expired/ after "
                f"{expiry_hours:g} h"
            )
        if len(arrived) > SHOWN_WAITING:
            context.log.warning(
                f"{project.name}: {len(arrived) - SHOWN_WAITING} more labels files arrived and "
                "wait for their batch"
            )
        for entry in [e for e in unusable if e.arrived >= new_since][:LISTED]:
            context.log.warning(
                f"{project.name}: labels file {entry.name!r} can match no batch (not a batch "
                f"name); left in place, moved to expired/ after {expiry_hours:g} h"
            )

        notes = []
        if still:
            shown = "; ".join(
                f"{e.name} ({reason(e.name)}) since {_stamp(e.arrived)}"
                for e in still[:SHOWN_WAITING]
            )
            hidden = len(still) - SHOWN_WAITING
            more = f" and {hidden} more" if hidden > 0 else ""
            notes.append(
                f"labels waiting for their batch (files kept, retried every tick): {shown}{more}"
            )
        if unusable:
            notes.append(
                "labels files that can match no batch, left in place: "
                f"{listed([e.name for e in unusable])}"
            )
        if expired:
            notes.append(
                f"{len(expired)} expired (waited over {expiry_hours:g} h), moved to "
                f"{EXPIRED}/ with a reason file"
            )
            if len(due) > len(expired):
                notes.append(f"{len(due) - len(expired)} more due to expire next tick")
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


def _arrival(entry: LabelFile) -> tuple[float, str]:
    return (entry.arrived, entry.name)


def build(project: ProjectConfig) -> list[dg.SensorDefinition]:
    return [build_batch_sensor(project), build_labels_sensor(project)]
