"""Gates only judge; the gate outcome sensor tells people and MLflow, once per finished run."""

import dagster as dg
import mlflow
import pandas as pd

from unified_ai.policies.gates import GATES
from unified_ai.projects.loader import load_project_file
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import DATA_FRAME
from unified_ai.stages.evaluation.checks import build_evaluation_check_defs
from unified_ai.stages.evaluation.sensors import gate_outcome_sensor_name
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop
from unified_ai_tests.flows.monitoring_helpers import Receiver
from unified_ai_tests.stages.gate_outcome_driver import GateOutcomes


def _gate_tags(home, version: str) -> dict[str, str]:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    tags = client.get_model_version("unified_ai.small", version).tags
    return {
        k: v for k, v in tags.items() if k.startswith("gate.") or k == "evaluation_report_version"
    }


class DownRegistry:
    """An MLflow registry that cannot be reached."""

    def tag_version(self, *args, **kwargs):
        raise ConnectionError("registry down")


def test_gate_checks_need_nothing_that_could_notify_or_write_to_mlflow(projects_dir):
    project = load_project_file(write_project(projects_dir))
    checks = build_evaluation_check_defs(project)
    assert {key.name for check in checks for key in check.check_keys} == set(GATES)
    for check in checks:
        # The report's loader and the store to read its version; no notifier, no registry.
        assert check.required_resource_keys == {"io_manager", "lineage"}, check.check_keys


def test_a_failed_gate_is_told_once_after_its_run_and_never_by_the_check(
    home, projects_dir, instance
):
    receiver = Receiver()
    try:
        project = load_project_file(
            write_project(
                projects_dir,
                floor=0.99,  # the quality gate fails
                policy_extra=f"  notifications:\n    - {{type: webhook, url: '{receiver.url}'}}\n",
            )
        )
        defs = project_defs(projects_dir)
        sensor = GateOutcomes(defs, instance, project)
        result = run_loop(defs, instance, "small")
        assert not result.success

        # The checks judged, and recorded what the sensor needs; they told no one.
        verdicts = {
            e.check_name: e
            for e in result.get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey(["small", "evaluation_report"])
        }
        assert set(verdicts) == set(GATES)
        quality = verdicts["quality_floor"]
        assert not quality.passed
        report_version, report = current(home, "small", "evaluation_report")
        model = current(home, "small", "candidate_model")[1]
        registered = model.card["mlflow"]["version"]
        recorded = {name: entry.value for name, entry in quality.metadata.items()}
        assert recorded["evaluation_report_version"] == report_version
        assert recorded["candidate_version"] == report.body["candidate"]["model_version"]
        assert recorded["candidate_mlflow_version"] == registered
        assert recorded["reason"] and recorded["reason"] in quality.description
        assert receiver.messages == []
        assert _gate_tags(home, registered) == {}

        # The sensor tells the outcome once the run is over.
        assert result.run_id[:8] in sensor.tick()
        [message] = receiver.messages
        assert message["event"] == "gate_failed"
        assert message["project"] == "small"
        candidate = report.body["candidate"]["model_version"]
        assert message["summary"] == (
            f"quality_floor failed for candidate {candidate}: {recorded['reason']}"
        )
        assert message["evidence"] == {
            "gate": "quality_floor",
            "policy_version": project.policy_version,
        }
        assert message["link"].endswith(result.run_id)
        tags = _gate_tags(home, registered)
        assert tags["gate.quality_floor"] == "failed"
        assert tags["gate.quality_floor.reason"] == recorded["reason"]
        assert tags["evaluation_report_version"] == report_version
        for gate in GATES:
            assert tags[f"gate.{gate}"] == ("passed" if verdicts[gate].passed else "failed")

        # Once: neither the next tick nor a sensor started afresh tells it again.
        assert sensor.tick() == "no finished run judged a candidate"
        assert GateOutcomes(defs, instance, project).tick() == "no finished run judged a candidate"
        assert len(receiver.messages) == 1
    finally:
        receiver.close()


def test_a_registry_that_is_down_delays_the_tags_but_not_the_notification(
    home, projects_dir, instance
):
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
        notifier = Notifier(outbox=str(home / "outbox"), attempts=1)
        sensor = GateOutcomes(
            defs, instance, project, {"notifier": notifier, "mlflow": DownRegistry()}
        )
        result = run_loop(defs, instance, "small")
        assert not result.success
        assert "wait for another try" in sensor.tick()
        assert [m["event"] for m in receiver.messages] == ["gate_failed"]
        registered = current(home, "small", "candidate_model")[1].card["mlflow"]["version"]
        assert _gate_tags(home, registered) == {}

        # The registry is back: the tags are written, the people are not told twice.
        sensor.tick(resources=dict(defs.resources))
        assert _gate_tags(home, registered)["gate.quality_floor"] == "failed"
        assert [m["event"] for m in receiver.messages] == ["gate_failed"]
    finally:
        receiver.close()


def test_the_evaluation_stage_registers_its_gate_outcome_sensor(home, projects_dir):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    sensor = defs.get_sensor_def(gate_outcome_sensor_name("small"))
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.required_resource_keys == {"notifier", "mlflow"}


def test_table_inputs_are_typed_and_checked_without_importing_pandas_at_load(home, projects_dir):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    typed = {
        ("candidate_model", "train_split"),
        ("evaluation_report", "holdout_split"),
    }
    for asset, name in typed:
        op = defs.resolve_assets_def(dg.AssetKey(["small", asset])).op
        [input_def] = [d for d in op.input_defs if d.name == name]
        assert input_def.dagster_type is DATA_FRAME, (asset, name)
    assert dg.check_dagster_type(DATA_FRAME, pd.DataFrame({"x": [1]})).success
    assert not dg.check_dagster_type(DATA_FRAME, {"x": [1]}).success
