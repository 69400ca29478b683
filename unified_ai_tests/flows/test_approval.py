"""Human-in-the-loop approvals and policy as code, on a real instance."""

import time

import dagster as dg
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.projects.loader import load_project_file
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver

SENSOR = "small__approval_sensor"
DEPLOYED = ["small", "deployed_model"]


def approval_policy(mode="required", required=1, expires=72.0, approvers="alice, bob"):
    return f"""\
  approval:
    mode: {mode}
    approvers: [{approvers}, "group:risk"]
    groups: {{risk: [carol]}}
    four_eyes: true
    required_approvals: {required}
    expires_after_hours: {expires}
"""


@pytest.fixture
def setup(home, projects_dir, instance, monkeypatch):
    def make(**policy):
        path = write_project(projects_dir, policy_extra=approval_policy(**policy))
        monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
        project = load_project_file(path)
        defs = project_defs(projects_dir)
        return project, defs, SensorDriver(defs, instance)

    return make


def train(defs, instance, actor="alice"):
    result = defs.resolve_job_def("small__training_loop").execute_in_process(
        instance=instance, tags={"unified_ai/actor": actor}, raise_on_error=False
    )
    assert result.success, step_failures(result)
    return store_version(result, "candidate_model")


def store_version(result, asset):
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return events[-1].materialization.metadata["lineage/version"].value


def decide(defs, instance, project, version, approver, decision="approve", comment="ok"):
    return defs.resolve_job_def("small__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project,
            model_version=version,
            decision=decision,
            approver=approver,
            comment=comment,
        ),
        raise_on_error=False,
    )


def deploy(defs, instance, tags=None):
    return defs.resolve_job_def("small__deploy").execute_in_process(
        instance=instance, tags=tags or {}, raise_on_error=False
    )


def test_approve_then_deploy_happens_once(home, setup, instance):
    project, defs, driver = setup()
    model = train(defs, instance)
    # The loop evaluated and gated the model, and stopped before deploying: a person decides.
    assert store(home).current_version(DEPLOYED) is None
    assert driver.tick(SENSOR).skip == "no new approvals"

    assert decide(defs, instance, project, model, "bob").success
    tick = driver.tick(SENSOR)
    [request] = tick.requests
    assert request.tags["unified_ai/actor"] == "bob"
    deployed = driver.launch(request, "small__deploy")
    assert deployed.success, step_failures(deployed)
    _, manifest = current(home, "small", "deployed_model")
    assert manifest["model_version"] == model
    assert manifest["approval"] == {"reason": "approved by bob", "approvers": ["bob"]}
    assert manifest["policy_version"] == project.policy_version
    assert driver.tick(SENSOR).requests == []  # once


def test_waiting_for_an_approval_is_configured_not_inferred_from_the_job(home, setup, instance):
    _, defs, _ = setup()
    train(defs, instance)  # the loop job is configured to wait: it succeeds without deploying
    waiting = defs.resolve_job_def("small__deploy").execute_in_process(
        instance=instance,
        run_config={"ops": {"small__deployed_model": {"config": {"if_not_approved": "wait"}}}},
        raise_on_error=False,
    )
    assert waiting.success, step_failures(waiting)
    assert store(home).current_version(DEPLOYED) is None
    refused = deploy(defs, instance)  # by default a deployment without its approvals fails
    assert "refusing to deploy model" in step_failures(refused)["small__deployed_model"]


def test_reject_means_nothing_deploys(home, setup, instance):
    project, defs, driver = setup()
    model = train(defs, instance)
    assert decide(defs, instance, project, model, "carol", "reject", "unfair to applicants").success
    assert driver.tick(SENSOR).requests == []
    attempt = deploy(defs, instance)
    assert not attempt.success
    message = step_failures(attempt)["small__deployed_model"]
    assert "refusing to deploy model" in message and "rejected by carol" in message
    assert "unfair to applicants" in message
    # An approval after the rejection does not override it.
    assert decide(defs, instance, project, model, "bob").success
    assert "rejected by carol" in step_failures(deploy(defs, instance))["small__deployed_model"]
    assert store(home).current_version(DEPLOYED) is None


