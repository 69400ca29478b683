"""A run that fails for any reason but a failed gate tells the project's channels.

A failed gate is told by the gate outcome sensor, with the gate's reason, and only by it.
"""

import logging

import dagster as dg

from unified_ai import names
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.notifications import Notifier
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import project_defs, run_loop
from unified_ai_tests.flows.monitoring_helpers import Receiver
from unified_ai_tests.stages.gate_outcome_driver import GateOutcomes

SECRET = "hooks-T0KEN-5ecret"


def _notify(defs, instance, result, notifier: Notifier) -> None:
    """Evaluate the project's run-failure sensor on `result`'s run, as the daemon would."""
    sensor = defs.resolve_sensor_def(names.run_failure_sensor("small"))
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notifier": notifier},
    ).for_run_failure()
    sensor(context)


def test_a_crashed_run_notifies_the_projects_webhook_without_logging_its_url(
    home, projects_dir, instance, caplog
):
    receiver = Receiver()
    url = f"{receiver.url}/{SECRET}"
    try:
        write_project(
            projects_dir, policy_extra=f"  notifications:\n    - {{type: webhook, url: '{url}'}}\n"
        )
        defs = project_defs(projects_dir)
        # The data file disappears after the code location loaded: the first step raises.
        (projects_dir / "small.csv").unlink()
        result = run_loop(defs, instance, "small")
        assert not result.success
        caplog.set_level(logging.DEBUG)
        _notify(defs, instance, result, Notifier(outbox=str(home / "outbox"), attempts=1))
        [message] = receiver.messages
        assert message["event"] == "run_failed"
        assert message["project"] == "small"
        assert message["evidence"] == {
            "job": names.training_loop_job("small"),
            "step": names.op_name("small", names.TRAINING_DATA),
        }
        assert "small.csv" in message["summary"]
        assert message["link"].endswith(result.run_id)
        assert SECRET not in caplog.text
    finally:
        receiver.close()


def test_a_run_stopped_by_a_failed_gate_is_announced_once_by_the_gate(home, projects_dir, instance):
    receiver = Receiver()
    try:
        project = load_project_file(
            write_project(
                projects_dir,
                floor=0.99,
                policy_extra=f"  notifications:\n    - {{type: webhook, url: '{receiver.url}'}}\n",
            )
        )
        defs = project_defs(projects_dir)
        gates = GateOutcomes(defs, instance, project)
        result = run_loop(defs, instance, "small")
        assert not result.success
        _notify(defs, instance, result, Notifier(outbox=str(home / "outbox"), attempts=1))
        assert receiver.messages == []  # not a run failure of its own
        gates.tick()
        assert [m["event"] for m in receiver.messages] == ["gate_failed"]
    finally:
        receiver.close()
