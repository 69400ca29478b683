"""The image's install line, proven: the wheel installed with exactly the Dockerfile's `pip
install` commands into a fresh virtual environment (no dev extras), loading the code location
under the cluster settings and writing + reading a stored version and an MLflow model against a
real S3 API and a real MLflow server.

The Dockerfile is parsed, not copied: change its install line (an extra, a pip upgrade) and this
test installs the new one. It downloads from the package index, so it takes minutes; the install
time is printed.
"""

import json
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from unified_ai_tests.deploy.services import BUCKET, mlflow_server, s3_api

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DEV_ONLY = ("pytest", "moto", "hypothesis", "ruff", "kubernetes_validate")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in joined:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def run_commands(text: str) -> list[list[str]]:
    """Every shell command of every RUN instruction, split on `&&`, as argv lists."""
    commands = []
    for word, rest in instructions(text):
        if word == "RUN":
            commands.extend(shlex.split(part) for part in rest.split("&&") if part.strip())
    return commands


def pip_installs(text: str) -> list[list[str]]:
    """The arguments of each `pip install` the image runs, in order."""
    installs = []
    for argv in run_commands(text):
        if argv[:2] == ["pip", "install"]:
            installs.append(argv[2:])
        elif argv[:4] in (["python", "-m", "pip", "install"], ["python3", "-m", "pip", "install"]):
            installs.append(argv[4:])
    return installs


def test_dockerfile_parser_reads_the_install_line():
    text = (
        "FROM python:3.11-slim\n# a comment\nRUN pip install --upgrade pip \\\n"
        ' && pip install ".[s3,gcs]" \\\n'
        ' && python -c "import unified_ai"\n'
    )
    assert pip_installs(text) == [["--upgrade", "pip"], [".[s3,gcs]"]]
    assert ["python", "-c", "import unified_ai"] in run_commands(text)


def test_dockerfile_installs_the_extra_of_the_store_the_helm_values_name():
    import yaml

    installs = pip_installs(DOCKERFILE.read_text())
    own = [arg for args in installs for arg in args if arg.startswith(".")]
    assert len(own) == 1, f"Dockerfile: expected one `pip install .[...]`, found {own}"
    extras = set(own[0].partition("[")[2].rstrip("]").split(",")) - {""}
    schemes = {"s3": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}
    needed = set()
    for values in [REPO / "helm" / "user-deployments-values.yaml", *REPO.glob("helm/overlays/*")]:
        for deployment in yaml.safe_load(values.read_text())["deployments"]:
            for item in deployment.get("env", []):
                if item["name"] == "UNIFIED_AI_HOME" and "://" in item["value"]:
                    needed.add(schemes[item["value"].split("://")[0]])
    assert needed, "the Helm values name no object-store UNIFIED_AI_HOME"
    assert needed <= extras, f"Dockerfile installs extras {extras}, the Helm values need {needed}"


def copy_build_context(text: str, destination: Path) -> None:
    """The files the Dockerfile COPYs (into its WORKDIR), and nothing else."""
    for word, rest in instructions(text):
        if word != "COPY":
            continue
        *sources, target = shlex.split(rest)
        for source in sources:
            origin = REPO / source
            place = destination / target / origin.name if target.endswith("/") else None
            place = place or destination / target
            if origin.is_dir():
                shutil.copytree(origin, place, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, place)


PROBE = r"""
import json
import dagster as dg
import unified_ai
from unified_ai.definitions import defs

definitions = defs()
jobs = sorted(job.name for job in definitions.get_repository_def().get_all_jobs())
# As Dagster hands it to an asset: the signing key (an EnvVar from the Secret) resolved.
with dg.build_resources({"lineage": definitions.resources["lineage"]}) as resources:
    store = resources.lineage.store()
written = store.write_version(
    ["box", "probe"], "json", {"payload.json": b'{"ok": 1}'}, run_id="image-install"
)
store.set_current(["box", "probe"], written.version, action="materialize", run_id="image-install")
value = store.read_value(["box", "probe"], store.require_current(["box", "probe"]))

from sklearn.linear_model import LogisticRegression

model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
registry = definitions.resources["mlflow"]
logged = registry.log_and_register(
    model_name="box-probe", experiment="box-probe", pipeline=model, params={"C": 1.0},
    metrics={"roc_auc": 1.0}, tags={"probe": "image-install"},
)
registry.set_champion("box-probe", logged["version"])

import mlflow.sklearn

loaded = mlflow.sklearn.load_model("models:/box-probe@champion")
print(json.dumps({
    "package": unified_ai.__file__,
    "executor": definitions.executor.name,
    "jobs": jobs,
    "version": written.version,
    "value": value,
    "champion": registry.champion_version("box-probe"),
    "registered": logged["version"],
    "predictions": loaded.predict([[0.0], [3.0]]).tolist(),
}))
"""