@pytest.mark.parametrize(
    ("approver", "reason"),
    [
        ("alice", "four-eyes: alice triggered the training"),
        ("mallory", "mallory may not approve (allowed: alice, bob, carol)"),
        ("", "no approver named"),
    ],
)
def test_invalid_approvals_are_recorded_and_never_deploy(home, setup, instance, approver, reason):
    project, defs, driver = setup()
    model = train(defs, instance, actor="alice")
    result = decide(defs, instance, project, model, approver)
    assert not result.success
    assert reason in step_failures(result)["small__deployment_approval"]
    _, record = current(home, "small", "deployment_approval")
    assert record["valid"] is False and reason in record["invalid_reason"]
    assert record["policy_version"] == project.policy_version
    assert driver.tick(SENSOR).requests == []
    assert "0 of 1 valid" in step_failures(deploy(defs, instance))["small__deployed_model"]


def test_approval_for_an_older_version_is_refused(home, setup, instance):
    project, defs, driver = setup()
    first = train(defs, instance)
    second = train(defs, instance)
    assert first != second
    result = decide(defs, instance, project, first, "bob")
    message = step_failures(result)["small__deployment_approval"]
    assert f"version {first} is not the current candidate {second}" in message
    assert driver.tick(SENSOR).requests == []


def test_expired_approval_does_not_count(home, setup, instance):
    project, defs, _ = setup(expires=0.0002)  # under a second
    model = train(defs, instance)
    assert decide(defs, instance, project, model, "bob").success
    time.sleep(1.0)
    message = step_failures(deploy(defs, instance))["small__deployed_model"]
    assert "0 of 1 valid, unexpired approvals" in message


def test_two_approvals_required(home, setup, instance):
    project, defs, driver = setup(required=2)
    model = train(defs, instance)
    assert decide(defs, instance, project, model, "bob").success
    tick = driver.tick(SENSOR)
    assert tick.requests == [] and "1 of 2" in tick.skip
    assert "1 of 2" in step_failures(deploy(defs, instance))["small__deployed_model"]
    assert decide(defs, instance, project, model, "carol").success
    [request] = driver.tick(SENSOR).requests
    assert driver.launch(request, "small__deploy").success
    _, manifest = current(home, "small", "deployed_model")
    assert manifest["approval"]["approvers"] == ["bob", "carol"]


def test_one_person_is_one_approver_and_policy_is_rechecked_at_deploy(
    home, setup, instance, projects_dir, monkeypatch
):
    project, defs, driver = setup(required=2)
    model = train(defs, instance)
    # Two spellings of one name: both recorded as given, counted once.
    assert decide(defs, instance, project, model, "bob").success
    assert decide(defs, instance, project, model, "Bob").success
    _, record = current(home, "small", "deployment_approval")
    assert record["approver"] == "Bob" and record["valid"] is True
    tick = driver.tick(SENSOR)
    assert tick.requests == [] and "1 of 2" in tick.skip
    assert "1 of 2" in step_failures(deploy(defs, instance))["small__deployed_model"]
    # The policy drops bob: his approvals no longer count, although one is now enough.
    write_project(projects_dir, policy_extra=approval_policy(required=1, approvers="alice"))
    narrowed = project_defs(projects_dir)
    message = step_failures(deploy(narrowed, instance))["small__deployed_model"]
    assert "0 of 1 valid, unexpired approvals" in message
    assert "not counted: bob (not an approver under the current policy)" in message
    assert store(home).current_version(DEPLOYED) is None
    narrowed_project = load_project_file(projects_dir / "small.yaml")
    assert decide(narrowed, instance, narrowed_project, model, "CAROL").success
    assert deploy(narrowed, instance).success
    _, manifest = current(home, "small", "deployed_model")
    assert manifest["approval"]["approvers"] == ["CAROL"]


