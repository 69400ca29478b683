"""Tell people and MLflow what a run's gates decided, once the run is over.

Gate checks only judge. This sensor reads the verdicts of every finished run that evaluated the
project's gates — succeeded, failed (a failed gate fails its run) or canceled — and records
them in one place (`gate_outcome`): a `gate_failed` notification per failed gate, and the
`gate.*` tags on the judged candidate's registered MLflow version.

Each run's outcome is told once. The cursor holds, per finishing status, the last run-status
event handled. A run whose MLflow tags could not be written stays in the cursor and its tags
are written again on later ticks (the same tags twice change nothing); its notifications are
not sent again, and a registry that is down holds back no other run's notifications.
"""

import dagster as dg

from unified_ai import names
from unified_ai.names import EVALUATION_REPORT
from unified_ai.policies.gates import GATES
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import key
from unified_ai.stages.evaluation.gate_outcome import (
    GateOutcome,
    gate_outcomes,
    notify_gate_failures,
    tag_gate_outcomes,
)
from unified_ai.stages.sensor_kit import INTERVAL_SECONDS, dump_cursor, load_cursor

#: The statuses a run ends with; a run reaches exactly one of them.
FINISHED = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
#: Finished runs read per status and tick; the rest wait for the next tick.
BATCH = 100
#: Runs whose MLflow tags are kept for another try (the oldest are dropped first).
MAX_UNTAGGED = 50


#: The sensor's name (defined once, in `unified_ai.names`).
gate_outcome_sensor_name = names.gate_outcome_sensor


def _latest_event(instance: dg.DagsterInstance, status: dg.DagsterEventType) -> int:
    records = instance.fetch_run_status_changes(status, limit=1).records
    return records[0].storage_id if records else -1


def _tagged(
    context: dg.SensorEvaluationContext,
    project: ProjectConfig,
    outcomes: list[GateOutcome],
    mlflow: MlflowRegistry,
) -> bool:
    """Whether the outcomes' MLflow tags were written; a failure is logged, not raised."""
    try:
        tag_gate_outcomes(project, outcomes, mlflow)
    except Exception as exc:  # a registry that is down must not hold back other runs
        context.log.warning(
            "gate tags of run %s not written, retried next tick: %s", outcomes[0].run_id, exc
        )
        return False
    return True


def build_gate_outcome_sensor(project: ProjectConfig) -> dg.SensorDefinition:
    check_keys = [dg.AssetCheckKey(key(project, EVALUATION_REPORT), gate) for gate in GATES]

    @dg.sensor(
        name=gate_outcome_sensor_name(project.name),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Once a run that judged {project.name}'s candidate is over, tells the "
        "project's channels which gates failed and tags the candidate's MLflow version with "
        "every gate's verdict (each run once).",
    )
    def gate_outcome_sensor(
        context: dg.SensorEvaluationContext, notifier: Notifier, mlflow: MlflowRegistry
    ) -> dg.SensorResult:
        instance = context.instance
        cursor = load_cursor(context)
        if "after" not in cursor:
            # Runs that ended before the sensor first ran are history: not announced again.
            start = {status.value: _latest_event(instance, status) for status in FINISHED}
            return dg.SensorResult(
                skip_reason=dg.SkipReason("started: runs that end from now on are told"),
                cursor=dump_cursor({"after": start, "untagged": []}),
            )
        after: dict[str, int] = cursor["after"]
        untagged = [
            run_id
            for run_id in cursor.get("untagged", [])
            if not _tagged(context, project, gate_outcomes(instance, run_id, check_keys), mlflow)
        ]
        told = []
        for status in FINISHED:
            records = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(
                    event_type=status,  # type: ignore[arg-type]  # one of the Literal's members
                    after_storage_id=after.get(status.value, -1),
                ),
                limit=BATCH,
                ascending=True,
            ).records
            for record in records:
                after[status.value] = record.storage_id
                outcomes = gate_outcomes(instance, record.run_id, check_keys)
                if not outcomes:
                    continue  # the run judged no candidate of this project
                notify_gate_failures(project, outcomes, notifier)
                if not _tagged(context, project, outcomes, mlflow):
                    untagged.append(record.run_id)
                told.append(record.run_id[:8])
        skip = (
            f"told the gate outcomes of run(s) {', '.join(told)}"
            if told
            else "no finished run judged a candidate"
        )
        if untagged:
            skip += f"; MLflow tags of {len(untagged)} run(s) wait for another try"
        return dg.SensorResult(
            skip_reason=dg.SkipReason(skip),
            cursor=dump_cursor({"after": after, "untagged": untagged[-MAX_UNTAGGED:]}),
        )

    return gate_outcome_sensor


def build_evaluation_sensor_defs(project: ProjectConfig) -> list[dg.SensorDefinition]:
    """The evaluation stage's sensors: the gate outcome sensor."""
    return [build_gate_outcome_sensor(project)]
