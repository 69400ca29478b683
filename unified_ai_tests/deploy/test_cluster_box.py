"""The cluster in a box: everything the cluster runs, for real, except Kubernetes.

Dagster's webserver and daemon on PostgreSQL run/event/schedule storage with the queued run
coordinator of `helm/dagster-values.yaml` (translated into a throwaway `dagster.yaml`), the code
location served by `dagster api grpc --module-name unified_ai.definitions` as the chart runs it
and loaded through a `grpc_server` workspace, a real `mlflow server` (PostgreSQL backend,
artifacts in the store's bucket, as docs/deploy.md tells operators to run it), and the lineage store
and inboxes on a real S3 API (moto's server). Only the executor differs: runs execute in-process
(UNIFIED_AI_RUNTIME=local) instead of in step pods.

Everything is driven as a person or an operator would, through the webserver's GraphQL API
(directly and through `unified-ai ... --url`), and the sensors run in the daemon. The webserver
and daemon get no unified_ai settings and no bucket credentials, as on the cluster, where only
the code location's pods do. When anything fails, the log of every server is printed.
"""

import os
import textwrap
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner

from unified_ai.cli import main
from unified_ai.names import ACTOR_TAG
from unified_ai_tests.conftest import SMALL_PROJECT, make_frame
from unified_ai_tests.deploy.postgres import fresh_database, postgres_server
from unified_ai_tests.deploy.services import (
    BIN,
    BUCKET,
    Service,
    free_port,
    graphql,
    http_ok,
    mlflow_server,
    s3_api,
    wait_until,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROJECT = "boxed"
LOCATION = "unified_ai"
RUN_TIMEOUT = 420
SENSOR_TIMEOUT = 300

# Every automatic trigger off: the box checks the loop a person drives, not trigger policy.
POLICY = """\
  approval:
    mode: required
    approvers: [bob]
    four_eyes: true
  triggers:
    drift: {enabled: false}
    performance: {enabled: false}
    rollback: {enabled: false}
    ground_truth: {enabled: false}
"""


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def instance_yaml(values: dict, postgres_url: str) -> str:
    """The instance the Helm chart builds from `values`, for a database at `postgres_url`.

    Storage and the run coordinator are translated; the run launcher is Dagster's default
    (runs in local processes) in place of the K8sRunLauncher.
    """
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    pg = values["postgresql"]
    assert not pg["enabled"], "the values expect an external PostgreSQL"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    config = {
        snake(key): value
        for key, value in coordinator["config"]["queuedRunCoordinator"].items()
        if value not in (None, [], {})
    }
    instance = {
        "telemetry": {"enabled": False},
        "storage": {
            "postgres": {
                "postgres_db": {
                    "username": url.username,
                    "hostname": url.host,
                    "port": url.port,
                    "db_name": url.database,
                    "scheme": pg["postgresqlScheme"],
                    "params": pg.get("postgresqlParams") or {},
                }
            }
        },
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": config,
        },
    }
    return yaml.safe_dump(instance, sort_keys=False)


