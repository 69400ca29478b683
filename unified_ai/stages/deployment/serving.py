"""`serving_config`: the Kubernetes manifests that run `unified-ai serve` for the deployment.

A Deployment, a Service and a HorizontalPodAutoscaler, rendered from the project file's
`resources.serving` and the code location's own image and environment, validated offline
against the Kubernetes schema (strict: an unknown field is an error), and stored through the
lineage IO manager with the `deployed_model` version it serves as its upstream.

It is selected with `deployed_model` by every job that moves the deployment pointer (training
loop, deploy, rollback), so a deploy or a rollback stays one run and the stored config always
names what is deployed; an automation condition would start a second run that only a running
daemon launches, and could lag the deployment or miss it.

The pods follow the deployment themselves (`unified-ai serve` watches the pointer and swaps the
model in without dropping a request), so the deployment's versions are annotations of the
Deployment object, not of its pod template: applying a new config restarts no pod.
"""

import hashlib

import dagster as dg

from unified_ai.ml.artifacts import Report
from unified_ai.names import DEPLOYED_MODEL, SERVING_CONFIG
from unified_ai.payloads import Deployment
from unified_ai.projects.schema import ProjectConfig, ServingResources
from unified_ai.resources.serving_target import ServingTarget
from unified_ai.resources.storage import LineageStorage
from unified_ai.runtime import SERVE_TOKEN_ENV
from unified_ai.stages.common import asset_metadata, key, stage_tags
from unified_ai.stages.placement import stage_op_tags

#: The oldest Kubernetes the manifests must be valid for (the version the Job and Helm tests
#: validate against too); `autoscaling/v2` has been stable since 1.23.
KUBERNETES_VERSION = "1.30.0"
#: The port `unified-ai serve` listens on in the pod, and the Service's port.
SERVE_PORT = 8000
SERVICE_PORT = 80
#: The secret the code location's pods take their credentials and signing key from
#: (`envSecrets` in `helm/user-deployments-values.yaml`); the serving pods need the same.
RUNTIME_SECRET = "unified-ai-runtime"
#: The secret (and its key) holding the bearer token the endpoint needs for labels. Its own
#: Secret, so the code location's pods never hold it; optional: without it labels are disabled
#: (403) and predictions still work.
SERVING_TOKEN_SECRET = "unified-ai-serving"
SERVING_TOKEN_KEY = "token"
#: The user the image runs as (`Dockerfile`, and the chart's `podSecurityContext`).
RUN_AS_USER = 10001
#: The file beside the JSON body that holds the manifests as one multi-document YAML.
MANIFESTS_FILE = "manifests.yaml"
#: Longest name of a Service (an RFC 1035 label).
_MAX_NAME = 63
_ANNOTATION_PREFIX = "unified-ai"


class ServingConfigError(ValueError):
    """The rendered manifests are not valid Kubernetes objects; nothing was stored."""


def resource_name(project: str) -> str:
    """`<project>-serve` as a Kubernetes name: hyphens for underscores, at most 63 characters."""
    name = f"{project.replace('_', '-')}-serve"
    if len(name) <= _MAX_NAME:
        return name
    # Cut, and keep names of long projects apart with a hash of the whole name.
    digest = hashlib.sha256(project.encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9].rstrip('-')}-{digest}"


