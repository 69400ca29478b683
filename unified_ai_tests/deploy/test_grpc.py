"""Serve the code location with `dagster api grpc` and load it through a grpc_server workspace,
as the cluster's webserver and daemon do."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from unified_ai_tests.deploy.services import Service

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_code_location_served_over_grpc_loads_in_a_workspace(tmp_path, home):
    from dagster._grpc.client import DagsterGrpcClient

    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    # Its own session, stdin closed, output to a file: stopped as a group (SIGTERM, then
    # SIGKILL), it can neither outlive the test nor read the test worker's input.
    server = Service(
        "grpc",
        [
            str(BIN / "dagster"),
            "api",
            "grpc",
            "--module-name",
            "unified_ai.definitions",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        tmp_path,
    ).start()
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 120
        while True:
            try:
                client.ping("hello")
                break
            except Exception:
                assert server.alive(), server.tail()
                assert time.monotonic() < deadline, "gRPC server did not come up"
                time.sleep(0.5)
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {port}\n      location_name: unified_ai\n"
        )
        listed = subprocess.run(
            [str(BIN / "dagster"), "job", "list", "-w", str(workspace)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        assert listed.returncode == 0, listed.stderr[-2000:]
        for job in (
            "mortgage_approval__training_loop",
            "mortgage_approval__rollback",
            "mortgage_approval__score_batch",
        ):
            assert job in listed.stdout
    finally:
        server.stop()
