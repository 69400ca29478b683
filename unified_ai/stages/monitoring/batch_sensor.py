"""The batch sensor: each file waiting in a project's inbox becomes a batch partition, scored once.

Every file still waiting is considered on every tick (an old modification time does not hide
it); each file leads to exactly one run (its run key: the file name).
"""

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, sensor_names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.inbox import Inbox, InboxFile, is_batch_name
from unified_ai.stages.common import batches_partitions
from unified_ai.stages.sensor_kit import INTERVAL_SECONDS, dump_cursor, listed, load_cursor


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
    partitions_name = names.batches_partitions(project.name)
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
            if context.instance.has_dynamic_partition(partitions_name, entry.name):
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
