"""`unified-ai serve` end to end: a real server process following real deployments.

The training loop (real MLflow on SQLite, real lineage store) deploys a model; the CLI starts
the service; a client keeps sending while a second model is deployed and then rolled back
from the CLI. Every request must succeed, on the version current when it started; served rows
must reach the inbox as batches that the real batch sensor and score job take in, and labels
posted for them must become ground truth.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai_tests.conftest import make_frame, write_project
from unified_ai_tests.flows.helpers import (
    new_source_rows,
    project_defs,
    run_loop,
    step_failures,
    store,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver
from unified_ai_tests.serving.helpers import AUTH, TOKEN, call, free_port, wait_for

DEPLOYED = ["small", "deployed_model"]
ROWS_PER_REQUEST = 5


@pytest.fixture
def dagster_home(tmp_path, monkeypatch):
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


class Client(threading.Thread):
    """Sends the same rows again and again; records every answer with the wall-clock time."""

    def __init__(self, url: str, rows: list[dict]):
        super().__init__(daemon=True)
        self.url = f"{url}/v1/projects/small/predict"
        self.rows = rows
        self.answers: list[tuple[float, int | None, object]] = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                status, body, _ = call(self.url, "POST", {"rows": self.rows})
            except Exception as exc:  # a refused or dropped connection is a failed request
                self.answers.append((time.time(), None, repr(exc)))
                continue
            self.answers.append((time.time(), status, body))

    def served(self) -> list[tuple[float, str]]:
        return [(t, b["deployment_version"]) for t, status, b in self.answers if status == 200]


def moved_at(home, version: str, action: str) -> float:
    """Wall-clock time of the newest pointer move of deployed_model to `version`."""
    move = [m for m in store(home).history(DEPLOYED) if m.version == version and m.action == action]
    return datetime.fromisoformat(move[-1].at).timestamp()


def first_served(client: Client, version: str, after: float) -> float:
    return next(t for t, v in client.served() if v == version and t >= after)


@pytest.mark.slow
def test_serve_follows_deploy_and_rollback_without_a_failed_request(
    home, projects_dir, dagster_home, monkeypatch, tmp_path
):
    write_project(projects_dir)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    with dg.DagsterInstance.get() as instance:
        assert run_loop(defs, instance, "small").success
    v1 = store(home).current_version(DEPLOYED)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_file = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "unified_ai.cli", "serve", "small", "--port", str(port)]
    command += ["--poll-seconds", "0.2", "--flush-rows", "40", "--flush-seconds", "1"]
    command += ["--max-rows", "100", "--max-body-bytes", "100000"]
    server = subprocess.Popen(
        command,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, SERVE_TOKEN_ENV: TOKEN},
        cwd=tmp_path,
    )
    try:

        def ready():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                status, body, _ = call(f"{url}/readyz")
            except OSError:
                return None
            return status == 200 and body

        body, _ = wait_for(ready, timeout=60, interval=0.2)
        assert body["deployment_version"] == v1

        truth = make_frame(rows=ROWS_PER_REQUEST, seed=11)
        sent = truth.drop(columns=["label"]).to_dict(orient="records")
        client = Client(url, sent)
        client.start()
        wait_for(lambda: len(client.served()) >= 3)

        # A second model (new source rows) goes through the loop and is deployed while the
        # client sends.
        new_source_rows(projects_dir)
        with dg.DagsterInstance.get() as instance:
            assert run_loop(defs, instance, "small").success
        v2 = store(home).current_version(DEPLOYED)
        assert v2 != v1
        wait_for(lambda: any(v == v2 for _, v in client.served()), timeout=10)
        deploy_swap = first_served(client, v2, 0) - moved_at(home, v2, "materialize")

        # The on-call engineer rolls back from the CLI; the endpoint follows.
        result = CliRunner().invoke(main, ["rollback", "small", "--reason", "test", "--by", "ann"])
        assert result.exit_code == 0, result.output
        assert store(home).current_version(DEPLOYED) == v1
        rolled = moved_at(home, v1, "rollback")
        wait_for(lambda: any(v == v1 and t >= rolled for t, v in client.served()), timeout=10)
        rollback_swap = first_served(client, v1, rolled) - rolled
        time.sleep(0.5)
        client.done.set()
        client.join(30)

        failed = [(t, s, b) for t, s, b in client.answers if s != 200]
        assert failed == []
        versions = [v for _, v in client.served()]
        changes = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
        assert changes == [v1, v2, v1]
        # Followed within a poll and a load; the rollback target is still in memory.
        assert deploy_swap < 5, deploy_swap
        assert rollback_swap < 2, rollback_swap
        print(f"swap after deploy {deploy_swap:.2f} s, after rollback {rollback_swap:.2f} s")

        # Bad input: 422 naming the field, 413 for too many rows or bytes; still serving.
        predict = f"{url}/v1/projects/small/predict"
        status, body, _ = call(predict, "POST", {"rows": [{**sent[0], "x2": "high"}]})
        assert status == 422
        assert body["detail"] == "row 0: field 'x2': is text ('high'), not a number"
        status, body, _ = call(predict, "POST", {"rows": sent * 21})
        assert status == 413 and "105 rows in one request" in body["detail"]
        assert call(predict, "POST", raw=b"[" + b" " * 100_000 + b"]")[0] == 413
        assert call(f"{url}/readyz")[0] == 200

        # Ground truth for the rows of the first batch file, by the row ids the endpoint gave.
        answers = [b for _, s, b in client.answers if s == 200]
        first_ids = [p["row_id"] for p in answers[0]["predictions"]]
        batch = first_ids[0].rsplit(":", 1)[0]
        pairs = zip(first_ids, truth["label"], strict=True)
        labels = [{"row_id": i, "label": int(y)} for i, y in pairs]
        status, body, _ = call(
            f"{url}/v1/projects/small/labels", "POST", {"labels": labels}, headers=AUTH
        )
        assert status == 200 and body["accepted"] == ROWS_PER_REQUEST

        metrics = call(f"{url}/metrics")[1]
        assert f'unified_ai_serving_model_info{{deployment_version="{v1}"' in metrics
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: buffered rows are written on the way out
        try:
            code = server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        log_file.close()
    # uvicorn finishes in-flight requests and the app's shutdown, then re-raises the signal.
    log = (tmp_path / "serve.log").read_text()
    assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log

    # Every served row is in a batch file, each file holding one deployment's rows.
    inbox = home / "inbox" / "small"
    files = sorted(inbox.glob("serve-*.csv"))
    written = {p.name: pd.read_csv(p) for p in files}
    served_ids = [p["row_id"] for b in answers for p in b["predictions"]]
    all_ids = [i for frame in written.values() for i in frame["_row_id"]]
    assert sorted(all_ids) == sorted(served_ids)  # the refused requests wrote nothing
    assert all(frame["served_deployment_version"].nunique() == 1 for frame in written.values())
    assert not [p for p in inbox.iterdir() if p.name.startswith(".")]

    # The real sensors and jobs take the served traffic in: the batch passes validation and
    # is scored; its labels become ground truth and live performance.
    with dg.DagsterInstance.get() as instance:
        driver = SensorDriver(defs, instance)
        tick = driver.tick("small__batch_sensor")
        assert {r.partition_key for r in tick.requests} == set(written)
        [request] = [r for r in tick.requests if r.partition_key == batch]
        run = driver.launch(request, "small__score_batch")
        assert run.success, step_failures(run)
        assert [c.passed for c in run.get_asset_check_evaluations()] == [True]
        [labels_request] = driver.tick("small__labels_sensor").requests
        labelled = driver.launch(labels_request, "small__ingest_labels")
        assert labelled.success, step_failures(labelled)
    lineage = store(home)
    path = ["small", "ground_truth", "partitions", batch]
    joined = lineage.read_value(path, lineage.current_version(path))
    assert sorted(joined["_row_id"]) == sorted(first_ids)
    assert joined["label"].tolist() == [int(y) for y in truth["label"]]
    assert lineage.current_version(["small", "live_performance"]) is not None
