"""Server processes for the deployment tests: each in its own process group, logged to a file,
stopped by group, and its log printed when a test fails.

The services are the ones a cluster runs beside the code location: an S3 API (moto's server),
an MLflow tracking server, and Dagster's own webserver, daemon and code server.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
BUCKET = "ml-artifacts"
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """One server process in its own process group, its output in `<folder>/<name>.log`."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], folder: Path):
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Service":
        with open(self.log, "ab") as handle:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole group (the server and whatever it started), then SIGKILL."""
        if self.process is None:
            return
        group = self.process.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; anything left in its group (launched runs) goes too.
            with suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            break
        self.process = None

    def tail(self, chars: int = 6000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"----- {self.name} ({self.log.name}) -----\n{text[-chars:]}"


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    services: list[Service],
    poll: float = 1.0,
) -> Any:
    """Poll `condition()` until truthy; fail naming `what`, with every service's log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception as error:
            value = None
            last = error
        else:
            last = None
        if value:
            return value
        dead = [s.name for s in services if s.process is not None and not s.alive()]
        if dead or time.monotonic() > deadline:
            reason = f"{', '.join(dead)} exited" if dead else f"timed out after {timeout:.0f} s"
            logs = "\n".join(s.tail() for s in services)
            raise AssertionError(f"{reason} waiting for {what} (last error: {last!r})\n{logs}")
        time.sleep(poll)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict:
    """One POST to the webserver's /graphql (the API its UI uses); errors raise."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": dict(variables or {})}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


@contextmanager
def s3_api(folder: Path) -> Iterator[tuple[dict[str, str], Service]]:
    """A real S3 API (moto's server) with bucket BUCKET; yields (client environment, service).

    The environment is what a pod's secret gives the code location: credentials, region and,
    for an S3-compatible store that is not AWS, `AWS_ENDPOINT_URL` (read by boto3 and s3fs).
    """
    import boto3

    port = free_port()
    service = Service(
        "s3",
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        os.environ,
        folder,
    ).start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http_ok(f"{endpoint}/moto-api/"),
            timeout=60,
            what="the S3 API",
            services=[service],
        )
        env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=BUCKET)
        yield env, service
    finally:
        service.stop()


def mlflow_server_argv(backend_uri: str, artifact_root: str, port: int) -> list[str]:
    """`mlflow server` as docs/deploy.md tells a cluster operator to run it.

    Artifacts live in the store's bucket, written there by the code location itself (the
    experiments it creates name `$UNIFIED_AI_HOME/mlflow-artifacts`), so the server does not
    proxy them.
    """
    return [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--default-artifact-root",
        artifact_root,
        "--no-serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        # The Host header the code location sends; MLflow refuses others.
        "--allowed-hosts",
        f"127.0.0.1:{port},127.0.0.1",
    ]


@contextmanager
def mlflow_server(
    folder: Path, backend_uri: str, artifact_root: str, env: Mapping[str, str]
) -> Iterator[tuple[str, Service]]:
    """A real `mlflow server` process; yields (tracking URI, service)."""
    port = free_port()
    service = Service(
        "mlflow",
        mlflow_server_argv(backend_uri, artifact_root, port),
        {**os.environ, **env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        folder,
    ).start()
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: http_ok(f"{uri}/health"),
            timeout=120,
            what="the MLflow server",
            services=[service],
        )
        yield uri, service
    finally:
        service.stop()