class Box:
    """The running box: service handles, URLs, and read access to what they stored."""

    def __init__(self, root: Path, postgres_url: str):
        self.root = root
        self.postgres_url = postgres_url
        self.services: list[Service] = []
        self.home = f"s3://{BUCKET}/box-{uuid.uuid4().hex[:8]}"
        self.prefix = self.home.removeprefix(f"s3://{BUCKET}/")
        self.projects = root / "projects"
        self.dagster_home = root / "dagster_home"

    # -- setup ---------------------------------------------------------------------------
    def write_project(self, seed: int) -> None:
        self.projects.mkdir(exist_ok=True)
        make_frame(rows=600, seed=seed).to_csv(self.projects / f"{PROJECT}.csv", index=False)
        text = SMALL_PROJECT.format(
            name=PROJECT, source=f"{PROJECT}.csv", floor=0.6, policy_extra=POLICY
        ).replace("tolerance: 0.02", "tolerance: 0.2")
        (self.projects / f"{PROJECT}.yaml").write_text(textwrap.dedent(text))

    def code_env(self) -> dict[str, str]:
        """What the code location's pods get: the Helm values' env and the runtime secret."""
        return {
            **self.base_env(),
            "UNIFIED_AI_RUNTIME": "local",
            "UNIFIED_AI_HOME": self.home,
            "UNIFIED_AI_PROJECTS": str(self.projects),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            **self.s3_env,
        }

    def base_env(self) -> dict[str, str]:
        keep = ("UNIFIED_AI_", "MLFLOW_", "AWS_", "DAGSTER_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(keep)}
        return {**env, "DAGSTER_HOME": str(self.dagster_home)}

    def start(self, stack) -> None:
        self.s3_env, s3 = stack.enter_context(s3_api(self.root))
        self.services.append(s3)
        mlflow_db = fresh_database(self.postgres_url, f"box_mlflow_{uuid.uuid4().hex[:8]}")
        self.tracking_uri, mlflow = stack.enter_context(
            mlflow_server(self.root, mlflow_db, f"{self.home}/mlflow-artifacts", self.s3_env)
        )
        self.services.append(mlflow)

        self.dagster_home.mkdir()
        dagster_db = fresh_database(self.postgres_url, f"box_dagster_{uuid.uuid4().hex[:8]}")
        values = yaml.safe_load((REPO / "helm" / "dagster-values.yaml").read_text())
        (self.dagster_home / "dagster.yaml").write_text(instance_yaml(values, dagster_db))
        self.write_project(seed=0)

        # The code server as the chart runs it (user-deployments-values: dagsterApiGrpcArgs).
        deployment = yaml.safe_load((REPO / "helm" / "user-deployments-values.yaml").read_text())
        grpc_args = deployment["deployments"][0]["dagsterApiGrpcArgs"]
        grpc_port = free_port()
        code = Service(
            "code-server",
            [
                str(BIN / "dagster"),
                "api",
                "grpc",
                *grpc_args,
                "--host",
                "127.0.0.1",
                "--port",
                str(grpc_port),
            ],
            self.code_env(),
            self.root,
        ).start()
        self.services.append(code)
        stack.callback(code.stop)
        wait_until(
            lambda: self.grpc_healthy(grpc_port),
            timeout=180,
            what="the code server",
            services=self.services,
            poll=2,
        )
        workspace = self.dagster_home / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {grpc_port}\n      location_name: {LOCATION}\n"
        )
        web_port = free_port()
        self.url = f"http://127.0.0.1:{web_port}"
        webserver = Service(
            "webserver",
            [
                str(BIN / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(web_port),
                "-w",
                str(workspace),
            ],
            self.base_env(),
            self.root,
        ).start()
        self.services.append(webserver)
        stack.callback(webserver.stop)
        daemon = Service(
            "daemon",
            [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
            self.base_env(),
            self.root,
        ).start()
        self.services.append(daemon)
        stack.callback(daemon.stop)
        self.wait(lambda: http_ok(f"{self.url}/server_info"), 180, "the webserver")
        self.wait(self.location_loaded, 120, "the code location in the webserver's workspace")
        self.instance = stack.enter_context(dg.DagsterInstance.from_config(str(self.dagster_home)))

    def grpc_healthy(self, port: int) -> bool:
        import subprocess

        checked = subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port), "-h", "127.0.0.1"],
            capture_output=True,
            timeout=60,
        )
        return checked.returncode == 0

    def location_loaded(self) -> bool:
        data = graphql(
            self.url,
            "{ workspaceOrError { ... on Workspace { locationEntries { name "
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
        )
        entries = data["workspaceOrError"]["locationEntries"]
        kinds = {e["name"]: e["locationOrLoadError"] for e in entries}
        loaded = kinds.get(LOCATION) or {}
        if loaded.get("__typename") == "PythonError":
            raise AssertionError(f"code location failed to load: {loaded['message']}")
        return loaded.get("__typename") == "RepositoryLocation"

    # -- reading what the services hold ----------------------------------------------------
    def wait(self, condition, timeout: float, what: str):
        return wait_until(condition, timeout=timeout, what=what, services=self.services, poll=2)

    def store(self):
        from unified_ai.io.store import LineageStore

        options = {
            "endpoint_url": self.s3_env["AWS_ENDPOINT_URL"],
            "key": self.s3_env["AWS_ACCESS_KEY_ID"],
            "secret": self.s3_env["AWS_SECRET_ACCESS_KEY"],
        }
        return LineageStore(f"{self.home}/store", options)

    def keys(self, under: str) -> list[str]:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_env["AWS_ENDPOINT_URL"],
            region_name=self.s3_env["AWS_DEFAULT_REGION"],
            aws_access_key_id=self.s3_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.s3_env["AWS_SECRET_ACCESS_KEY"],
        )
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=f"{self.prefix}/{under}"
        )
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def champion(self) -> str:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return str(client.get_model_version_by_alias(f"unified_ai.{PROJECT}", "champion").version)

    def runs(self, job: str, status=dg.DagsterRunStatus.SUCCESS) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=[status])))

    def finished(self, run_id: str) -> str | None:
        run = self.instance.get_run_by_id(run_id)
        if run is None or not run.is_finished:
            return None
        if run.status != dg.DagsterRunStatus.SUCCESS:
            raise AssertionError(f"run {run_id} of {run.job_name} ended {run.status.value}")
        return run.status.value

    def cli(self, monkeypatch, *args: str) -> str:
        for name, value in self.code_env().items():
            monkeypatch.setenv(name, value)
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, f"unified-ai {' '.join(args)}: {result.output}"
        return result.output


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server() as url:
        yield url


