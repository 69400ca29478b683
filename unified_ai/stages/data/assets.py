"""Training data with Great Expectations validations as blocking checks, and the splits.

Training data is the project's source plus its labeled production rows (batch inputs joined
with their ground truth, read through the step's lineage reader so the manifest names every
batch and label version that went in).
"""

import dagster as dg

from unified_ai.ml.data import DataSourceError, load_source, select_project_columns, target_classes
from unified_ai.ml.production import ProductionRows, choose_batches, combine, production_rows
from unified_ai.ml.split import overlapping_rows, split_frame
from unified_ai.ml.validation import VALIDATIONS, validate
from unified_ai.names import (
    HOLDOUT_SPLIT,
    ORIGIN,
    PRODUCTION_BATCH,
    TRAIN_SPLIT,
    TRAINING_DATA,
    VERSION_METADATA,
    splits_op,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import DATA_FRAME, DataFrame, asset_metadata, key, stage_tags
from unified_ai.stages.gate_records import require_gates
from unified_ai.stages.placement import stage_op_tags

VALIDATION_DESCRIPTIONS = {
    "not_empty": "The training data has at least one row.",
    "schema": "Every declared column is present; numeric features have numeric types.",
    "target_matches_task": "The target column exists, has no nulls and fits the task: two "
    "classes (binary); at least three, each a declared class if classes are declared "
    "(multiclass); finite numbers (regression).",
    "declared_values": "Declared ranges, categories and non-null rules hold.",
}
OVERLAP_CHECK = "splits_do_not_overlap"


def _preview(frame, rows: int = 5) -> str:
    return frame.head(rows).to_markdown(index=False) if len(frame) else "(no rows)"


def _quarantined(context: dg.AssetExecutionContext, project: ProjectConfig, refs) -> set[str]:
    """The batches among `refs` whose stored version was quarantined when it arrived."""
    wanted = {ref.batch: ref.batch_version for ref in refs}
    if not wanted:
        return set()
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=key(project, PRODUCTION_BATCH), asset_partitions=sorted(wanted)
        ),
        limit=10 * len(wanted) + 100,
    ).records
    found = set()
    for record in records:
        metadata = record.asset_materialization.metadata
        version = metadata.get(VERSION_METADATA)
        quarantined = metadata.get("quarantined")
        if (
            version is not None
            and version.value == wanted.get(record.partition_key)
            and quarantined is not None
            and quarantined.value
        ):
            found.add(record.partition_key)
    return found


def _production_rows(
    context: dg.AssetExecutionContext,
    lineage: LineageStorage,
    project: ProjectConfig,
    source,
):
    """The labeled production rows the project's window selects; their reads enter the lineage.

    Quarantined batches never join; excluded ones are named with the person's reason (the
    exclusion record's version is in the lineage too).
    """
    from datetime import datetime, timezone

    from unified_ai.io.exclusions import batch_exclusions
    from unified_ai.queries import (
        labeled_batch_reads,
        labeled_batch_refs,
        labeled_batch_values,
        record_reads,
    )

    spec = project.training.production_data
    if not spec.include:
        return ProductionRows()
    reader = lineage.reader(context)
    refs = labeled_batch_refs(reader, project.name)
    if not refs:
        return ProductionRows()
    left_out = {
        batch: f"excluded by {record.get('by', '?')} at {record.get('at', '?')}: "
        f"{record.get('reason', '')}"
        for batch, record in batch_exclusions(reader, project.name).items()
    }
    for batch in _quarantined(context, project, refs):
        left_out.setdefault(batch, "quarantined when it arrived (never scored)")
    chosen = choose_batches(refs, spec, now=datetime.now(timezone.utc), left_out=left_out)
    loaded = [(ref.batch, *labeled_batch_values(reader, project.name, ref)) for ref in chosen]
    result = production_rows(project, loaded, target_classes(project, source))
    record_reads(
        reader,
        [
            read
            for ref in chosen
            if ref.batch in result.used
            for read in labeled_batch_reads(project.name, ref)
        ],
    )
    known = {ref.batch for ref in refs}
    result.left_out = {
        **{b: why for b, why in left_out.items() if b in known},
        **result.left_out,
    }
    if not chosen:
        result.notes.append(
            f"the window ({_window(spec)}) selects no labeled batch of the {len(refs)} stored"
        )
    return result


def _window(spec) -> str:
    if spec.window_days is not None:
        return f"window_days {spec.window_days:g}"
    return f"window_batches {spec.batches}"