def render_manifests(
    project: ProjectConfig,
    deployment: Deployment,
    deployment_version: str,
    *,
    image: str,
    env: dict[str, str],
) -> list[dict]:
    """The Deployment, Service and HorizontalPodAutoscaler that serve `project`.

    Args:
        project: The project; its `resources.serving` sizes, places and scales the pods.
        deployment: The deployment the endpoint serves when the config is rendered.
        deployment_version: Its version in the lineage store.
        image: The container image (the code location's).
        env: Environment variables of the container, by name.
    """
    name = resource_name(project.name)
    selector = {"app.kubernetes.io/name": "unified-ai-serve", "app.kubernetes.io/instance": name}
    labels = {
        **selector,
        "app.kubernetes.io/component": "serving",
        "app.kubernetes.io/part-of": "unified-ai",
    }
    annotations = {
        f"{_ANNOTATION_PREFIX}/project": project.name,
        f"{_ANNOTATION_PREFIX}/deployment-version": deployment_version,
        f"{_ANNOTATION_PREFIX}/model-version": deployment.model_version,
        f"{_ANNOTATION_PREFIX}/mlflow-model-version": str(deployment.mlflow_model_version or ""),
        f"{_ANNOTATION_PREFIX}/policy-version": project.policy_version,
    }
    metadata = {"name": name, "labels": labels}
    pod = _pod_spec(project.resources.serving, _container(project, image=image, env=env))
    return [
        _deployment_manifest(metadata, annotations, selector, labels, pod),
        _service_manifest(project, metadata, selector),
        _autoscaler_manifest(project.resources.serving, metadata, name),
    ]


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def _container(project: ProjectConfig, *, image: str, env: dict[str, str]) -> dict:
    """The `unified-ai serve` container: its command, port, environment, probes and size."""
    spec: ServingResources = project.resources.serving
    container: dict = {
        "name": "serve",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "unified-ai",
            "serve",
            project.name,
            "--host",
            "0.0.0.0",
            "--port",
            str(SERVE_PORT),
        ],
        "ports": [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "env": [
            *({"name": k, "value": v} for k, v in env.items()),
            {
                "name": SERVE_TOKEN_ENV,
                "valueFrom": {
                    "secretKeyRef": {
                        "name": SERVING_TOKEN_SECRET,
                        "key": SERVING_TOKEN_KEY,
                        "optional": True,
                    }
                },
            },
        ],
        # Object-store credentials and the store's signing key, as the code location gets them.
        "envFrom": [{"secretRef": {"name": RUNTIME_SECRET, "optional": True}}],
        # Ready only once a deployed model is loaded and verified: no traffic before that.
        "readinessProbe": _probe("/readyz", 5, 3),
        # Model loading happens in the background, so liveness never waits on it.
        "livenessProbe": {**_probe("/healthz", 10, 3), "initialDelaySeconds": 10},
        # The Service stops routing to a terminating pod only after a moment; keep serving
        # until then so a rolling update drops no request.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    resources = {k: dict(v) for k, v in (("requests", spec.requests), ("limits", spec.limits)) if v}
    if resources:
        container["resources"] = resources
    return container


def _pod_spec(spec: ServingResources, container: dict) -> dict:
    """The pod: the container, run as the image's user, placed where `spec` says."""
    pod: dict = {
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER},
        "terminationGracePeriodSeconds": 30,
    }
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    return pod


