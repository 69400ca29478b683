"""Monitoring: a production batch validated, then scored by the deployment and its shadows.

Batches are dynamic partitions (one per file in the project's inbox). A batch that breaks the
schema is stored and flagged as quarantined by a blocking check: never scored, never lost.
"""

from typing import TYPE_CHECKING, Any

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
from unified_ai.ml.validation import validate_batch
from unified_ai.names import PREDICTIONS, PRODUCTION_BATCH
from unified_ai.payloads import Deployment
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import NothingDeployedError, deployed_model_of
from unified_ai.resources.inbox import Inbox
from unified_ai.resources.io_manager import CHUNKS_METADATA
from unified_ai.resources.notifications import Notifier
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

# Public names, with those now kept in `prediction_reference` and `shadow_scoring`.
__all__ = [
    "BATCH_CHECK",
    "PREDICTION_REFERENCE",
    "STREAM_FROM_BYTES",
    "build_predictions",
    "build_production_batch",
    "recorded_classes",
    "reference_scores",
    "waiting_candidate_version",
]

BATCH_CHECK = "batch_is_valid"
PRODUCTION_BATCH_DESCRIPTION = (
    "One file of production rows from the project's inbox, validated before it is scored. "
    "A batch that fails validation is kept and quarantined."
)
BATCH_CHECK_DESCRIPTION = (
    "The batch has the model's inputs with training types and declared values, and unique row ids."
)


def build_production_batch(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, PRODUCTION_BATCH)

    @dg.asset(
        key=asset_key,
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description=PRODUCTION_BATCH_DESCRIPTION,
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas"},
        check_specs=[
            dg.AssetCheckSpec(
                BATCH_CHECK,
                asset=asset_key,
                blocking=True,
                description=BATCH_CHECK_DESCRIPTION,
            )
        ],
    )
    def production_batch(context: dg.AssetExecutionContext, inbox: Inbox, notifier: Notifier):
        from unified_ai.resources.inbox import PROCESSED, QUARANTINE, InboxError

        batch = context.partition_key
        folder = inbox.folder(project)
        try:
            streamed = _streamed_batch(project, inbox, folder, batch)
            frame = inbox.read(folder, batch) if streamed is None else None
        except InboxError as exc:
            yield _quarantine_unreadable(context, project, inbox, notifier, folder, exc)
            raise dg.Failure(
                description=f"{project.name}/production_batch[{batch}]: {exc}"
            ) from None
        if streamed is not None:
            # Validated and stored chunk by chunk by the IO manager while this step waits; a
            # file unreadable past its first chunk is quarantined from there (nothing stored).
            yield dg.Output(
                streamed.output(
                    lambda exc: _unreadable_mid_stream(context, project, inbox, notifier, exc)
                )
            )
            outcome, rows = streamed.outcome(), streamed.rows
        else:
            assert frame is not None
            outcome, rows = validate_batch(project, frame), len(frame)
            yield dg.Output(
                frame,
                metadata={
                    "dagster/row_count": rows,
                    "quarantined": not outcome.passed,
                    "reason": outcome.describe()[:1000],
                },
            )
        # The rows are in the lineage store now: the file leaves the waiting list, kept.
        inbox.archive(folder, batch, PROCESSED if outcome.passed else QUARANTINE)
        if not outcome.passed:
            notifier.notify(
                project.policy.notifications,
                project=project.name,
                event="quarantine",
                summary=f"batch {batch} was quarantined (kept, not scored): {outcome.describe()}",
                evidence={"batch": batch, "rows": rows},
                run_id=context.run_id,
            )
        yield dg.AssetCheckResult(
            check_name=BATCH_CHECK,
            passed=outcome.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=outcome.describe()[:2000],
            metadata={"failures": dg.MetadataValue.json(outcome.failures)},
        )

    return production_batch


def _quarantine_unreadable(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    inbox: Inbox,
    notifier: Notifier,
    folder,
    exc: Exception,
) -> dg.AssetCheckResult:
    """Quarantine a batch file that cannot be read and say so: its failed `batch_is_valid`."""
    from unified_ai.resources.inbox import QUARANTINE

    batch = context.partition_key
    inbox.archive(folder, batch, QUARANTINE)
    notifier.notify(
        project.policy.notifications,
        project=project.name,
        event="quarantine",
        summary=f"batch {batch} is unreadable and was not scored: {exc}",
        evidence={"batch": batch},
        run_id=context.run_id,
    )
    return dg.AssetCheckResult(
        check_name=BATCH_CHECK,
        passed=False,
        description=str(exc),
        severity=dg.AssetCheckSeverity.ERROR,
    )


def _unreadable_mid_stream(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    inbox: Inbox,
    notifier: Notifier,
    exc: Exception,
) -> None:
    """A streamed batch file failed past its first chunk: quarantine it, fail in one line.

    Called by the IO manager (the step's body has no later line to do it from); failures that
    are not the file's (the store's disk, say) leave the file in the inbox for another run.
    """
    from unified_ai.resources.inbox import InboxError

    if not isinstance(exc, InboxError):
        return
    _quarantine_unreadable(context, project, inbox, notifier, inbox.folder(project), exc)
    raise dg.Failure(
        description=f"{project.name}/production_batch[{context.partition_key}]: {exc}"
    ) from None


#: Batch files larger than this are read, validated and stored in chunks (bounded memory).
STREAM_FROM_BYTES = 32 << 20


def _streamed_batch(project: ProjectConfig, inbox: Inbox, folder, batch: str):
    """A large batch file as a `StreamedBatch` (its first chunk read), or None to read it whole.

    Raises:
        InboxError: the file is unreadable, or has no rows (as `Inbox.read` says).
    """
    from unified_ai.ml.data import FileRuleError
    from unified_ai.resources.inbox import InboxError
    from unified_ai.resources.io_manager import chunk_rows
    from unified_ai.stages.monitoring.chunked_scoring import StreamedBatch

    path = inbox.locate(folder, batch)
    try:
        if path.stat().st_size <= STREAM_FROM_BYTES:
            return None
        streamed = StreamedBatch(
            project, path, batch, chunk_rows(), lambda: inbox.read(folder, batch)
        )
    except FileNotFoundError:
        return None  # `Inbox.read` says so
    except FileRuleError as exc:
        raise InboxError(f"{path}: {exc}") from None
    except Exception as exc:  # as `Inbox.read`: a decoding problem is the file's
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InboxError(f"{path} cannot be read: {first}") from None
    if streamed.empty:
        raise InboxError(f"{path} has no rows")
    return streamed


def build_predictions(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, PREDICTIONS),
        ins={
            "production_batch": dg.AssetIn(
                key=key(project, PRODUCTION_BATCH),
                metadata={CHUNKS_METADATA: True},
                dagster_type=TABLE_OR_CHUNKS,
            )
        },
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="The batch scored by the currently deployed model (its version recorded), "
        "and in the shadow by the deployment a rollback would restore and by a candidate "
        "waiting for approval, so models are compared on the same rows.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas", "scikitlearn"},
    )
    def predictions(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        production_batch: TableOrChunks,
    ):
        reader = lineage.reader(context)
        try:
            deployment, manifest, model = deployed_model_of(reader, project.name)
        except NothingDeployedError as exc:
            raise dg.Failure(description=f"{project.name}/predictions: {exc}") from None
        _refuse_other_task(project, manifest.model_version, model)
        if isinstance(production_batch, FrameChunks):
            return _chunked_predictions(
                context, reader, project, deployment, manifest, model, production_batch
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

    return predictions


def _chunked_predictions(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    deployment: str,
    manifest: Deployment,
    model,
    batch: FrameChunks,
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
