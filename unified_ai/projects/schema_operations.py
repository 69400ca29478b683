"""The project schema's operations models: the monitoring inbox and cluster resources.

How a project runs once deployed: where production batches and labels arrive, and the
resources and placement of each stage's pods and of the serving endpoint.
"""

import re
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from unified_ai.projects.schema_base import _Strict


class Monitoring(_Strict):
    """Where production batches and their labels arrive."""

    inbox: str | None = Field(
        default=None,
        description="folder or fsspec URL; default: $UNIFIED_AI_HOME/inbox/<project>",
    )
    drift_report_rows: int = Field(
        default=20_000,
        ge=100,
        le=10_000_000,
        description="rows sampled for the Evidently HTML page",
    )
    drift_page_every: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="also render the Evidently page for every Nth batch; 0: only for a batch "
        "in which a column drifts (the page costs seconds per batch)",
    )
    shadow_rows: int = Field(
        default=100_000,
        ge=100,
        le=100_000_000,
        description="rows of a batch the shadow models score: every row of a smaller batch, "
        "the same random sample for each shadow model of a larger one",
    )
    label_expiry_hours: float = Field(
        default=168,
        gt=0,
        le=24 * 366,
        description="hours a labels file may wait for its batch to be scored; then the labels "
        "sensor moves it into labels/expired/ with a reason file (never deleted)",
    )


_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?")


def _quantities(values: dict[str, str]) -> dict[str, str]:
    for resource, amount in values.items():
        # fullmatch: `re.match` with `$` would accept a trailing newline.
        if not _QUANTITY.fullmatch(str(amount)):
            raise ValueError(
                f"{resource}: {amount!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)"
            )
    return values


class Toleration(_Strict):
    """A Kubernetes toleration (camelCase keys, as in a pod spec)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(
        default=None, ge=0, le=2**31 - 1, alias="tolerationSeconds"
    )


class StageResources(_Strict):
    """Container resources and placement for one stage when running on a cluster."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)

    @field_validator("requests", "limits")
    @classmethod
    def _check_quantities(cls, value: dict[str, str]) -> dict[str, str]:
        return _quantities(value)


class ServingResources(StageResources):
    """Resources, placement and scaling of the serving endpoint (`unified-ai serve`) on a cluster.

    The `serving_config` asset renders them into a Deployment and a HorizontalPodAutoscaler.
    The autoscaler scales on CPU use relative to the CPU request, so one is required. The
    defaults are the code location's own pod resources (`helm/user-deployments-values.yaml`).
    """

    requests: dict[str, str] = Field(default_factory=lambda: {"cpu": "250m", "memory": "1Gi"})
    limits: dict[str, str] = Field(default_factory=lambda: {"memory": "2Gi"})
    min_replicas: int = Field(default=2, ge=1, le=1000, description="two survive a node drain")
    max_replicas: int = Field(default=4, ge=1, le=1000)
    target_cpu_utilization: int = Field(
        default=70, ge=1, le=100, description="percent of the CPU request the autoscaler keeps"
    )

    @model_validator(mode="after")
    def _scalable(self) -> "ServingResources":
        if "cpu" not in self.requests:
            raise ValueError(
                "requests.cpu is required: the autoscaler scales on CPU use relative to it"
            )
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


Stage = Literal["data", "training", "evaluation", "deployment", "monitoring"]


class Resources(_Strict):
    """Cluster resources: each stage's step pods, and the serving endpoint's pods.

    A stage's settings become `dagster-k8s/config` op tags of its steps (a stage left out gets
    the cluster's defaults); `serving` is rendered by the `serving_config` asset.
    """

    data: StageResources | None = None
    training: StageResources | None = None
    evaluation: StageResources | None = None
    deployment: StageResources | None = None
    monitoring: StageResources | None = None
    serving: ServingResources = ServingResources()

    def get(self, stage: Stage) -> StageResources | None:
        """The resources of `stage`'s steps, None when the project sets none."""
        return getattr(self, stage)
