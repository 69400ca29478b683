"""Monitoring: shadow scores, the batch scored by the models a deployment could become.

The deployment a rollback would restore and a candidate waiting for approval score the same
rows as the live model, so models are compared on the same rows.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.ml.batch_scoring import empty_shadow_columns, primary_score, shadow_rows
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.training import predict
from unified_ai.names import (
    CANDIDATE_MODEL,
    EVALUATION_REPORT,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.payloads import Deployment
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import rollback_target, waiting_candidate
from unified_ai.stages.common import key

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.ml.chunked_batches import Shadow


def shadow_scores(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    manifest: Deployment,
    deployment: str,
    batch: "pd.DataFrame",
    live_proba,
) -> tuple[dict, dict[str, str]]:
    """The batch scored by the deployment a rollback would restore and by a waiting candidate.

    Returns the shadow columns of `predictions` (always all four, empty when there is no such
    model, so every batch's frame has one shape) and what its metadata says about them. A
    batch larger than `monitoring.shadow_rows` is shadow-scored on a random sample. Both
    models are read through the step's reader: allow-listed skops only, and their versions are
    in the lineage of these predictions. A shadow that is the live model itself (a redeployed
    version: versions are content hashes) reuses `live_proba` instead of loading it again.
    Shadow columns hold each model's primary score (`batch_scoring.primary_score`).
    """
    import numpy as np

    columns: dict[str, Any] = empty_shadow_columns()
    metadata = {"shadow_previous": "none", "shadow_candidate": "none"}
    rows = shadow_rows(len(batch), project.monitoring.shadow_rows, context.partition_key)
    if len(rows) < len(batch):
        metadata["shadow_sample"] = (
            f"{len(rows):,} of {len(batch):,} (a random sample: monitoring.shadow_rows)"
        )

    def shadow(role: str, owner_column: str, proba_column: str, owner: str, model_version: str):
        columns[owner_column] = owner
        if model_version == manifest.model_version:
            columns[proba_column] = live_proba
            metadata[f"shadow_{role}"] = f"{owner} (the live model itself)"
            return
        try:
            model = reader.read_value(key(project, CANDIDATE_MODEL).path, model_version)
            if model.task != project.task:
                raise ValueError(f"a {model.task} model, the project's task is {project.task}")
            features = FeatureColumns(**model.card["features"])
            scores = np.full(len(batch), np.nan)
            sample = batch if len(rows) == len(batch) else batch.iloc[rows]
            scores[rows] = primary_score(model.task, predict(model, sample, features))
            columns[proba_column] = scores
            metadata[f"shadow_{role}"] = owner
        except Exception as exc:
            # A shadow is evidence, not service: whatever stops it (a refused file, inputs
            # it does not know) must not stop the live scores. Its rows stay unpaired.
            reason = f"{owner}: not scored: {exc}"[:500]
            metadata[f"shadow_{role}"] = reason
            context.log.warning(f"{project.name}/predictions: shadow {role} {reason}")

    for target in shadow_targets(context, reader, project, deployment, manifest):
        shadow(*target)
    return columns, metadata


def chunked_shadows(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployment: str,
    manifest: Deployment,
) -> tuple[list["Shadow"], dict[str, str], dict[str, str]]:
    """The shadows of a batch scored chunk by chunk, their roles and what metadata says of them.

    The same models as `shadow_scores`, loaded once up front: a shadow that cannot be read is
    kept as `_Unloadable`, so scoring it fails with why and the live scores go on.

    Returns:
        The shadows to score, each owner's role (`previous` or `candidate`), and the
        `shadow_*` metadata of `predictions`.
    """
    from unified_ai.ml.chunked_batches import Shadow

    shadows: list[Shadow] = []
    roles: dict[str, str] = {}
    metadata = {"shadow_previous": "none", "shadow_candidate": "none"}

    def shadow(role: str, owner_column: str, proba_column: str, owner: str, model_version: str):
        if model_version == manifest.model_version:
            shadows.append(Shadow(owner_column, proba_column, owner))
            metadata[f"shadow_{role}"] = f"{owner} (the live model itself)"
            return
        roles[owner] = role
        try:
            loaded = reader.read_value(key(project, CANDIDATE_MODEL).path, model_version)
            if loaded.task != project.task:
                raise ValueError(f"a {loaded.task} model, the project's task is {project.task}")
        except Exception as exc:
            loaded = _Unloadable(exc)
        shadows.append(Shadow(owner_column, proba_column, owner, loaded))
        metadata[f"shadow_{role}"] = owner

    for target in shadow_targets(context, reader, project, deployment, manifest):
        shadow(*target)
    return shadows, roles, metadata


def shadow_targets(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployment: str,
    manifest: Deployment,
) -> list[tuple[str, str, str, str, str]]:
    """The models that shadow-score a batch: a rollback's deployment, then a waiting candidate.

    Each as (role, owner column, score column, owner, model version).
    """
    targets = []
    previous = rollback_target(reader, project.name, deployment)
    if previous is not None:
        version, previous_manifest = previous
        targets.append(
            (
                "previous",
                SHADOW_PREVIOUS_DEPLOYMENT,
                SHADOW_PREVIOUS_PROBA,
                version,
                previous_manifest.model_version,
            )
        )
    candidate = waiting_candidate_version(context, reader, project, manifest)
    if candidate is not None:
        targets.append(
            ("candidate", SHADOW_CANDIDATE_MODEL, SHADOW_CANDIDATE_PROBA, candidate, candidate)
        )
    return targets


class _Unloadable:
    """A shadow model that could not be read: scoring it fails with why (recorded as such)."""

    task = None

    def __init__(self, error: Exception):
        self._error = error

    @property
    def card(self) -> dict:
        raise self._error


def waiting_candidate_version(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployed: Deployment,
) -> str | None:
    """The model version of a candidate waiting for approval (gates read from the instance)."""
    from unified_ai.policies.gates import GATES, gate_decision
    from unified_ai.stages.gate_records import gate_records

    report_key = key(project, EVALUATION_REPORT)

    def gates_passed(report_version: str) -> bool:
        records = gate_records(context.instance, report_key, GATES)
        return gate_decision(report_version, records, GATES).allowed

    waiting = waiting_candidate(reader, project.name, deployed, gates_passed)
    return None if waiting is None else str(waiting[1].model_version)
