"""The serving endpoint's Kubernetes manifests: valid for the cluster (strict), sized by the
project file, run as the code location's pods run; and re-rendered by every run that moves the
deployment."""

from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml

from unified_ai import names
from unified_ai.definitions import build_definitions
from unified_ai.payloads import Deployment
from unified_ai.project_tree import load_projects
from unified_ai.projects.loader import ProjectConfigError, load_project_file
from unified_ai.resources.serving_target import ServingTarget
from unified_ai.runtime import SERVE_TOKEN_ENV, SIGNING_KEY_ENV, load_settings
from unified_ai.stages.deployment.serving import (
    KUBERNETES_VERSION,
    RUNTIME_SECRET,
    SERVING_TOKEN_KEY,
    SERVING_TOKEN_SECRET,
    ServingConfigError,
    manifests_yaml,
    render_manifests,
    resource_name,
    validate_manifests,
)
from unified_ai_tests.conftest import write_project

HELM_VALUES = Path(__file__).resolve().parents[2] / "helm" / "user-deployments-values.yaml"
HELM_DEPLOYMENT = yaml.safe_load(HELM_VALUES.read_text())["deployments"][0]
#: The plain variables of the code location's pods in the Helm values (secrets are references).
HELM_ENV = {e["name"]: e["value"] for e in HELM_DEPLOYMENT["env"] if "value" in e}
#: The environment of the code location's pods in the cluster (the chart adds the image; the
#: signing key comes from the runtime Secret).
CLUSTER_ENV = {
    **HELM_ENV,
    SIGNING_KEY_ENV: "0123456789abcdef0123456789abcdef",
    "DAGSTER_CURRENT_IMAGE": "registry.example.com/ml/unified-ai:0.1.0",
}
SERVING_RESOURCES = """\
resources:
  serving:
    requests: {cpu: "1", memory: 2Gi}
    limits: {memory: 3Gi}
    min_replicas: 3
    max_replicas: 9
    target_cpu_utilization: 55
    node_selector: {pool: serving}
    tolerations:
      - {key: dedicated, operator: Equal, value: serving, effect: NoSchedule}
"""
DEPLOYMENT = Deployment(model_version="0123456789abcdef", mlflow_model_version="7")


@pytest.fixture
def sized_project(projects_dir):
    path = write_project(projects_dir)
    path.write_text(path.read_text() + SERVING_RESOURCES)
    return load_project_file(path)


def render(project, target: ServingTarget | None = None) -> dict[str, dict]:
    target = target or ServingTarget.from_settings(load_settings(CLUSTER_ENV))
    image, _ = target.pod_image()
    manifests = render_manifests(
        project, DEPLOYMENT, "fedcba9876543210", image=image, env=target.pod_env()
    )
    return {m["kind"]: m for m in manifests}


def test_manifests_of_the_packaged_project_are_valid_kubernetes_objects():
    project = next(p for p in load_projects() if p.name == "mortgage_approval")
    manifests = render(project)
    assert sorted(manifests) == ["Deployment", "HorizontalPodAutoscaler", "Service"]
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    validate_manifests(list(manifests.values()), where="mortgage_approval/serving_config")
    # Kubernetes names are RFC 1035 labels: no underscores.
    assert manifests["Service"]["metadata"]["name"] == "mortgage-approval-serve"


def test_container_runs_the_endpoint_with_probes_metrics_and_the_code_locations_env():
    project = next(p for p in load_projects() if p.name == "mortgage_approval")
    deployment = render(project)["Deployment"]
    template = deployment["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert container["image"] == CLUSTER_ENV["DAGSTER_CURRENT_IMAGE"]
    assert container["command"] == [
        "unified-ai",
        "serve",
        "mortgage_approval",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
    ]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }
    # The same variables and secret as the code location's pods in the Helm values.
    helm = HELM_DEPLOYMENT
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env == HELM_ENV
    # The bearer token labels need comes from the serving Secret, never from a value; without
    # that Secret the pod still starts (labels disabled, predictions served).
    [token] = [e for e in container["env"] if e["name"] == SERVE_TOKEN_ENV]
    assert token == {
        "name": SERVE_TOKEN_ENV,
        "valueFrom": {
            "secretKeyRef": {
                "name": SERVING_TOKEN_SECRET,
                "key": SERVING_TOKEN_KEY,
                "optional": True,
            }
        },
    }
    # The chart's values tell operators where that Secret is expected.
    assert f"secret generic {SERVING_TOKEN_SECRET}" in HELM_VALUES.read_text()
    assert env["UNIFIED_AI_HOME"] == CLUSTER_ENV["UNIFIED_AI_HOME"]
    assert env["MLFLOW_TRACKING_URI"] == CLUSTER_ENV["MLFLOW_TRACKING_URI"]
    assert {"name": RUNTIME_SECRET} in helm["envSecrets"]
    assert container["envFrom"] == [{"secretRef": {"name": RUNTIME_SECRET, "optional": True}}]
    assert (
        template["spec"]["securityContext"]["runAsUser"] == helm["podSecurityContext"]["runAsUser"]
    )
    # What is deployed is on the Deployment object, not the pod template: applying a new
    # config restarts no pod (the endpoint swaps models itself).
    annotations = deployment["metadata"]["annotations"]
    assert annotations["unified-ai/deployment-version"] == "fedcba9876543210"
    assert annotations["unified-ai/model-version"] == DEPLOYMENT.model_version
    assert "unified-ai/deployment-version" not in template["metadata"]["annotations"]


