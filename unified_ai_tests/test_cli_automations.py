"""Pausing automations is Dagster's own sensor state: what the UI toggle shows and changes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import dagster as dg
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.cli.automations import AutomationError, PauseNotes, start
from unified_ai.io.formats import serialize
from unified_ai.io.store import LineageStore
from unified_ai.names import (
    BATCHES,
    DRIFT,
    MATERIALIZE_ACTION,
    PERFORMANCE,
    TRAINING_DATA,
    sensor_names,
)
from unified_ai_tests.conftest import make_frame, write_project

SENSORS = sensor_names("small")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def dagster_states(instance) -> dict[str, str]:
    """Sensor name → status as stored in the instance (what the UI and the daemon read)."""
    return {s.instigator_name: s.status.value for s in instance.all_instigator_state()}


@pytest.fixture
def suspect(home, projects_dir, monkeypatch) -> str:
    """A project whose training data has one stored version; returns the version."""
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    store = LineageStore(home / "store")
    kind, files = serialize(make_frame(rows=50))
    manifest = store.write_version(["small", TRAINING_DATA], kind, files)
    store.set_current(["small", TRAINING_DATA], manifest.version, action=MATERIALIZE_ACTION)
    return manifest.version


def test_impact_pause_stops_the_sensors_in_dagster_and_resume_starts_them(suspect, instance):
    paused = invoke("impact", "small", TRAINING_DATA, "--version", suspect, "--pause")
    assert paused.exit_code == 0, paused.output
    assert "resume with: unified-ai resume small" in paused.output
    states = dagster_states(instance)
    # The sensors that read training data are stopped in Dagster itself; the others run on.
    assert states[SENSORS[DRIFT]] == "STOPPED"
    assert states[SENSORS[PERFORMANCE]] == "STOPPED"
    assert states.get(SENSORS[BATCHES], "RUNNING") != "STOPPED"
    # The suspect asset's page says what was paused for it.
    [record] = instance.fetch_observations(dg.AssetKey(["small", TRAINING_DATA]), limit=1).records
    described = record.asset_observation.description
    assert described.startswith(f"{suspect} is suspect: paused ") and SENSORS[DRIFT] in described

    resumed = invoke("resume", "small")
    assert resumed.exit_code == 0, resumed.output
    assert SENSORS[DRIFT] in resumed.output and SENSORS[PERFORMANCE] in resumed.output
    states = dagster_states(instance)
    assert states[SENSORS[DRIFT]] == "RUNNING" and states[SENSORS[PERFORMANCE]] == "RUNNING"


def test_pause_needs_an_instance_or_a_url(suspect, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = invoke("impact", "small", TRAINING_DATA, "--version", suspect, "--pause")
    assert result.exit_code == 1
    assert "DAGSTER_HOME is not set" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_pause_notes_live_in_an_object_store_when_home_is_one(s3_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    notes = PauseNotes("s3://lineage/home/automations", storage_options=s3_server)
    assert notes.read("small__drift_trigger") is None
    notes.write("small__drift_trigger", "impact analysis of small/train_split@abc", "cli:ana")
    again = PauseNotes("s3://lineage/home/automations", storage_options=s3_server)
    note = again.read("small__drift_trigger")
    assert note["reason"] == "impact analysis of small/train_split@abc" and note["by"] == "cli:ana"
    assert list(tmp_path.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_url_pauses_the_sensors_of_a_remote_deployment(suspect, instance, tmp_path):
    # The location is named as the Helm chart names it: sensors are found by their own names.
    workspace = tmp_path / "workspace.yaml"
    location = {"module_name": "unified_ai.definitions", "location_name": "unified-ai"}
    workspace.write_text(json.dumps({"load_from": [{"python_module": location}]}))
    port = _free_port()
    webserver = subprocess.Popen(
        [
            *(sys.executable, "-m", "dagster_webserver"),
            *("-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)),
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "webserver did not start"
                time.sleep(0.5)
        paused = invoke(
            "impact",
            "small",
            TRAINING_DATA,
            "--version",
            suspect,
            "--pause",
            "--url",
            url,
            "--json",
        )
        assert paused.exit_code == 0, paused.output
        stopped = set(json.loads(paused.output)["automations"])
        [record] = instance.fetch_observations(
            dg.AssetKey(["small", TRAINING_DATA]), limit=1
        ).records
        assert record.asset_observation.description.startswith(f"{suspect} is suspect: paused ")
        assert {SENSORS[DRIFT], SENSORS[PERFORMANCE]} <= stopped
        states = dagster_states(instance)
        assert {name for name in stopped if states[name] == "STOPPED"} == stopped

        listed = invoke("automations", "small", "--url", url, "--json")
        assert listed.exit_code == 0, listed.output
        rows = {row["sensor"]: row for row in json.loads(listed.output)}
        assert rows[SENSORS[DRIFT]]["status"] == "STOPPED"
        assert rows[SENSORS[DRIFT]]["paused"]["reason"] == (
            f"impact analysis of small/{TRAINING_DATA}@{suspect}"
        )
        assert rows[SENSORS[BATCHES]] == {
            "sensor": SENSORS[BATCHES],
            "status": "RUNNING",
            "paused": None,
        }
        text = invoke("automations", "small", "--url", url).output
        assert f"{SENSORS[DRIFT]}" in text and "impact analysis of small/" in text

        # Someone turns one back on from the UI: that wins, whatever the note says.
        assert start([SENSORS[PERFORMANCE]], url=url) == [SENSORS[PERFORMANCE]]
        rows = {
            r["sensor"]: r
            for r in json.loads(invoke("automations", "small", "--url", url, "--json").output)
        }
        assert rows[SENSORS[PERFORMANCE]] == {
            "sensor": SENSORS[PERFORMANCE],
            "status": "RUNNING",
            "paused": None,
        }
        resumed = invoke("resume", "small", "--url", url)
        expected = ", ".join(sorted(stopped - {SENSORS[PERFORMANCE]}))
        assert resumed.output.strip() == f"resumed: {expected}"
        states = dagster_states(instance)
        assert {name for name in stopped if states[name] == "RUNNING"} == stopped
    finally:
        os.killpg(webserver.pid, signal.SIGTERM)
        webserver.wait(timeout=30)


def test_an_unreachable_webserver_is_one_line_with_its_cause():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AutomationError, match=r"^http://127\.0\.0\.1:\d+/graphql: unreachable"):
        start([SENSORS[DRIFT]], url=f"http://127.0.0.1:{port}")
