"""Review: the predictions of a scored batch that go to people (`review_queue`).

One partition per production batch, like `predictions`, and made in the same step: the step
that scores a batch routes it too (`build_scored_and_routed`). The rules are
`unified_ai.policies.review`; the step gathers what they need and stores what they return
through the lineage IO manager:

- the batch's predictions (just scored, or stored when the queue is made alone) and, with
  `out_of_range`, its rows (the step's input);
- what the model that scored the batch was trained on: the train split version its model
  card names (`train_split_version`), read through the step's reader, so the queue's lineage
  names the exact training rows its ranges and categories come from (the current train split
  may be newer than the deployed model, and the compiled scorer knows categories only of the
  estimators it compiles);
- under a daily cap, how many items other batches routed earlier the same UTC day: one
  record per day in the lineage store (`unified_ai.io.review_days`), read and written back
  with compare and set, so the cost does not grow with the day's batches and concurrent runs
  do not route past the cap together.

Its metadata shows the open items as a table and the routed rows per reason.
"""

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import dagster as dg

from unified_ai.io.frame_chunks import FrameChunks, stored_frame_rows
from unified_ai.io.reader import StoreReader
from unified_ai.io.review_days import route_counted
from unified_ai.io.training_profiles import split_profile
from unified_ai.names import (
    CODE_LOCATION,
    PARTITIONS,
    PREDICTIONS,
    PRODUCTION_BATCH,
    REVIEW_ID,
    REVIEW_QUEUE,
    ROUTED_METADATA,
    ROW_ID,
    TRAIN_SPLIT,
    op_name,
    review_job,
)
from unified_ai.policies.review import Routing, TrainingProfile, route_batch
from unified_ai.policies.review_chunks import route_chunks
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.schema_review import ReviewPolicy, check_review
from unified_ai.projects.tasks import BINARY
from unified_ai.resources.io_manager import chunk_rows
from unified_ai.resources.notifications import Notifier
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import (
    TableOrChunks,
    asset_metadata,
    batches_partitions,
    key,
    stage_tags,
)
from unified_ai.stages.monitoring.prediction_reference import recorded_card
from unified_ai.stages.monitoring.scoring import (
    PREDICTIONS_DESCRIPTION,
    PREDICTIONS_KINDS,
    production_batch_in,
    scored_batch,
)
from unified_ai.stages.placement import stage_op_tags
from unified_ai.stages.review.gathered import GatheredRouting

if TYPE_CHECKING:
    import pandas as pd

#: How many open items the metadata table shows (the stored frame holds them all).
OPEN_ITEMS_SHOWN = 100
#: Columns of the open-items table, after the review id.
_TABLE_COLUMNS = ("reasons", "model_answer", "shadow_answer", "due_at", "detail")


#: What `review_queue` is, as the UI shows it.
QUEUE_DESCRIPTION = (
    "The batch's predictions that people review (policy.review): unsure ones, those whose "
    "inputs lie outside what the model was trained on, and a seeded audit share, within the "
    "daily cap and segment quotas; why each was routed, the model's and the shadow's answers, "
    "and when it is due."
)


def build_scored_and_routed(project: ProjectConfig) -> dg.AssetsDefinition:
    """`predictions` and `review_queue` of a project with `policy.review`, made in one step.

    Routing needs the scored rows the step has just made, and a step of its own cost more
    than the routing (Dagster's per-step events, loading the predictions again). Each asset
    is still its own: either can be materialized alone (`<project>__route_reviews` routes
    a batch again from its stored predictions), each has its own version and lineage.
    """
    review = project.policy.review
    if review is None:
        raise ValueError(f"{project.name}: no policy.review, so no review_queue")
    try:
        check_review(review, project.task, project.segments)
    except ValueError as exc:
        raise ValueError(f"{project.name}: {exc}") from None
    scored_key, queue_key = key(project, PREDICTIONS), key(project, REVIEW_QUEUE)
    batch_key = key(project, PRODUCTION_BATCH)

    @dg.multi_asset(
        name=op_name(project.name, PREDICTIONS),
        outs={
            PREDICTIONS: dg.AssetOut(
                key=scored_key,
                description=PREDICTIONS_DESCRIPTION,
                tags=stage_tags("monitoring"),
                metadata=asset_metadata(project),
                kinds=PREDICTIONS_KINDS,
                is_required=False,
            ),
            REVIEW_QUEUE: dg.AssetOut(
                key=queue_key,
                description=QUEUE_DESCRIPTION,
                tags=stage_tags("review"),
                metadata=asset_metadata(project),
                kinds={"pandas"},
                is_required=False,
            ),
        },
        ins={"production_batch": production_batch_in(project)},
        internal_asset_deps={
            PREDICTIONS: {batch_key},
            # With out_of_range the batch's own rows are compared too.
            REVIEW_QUEUE: {scored_key, *([batch_key] if review.out_of_range else [])},
        },
        partitions_def=batches_partitions(project),
        op_tags=stage_op_tags(project, "monitoring"),
        can_subset=True,
    )
    def predictions_and_review_queue(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        notifier: Notifier,
        production_batch: TableOrChunks,
    ):
        reader = lineage.reader(context)
        scored: object = None
        if scored_key in context.selected_asset_keys:
            # A batch scored in chunks is routed from those chunks as they are made.
            gathering = GatheredRouting(reader, project, context.partition_key)
            watch = gathering.watch if queue_key in context.selected_asset_keys else None
            output = scored_batch(context, reader, project, production_batch, watch=watch)
            # Stored (and its pointer moved) by the IO manager before the next line runs.
            yield dg.Output(output.value, output_name=PREDICTIONS, metadata=output.metadata)
            scored = gathering if gathering.rows is not None else output.value
        if queue_key in context.selected_asset_keys:
            predictions = _predictions(reader, project, context.partition_key, scored)
            queue = routed_queue(context, reader, notifier, project, predictions, production_batch)
            yield dg.Output(queue.value, output_name=REVIEW_QUEUE, metadata=queue.metadata)

    return predictions_and_review_queue


