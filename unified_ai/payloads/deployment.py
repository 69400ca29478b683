"""What a deployment and a rollback leave in the store: the manifest and the incident."""

from dataclasses import asdict, dataclass, field
from typing import Any

from unified_ai.payloads.reading import _known


@dataclass(frozen=True)
class Deployment:
    """What `deployed_model` stores: which model serves, why it was allowed, by whom, when.

    Only `model_version` is required of a stored manifest: the rest is what the deployment
    recorded (hand-made or partial manifests, as tests and benchmarks write, read with defaults).
    """

    model_version: str
    project: str = ""
    model_uri: str = ""
    mlflow_model_version: str | None = None
    mlflow_run_id: str | None = None
    mlflow_alias: str | None = None
    evaluation_report_version: str | None = None
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    approval: dict[str, Any] = field(default_factory=dict)
    policy_version: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    deployed_at: str | None = None
    deployed_by: str | None = None
    dagster_run_id: str | None = None
    previous_mlflow_champion: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Deployment":
        return cls(**_known(cls, payload, where))

    @property
    def gates_passed(self) -> bool:
        """Whether every gate it records passed (a deployment without gates never did)."""
        return bool(self.gates) and all(g.get("passed") for g in self.gates.values())


# -- the record a rollback leaves ------------------------------------------------------------


@dataclass(frozen=True)
class Incident:
    """What `incidents` stores for a rollback: both deployments with their reports, and why."""

    project: str
    kind: str
    opened_at: str
    reason: str | None
    trigger: str
    actor: str | None
    policy_version: str
    rolled_back_from: dict[str, Any]
    rolled_back_to: dict[str, Any]
    dagster_run_id: str | None = None
    live_metrics: dict[str, Any] | None = field(default=None)

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Any, *, where: str) -> "Incident":
        return cls(**_known(cls, payload, where))
