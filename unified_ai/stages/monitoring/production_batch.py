"""Monitoring: a production batch from the project's inbox, validated before it is scored.

Batches are dynamic partitions (one per file in the project's inbox). A batch that breaks the
schema is stored and flagged as quarantined by a blocking check: never scored, never lost. A
large file is read, validated and stored in chunks (bounded memory).
"""

import dagster as dg

from unified_ai.ml.validation import validate_batch
from unified_ai.names import PRODUCTION_BATCH
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.inbox import Inbox
from unified_ai.resources.notifications import Notifier
from unified_ai.stages.common import asset_metadata, batches_partitions, key, stage_tags
from unified_ai.stages.placement import stage_op_tags

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
