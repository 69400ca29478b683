"""Training data with Great Expectations validations as blocking checks, and the splits."""

import dagster as dg

from unified_ai.ml.validation import VALIDATIONS
from unified_ai.names import HOLDOUT_SPLIT, TRAIN_SPLIT, TRAINING_DATA, splits_op
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key
from unified_ai.stages.gate_records import require_gates
from unified_ai.stages.placement import stage_op_tags

VALIDATION_DESCRIPTIONS = {
    "not_empty": "The training data has at least one row.",
    "schema": "Every declared column is present; numeric features have numeric types.",
    "target_is_binary": "The target column exists, has no nulls and exactly two classes.",
    "declared_values": "Declared ranges, categories and non-null rules hold.",
}
OVERLAP_CHECK = "splits_do_not_overlap"


def _preview(frame, rows: int = 5) -> str:
    return frame.head(rows).to_markdown(index=False) if len(frame) else "(no rows)"


def build_training_data(project: ProjectConfig) -> dg.AssetsDefinition:
    asset_key = key(project, TRAINING_DATA)

    @dg.asset(
        key=asset_key,
        group_name="data",
        description=f"Training data of {project.name} from `{project.data.source}`, validated "
        "with Great Expectations checks generated from the project file.",
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
    def training_data(context: dg.AssetExecutionContext):
        from unified_ai.ml.data import DataSourceError, load_source, select_project_columns
        from unified_ai.ml.validation import validate

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
        frame = select_project_columns(project, raw)
        outcomes = validate(project, frame)
        yield dg.Output(
            frame,
            metadata={
                "dagster/row_count": len(frame),
                "columns": dg.MetadataValue.json({c: str(t) for c, t in frame.dtypes.items()}),
                "source": project.data.source,
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
                group_name="data",
                metadata=asset_metadata(project),
                description="Stratified training part of the validated data.",
                kinds={"pandas"},
            ),
            HOLDOUT_SPLIT: dg.AssetOut(
                key=holdout_key,
                group_name="data",
                metadata=asset_metadata(project),
                description="Stratified holdout on which candidate and champion are compared.",
                kinds={"pandas"},
            ),
        },
        ins={"training_data": dg.AssetIn(key=data_key)},
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
    def splits(context: dg.AssetExecutionContext, lineage: LineageStorage, training_data):
        from unified_ai.ml.split import overlapping_rows, split_frame

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


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_training_data(project), build_splits(project)]