def test_image_install_line_in_fresh_venv_loads_code_location_against_s3_and_mlflow(tmp_path):
    import boto3

    text = DOCKERFILE.read_text()
    context = tmp_path / "context"
    copy_build_context(text, context)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(context), "--no-deps", "-w", str(wheels)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = wheels.glob("unified_ai-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    started = time.monotonic()
    for args in pip_installs(text):
        args = [f"{wheel}{arg[1:]}" if arg.startswith(".") else arg for arg in args]
        # What is installed is the Dockerfile's; skipping byte-compilation only saves minutes.
        installed = subprocess.run(
            [python, "-m", "pip", "install", "--no-compile", "--progress-bar", "off", *args],
            capture_output=True,
            text=True,
        )
        assert installed.returncode == 0, (
            f"pip install {args}:\n{installed.stdout[-3000:]}" + (installed.stderr[-3000:])
        )
    install_seconds = time.monotonic() - started
    print(f"\nDockerfile install line in a fresh venv: {install_seconds:.0f} s")

    for argv in run_commands(text):
        if argv[:2] == ["python", "-c"]:
            checked = subprocess.run([python, "-c", argv[2]], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stderr[-3000:]
    consistent = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True)
    assert consistent.returncode == 0, consistent.stdout[-3000:]
    present = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util, json; "
            f"print(json.dumps([m for m in {DEV_ONLY!r} if importlib.util.find_spec(m)]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(present.stdout) == [], "dev-only packages in the image's install"

    home = f"s3://{BUCKET}/image-{uuid.uuid4().hex[:8]}"
    with (
        s3_api(tmp_path) as (s3_env, s3),
        mlflow_server(
            tmp_path,
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            f"{home}/mlflow-artifacts",
            s3_env,
        ) as (tracking_uri, mlflow),
    ):
        # Only what the Helm values and the pod's secret give the code location.
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "UNIFIED_AI_RUNTIME": "k8s",
            "UNIFIED_AI_HOME": home,
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "UNIFIED_AI_SIGNING_KEY": "k" * 32,  # from the Secret
            "DAGSTER_HOME": str(tmp_path),
            **s3_env,
        }
        probe = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert probe.returncode == 0, probe.stderr[-4000:] + "\n" + mlflow.tail() + "\n" + s3.tail()
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        client = boto3.client(
            "s3",
            endpoint_url=s3_env["AWS_ENDPOINT_URL"],
            region_name=s3_env["AWS_DEFAULT_REGION"],
            aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        )
        prefix = home.removeprefix(f"s3://{BUCKET}/")
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=prefix
            )
            for item in page.get("Contents", [])
        ]

    assert result["package"].startswith(str(venv)), result["package"]
    assert result["executor"] == "k8s"
    assert "mortgage_approval__training_loop" in result["jobs"]
    assert result["value"] == {"ok": 1}
    assert result["champion"] == result["registered"]
    assert result["predictions"] == [0, 1]
    assert any(
        key.startswith(f"{prefix}/store/box/probe/")
        and key.endswith(f"/{result['version']}/manifest.json")
        for key in keys
    ), keys
    # MLflow's artifacts went to the store's bucket (boto3 in the image), not to the server.
    assert any(
        key.startswith(f"{prefix}/mlflow-artifacts/box-probe/") and key.endswith("MLmodel")
        for key in keys
    ), keys