def _predictions(
    reader: StoreReader, project: ProjectConfig, batch: str, scored: object
) -> "TableOrChunks | GatheredRouting":
    """The batch's predictions as stored, in the queue's lineage.

    The frame the step has just scored and stored, or the rows it flagged as it scored them
    in chunks; else read from the store (in chunks when large: routing a batch again alone).
    """
    import pandas as pd

    path = [*key(project, PREDICTIONS).path, PARTITIONS, batch]
    version = reader.require_current(path)
    if isinstance(scored, pd.DataFrame | GatheredRouting):
        reader.record(path, version)
        return scored
    if stored_frame_rows(reader.store, path, version) > chunk_rows():
        reader.record(path, version)
        return FrameChunks(reader.store, path, version, chunk_rows())
    return reader.read_value(path, version)


def routed_queue(
    context: dg.AssetExecutionContext,
    reader: StoreReader,
    notifier: Notifier,
    project: ProjectConfig,
    predictions: "TableOrChunks | GatheredRouting",
    production_batch: TableOrChunks,
) -> dg.Output:
    """The value of `review_queue` (the routed rows) and its metadata."""
    review = project.policy.review
    assert review is not None
    batch = context.partition_key
    now = datetime.now(timezone.utc)
    where = f"{project.name}/{REVIEW_QUEUE}[{batch}]"
    inputs, profile = None, None
    if isinstance(predictions, GatheredRouting):
        card: dict[str, Any] | None = predictions.card
        task, profile = predictions.task, predictions.profile
        if profile is not None:
            _record_profile(reader, project, card, profile)
    else:
        chunked = isinstance(predictions, FrameChunks)
        first = next(iter(predictions), None) if chunked else predictions
        task, card = _scoring_model(reader, project, first, where)
        if review.out_of_range:
            inputs = _batch_inputs(production_batch, chunked)
            profile = training_profile(reader, project, card)
    if profile is not None and not profile.source.startswith(TRAIN_SPLIT):
        context.log.warning(f"{where}: inputs not compared: {profile.source}")
    route = _router(
        predictions,
        where,
        review=review,
        project=project.name,
        task=task,
        batch=batch,
        now=now,
        threshold=project.evaluation.threshold,
        classes=(card or {}).get("classes"),
        segments=project.segments,
        inputs=inputs,
        profile=profile,
    )
    earlier: int | None = None
    if review.daily_cap is None:
        routing = route(0)
    else:
        routing, earlier = route_counted(
            reader.store,
            project,
            batch,
            now,
            route,
            lambda routing: len(routing.rows),
            first_of_day=lambda: routed_by_events(
                context.instance, key(project, REVIEW_QUEUE), now
            ),
            run_id=context.run_id,
        )
    metadata = queue_metadata(routing, review, earlier, profile)
    # Dagster's launchpad cannot be opened with config filled in (dagster#16807): the link
    # opens the project's review job, and the table gives each item's id to answer.
    launchpad = (
        f"{notifier.webserver_url.rstrip('/')}/locations/{CODE_LOCATION}/jobs/"
        f"{review_job(project.name)}/playground"
    )
    metadata["answer_in_launchpad"] = dg.MetadataValue.url(launchpad)
    return dg.Output(routing.rows, metadata=metadata)


def _router(
    predictions: "TableOrChunks | GatheredRouting", where: str, **routing_args: Any
) -> Callable[[int], Routing]:
    """Routes the batch (whole, in chunks or gathered) given the items routed earlier that day."""

    def route(earlier: int) -> Routing:
        try:
            if isinstance(predictions, GatheredRouting):
                return predictions.route(**routing_args, routed_today=earlier)
            if isinstance(predictions, FrameChunks):
                chunks = predictions
                return route_chunks(lambda: iter(chunks), **routing_args, routed_today=earlier)
            return route_batch(predictions, **routing_args, routed_today=earlier)
        except ValueError as exc:
            raise dg.Failure(description=f"{where}: {exc}") from None

    return route


