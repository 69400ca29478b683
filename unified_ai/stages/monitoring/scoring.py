"""Monitoring: a production batch validated, then scored by the deployment and its shadows.

Batches are dynamic partitions (one per file in the project's inbox). A batch that breaks the
schema is stored and flagged as quarantined by a blocking check: never scored, never lost.
"""

from typing import TYPE_CHECKING, Any

import dagster as dg

from unified_ai.io.frame_chunks import ChunkedOutput, FrameChunks
from unified_ai.io.reader import StoreReader
from unified_ai.ml.batch_scoring import (
    empty_shadow_columns,
    non_finite_scores,
    primary_score,
    scored_frame,
    scoring_metadata,
    shadow_rows,
)
from unified_ai.ml.data import FeatureColumns
from unified_ai.ml.drift import PREDICTION_REFERENCE_ROWS, prediction_drift
from unified_ai.ml.training import predict
from unified_ai.ml.validation import validate_batch
from unified_ai.names import (
    CANDIDATE_MODEL,
    EVALUATION_REPORT,
    PREDICTIONS,
    PRODUCTION_BATCH,
    SHADOW_CANDIDATE_MODEL,
    SHADOW_CANDIDATE_PROBA,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
    TRAIN_SPLIT,
)
from unified_ai.payloads import Deployment
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import (
    NothingDeployedError,
    deployed_model_of,
    rollback_target,
    waiting_candidate,
)
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
from unified_ai.stages.placement import stage_op_tags

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BATCH_CHECK = "batch_is_valid"


