"""Requesting a retrain: announced on the project's channels, one training loop at a time."""

import dagster as dg

from unified_ai import names
from unified_ai.names import ACTOR_TAG, training_loop_job
from unified_ai.policies.triggers import Decision
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.monitoring.retrain_history import IN_FLIGHT
from unified_ai.stages.sensor_kit import dump_cursor


def evidence_tags(project: ProjectConfig, kind: str, evidence: dict[str, str]) -> dict[str, str]:
    """Run tags recording why a trigger acted, under the project's policy version."""
    return names.evidence_tags(kind, project.policy_version, evidence)


def _retrain_in_flight(instance: dg.DagsterInstance, project: ProjectConfig) -> str | None:
    """Why a retrain already on its way makes another one pointless, or None."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=training_loop_job(project.name), statuses=IN_FLIGHT),
        limit=1,
    )
    if not records:
        return None
    run = records[0].dagster_run
    return (
        f"a retrain is already on its way (run {run.run_id[:8]}, {run.status.value.lower()}, "
        f"by {names.actor_of(run.tags)}); it trains on the newest data, this evidence included"
    )


def request_retrain(
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
                tags={ACTOR_TAG: actor, **evidence_tags(project, kind, decision.evidence)},
            )
        ],
        cursor=dump_cursor(cursor),
    )
