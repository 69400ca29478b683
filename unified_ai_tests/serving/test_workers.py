"""`unified-ai serve --workers 2`: two processes on one port, each following the deployment;
no request fails while deployments are swapped under load, and every served row reaches the
inbox when the service stops."""

import os
import signal
import subprocess
import sys

import pandas as pd

from unified_ai.io.store import LineageStore
from unified_ai.projects.loader import load_project_file
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import Sender, call, deploy, free_port, rows, wait_for

DEPLOYED = ["small", "deployed_model"]


def workers_serving(url: str, version: str, workers: int = 2, timeout: float = 60.0) -> set:
    """Wait until `workers` distinct processes answer /readyz serving `version`."""
    seen: dict[int, str] = {}

    def all_there():
        try:
            status, body, _ = call(f"{url}/readyz")  # a fresh connection: any worker answers
        except OSError:
            return None
        if status == 200:
            seen[body["process"]] = body["deployment_version"]
        serving = {pid for pid, v in seen.items() if v == version}
        return len(serving) >= workers and serving

    pids, _ = wait_for(all_there, timeout=timeout, interval=0.02)
    return pids


def test_two_workers_follow_swaps_under_load_without_a_failed_request(
    home, projects_dir, monkeypatch, tmp_path
):
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    project = load_project_file(write_project(projects_dir))
    store = LineageStore(home / "store")
    first, _ = deploy(store, project, seed=0)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "unified_ai.cli", "serve", "small", "--port", str(port)]
    command += ["--workers", "2", "--poll-seconds", "0.1", "--flush-seconds", "0.5"]
    with log_path.open("w") as log_file:
        server = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ), cwd=tmp_path
        )
    try:
        pids = workers_serving(url, first)
        assert len(pids) == 2 and server.pid not in pids, pids

        senders = [Sender(url, rows(3)) for _ in range(3)]
        for sender in senders:
            sender.start()
        wait_for(lambda: all(len(s.served()) >= 3 for s in senders))

        # Deploy, roll back, deploy again: each worker follows on its own.
        second, _ = deploy(store, project, seed=1)
        assert workers_serving(url, second) == pids
        store.set_current(DEPLOYED, first, action="rollback", reason="test")
        assert workers_serving(url, first) == pids
        store.set_current(DEPLOYED, second, action="rollback", reason="test")
        assert workers_serving(url, second) == pids
        count = sum(len(s.answers) for s in senders)
        wait_for(lambda: sum(len(s.answers) for s in senders) >= count + 10)
        for sender in senders:
            sender.done.set()
        for sender in senders:
            sender.join(30)

        assert [f for s in senders for f in s.failed()] == []
        versions = {v for s in senders for _, v in s.served()}
        assert versions == {first, second}
        # Once both workers serve the last deployment, every answer is from it.
        assert all(v == second for s in senders for _, v in s.served()[-3:])
    finally:
        server.send_signal(signal.SIGTERM)  # the supervisor stops each worker gracefully
        try:
            code = server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    log = log_path.read_text()
    assert code == 0, log
    assert log.count("Application shutdown complete") == 2, log

    # Every served row is in a batch file written by the worker that served it.
    files = sorted((home / "inbox" / "small").glob("serve-*.csv"))
    written = [i for path in files for i in pd.read_csv(path)["_row_id"]]
    served = [p["row_id"] for s in senders for _, status, b in s.answers for p in b["predictions"]]
    assert sorted(written) == sorted(served)
    tokens = {path.name.split("-")[2] for path in files}
    assert len(tokens) == 2  # one writer per worker