def build_production_batch(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, PRODUCTION_BATCH)

    @dg.asset(
        key=asset_key,
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description="One file of production rows from the project's inbox, validated before it "
        "is scored. A batch that fails validation is kept and quarantined.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"pandas"},
        check_specs=[
            dg.AssetCheckSpec(
                BATCH_CHECK,
                asset=asset_key,
                blocking=True,
                description="The batch has the model's inputs with training types and declared "
                "values, and unique row ids.",
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
            inbox.archive(folder, batch, QUARANTINE)
            notifier.notify(
                project.policy.notifications,
                project=project.name,
                event="quarantine",
                summary=f"batch {batch} is unreadable and was not scored: {exc}",
                evidence={"batch": batch},
                run_id=context.run_id,
            )
            yield dg.AssetCheckResult(
                check_name=BATCH_CHECK,
                passed=False,
                description=str(exc),
                severity=dg.AssetCheckSeverity.ERROR,
            )
            raise dg.Failure(
                description=f"{project.name}/production_batch[{batch}]: {exc}"
            ) from None
        if streamed is not None:
            # Validated and stored chunk by chunk by the IO manager while this step waits.
            yield dg.Output(streamed.output())
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
        shadows, shadow_notes = _shadow_scores(
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
            _prediction_drift(context, reader, project, model, manifest.model_version, predicted)
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
    from unified_ai.ml.chunked_batches import Shadow
    from unified_ai.stages.monitoring.chunked_scoring import NonFiniteScores, stream_scores

    notes: dict[str, Any] = {}
    try:
        reference = reference_scores(context, reader, project, model, manifest.model_version)
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: no prediction drift: {exc}")
        reference = None
        notes["prediction_drift"] = f"not measured: {exc}"[:300]
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

    previous = rollback_target(reader, project.name, deployment)
    if previous is not None:
        version, previous_manifest = previous
        shadow(
            "previous",
            SHADOW_PREVIOUS_DEPLOYMENT,
            SHADOW_PREVIOUS_PROBA,
            version,
            previous_manifest.model_version,
        )
    candidate = waiting_candidate_version(context, reader, project, manifest)
    if candidate is not None:
        shadow("candidate", SHADOW_CANDIDATE_MODEL, SHADOW_CANDIDATE_PROBA, candidate, candidate)
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

    def stored() -> "Any":
        try:
            yield from chunks
        except NonFiniteScores as exc:
            raise dg.Failure(description=str(exc)) from None

    def after() -> dict[str, Any]:
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

    return dg.Output(
        ChunkedOutput(chunks=stored, metadata=after),
        metadata={
            "deployment_version": deployment,
            "model_version": manifest.model_version,
            "task": model.task,
            **({"scorer": model.scorer_note} if model.scorer_note else {}),
        },
    )


class _Unloadable:
    """A shadow model that could not be read: scoring it fails with why (recorded as such)."""

    task = None

    def __init__(self, error: Exception):
        self._error = error

    @property
    def card(self) -> dict:
        raise self._error


def _prediction_drift(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    model,
    model_version: str,
    predicted,
) -> dict[str, Any]:
    """Drift of the deployed model's predictions: the batch against the training split.

    The reference is the model's predictions on a seeded sample of the current training split
    (`reference_scores`: computed once per model and split version, then reused); the result
    is metadata (`prediction_psi`, `prediction_drifted`).

    Evidence beside the input drift of `drift_report`: a model whose answers move while its
    inputs look the same (or the reverse) is worth a look. Never stops the scores.
    """
    try:
        expected = reference_scores(context, reader, project, model, model_version)
        found = prediction_drift(
            model.task,
            expected,
            primary_score(model.task, predicted),
            project.policy.triggers.drift.psi_threshold,
        )
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: no prediction drift: {exc}")
        return {"prediction_drift": f"not measured: {exc}"[:300]}
    psi = found["psi"]
    return {
        "prediction_drift_of": found["of"],
        "prediction_psi": "none" if psi is None else float(psi),
        "prediction_drifted": bool(found["drifted"]),
    }


#: Where the store keeps each model's reference predictions (beside the project's assets).
PREDICTION_REFERENCE = "prediction_reference"
_REFERENCE_COLUMN = "score"


def reference_scores(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    project: ProjectConfig,
    model,
    model_version: str,
) -> "np.ndarray":
    """The model's primary scores on a seeded sample of the current training split.

    They depend only on the model version, the split version, the split seed and the sample
    size, so they are computed once and stored as an immutable version under
    `[project, prediction_reference, <model>-<split>-<seed>-<rows>]` (written whole, like any
    version: a half-written one is never read), and every later batch reads those 2,000 numbers
    instead of reading the split and scoring it again. The split version is recorded in the
    step's lineage either way, as when it was read.
    """
    import numpy as np
    import pandas as pd

    from unified_ai.io.formats import serialize

    train_path = key(project, TRAIN_SPLIT).path
    train_version = reader.require_current(train_path)
    if reader.log is not None:
        reader.log.add(train_path, train_version)
    seed = project.split.seed
    name = f"{model_version}-{train_version}-{seed}-{PREDICTION_REFERENCE_ROWS}"
    cache = [project.name, PREDICTION_REFERENCE, name]
    store = reader.store
    try:
        stored = store.versions(cache)
        if stored:
            frame = store.read_value(cache, stored[-1].version)
            return frame[_REFERENCE_COLUMN].to_numpy(dtype="float64")
    except Exception as exc:
        # A damaged copy is never trusted: the reference is scored again (`verify` reports it).
        context.log.warning(f"{project.name}/predictions: reference predictions reread: {exc}")
    reference = store.read_value(train_path, train_version)
    if len(reference) > PREDICTION_REFERENCE_ROWS:
        reference = reference.sample(PREDICTION_REFERENCE_ROWS, random_state=seed)
    features = FeatureColumns(**model.card["features"])
    expected = np.asarray(
        primary_score(model.task, predict(model, reference, features)), dtype="float64"
    )
    try:
        kind, files = serialize(pd.DataFrame({_REFERENCE_COLUMN: expected}))
        store.write_version(
            cache,
            kind,
            files,
            run_id=context.run_id,
            upstream={
                "/".join(key(project, CANDIDATE_MODEL).path): model_version,
                "/".join(train_path): train_version,
            },
            metadata={"train_split": train_version, "seed": seed, "rows": len(expected)},
        )
    except Exception as exc:
        context.log.warning(f"{project.name}/predictions: reference predictions not kept: {exc}")
    return expected


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


def _shadow_scores(
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

    previous = rollback_target(reader, project.name, deployment)
    if previous is not None:
        version, previous_manifest = previous
        shadow(
            "previous",
            SHADOW_PREVIOUS_DEPLOYMENT,
            SHADOW_PREVIOUS_PROBA,
            version,
            previous_manifest.model_version,
        )
    candidate = waiting_candidate_version(context, reader, project, manifest)
    if candidate is not None:
        shadow("candidate", SHADOW_CANDIDATE_MODEL, SHADOW_CANDIDATE_PROBA, candidate, candidate)
    return columns, metadata


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


def recorded_classes(
    reader: StoreReader, project: ProjectConfig, model_version: str
) -> list | None:
    """A stored model's class list, read from its card without loading the model.

    The card (`card.json`, where `TrainedModel.classes` comes from) is checked against the
    version's verified manifest like any payload file, and the model version is recorded in
    the step's lineage as a read of the model would record it.

    Raises:
        IntegrityError: the card does not match its checksum.
        LineageStoreError: the version or its card is missing.
    """
    import hashlib
    import json

    from unified_ai.io.records import IntegrityError, LineageStoreError

    path = key(project, CANDIDATE_MODEL).path
    manifest = reader.read_manifest(path, model_version)
    where = f"{'/'.join(path)}@{model_version}"
    if "card.json" not in manifest.files:
        raise LineageStoreError(f"{where}: the model version has no card.json")
    card_path = reader.version_dir(path, model_version) / "card.json"
    data = card_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest.files["card.json"]:
        raise IntegrityError(f"{where}: {card_path} does not match its checksum; refusing it")
    if reader.log is not None:
        reader.log.add(path, model_version)
    classes = json.loads(data).get("classes")
    return list(classes) if classes is not None else None
