"""What the runs recorded about retraining: the data cut, how its retrain ended, labels since.

Read from the instance's recorded metadata only, so a trigger sensor's tick stays cheap and
its decision can be explained from what the UI shows.
"""

from datetime import datetime, timezone

import dagster as dg

from unified_ai.names import (
    CANDIDATE_VERSION_METADATA,
    DEPLOYED_MODEL,
    DEPLOYMENT_APPROVAL,
    EVALUATION_REPORT,
    GROUND_TRUTH,
    IDENTICAL_METADATA,
    TRAINING_DATA,
    VERSION_METADATA,
)
from unified_ai.payloads import Approval
from unified_ai.policies.triggers import LastRetrain, NewLabels
from unified_ai.projects.schema import ProjectConfig
from unified_ai.stages.common import key
from unified_ai.stages.sensor_kit import metadata_values, new_events, value

#: Runs that have not finished: a training loop in one of these states will read the newest
#: data when its steps run.
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def newest_record(instance: dg.DagsterInstance, asset_key: dg.AssetKey):
    """The newest materialization record of `asset_key`, or None."""
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0] if records else None


def last_retrain(
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
    cut = newest_record(instance, key(project, TRAINING_DATA))
    if cut is None:
        return None
    deployed = newest_record(instance, key(project, DEPLOYED_MODEL))
    if deployed is not None and deployed.storage_id > cut.storage_id:
        version = value(metadata_values(deployed.asset_materialization), VERSION_METADATA)
        return LastRetrain(cut.run_id, "deployed", f"deployed {version} after its data was cut")

    def ended(detail: str) -> LastRetrain:
        return LastRetrain(cut.run_id, "no_deployment", detail, fresh, fresh_detail)

    run = instance.get_run_by_id(cut.run_id)
    if run is None:
        return ended("its run is no longer recorded")
    if run.status in IN_FLIGHT:
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
    report = newest_record(instance, key(project, EVALUATION_REPORT))
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


def new_labels(instance: dg.DagsterInstance, project: ProjectConfig) -> tuple[NewLabels, int]:
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
