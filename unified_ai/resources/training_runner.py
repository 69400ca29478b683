"""Runs a project's external training through Dagster Pipes.

A subprocess locally, a pod in the cluster: one interface, the implementation follows the
runtime.
"""

import sys
from typing import Any, Literal

import dagster as dg

from unified_ai.projects.schema import ProjectConfig

DEFAULT_MODULE = "unified_ai.stages.training.external_train"


def training_command(project: ProjectConfig, python: str = sys.executable) -> list[str]:
    if project.training.script:
        return [python, project.training.script]
    return [python, "-m", DEFAULT_MODULE]


class TrainingRunner(dg.ConfigurableResource):
    """Launches external training.

    Attributes:
        mode: `subprocess` (local) or `k8s` (a pod per training, via `PipesK8sClient`).
        image: Default pod image in the cluster (the code location's own image).
        namespace: Namespace for training pods; empty = the current one.
    """

    mode: Literal["subprocess", "k8s"] = "subprocess"
    image: str = ""
    namespace: str = ""

    def run(
        self,
        context: dg.AssetExecutionContext,
        project: ProjectConfig,
        extras: dict[str, Any],
        base_pod_spec: dict[str, Any] | None = None,
    ):
        """Run the training and return Pipes' completed invocation."""
        if self.mode == "subprocess":
            return dg.PipesSubprocessClient().run(
                command=training_command(project), context=context, extras=extras
            )
        from dagster_k8s import PipesK8sClient

        return PipesK8sClient().run(
            context=context,
            image=project.training.image or self.image or None,
            command=training_command(project, python="python"),
            namespace=self.namespace or None,
            extras=extras,
            base_pod_spec=base_pod_spec,
        )