def test_auto_approval_path(home, setup, instance):
    _, defs, _ = setup(mode="auto")
    train(defs, instance)
    _, manifest = current(home, "small", "deployed_model")
    assert manifest["approval"]["reason"] == "auto-approved by policy: first model"
    first = store(home).current_version(DEPLOYED)
    # Same data and seed: the retrained model is the champion again (+0.0000 on every
    # metric, the same predictions); policy never approves a deployment that changes nothing.
    train(defs, instance)
    _, report = current(home, "small", "evaluation_report")
    assert report.body["identical"]["identical"] is True
    assert store(home).current_version(DEPLOYED) == first


def test_dry_run_shows_a_tightened_floor_blocking_a_past_promotion(home, setup, instance, tmp_path):
    _, defs, _ = setup(mode="never")
    train(defs, instance)
    assert store(home).current_version(DEPLOYED) is not None
    stricter = tmp_path / "stricter.yaml"
    stricter.write_text("quality_floor: {roc_auc: 0.99}\n")
    result = CliRunner().invoke(main, ["policy", "dry-run", "small", "--policy", str(stricter)])
    assert result.exit_code == 0, result.output
    assert "promoted then, BLOCKED now  <- differs" in result.output
    assert "quality_floor: roc_auc" in result.output and "< floor 0.9900" in result.output
    assert "1 past promotion(s) would have been blocked" in result.output
    same = tmp_path / "same.yaml"
    same.write_text("policy: {quality_floor: {roc_auc: 0.6}}\n")
    unchanged = CliRunner().invoke(main, ["policy", "dry-run", "small", "--policy", str(same)])
    assert "0 past promotion(s) would have been blocked" in unchanged.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("approval: {mode: sometimes}\n")
    bad = CliRunner().invoke(main, ["policy", "dry-run", "small", "--policy", str(broken)])
    assert bad.exit_code == 1
    assert f"{broken}: approval.mode: Input should be" in bad.output


def test_cli_approve_and_history_audit(home, setup, instance, monkeypatch, tmp_path):
    _, defs, _ = setup()
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    with dg.DagsterInstance.get() as local:
        model = train(defs, local)
    result = CliRunner().invoke(
        main, ["approve", "small", "--version", model, "--by", "bob", "--comment", "looks fair"]
    )
    assert result.exit_code == 0, result.output
    assert f"recorded approval of small model {model} by bob" in result.output
    refused = CliRunner().invoke(main, ["approve", "small", "--version", model, "--by", "alice"])
    assert refused.exit_code == 1
    assert refused.output.strip().endswith("four-eyes: alice triggered the training of " + model)
    history = CliRunner().invoke(main, ["history", "small", "deployment_approval"])
    assert history.output.count("deployment_approval") == 2


def test_trusted_identity_tag_overrides_declared_names(home, setup, instance, monkeypatch):
    monkeypatch.setenv("UNIFIED_AI_IDENTITY_TAG", "proxy/user")
    project, defs, _ = setup()
    model = train(defs, instance)
    job = defs.resolve_job_def("small__approve")

    def approve_as(declared, tags):
        return job.execute_in_process(
            instance=instance,
            run_config=approval_run_config(
                project, model_version=model, decision="approve", approver=declared, comment=""
            ),
            tags=tags,
            raise_on_error=False,
        )

    missing = approve_as("bob", {})
    assert (
        "no authenticated user in run tag proxy/user"
        in step_failures(missing)["small__deployment_approval"]
    )
    spoofed = approve_as("carol", {"proxy/user": "bob"})
    assert (
        "declared approver carol is not the signed-in user bob"
        in step_failures(spoofed)["small__deployment_approval"]
    )
    assert approve_as("", {"proxy/user": "bob"}).success
    _, record = current(home, "small", "deployment_approval")
    assert record["approver"] == "bob" and record["authenticated"] is True
    # The same person typed differently is not a spoof; the signed-in name is recorded.
    assert approve_as("Bob", {"proxy/user": "bob"}).success
