"""Sensors that watch a project's inbox: production batches, and their labels when they come.

Every file still waiting is considered on every tick (an old modification time does not hide
it); each file leads to exactly one run (its run key); labels that arrive before their batch is
scored wait, reported, and run as soon as the batch is scored. Labels that wait longer than
`monitoring.label_expiry_hours` are moved to labels/expired/ with a reason file, never deleted.

With `policy.review`, a batch whose review answers moved on and that has no label file is
asked for too (`review_labels`): answers are ground truth without anyone delivering a file.

The labels sensor is here; the batch sensor is `batch_sensor`'s, and what the labels sensor
asks the instance is `label_queries`'.
"""

import time
from datetime import datetime, timezone

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, PREDICTIONS, PRODUCTION_BATCH, sensor_names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.inbox import EXPIRED, Inbox, InboxFile, LabelFile, is_batch_name
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import key
from unified_ai.stages.monitoring.batch_sensor import build_batch_sensor
from unified_ai.stages.monitoring.label_queries import (
    NAMES_PER_QUERY,
    PAGE,
    Keys,
    never_scored,
    newly_scored,
    scored_among,
    why_waiting,
)
from unified_ai.stages.monitoring.review_labels import REVIEWS_CURSOR, review_runs
from unified_ai.stages.sensor_kit import (
    INTERVAL_SECONDS,
    LISTED,
    dump_cursor,
    listed,
    load_cursor,
)

__all__ = [
    "ARRIVAL_SLACK_SECONDS",
    "EXPIRE_SECONDS",
    "NAMES_PER_QUERY",
    "PAGE",
    "SHOWN_WAITING",
    "build_batch_sensor",
    "build_inbox_sensor_defs",
    "build_labels_sensor",
    "now_seconds",
]


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


