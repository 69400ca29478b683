"""Faults during runs: a training process killed mid-step, MLflow gone during a run.

Each leaves the previously deployed versions current and loadable, the store undamaged, and the
next run completes the loop.
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import dagster as dg
import pytest

from unified_ai.io.store import LineageStore
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures

pytestmark = pytest.mark.slow

LOOP = ["training_data", "train_split", "holdout_split", "candidate_model", "evaluation_report"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_store_undamaged(home) -> None:
    report = LineageStore(home / "store").verify()
    assert not report.problems, report.problems


def test_training_process_killed_mid_step_leaves_the_deployment_and_the_loop_resumes(
    home, projects_dir, tmp_path, monkeypatch
):
    write_project(projects_dir)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry: {enabled: false}\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "UNIFIED_AI_PROJECTS": str(projects_dir),
    }
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # this process's instance, below
    with dg.DagsterInstance.get() as instance:
        defs = project_defs(projects_dir)
        first = run_loop(defs, instance, "small")
        assert first.success, step_failures(first)
        deployed, _ = current(home, "small", "deployed_model")
        before = {asset: current(home, "small", asset)[0] for asset in LOOP}

        # A second loop in its own process, SIGKILLed as soon as training has started.
        script = textwrap.dedent(
            f"""
            import dagster as dg
            from unified_ai_tests.flows.helpers import project_defs, run_loop
            with dg.DagsterInstance.get() as instance:
                run_loop(project_defs({str(projects_dir)!r}), instance, "small")
            """
        )
        child = subprocess.Popen([sys.executable, "-c", script], env=env)
        deadline = time.monotonic() + 180
        runs_before = len(instance.get_runs())
        while True:
            assert child.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline, "training never started"
            killed_run = (
                instance.get_runs(limit=1)[0] if len(instance.get_runs()) > runs_before else None
            )
            if killed_run is not None and "small__candidate_model" in {
                e.step_key
                for e in instance.all_logs(
                    killed_run.run_id, of_type=dg.DagsterEventType.STEP_START
                )
            }:
                break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

        # The deployment and every stored version it rests on are untouched and loadable.
        assert current(home, "small", "deployed_model")[0] == deployed
        for asset in ("candidate_model", "evaluation_report"):
            assert current(home, "small", asset)[0] == before[asset]
        assert_store_undamaged(home)

        # The loop resumes: a fresh run completes, nothing is duplicated.
        again = run_loop(defs, instance, "small")
        assert again.success, step_failures(again)
        store = LineageStore(home / "store")
        for asset in LOOP:
            moves = store.history(["small", asset])
            assert moves[-1].version == store.current_version(["small", asset])
        assert_store_undamaged(home)


def test_mlflow_unavailable_during_a_run_changes_nothing_and_the_loop_resumes(
    home, projects_dir, instance, monkeypatch
):
    write_project(projects_dir)
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    before = {asset: current(home, "small", asset)[0] for asset in [*LOOP, "deployed_model"]}

    # MLflow's server is down: nothing listens on its port. Fail fast instead of retrying.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    down = run_loop(project_defs(projects_dir), instance, "small")
    assert not down.success
    failures = step_failures(down)
    assert "small__candidate_model" in failures, failures
    assert "\n" not in failures["small__candidate_model"]
    for asset in ("candidate_model", "evaluation_report", "deployed_model"):
        assert current(home, "small", asset)[0] == before[asset], asset
    assert_store_undamaged(home)

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    back = run_loop(project_defs(projects_dir), instance, "small")
    assert back.success, step_failures(back)
    assert_store_undamaged(home)
