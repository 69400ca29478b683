"""Monitoring: a validated production batch scored by the deployment and its shadows.

The batch itself (validated, quarantined when it breaks the schema) is `production_batch`.
"""

from typing import TYPE_CHECKING, Any, TypeAlias

import dagster as dg

from unified_ai.io.frame_chunks import ChunkedOutput, FrameChunks
from unified_ai.io.reader import StoreReader
from unified_ai.ml.batch_scoring import (
    non_finite_scores,
    primary_score,
    scored_frame,
    scoring_metadata,
)
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.training import predict
from unified_ai.names import PREDICTIONS, PRODUCTION_BATCH
from unified_ai.payloads import Deployment
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import NothingDeployedError, deployed_model_of
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import (
    TABLE_OR_CHUNKS,
    TableOrChunks,
    asset_metadata,
    batches_partitions,
    key,
    stage_tags,
)
from unified_ai.stages.monitoring.prediction_reference import (
    PREDICTION_REFERENCE,
    prediction_drift_metadata,
    recorded_classes,
    reference_scores,
)
from unified_ai.stages.monitoring.shadow_scoring import (
    chunked_shadows,
    shadow_scores,
    waiting_candidate_version,
)
from unified_ai.stages.placement import stage_op_tags

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import numpy as np
    import pandas as pd

    from unified_ai.ml.chunked_batches import ChunkedScoring

    #: Given the model that scores a batch in chunks, what to call with each chunk's rows
    #: and predictions as they are made (or None): see `scored_batch`.
    ChunkWatcher: TypeAlias = Callable[[Any], Callable[[pd.DataFrame, pd.DataFrame], None] | None]

# Public names, with those now kept in `prediction_reference` and `shadow_scoring`.
__all__ = [
    "PREDICTION_REFERENCE",
    "build_predictions",
    "production_batch_in",
    "recorded_classes",
    "reference_scores",
    "scored_batch",
    "waiting_candidate_version",
]

#: What `predictions` is, as the UI shows it.
PREDICTIONS_DESCRIPTION = (
    "The batch scored by the currently deployed model (its version recorded), and in the shadow "
    "by the deployment a rollback would restore and by a candidate waiting for approval, so "
    "models are compared on the same rows."
)
PREDICTIONS_KINDS = {"pandas", "scikitlearn"}


def production_batch_in(project: ProjectConfig) -> dg.AssetIn:
    """The batch, as the step scoring it takes it: a large one in chunks (bounded memory)."""
    return dg.AssetIn(
        key=key(project, PRODUCTION_BATCH),
        dagster_type=TABLE_OR_CHUNKS,
    )


def build_predictions(project: ProjectConfig) -> dg.AssetsDefinition:
    """`predictions` alone (with `policy.review`, `unified_ai.stages.review.assets` routes too)."""

    @dg.asset(
        key=key(project, PREDICTIONS),
        ins={"production_batch": production_batch_in(project)},
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description=PREDICTIONS_DESCRIPTION,
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds=PREDICTIONS_KINDS,
    )
    def predictions(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        production_batch: TableOrChunks,
    ):
        return scored_batch(context, lineage.reader(context), project, production_batch)

    return predictions


def scored_batch(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    production_batch: TableOrChunks,
    *,
    watch: "ChunkWatcher | None" = None,
) -> dg.Output:
    """The value of `predictions` (a frame, or chunks for a large batch) and its metadata.

    For a batch scored in chunks, `watch(model)` may give a function to call with each
    chunk's rows and predictions as they are scored, before each is stored.
    """
    try:
        deployment, manifest, model = deployed_model_of(reader, project.name)
    except NothingDeployedError as exc:
        raise dg.Failure(description=f"{project.name}/predictions: {exc}") from None
    _refuse_other_task(project, manifest.model_version, model)
    if isinstance(production_batch, FrameChunks):
        return _chunked_predictions(
            context,
            reader,
            project,
            deployment,
            manifest,
            model,
            production_batch,
            watch(model) if watch is not None else None,
        )
    predicted = predict(model, production_batch, FeatureColumns(**model.card["features"]))
    _refuse_non_finite(project.name, manifest.model_version, production_batch, predicted)
    scored = scored_frame(
        production_batch,
        predicted,
        segments=project.segments,
        threshold=project.evaluation.threshold,
        deployment=deployment,
        model_version=manifest.model_version,
        task=model.task,
        classes=model.classes,
    )
    shadows, shadow_notes = shadow_scores(
        context,
        reader,
        project,
        manifest,
        deployment,
        production_batch,
        primary_score(model.task, predicted),
    )
    scored = scored.assign(**shadows)
    described = scoring_metadata(model.task, scored, model.classes)
    described.update(
        prediction_drift_metadata(
            context, reader, project, model, manifest.model_version, predicted
        )
    )
    return dg.Output(
        scored,
        metadata={
            "deployment_version": deployment,
            "model_version": manifest.model_version,
            "dagster/row_count": len(scored),
            "task": model.task,
            **{
                name: dg.MetadataValue.json(value) if isinstance(value, list | dict) else value
                for name, value in described.items()
            },
            # Why a compiled scorer was not used (stored before its probe outputs were).
            **({"scorer": model.scorer_note} if model.scorer_note else {}),
            **shadow_notes,
        },
    )