def build_training_data(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, TRAINING_DATA)

    @dg.asset(
        key=asset_key,
        tags=stage_tags("data"),
        description=f"Training data of {project.name} from `{project.data.source}` and its "
        "labeled production rows (training.production_data; each row's origin in `_origin`), "
        "validated with Great Expectations checks generated from the project file.",
        metadata=asset_metadata(project),
        kinds={"pandas", "great_expectations"},
        op_tags=stage_op_tags(project, "data"),
        check_specs=[
            dg.AssetCheckSpec(
                name, asset=asset_key, blocking=True, description=VALIDATION_DESCRIPTIONS[name]
            )
            for name in VALIDATIONS
        ],
    )
    def training_data(context: dg.AssetExecutionContext, lineage: LineageStorage):
        try:
            raw = load_source(project.data.source, project.data.format)
        except DataSourceError as exc:
            # Record the reason on every gate so the UI shows why, then fail: nothing is stored.
            for name in VALIDATIONS:
                yield dg.AssetCheckResult(
                    check_name=name,
                    passed=False,
                    description=str(exc),
                    severity=dg.AssetCheckSeverity.ERROR,
                )
            raise dg.Failure(description=f"{'/'.join(asset_key.path)}: {exc}") from None
        source = select_project_columns(project, raw).assign(**{ORIGIN: project.data.source})
        production = _production_rows(context, lineage, project, source)
        frame = combine(source, production.frame)
        for note in production.notes:
            context.log.warning(f"{'/'.join(asset_key.path)}: {note}")
        for batch, why in production.left_out.items():
            context.log.warning(f"{'/'.join(asset_key.path)}: batch {batch} left out: {why}")
        outcomes = validate(project, frame)
        yield dg.Output(
            frame,
            metadata={
                "dagster/row_count": len(frame),
                "columns": dg.MetadataValue.json({c: str(t) for c, t in frame.dtypes.items()}),
                "source": project.data.source,
                "source_rows": len(source),
                "production_rows": sum(production.used.values()),
                "production_batches": dg.MetadataValue.json(production.used),
                "production_left_out": dg.MetadataValue.json(production.left_out),
                "production_notes": dg.MetadataValue.json(production.notes),
                "preview": dg.MetadataValue.md(_preview(frame)),
            },
        )
        for outcome in outcomes:
            if not outcome.passed:
                context.log.error(f"{'/'.join(asset_key.path)}: {outcome.describe()}")
            yield dg.AssetCheckResult(
                check_name=outcome.name,
                passed=outcome.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description=outcome.describe()[:2000],
                metadata={
                    "expectations": outcome.expectations,
                    "failures": dg.MetadataValue.json(outcome.failures),
                },
            )

    return training_data


def build_splits(project: ProjectConfig) -> dg.AssetsDefinition:
    train_key, holdout_key = key(project, TRAIN_SPLIT), key(project, HOLDOUT_SPLIT)
    data_key = key(project, TRAINING_DATA)

    @dg.multi_asset(
        outs={
            TRAIN_SPLIT: dg.AssetOut(
                key=train_key,
                tags=stage_tags("data"),
                metadata=asset_metadata(project),
                description="Stratified training part of the validated data.",
                kinds={"pandas"},
            ),
            HOLDOUT_SPLIT: dg.AssetOut(
                key=holdout_key,
                tags=stage_tags("data"),
                metadata=asset_metadata(project),
                description="Stratified holdout on which candidate and champion are compared.",
                kinds={"pandas"},
            ),
        },
        ins={"training_data": dg.AssetIn(key=data_key, dagster_type=DATA_FRAME)},
        check_specs=[
            dg.AssetCheckSpec(
                OVERLAP_CHECK,
                asset=train_key,
                blocking=True,
                description="No training-data row is in both the train split and the holdout.",
            )
        ],
        name=splits_op(project.name),
        op_tags=stage_op_tags(project, "data"),
    )
    def splits(
        context: dg.AssetExecutionContext, lineage: LineageStorage, training_data: DataFrame
    ):
        version = lineage.reader(context).require_current(data_key.path)
        require_gates(context.instance, data_key, version, VALIDATIONS)
        train, holdout = split_frame(project, training_data)
        overlap = overlapping_rows(train, holdout)
        seed = {"seed": project.split.seed, "holdout_fraction": project.split.holdout_fraction}
        yield dg.Output(
            train, output_name=TRAIN_SPLIT, metadata={"dagster/row_count": len(train), **seed}
        )
        yield dg.Output(
            holdout, output_name=HOLDOUT_SPLIT, metadata={"dagster/row_count": len(holdout), **seed}
        )
        yield dg.AssetCheckResult(
            asset_key=train_key,
            check_name=OVERLAP_CHECK,
            passed=overlap == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{overlap} rows are in both splits",
            metadata={"overlapping_rows": overlap},
        )

    return splits


def build_data_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_training_data(project), build_splits(project)]
