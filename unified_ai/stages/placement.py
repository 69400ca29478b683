"""Where each stage's steps run on a cluster, as `dagster-k8s/config` op tags.

Op tags reach the step pods that `k8s_job_executor` creates (job tags reach only the run pod,
and the chart's code-server placement does not reach run pods at all), so GPU requests, node
selectors and tolerations from the project file go here. Locally the tags are inert data.
"""

from unified_ai.projects.schema import ProjectConfig, Stage

K8S_CONFIG_TAG = "dagster-k8s/config"
TRAINING_POOL = "training"


def stage_op_tags(project: ProjectConfig, stage: Stage) -> dict:
    """Op tags for the steps of `stage`, empty when the project sets nothing for it."""
    spec = project.resources.get(stage)
    if spec is None:
        return {}
    container: dict = {}
    resources = {k: v for k, v in (("requests", spec.requests), ("limits", spec.limits)) if v}
    if resources:
        container["resources"] = resources
    pod: dict = {}
    if spec.node_selector:
        pod["node_selector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [
            t.model_dump(by_alias=False, exclude_none=True) for t in spec.tolerations
        ]
    config = {}
    if container:
        config["container_config"] = container
    if pod:
        config["pod_spec_config"] = pod
    return {K8S_CONFIG_TAG: config} if config else {}


def pipes_pod_spec(project: ProjectConfig, stage: Stage = "training") -> dict:
    """Base pod spec for a Pipes training pod, with the stage's resources and placement."""
    spec = project.resources.get(stage)
    container: dict = {"name": "training"}
    pod: dict = {"containers": [container], "restartPolicy": "Never"}
    if spec is None:
        return pod
    resources = {k: v for k, v in (("requests", spec.requests), ("limits", spec.limits)) if v}
    if resources:
        container["resources"] = resources
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    return pod
