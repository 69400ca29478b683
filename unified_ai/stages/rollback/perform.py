"""Rollback mechanics: validate the target, move the MLflow alias and the deployment pointer.

Everything is validated before anything changes; the alias is restored if the pointer move
fails, so a refused or failed rollback leaves pointer, alias and history as they were.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unified_ai.io.reader import StoreReader
from unified_ai.io.records import utc_now
from unified_ai.io.store import LineageStore, LineageStoreError, validate_version
from unified_ai.names import BUILT_FOR_DEPLOYMENT, DEPLOYED_MODEL, ROLLBACK_ACTION
from unified_ai.payloads import Deployment
from unified_ai.policies.rollback import DeploymentFacts, Move, RollbackError, choose_target
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import read_deployment

if TYPE_CHECKING:
    from unified_ai.resources.mlflow_registry import MlflowRegistry


@dataclass(frozen=True)
class RollbackOutcome:
    rolled_back_from: str
    rolled_back_to: str
    from_deployment: Deployment
    to_deployment: Deployment


def _facts(store: LineageStore, project: ProjectConfig, version: str) -> DeploymentFacts | None:
    try:
        validate_version(version)
    except LineageStoreError:
        return None
    if not store.has_version([project.name, DEPLOYED_MODEL], version):
        return None
    manifest = read_deployment(StoreReader(store), project.name, version)
    return DeploymentFacts(
        version=version, model_version=manifest.model_version, gates_passed=manifest.gates_passed
    )


def _pointer_damaged(store: LineageStore, path: list[str]) -> bool:
    try:
        store.current_version(path)
    except LineageStoreError:
        return True
    return False


def resolve_target(
    store: LineageStore, project: ProjectConfig, requested: str | None
) -> DeploymentFacts:
    """The deployment a rollback would restore; raises `RollbackError` with the reason."""
    path = [project.name, DEPLOYED_MODEL]
    reader = StoreReader(store)

    def deployment_of_model(model_version: str) -> str | None:
        for manifest in reversed(store.versions(path)):
            if (
                read_deployment(reader, project.name, manifest.version).model_version
                == model_version
            ):
                return manifest.version
        return None

    def owner_of(version: str) -> str | None:
        try:
            validate_version(version)
        except LineageStoreError:
            return None
        for asset in BUILT_FOR_DEPLOYMENT:
            if store.has_version([project.name, asset], version):
                return f"{project.name}/{asset}"
        return None

    return choose_target(
        current=store.current_or_recorded(path),  # a damaged pointer is repaired by rolling back
        pointer_damaged=_pointer_damaged(store, path),
        history_newest_first=(
            Move(m.version, m.previous, m.action) for m in store.history_newest_first(path)
        ),
        deployment=lambda v: _facts(store, project, v),
        deployment_of_model=deployment_of_model,
        owner_of=owner_of,
        requested=requested or None,
    )


def perform_rollback(
    *,
    store: LineageStore,
    registry: "MlflowRegistry",
    project: ProjectConfig,
    requested: str | None,
    reason: str,
    actor: str,
    run_id: str | None,
) -> RollbackOutcome:
    """Roll the deployment back: MLflow alias, then pointer and history.

    O(1) in the number of stored versions when a version is given; otherwise a few reads of
    the newest history entries.
    """
    if not reason.strip():
        raise RollbackError("a rollback needs a reason")
    path = [project.name, DEPLOYED_MODEL]
    current = store.current_or_recorded(path)
    if current is None:  # as `choose_target` refuses it
        raise RollbackError("nothing is deployed yet, so there is nothing to roll back")
    target = resolve_target(store, project, requested)
    from_deployment = read_deployment(StoreReader(store), project.name, current)
    to_deployment = read_deployment(StoreReader(store), project.name, target.version)
    if to_deployment.mlflow_model_version is None:  # a hand-made manifest: no alias to restore
        raise RollbackError(
            f"deployment {target.version} records no MLflow model version to make the champion"
        )
    previous_alias = registry.champion_version(project.model_name)
    registry.set_champion(project.model_name, to_deployment.mlflow_model_version)
    try:
        store.set_current(
            path,
            target.version,
            action=ROLLBACK_ACTION,
            run_id=run_id,
            actor=actor,
            reason=reason,
            policy_version=project.policy_version,
        )
    except BaseException:
        if previous_alias is not None:
            registry.set_champion(project.model_name, previous_alias)
        raise
    registry.record_rollback(
        project.model_name,
        from_version=from_deployment.mlflow_model_version,
        to_version=to_deployment.mlflow_model_version,
        reason=reason,
        actor=actor,
        at=utc_now(),
    )
    return RollbackOutcome(
        rolled_back_from=current,
        rolled_back_to=target.version,
        from_deployment=from_deployment,
        to_deployment=to_deployment,
    )