def _chunked_predictions(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployment: str,
    manifest: Deployment,
    model,
    batch: FrameChunks,
    each: "Callable[[pd.DataFrame, pd.DataFrame], None] | None" = None,
) -> dg.Output:
    """`predictions` of a batch larger than one chunk: scored and stored chunk by chunk.

    The same rows, columns and metadata as the whole-frame path (see `chunked_scoring`).
    """
    from unified_ai.stages.monitoring.chunked_scoring import stream_scores

    reference, notes = _chunked_reference(context, reader, project, model, manifest)
    shadows, roles, metadata = chunked_shadows(context, reader, project, deployment, manifest)
    scoring, chunks, described = stream_scores(
        project,
        batch,
        context.partition_key,
        model=model,
        deployment=deployment,
        model_version=manifest.model_version,
        reference=reference,
        shadows=shadows,
        each=each,
    )
    sampled = len(scoring.shadow_sample())
    if sampled < batch.rows:
        metadata["shadow_sample"] = (
            f"{sampled:,} of {batch.rows:,} (a random sample: monitoring.shadow_rows)"
        )

    def after() -> dict[str, Any]:
        return _chunked_metadata(context, project, scoring, described, roles, notes, metadata)

    return dg.Output(
        ChunkedOutput(chunks=_refusing_non_finite(chunks), metadata=after),
        metadata={
            "deployment_version": deployment,
            "model_version": manifest.model_version,
            "task": model.task,
            **({"scorer": model.scorer_note} if model.scorer_note else {}),
        },
    )


def _chunked_reference(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    model,
    manifest: Deployment,
) -> "tuple[np.ndarray | None, dict[str, Any]]":
    """The reference scores of a chunked batch's prediction drift, or None and why not."""
    notes: dict[str, Any] = {}
    try:
        reference = reference_scores(context, reader, project, model, manifest.model_version)
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: no prediction drift: {exc}")
        reference = None
        notes["prediction_drift"] = f"not measured: {exc}"[:300]
    return reference, notes


def _refusing_non_finite(chunks: "Iterable[Any]") -> "Callable[[], Iterator[Any]]":
    """The scored chunks to store, failing the run on a non-finite score (nothing is stored)."""
    from unified_ai.stages.monitoring.chunked_scoring import NonFiniteScores

    def stored() -> "Any":
        try:
            yield from chunks
        except NonFiniteScores as exc:
            raise dg.Failure(description=str(exc)) from None

    return stored


def _chunked_metadata(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    scoring: "ChunkedScoring",
    described: "Callable[[], dict[str, Any]]",
    roles: dict[str, str],
    notes: dict[str, Any],
    metadata: dict[str, str],
) -> dict[str, Any]:
    """The metadata of a chunked batch's predictions, once every chunk is stored.

    A shadow that failed mid-stream has its reason recorded under its role.
    """
    found = described()
    for owner, reason in scoring.shadow_failures.items():
        found.pop(f"shadow_failed_{owner}", None)
        metadata[f"shadow_{roles[owner]}"] = reason
        context.log.warning(f"{project.name}/predictions: shadow {roles[owner]} {reason}")
    found.update(notes)
    return {
        "dagster/row_count": scoring.scored_rows,
        **{
            name: dg.MetadataValue.json(value) if isinstance(value, list | dict) else value
            for name, value in found.items()
        },
        **metadata,
    }


def _refuse_other_task(project: ProjectConfig, model_version: str, model) -> None:
    """Fail the run when the deployed model's task is not the project's (never scored as such)."""
    if model.task != project.task:
        raise dg.Failure(
            description=f"{project.name}/predictions: the deployed model {model_version} is a "
            f"{model.task} model but the project's task is {project.task}; retrain or roll "
            "back before scoring"
        )


def _refuse_non_finite(project: str, model_version: str, batch: "pd.DataFrame", proba) -> None:
    """Fail the run (nothing is stored, nothing becomes current) on a NaN or infinite score."""
    bad = non_finite_scores(batch, proba)
    if bad is not None:
        count, first = bad
        raise dg.Failure(
            description=f"{project}/predictions: model {model_version} gave {count} of "
            f"{len(proba)} rows a non-finite score (first: row {first}); refusing to store them"
        )