def now_seconds() -> float:
    """The labels sensor's clock (seconds since the epoch): when waiting files expire."""
    return time.time()


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_labels_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    keys = Keys(
        partitions=names.batches_partitions(project.name),
        predictions=key(project, PREDICTIONS),
        batch=key(project, PRODUCTION_BATCH),
    )
    expiry_hours = project.monitoring.label_expiry_hours

    @dg.sensor(
        name=sensor_names(project.name)[names.LABELS],
        job_name=names.ingest_labels_job(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Picks up ground-truth files in {project.name}'s inbox/labels and updates "
        "live performance once their batch is scored (labels that arrive first wait, reported; "
        f"after monitoring.label_expiry_hours ({expiry_hours:g} h) they are moved to "
        "labels/expired/ with a reason file)"
        + (
            "; takes in batches whose review answers moved on, with or without a file."
            if project.policy.review is not None
            else "."
        ),
    )
    def labels_sensor(context: dg.SensorEvaluationContext, inbox: Inbox, lineage: LineageStorage):
        """One tick: one listing, one query for newly scored batches, a cursor.

        The cursor holds the files whose runs were requested, the newest `predictions` event
        seen and when the folder was last listed. A waiting file is asked about when it
        arrives (batched queries); after that only a new `predictions` event of its batch
        makes it runnable, so 10,000 waiting files cost a listing, not 10,000 queries. With
        `policy.review`, batches whose answers moved on are asked for too (`review_labels`).
        """
        instance = context.instance
        old = load_cursor(context)
        requested_keys: dict[str, str] = old.get("requested", {})
        fresh, scored_after, listed_before = _scored_since(instance, keys, old)
        listed_at = now_seconds()
        folder = inbox.labels_folder(project)
        cursor: dict = {"requested": {}, "scored_after": scored_after, "listed_at": listed_at}
        waiting, unusable, writing = _sort_label_files(folder, requested_keys, cursor)
        # Files that arrived since the last listing are new; the slack asks about a few more.
        new_since = float("-inf") if listed_before is None else listed_before
        # Without predictions a labels run could join nothing, and with its key used it would
        # never be retried: the labels wait until their batch is scored.
        unknown = [
            e.name
            for e in waiting
            if e.name not in fresh
            and (e.arrived >= new_since - ARRIVAL_SLACK_SECONDS or e.name in requested_keys)
        ]
        requests, still = _request_scored(
            waiting, fresh | scored_among(instance, keys, unknown), cursor
        )
        expired, due = _expire(context, project, inbox, keys, [*still, *unusable], listed_at)
        gone = set(expired)
        still = [e for e in still if e.name not in gone]
        unusable = [e for e in unusable if e.name not in gone]
        reason = _WaitReasons(instance, keys)
        _warn_arrivals(context, project, reason, still, unusable, new_since)
        notes = _notes(expiry_hours, reason, still, unusable, expired, len(due), writing)
        _add_review_runs(lineage, project, old, cursor, requests, notes)
        if requests:
            for note in notes:
                context.log.info(f"{project.name}: {note}")
            return dg.SensorResult(run_requests=requests, cursor=dump_cursor(cursor))
        return dg.SensorResult(
            skip_reason=dg.SkipReason("; ".join(notes) or "no new label files"),
            cursor=dump_cursor(cursor),
        )

    return labels_sensor


def _add_review_runs(
    lineage: LineageStorage,
    project: ProjectConfig,
    old: dict,
    cursor: dict,
    requests: list[dg.RunRequest],
    notes: list[str],
) -> None:
    """Add runs for batches whose review answers moved on (`review_labels`), and a note.

    A batch whose label file is being taken in is left to that run, which joins its answers.
    """
    if project.policy.review is None:
        return  # no answers to take in: the store is not even opened
    reviewed = review_runs(
        lineage.store(),
        project,
        seen=old.get(REVIEWS_CURSOR, {}),
        covered=cursor["requested"],
        cursor=cursor,
    )
    requests.extend(reviewed.requests)
    if reviewed.unanswered:
        notes.append(f"review answers without an answered item: {listed(reviewed.unanswered)}")


def _scored_since(
    instance: dg.DagsterInstance, keys: Keys, old: dict
) -> tuple[set[str], int, float | None]:
    """(batches scored since the cursor, the newest `predictions` event, the last listing).

    On a first tick (or a cursor of an earlier version) every waiting file is new: no listing
    time, and the newest event is where the next tick starts.
    """
    listed_before: float | None = old.get("listed_at")
    if "scored_after" in old and listed_before is not None:
        fresh, scored_after = newly_scored(instance, keys, int(old["scored_after"]))
        return fresh, scored_after, listed_before
    newest = instance.fetch_materializations(keys.predictions, limit=1).records
    return set(), newest[0].storage_id if newest else 0, None


def _sort_label_files(
    folder, requested_keys: dict[str, str], cursor: dict
) -> tuple[list[LabelFile], list[LabelFile], int]:
    """(files waiting for a run, files that can match no batch, files being written).

    A file whose run was requested already (same delivery) stays in the cursor until its run
    archives it.
    """
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
    return waiting, unusable, writing


def _request_scored(
    waiting: list[LabelFile], scored: set[str], cursor: dict
) -> tuple[list[dg.RunRequest], list[LabelFile]]:
    """(a run for each waiting file whose batch is scored, the files still waiting)."""
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
    return requests, still


def _expire(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    inbox: Inbox,
    keys: Keys,
    candidates: list[LabelFile],
    listed_at: float,
) -> tuple[list[str], list[LabelFile]]:
    """(names moved to labels/expired/, files due): files that waited past the policy time.

    Oldest first, for at most `EXPIRE_SECONDS`; the rest are due again on the next tick.
    """
    folder = inbox.labels_folder(project)
    expiry_hours = project.monitoring.label_expiry_hours
    deadline = listed_at - expiry_hours * 3600
    due = sorted((e for e in candidates if e.arrived < deadline), key=_arrival)
    why = never_scored(context.instance, keys, [e.name for e in due if is_batch_name(e.name)])
    expired = []
    started = time.monotonic()
    for entry in due:
        if time.monotonic() - started > EXPIRE_SECONDS:
            break
        note = (
            f"{project.name}: labels file {entry.name!r} waited from {_stamp(entry.arrived)} "
            f"to {_stamp(listed_at)} for its batch "
            f"({why.get(entry.name, 'not a batch name: it can match no batch')}), longer "
            f"than monitoring.label_expiry_hours ({expiry_hours:g} h); moved here by the "
            "labels sensor, never deleted: move it back into the labels folder to deliver it "
            "again"
        )
        if inbox.expire(folder, entry.name, note) is not None:
            expired.append(entry.name)
    if expired:
        context.log.warning(
            f"{project.name}: {len(expired)} labels files waited longer than "
            f"monitoring.label_expiry_hours ({expiry_hours:g} h) for their batch and were "
            f"moved to {folder / EXPIRED} (each with a reason file): {listed(expired)}"
        )
    return expired, due


class _WaitReasons:
    """Why a waiting file's batch has no predictions, asked once per batch and tick."""

    def __init__(self, instance: dg.DagsterInstance, keys: Keys):
        self._instance = instance
        self._keys = keys
        self._reasons: dict[str, str] = {}

    def __call__(self, batch: str) -> str:
        if batch not in self._reasons:
            self._reasons[batch] = why_waiting(self._instance, self._keys, batch)
        return self._reasons[batch]


def _warn_arrivals(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    reason: _WaitReasons,
    still: list[LabelFile],
    unusable: list[LabelFile],
    new_since: float,
) -> None:
    """Warn about each file once, when it arrives (at most `LISTED` by name a tick)."""
    expiry_hours = project.monitoring.label_expiry_hours
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


def _notes(
    expiry_hours: float,
    reason: _WaitReasons,
    still: list[LabelFile],
    unusable: list[LabelFile],
    expired: list[str],
    due: int,
    writing: int,
) -> list[str]:
    """What the tick left waiting, unusable, expired or being written: one phrase each."""
    notes = []
    if still:
        shown = "; ".join(
            f"{e.name} ({reason(e.name)}) since {_stamp(e.arrived)}" for e in still[:SHOWN_WAITING]
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
        if due > len(expired):
            notes.append(f"{due - len(expired)} more due to expire next tick")
    if writing:
        notes.append(f"{writing} being written (hidden names)")
    return notes


def _arrival(entry: LabelFile) -> tuple[float, str]:
    return (entry.arrived, entry.name)


def build_inbox_sensor_defs(project: ProjectConfig) -> list[dg.SensorDefinition]:
    return [build_batch_sensor(project), build_labels_sensor(project)]
