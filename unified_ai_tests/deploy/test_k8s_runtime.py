"""The k8s runtime: executor, per-stage placement, and the Job dagster-k8s would create for
the training step, validated offline against the Kubernetes schema (no cluster needed)."""

import json

import kubernetes_validate
import pytest
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from kubernetes.client import ApiClient

from unified_ai.definitions import build_definitions
from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.runtime import load_settings
from unified_ai_tests.conftest import write_project

K8S_VERSION = "1.30.0"
CLUSTER_ENV = {
    "UNIFIED_AI_RUNTIME": "k8s",
    "UNIFIED_AI_HOME": "s3://ml-artifacts/unified-ai",
    "MLFLOW_TRACKING_URI": "http://mlflow.mlops.svc:5000",
    "UNIFIED_AI_SIGNING_KEY": "k" * 32,  # the Helm values take it from a Secret
}
GPU_RESOURCES = """\
resources:
  training:
    requests: {cpu: "2", memory: 8Gi}
    limits: {nvidia.com/gpu: "1", memory: 16Gi}
    node_selector: {cloud.google.com/gke-accelerator: nvidia-tesla-t4}
    tolerations:
      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
"""


@pytest.fixture
def gpu_project(projects_dir):
    path = write_project(projects_dir)
    path.write_text(path.read_text() + GPU_RESOURCES)
    return load_project_file(path)


def cluster_defs(project):
    return build_definitions(load_settings(CLUSTER_ENV), [project])


def test_k8s_runtime_uses_one_pod_per_step(gpu_project):
    defs = cluster_defs(gpu_project)
    assert defs.executor.name == "k8s"


def training_job(defs) -> dict:
    asset = defs.resolve_assets_def(["small", "candidate_model"])
    tags = asset.op.tags
    assert json.loads(tags["dagster-k8s/config"])  # tags reach step pods as JSON strings
    job = construct_dagster_k8s_job(
        job_config=DagsterK8sJobConfig(
            job_image="registry.example.com/unified-ai:0.1.0",
            dagster_home="/opt/dagster/dagster_home",
            image_pull_policy="IfNotPresent",
            instance_config_map="dagster-instance",
            postgres_password_secret="dagster-postgresql-secret",
            env_secrets=["unified-ai-s3"],
        ),
        args=["dagster", "api", "execute_step", "{}"],
        job_name="dagster-step-0123456789abcdef",
        user_defined_k8s_config=get_user_defined_k8s_config(tags),
        component="step_worker",
    )
    return ApiClient().sanitize_for_serialization(job)


def test_training_step_job_requests_a_gpu_node_and_is_a_valid_job(gpu_project):
    body = training_job(cluster_defs(gpu_project))
    kubernetes_validate.validate(body, K8S_VERSION, strict=True)
    pod = body["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": "16Gi"}
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_an_invalid_job_is_caught_by_the_validator(gpu_project):
    body = training_job(cluster_defs(gpu_project))
    body["spec"]["template"]["spec"]["containers"][0]["resources"]["limitz"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(body, K8S_VERSION, strict=True)


def test_training_runs_in_a_concurrency_pool(gpu_project):
    asset = cluster_defs(gpu_project).resolve_assets_def(["small", "candidate_model"])
    assert asset.node_def.pool == "training"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "resources:\n  training:\n    limits: {memory: lots}\n",
            "resources.training.limits: memory: 'lots' is not a Kubernetes quantity",
        ),
        (
            "resources:\n  training:\n    tolerations: [{key: gpu, operator: Sometimes}]\n",
            "resources.training.tolerations.0.operator",
        ),
        ("resources:\n  gpu_stage: {}\n", "resources.gpu_stage"),
    ],
)
def test_malformed_resource_settings_fail_at_load_naming_the_field(projects_dir, block, message):
    path = write_project(projects_dir)
    path.write_text(path.read_text() + block)
    with pytest.raises(ProjectConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_project_file(path)
