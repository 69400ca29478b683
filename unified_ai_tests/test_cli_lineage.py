"""history, lineage and rollback from the command line, locally and against a webserver."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import new_source_rows, project_defs, run_loop, store

DEPLOYED = ["small", "deployed_model"]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    # Runs submitted to a webserver without a daemon must start at once.
    (folder / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster.core.run_coordinator\n"
        "  class: DefaultRunCoordinator\ntelemetry:\n  enabled: false\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


@pytest.fixture
def two_deployments(home, projects_dir, dagster_home, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    versions = []
    with dg.DagsterInstance.get() as instance:
        for seed in range(2):
            if seed:
                new_source_rows(projects_dir, seed=seed)  # a new model, not the champion again
            assert run_loop(defs, instance, "small").success
            versions.append(store(home).current_version(DEPLOYED))
    return versions


def test_rollback_history_and_lineage_from_the_cli(home, two_deployments):
    v1, v2 = two_deployments
    result = invoke("rollback", "small", "--reason", "drift in prod", "--by", "ann")
    assert result.exit_code == 0, result.output
    assert f"deployed version is now {v1}" in result.output
    assert store(home).current_version(DEPLOYED) == v1
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="small__rollback"))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[0].tags["unified_ai/actor"] == "ann"

    history = invoke("history", "small", "deployed_model")
    assert history.exit_code == 0, history.output
    rows = [line for line in history.output.splitlines() if "deployed_model" in line]
    assert "rollback" in rows[0] and f"{v1}*" in rows[0] and "drift in prod" in rows[0]
    assert "ann" in rows[0]
    assert "what was live when (deployed_model):" in history.output
    ledger = history.output.split("what was live when")[1]
    assert ledger.index(v1) < ledger.index(v2) < ledger.rindex(v1)

    as_json = json.loads(invoke("history", "small", "--json").output)
    assert [m["action"] for m in as_json["moves"] if m["asset"] == "deployed_model"] == [
        "rollback",
        "materialize",
        "materialize",
    ]
    assert as_json["deployments"][-1]["until"] is None

    tree = json.loads(invoke("lineage", "small", "deployed_model", "--json").output)
    assert tree["asset"] == "small/deployed_model" and tree["version"] == v1
    report = tree["upstream"][0]
    assert report["asset"] == "small/evaluation_report"
    names = {node["asset"] for node in report["upstream"]}
    assert names == {"small/candidate_model", "small/holdout_split"}
    model = next(n for n in report["upstream"] if n["asset"] == "small/candidate_model")
    assert model["upstream"][0]["asset"] == "small/train_split"
    assert model["upstream"][0]["upstream"][0]["asset"] == "small/training_data"

    text = invoke("lineage", "small", "deployed_model", "--version", v2)
    assert text.exit_code == 0
    assert text.output.splitlines()[0].startswith(f"small/deployed_model@{v2}")
    assert "└── small/evaluation_report@" in text.output


def test_cli_errors_are_one_line_and_change_nothing(home, two_deployments):
    _, v2 = two_deployments
    refused = invoke("rollback", "small", "--to", "0123456789abcdef", "--reason", "x")
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        "Error: small/deployed_model: rollback refused: "
        "version 0123456789abcdef does not exist in the store"
    )
    assert store(home).current_version(DEPLOYED) == v2
    assert invoke("lineage", "small", "nope").output.startswith("Error: unknown asset 'nope'")
    missing = invoke("lineage", "small", "deployed_model", "--version", "ffffffffffffffff")
    assert missing.exit_code == 1 and "does not exist in the store" in missing.output
    assert invoke("rollback", "small").exit_code == 2  # --reason is required


def test_rollback_needs_an_instance_or_a_url(home, projects_dir, monkeypatch):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = invoke("rollback", "small", "--reason", "x")
    assert result.exit_code == 1
    assert "DAGSTER_HOME is not set" in result.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_rollback_against_a_running_webserver(home, two_deployments, dagster_home):
    v1, _ = two_deployments
    port = _free_port()
    webserver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "unified_ai.definitions",
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "webserver did not start"
                time.sleep(0.5)
        url = f"http://127.0.0.1:{port}"
        result = invoke("rollback", "small", "--reason", "remote", "--by", "bob", "--url", url)
        assert result.exit_code == 0, result.output
        assert store(home).current_version(DEPLOYED) == v1
        refused = invoke("rollback", "small", "--to", v1, "--reason", "again", "--url", url)
        assert refused.exit_code == 1
        assert "is already the deployed version" in refused.output
        assert "dagster._core" not in refused.output  # one line, in the product's words
    finally:
        os.killpg(webserver.pid, signal.SIGTERM)
        webserver.wait(timeout=30)