def _batch_inputs(production_batch: TableOrChunks, chunked: bool) -> Any:
    """The batch's rows, which `out_of_range` compares with the training rows.

    The step's input (in its lineage as every input): whole, or for a chunked batch a function
    giving them in chunks of the columns it is asked for.
    """
    if not chunked:
        if isinstance(production_batch, FrameChunks):  # whole predictions: the rows whole too
            import pandas as pd

            return pd.concat(list(production_batch.read()), ignore_index=True)
        return production_batch
    if not isinstance(production_batch, FrameChunks):
        return lambda columns: iter(
            [production_batch[[c for c in columns if c in production_batch.columns]]]
        )
    return production_batch.read


def _scoring_model(
    reader: StoreReader, project: ProjectConfig, predictions: "pd.DataFrame | None", where: str
) -> tuple[str, dict[str, Any] | None]:
    """(task, model card) of the model that scored the batch (None for an empty batch).

    The card is read (checked against its manifest, not loading the model) from the stored
    model its `model_version` column names, so the queue's lineage holds the model whose
    answers it shows.
    """
    if predictions is None or not len(predictions) or "model_version" not in predictions.columns:
        return project.task, None
    version = str(predictions["model_version"].iloc[0])
    card = recorded_card(reader, project, version)
    task = str(card.get("task") or BINARY)
    if task != project.task:
        raise dg.Failure(
            description=f"{where}: model {version} is a {task} model but the project's "
            f"task is {project.task}"
        )
    return task, card


def training_profile(
    reader: StoreReader, project: ProjectConfig, card: dict[str, Any] | None
) -> TrainingProfile:
    """What the scoring model was trained on: its train split's ranges and categories.

    Built once per train split and kept (`unified_ai.io.training_profiles`); the split is in
    the queue's lineage either way. A model whose card names no train split gives an empty
    profile that flags nothing; its `source` says why.
    """
    profile = split_profile(reader.store, project, card)
    _record_profile(reader, project, card, profile)
    return profile


def _record_profile(
    reader: StoreReader,
    project: ProjectConfig,
    card: dict[str, Any] | None,
    profile: TrainingProfile,
) -> None:
    """Puts the train split a profile was built from in the step's lineage."""
    if card is not None and profile.source.startswith(TRAIN_SPLIT):
        reader.record(key(project, TRAIN_SPLIT).path, str(card["train_split_version"]))


def routed_by_events(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, now: datetime
) -> dict[str, int]:
    """Items each batch routed since midnight UTC, by its newest materialization's metadata.

    How a day with no recorded counts starts (`unified_ai.io.review_days`): the queue's
    materializations of that day made before the counts were recorded.
    """
    start = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    counted: dict[str, int] = {}
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, after_timestamp=start.timestamp()),
            limit=1000,
            cursor=cursor,
        )
        for record in result.records:  # newest first
            event = record.asset_materialization
            if event is None or event.partition is None or event.partition in counted:
                continue
            value = event.metadata.get(ROUTED_METADATA)
            counted[str(event.partition)] = int(getattr(value, "value", 0) or 0)
        if not result.has_more:
            return counted
        cursor = result.cursor


def queue_metadata(
    routing: Routing, review: ReviewPolicy, earlier: int | None, profile: TrainingProfile | None
) -> dict[str, Any]:
    """The queue's materialization metadata: counts per reason, the cap, the open items.

    `earlier` (what other batches routed that day) is counted only under a daily cap.
    """
    rows = routing.rows
    due = rows["due_at"].iloc[0].isoformat() if len(rows) else "none"
    return {
        "dagster/row_count": len(rows),
        ROUTED_METADATA: len(rows),
        **{f"routed_{reason}": count for reason, count in routing.counts().items()},
        "flagged": dg.MetadataValue.json(routing.flagged),
        "left_by_cap": routing.left_by_cap,
        "left_by_quota": routing.left_by_quota,
        **({"routed_earlier_today": earlier} if earlier is not None else {}),
        "daily_cap": review.daily_cap if review.daily_cap is not None else "none",
        "hold_decision": review.hold_decision,
        "on_timeout": review.on_timeout,
        "due_at": due,
        **({"training_profile": profile.source} if profile is not None else {}),
        "open_items": open_items_table(rows),
    }


def open_items_table(rows: "pd.DataFrame") -> dg.TableMetadataValue:
    """The first `OPEN_ITEMS_SHOWN` routed rows as a table the UI shows."""
    columns = [REVIEW_ID, ROW_ID, *_TABLE_COLUMNS]
    records = [
        dg.TableRecord({column: _cell(row[column]) for column in columns})
        for _, row in rows.head(OPEN_ITEMS_SHOWN).iterrows()
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name=column) for column in columns])
    return dg.MetadataValue.table(records=records, schema=schema)


def _cell(value: object) -> str | None:
    if value is None or value != value:  # NaN: the shadow did not score the row
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def build_review_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_scored_and_routed(project)]
