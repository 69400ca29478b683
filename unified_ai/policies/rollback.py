"""Choosing what a rollback reverts to. Pure: the caller supplies lazy lookups into the store."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass


class RollbackError(ValueError):
    """The rollback cannot be done; nothing was changed."""


@dataclass(frozen=True)
class DeploymentFacts:
    """What a stored deployment says about itself."""

    version: str
    model_version: str
    gates_passed: bool


@dataclass(frozen=True)
class Move:
    """One pointer move of the deployment, as the history records it."""

    version: str
    previous: str | None
    action: str


def choose_target(
    *,
    current: str | None,
    history_newest_first: Iterable[Move],
    deployment: Callable[[str], DeploymentFacts | None],
    deployment_of_model: Callable[[str], str | None],
    owner_of: Callable[[str], str | None],
    requested: str | None = None,
    pointer_damaged: bool = False,
) -> DeploymentFacts:
    """Return the deployment to roll back to, or raise `RollbackError` with a one-line reason.

    Args:
        current: The deployment version that is live now (if the pointer is damaged, the
            version its newest history entry set).
        history_newest_first: The deployment pointer's moves, newest first (read lazily).
        deployment: Facts about a stored deployment version, or None if there is none.
        deployment_of_model: The newest deployment version that deployed a model version.
        owner_of: Which asset a version belongs to, for a version that is no deployment.
        requested: A deployment or model version asked for explicitly; None picks the newest
            earlier deployment that passed its gates and was not itself rolled back from.
        pointer_damaged: The store refused the pointer itself (unreadable, names no valid
            version, or fails its integrity check). Then `current` is only what the pointer
            should say, and asking for it explicitly is the repair: it is allowed.
    """
    if current is None:
        raise RollbackError("nothing is deployed yet, so there is nothing to roll back")
    if requested:
        facts = deployment(requested)
        if facts is None:
            via_model = deployment_of_model(requested)
            facts = deployment(via_model) if via_model else None
        if facts is None:
            owner = owner_of(requested)
            if owner is not None:
                raise RollbackError(
                    f"version {requested} belongs to {owner}, and was never deployed"
                )
            raise RollbackError(f"version {requested} does not exist in the store")
        if facts.version == current and not pointer_damaged:
            raise RollbackError(f"version {requested} is already the deployed version")
        if not facts.gates_passed:
            raise RollbackError(f"deployment {facts.version} never passed its gates")
        return facts
    rolled_back_from: set[str] = set()
    for move in history_newest_first:
        if move.action == "rollback" and move.previous:
            rolled_back_from.add(move.previous)
        if move.version == current or move.version in rolled_back_from:
            continue
        facts = deployment(move.version)
        if facts is not None and facts.gates_passed:
            return facts
    raise RollbackError(
        "no earlier deployment that passed its gates to roll back to (see `unified-ai history`)"
    )