@pytest.fixture
def box(tmp_path, postgres_url, request):
    from contextlib import ExitStack

    instance = Box(tmp_path, postgres_url)
    failed_before = request.session.testsfailed
    with ExitStack() as stack:
        try:
            instance.start(stack)
            yield instance
        finally:
            # pytest shows a failed test's output: every server's log, beside the assertion.
            if request.session.testsfailed != failed_before:
                print("\n".join(service.tail() for service in instance.services))


def submit(box: Box, job: str, tags: dict[str, str] | None = None) -> str:
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(box.url.rsplit(":", 1)[1]))
    run_id = client.submit_job_execution(job, repository_location_name=LOCATION, tags=tags)
    box.wait(lambda: box.finished(run_id), RUN_TIMEOUT, f"run {run_id} of {job}")
    return run_id


def deploy_and_wait(box: Box, monkeypatch, version: str, deploys_before: int) -> None:
    box.cli(monkeypatch, "approve", PROJECT, "--version", version, "--by", "bob", "--url", box.url)
    box.wait(
        lambda: len(box.runs(f"{PROJECT}__deploy")) > deploys_before,
        SENSOR_TIMEOUT,
        "the approval sensor's deploy run",
    )


def test_cluster_in_a_box_trains_approves_deploys_scores_and_rolls_back(box, monkeypatch):
    store = box.store()
    candidate = [PROJECT, "candidate_model"]
    deployed = [PROJECT, "deployed_model"]

    # The training loop, as the UI's launchpad submits it; policy wants a person's approval.
    submit(box, f"{PROJECT}__training_loop", {ACTOR_TAG: "alice"})
    first = store.require_current(candidate)
    assert store.current_version(deployed) is None
    deploy_and_wait(box, monkeypatch, first, deploys_before=0)
    first_deployment = store.require_current(deployed)
    first_champion = box.champion()
    assert store.read_value(deployed, first_deployment)["model_version"] == first

    # Production batches land in the inbox on S3; the batch sensor scores each once.
    box.cli(monkeypatch, "simulate", PROJECT, "--batches", "2", "--rows", "120")
    box.wait(lambda: len(box.runs(f"{PROJECT}__score_batch")) >= 2, SENSOR_TIMEOUT, "2 scorings")
    box.cli(monkeypatch, "simulate", PROJECT, "--labels")
    box.wait(
        lambda: len(box.runs(f"{PROJECT}__ingest_labels")) >= 1, SENSOR_TIMEOUT, "label ingest"
    )

    # New data, a new model; approved and deployed by the sensor again.
    box.write_project(seed=1)
    submit(box, f"{PROJECT}__training_loop", {ACTOR_TAG: "alice"})
    second = store.require_current(candidate)
    assert second != first
    deploy_and_wait(box, monkeypatch, second, deploys_before=1)
    assert store.read_value(deployed, store.require_current(deployed))["model_version"] == second
    assert box.champion() != first_champion

    # Roll back through the webserver, as the on-call engineer does.
    box.cli(
        monkeypatch, "rollback", PROJECT, "--reason", "box drill", "--by", "carol", "--url", box.url
    )
    assert store.require_current(deployed) == first_deployment
    assert box.champion() == first_champion
    assert store.current_version([PROJECT, "incidents"]) is not None

    # What the cluster's services hold: the bucket, the MLflow server, the runs in Postgres.
    from dagster_postgres import PostgresRunStorage

    assert isinstance(box.instance.run_storage, PostgresRunStorage)
    for job, count in {
        f"{PROJECT}__training_loop": 2,
        f"{PROJECT}__approve": 2,
        f"{PROJECT}__deploy": 2,
        f"{PROJECT}__score_batch": 2,
        f"{PROJECT}__ingest_labels": 1,
        f"{PROJECT}__rollback": 1,
    }.items():
        assert len(box.runs(job)) >= count, job
    assert not box.runs(f"{PROJECT}__training_loop", dg.DagsterRunStatus.FAILURE)
    keys = box.keys(f"store/{PROJECT}/")
    for asset in ("candidate_model", "deployed_model", "incidents", "production_batch"):
        assert any(k.startswith(f"{box.prefix}/store/{PROJECT}/{asset}/") for k in keys), asset
    assert box.keys("mlflow-artifacts/"), "MLflow's artifacts are not in the bucket"
    assert box.keys(f"inbox/{PROJECT}/processed/"), "the scored batches were not moved"