def test_resources_replicas_and_placement_come_from_the_project_file(sized_project):
    manifests = render(sized_project)
    for manifest in manifests.values():
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "3Gi"},
    }
    assert pod["nodeSelector"] == {"pool": "serving"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "serving", "effect": "NoSchedule"}
    ]
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 55
    assert hpa["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    # The autoscaler owns the replica count.
    assert "replicas" not in manifests["Deployment"]["spec"]


def test_a_project_without_serving_resources_gets_the_code_locations_pod_size(projects_dir):
    project = load_project_file(write_project(projects_dir))
    pod = render(project)["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == HELM_DEPLOYMENT["resources"]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "resources:\n  serving:\n    requests: {memory: 1Gi}\n",
            "resources.serving: requests.cpu is required",
        ),
        (
            "resources:\n  serving:\n    min_replicas: 5\n    max_replicas: 2\n",
            "resources.serving: max_replicas (2) is below min_replicas (5)",
        ),
        ("resources:\n  serving:\n    limits: {memory: lots}\n", "resources.serving.limits"),
        ("resources:\n  serving:\n    replicas: 3\n", "resources.serving.replicas"),
    ],
)
def test_malformed_serving_resources_fail_at_load_naming_the_field(projects_dir, block, message):
    path = write_project(projects_dir)
    path.write_text(path.read_text() + block)
    with pytest.raises(ProjectConfigError) as error:
        load_project_file(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_an_invalid_manifest_is_refused_in_one_line_naming_object_and_field(sized_project):
    manifests = list(render(sized_project).values())
    manifests[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    with pytest.raises(ServingConfigError) as error:
        validate_manifests(manifests, where="small/serving_config")
    message = str(error.value)
    assert message.startswith(
        f"small/serving_config: Deployment small-serve is not valid for Kubernetes "
        f"{KUBERNETES_VERSION}: spec.template.spec.containers.0.readinessProbe: "
    )
    assert "httpGett" in message and "\n" not in message


def test_yaml_file_round_trips_to_the_manifests(sized_project):
    manifests = list(render(sized_project).values())
    text = manifests_yaml(manifests)
    assert list(yaml.safe_load_all(text)) == manifests
    assert "&id" not in text and "*id" not in text  # every document reads on its own


def test_long_project_names_give_distinct_valid_kubernetes_names():
    first, second = "a" * 62 + "b", "a" * 62 + "c"
    names_ = {resource_name(first), resource_name(second)}
    assert len(names_) == 2
    assert all(len(n) <= 63 and n[0].isalpha() and n[-1].isalnum() for n in names_)


def test_outside_a_cluster_the_image_defaults_and_says_so():
    target = ServingTarget.from_settings(load_settings({"UNIFIED_AI_HOME": "/srv/ua"}))
    image, source = target.pod_image()
    assert image.startswith("unified-ai:")
    assert "DAGSTER_CURRENT_IMAGE is not set" in source


def test_every_job_that_moves_the_deployment_renders_the_serving_config(projects_dir):
    write_project(projects_dir)
    defs = build_definitions(load_settings(CLUSTER_ENV), load_projects(str(projects_dir)))
    deployed = ["small", names.DEPLOYED_MODEL]
    serving = ["small", names.SERVING_CONFIG]
    moving = []
    for job in defs.resolve_all_job_defs():
        if job.name.startswith("__"):
            continue  # Dagster's implicit job: runs whatever selection a person picks
        keys = {tuple(k.path) for k in job.asset_layer.executable_asset_keys}
        if tuple(deployed) in keys:
            moving.append(job.name)
            assert tuple(serving) in keys, job.name
    assert sorted(moving) == ["small__deploy", "small__rollback", "small__training_loop"]
    node = defs.resolve_asset_graph().get(dg.AssetKey(serving))
    assert node.parent_keys == {dg.AssetKey(deployed)}


def test_serving_pods_and_pipes_training_pods_use_the_code_locations_image(projects_dir):
    write_project(projects_dir)
    defs = build_definitions(load_settings(CLUSTER_ENV), load_projects(str(projects_dir)))
    image = CLUSTER_ENV["DAGSTER_CURRENT_IMAGE"]
    assert defs.resources["serving_target"].pod_image() == (image, "DAGSTER_CURRENT_IMAGE")
    assert defs.resources["training_runner"].image == image
