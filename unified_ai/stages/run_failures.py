"""A failed run of a project notifies its channels, whatever made it fail.

Failed gates are announced, with the gate's reason, by the gate outcome sensor once their run
has ended (`unified_ai.stages.evaluation.sensors`); this sensor covers the rest: a step that
raised, a crashed process, a run that could not start. A run whose only failures are failed
blocking checks is announced by that sensor and is not announced twice.
"""

import dagster as dg

from unified_ai import names
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.notifications import Notifier

#: The error Dagster raises in a step whose blocking check failed.
GATE_FAILURE = "DagsterAssetCheckFailedError"
#: Characters of an error message carried in a notification.
MAX_ERROR = 300


def failure_reason(step_failures: list[dg.DagsterEvent]) -> tuple[str | None, str] | None:
    """(step, one-line reason) of the first failure that is not a failed gate; None if all are.

    A run with no step failure at all (killed, or never started) is reported without a step.
    """
    if not step_failures:
        return None, "the run failed before or outside its steps"
    for event in step_failures:
        data = event.step_failure_data
        error = data.error
        if error is not None and error.cls_name == GATE_FAILURE:
            continue
        described = data.user_failure_data.description if data.user_failure_data else None
        message = described or (error.message if error is not None else "unknown error")
        line = next((part.strip() for part in message.splitlines() if part.strip()), message)
        return event.step_key, line[:MAX_ERROR]
    return None


def build_run_failure_sensor_defs(project: ProjectConfig, jobs: list) -> list[dg.SensorDefinition]:
    """The run-failure sensor of `project`, monitoring `jobs` (the project's jobs)."""

    @dg.run_failure_sensor(
        name=names.run_failure_sensor(project.name),
        monitored_jobs=jobs,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Tells {project.name}'s notification channels when one of its runs fails.",
    )
    def notify_run_failure(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        found = failure_reason(list(context.get_step_failure_events()))
        if found is None:
            return  # only gates failed: the gate outcome sensor tells their reasons
        step, reason = found
        run = context.dagster_run
        evidence = {"job": run.job_name}
        if step is not None:
            evidence["step"] = step
        notifier.notify(
            project.policy.notifications,
            project=project.name,
            event="run_failed",
            summary=f"run {run.run_id[:8]} of {run.job_name} failed: {reason}",
            evidence=evidence,
            run_id=run.run_id,
        )

    return [notify_run_failure]
