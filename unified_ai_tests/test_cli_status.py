"""`unified-ai status` says what state each project's candidate is in, for people and scripts."""

import json
from importlib.metadata import version

import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import project_defs, run_loop


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_version_is_the_installed_package_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"unified-ai {version('unified-ai')}"


def test_status_json_before_any_run(home):
    result = invoke("status", "mortgage_approval", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["project"] == "mortgage_approval"
    assert status["assets"]["deployed_model"] is None
    assert status["deployed"] is None and status["candidate"] is None


@pytest.mark.slow
def test_status_says_live_waiting_and_blocked(home, projects_dir, monkeypatch, instance):
    small = write_project(
        projects_dir, policy_extra="  approval: {mode: required, approvers: [bob]}\n"
    )
    write_project(projects_dir, name="strict", floor=0.99)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)

    # The first model of `small` waits for bob; `strict`'s fails its quality floor.
    run_loop(defs, instance, "small")
    run_loop(defs, instance, "strict")
    waiting = json.loads(invoke("status", "small", "--json").output)
    assert waiting["candidate"]["state"] == "WAITING"
    assert waiting["deployed"] is None
    blocked = json.loads(invoke("status", "strict", "--json").output)
    assert blocked["candidate"]["state"] == "BLOCKED"
    assert any("quality_floor" in reason for reason in blocked["candidate"]["reasons"])

    table = invoke("status", "strict")
    assert table.exit_code == 0, table.output
    assert "BLOCKED" in table.output and "quality_floor" in table.output
    assert "\x1b[" not in table.output  # no colour codes when the output is not a terminal

    # Approved and deployed, the same candidate is LIVE.
    from unified_ai.projects.loader import load_project_file
    from unified_ai.stages.approval.jobs import approval_run_config

    candidate = waiting["candidate"]["model_version"]
    defs.resolve_job_def("small__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            load_project_file(small),
            model_version=candidate,
            decision="approve",
            approver="bob",
            comment="ok",
        ),
    )
    defs.resolve_job_def("small__deploy").execute_in_process(instance=instance)
    live = json.loads(invoke("status", "small", "--json").output)
    assert live["candidate"]["state"] == "LIVE"
    assert live["deployed"]["model_version"] == candidate
    history = invoke("history", "small", "deployed_model").output
    moves = history.split("(* = current version)")[0].splitlines()
    [row] = [line for line in moves if line.lstrip().startswith("20")]
    assert f"{live['deployed']['version']}*" in row and "LIVE" in row and "\x1b[" not in row


def test_an_unreachable_server_is_reported_with_its_cause(home):
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = invoke("rollback", "mortgage_approval", "--reason", "x", "--url", url)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith(f"Error: {url}: ")
    assert "Connection refused" in result.output, result.output


def test_policy_check_json_lists_each_file(home, projects_dir):
    good = write_project(projects_dir)
    bad = write_project(projects_dir, name="bad")
    bad.write_text(bad.read_text().replace("max_gap: 0.3", "max_gap: huge"))
    result = invoke("policy", "check", "--json", str(good), str(bad))
    assert result.exit_code == 1
    rows = {row["file"]: row for row in json.loads(result.output)}
    assert rows[str(good)]["ok"] is True and rows[str(good)]["project"] == "small"
    assert rows[str(bad)]["ok"] is False
    assert "policy.fairness.max_gap: Input should be a valid number" in rows[str(bad)]["error"]