def _deployment_manifest(
    metadata: dict, annotations: dict, selector: dict, labels: dict, pod: dict
) -> dict:
    """The Deployment: rolling updates that keep every replica serving, scraped by Prometheus."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**metadata, "annotations": annotations},
        # No `replicas`: the autoscaler owns the count, and applying the config again would
        # otherwise reset it.
        "spec": {
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    # On the pods (not the Service), so Prometheus scrapes every replica once.
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(SERVE_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod,
            },
        },
    }


def _service_manifest(project: ProjectConfig, metadata: dict, selector: dict) -> dict:
    """The Service in front of the pods (cluster-internal)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {**metadata, "annotations": {f"{_ANNOTATION_PREFIX}/project": project.name}},
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _autoscaler_manifest(spec: ServingResources, metadata: dict, name: str) -> dict:
    """The HorizontalPodAutoscaler: between `spec`'s replica bounds, on CPU utilisation."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": spec.target_cpu_utilization,
                        },
                    },
                }
            ],
        },
    }


def validate_manifests(
    manifests: list[dict], *, where: str, version: str = KUBERNETES_VERSION
) -> None:
    """Validate each manifest offline against Kubernetes `version`'s schema, strictly.

    Raises:
        ServingConfigError: One line naming `where`, the object and what is wrong.
    """
    import kubernetes_validate

    for manifest in manifests:
        kind = manifest.get("kind", "?")
        name = manifest.get("metadata", {}).get("name", "?")
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(part) for part in exc.path) or "(top level)"
            reason = " ".join(str(exc.message).split())
            raise ServingConfigError(
                f"{where}: {kind} {name} is not valid for Kubernetes {version}: {field}: {reason}"
            ) from None


def manifests_yaml(manifests: list[dict]) -> str:
    """The manifests as one multi-document YAML file, for `kubectl apply -f`."""
    import yaml

    class Dumper(yaml.SafeDumper):
        # Objects share label dicts; written out in full, each document reads on its own
        # (no `&id001` anchors).
        def ignore_aliases(self, data) -> bool:
            return True

    return yaml.dump_all(manifests, Dumper=Dumper, sort_keys=False, default_flow_style=False)


def build_serving_config(project: ProjectConfig) -> dg.AssetsDefinition:
    deployed_key = key(project, DEPLOYED_MODEL)

    @dg.asset(
        key=key(project, SERVING_CONFIG),
        ins={"deployed_model": dg.AssetIn(key=deployed_key)},
        tags=stage_tags("deployment"),
        description="Kubernetes manifests (Deployment, Service, HorizontalPodAutoscaler) that "
        "run `unified-ai serve` for the current deployment, sized by the project file's "
        f"`resources.serving`, validated against Kubernetes {KUBERNETES_VERSION} (strict). "
        f"Rendered again by every deploy and rollback; `{MANIFESTS_FILE}` in the stored "
        "version is ready for `kubectl apply -f`.",
        metadata=asset_metadata(project),
        kinds={"kubernetes", "yaml"},
        op_tags=stage_op_tags(project, "deployment"),
    )
    def serving_config(
        context: dg.AssetExecutionContext,
        deployed_model: dict,
        lineage: LineageStorage,
        serving_target: ServingTarget,
    ) -> dg.Output:
        # The version the IO manager just loaded (and recorded as this value's upstream).
        log = lineage.reader(context).log
        loaded = log.upstream() if log is not None else {}
        deployment_version = loaded.get("/".join(deployed_key.path))
        where = f"{project.name}/{SERVING_CONFIG}"
        if not isinstance(deployment_version, str):
            raise dg.Failure(
                description=f"{where}: {DEPLOYED_MODEL} was not loaded through the lineage IO "
                f"manager (read: {deployment_version!r}), so the deployment served is unknown"
            )
        deployment = Deployment.from_payload(
            deployed_model, where=f"{project.name}/{DEPLOYED_MODEL}@{deployment_version}"
        )
        image, image_source = serving_target.pod_image()
        if not serving_target.image:
            context.log.warning(f"{where}: image {image} is {image_source}")
        manifests = render_manifests(
            project, deployment, deployment_version, image=image, env=serving_target.pod_env()
        )
        try:
            validate_manifests(manifests, where=where)
        except ServingConfigError as exc:
            raise dg.Failure(description=str(exc)) from None
        spec = project.resources.serving
        body = {
            "project": project.name,
            "name": resource_name(project.name),
            "deployment_version": deployment_version,
            "model_version": deployment.model_version,
            "mlflow_model_version": deployment.mlflow_model_version,
            "image": image,
            "image_source": image_source,
            "kubernetes_version": KUBERNETES_VERSION,
            "resources": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "manifests": manifests,
        }
        return dg.Output(
            Report(body=body, attachments={MANIFESTS_FILE: manifests_yaml(manifests)}),
            metadata={
                "deployment_version": deployment_version,
                "model_version": deployment.model_version,
                "image": image,
                "replicas": f"{spec.min_replicas}-{spec.max_replicas}",
                "kubernetes_version": KUBERNETES_VERSION,
            },
        )

    return serving_config


def build_serving_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_serving_config(project)]
