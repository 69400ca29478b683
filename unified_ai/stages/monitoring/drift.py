"""Monitoring: each scored batch's drift against the training reference.

Per-column statistics always (milliseconds); the Evidently page, the drift share plot and the
page in the deployed model's MLflow run only when a column drifted or the project asks for
every Nth batch.
"""

from typing import TYPE_CHECKING

import dagster as dg

from unified_ai.io.frame_chunks import FrameChunks
from unified_ai.ml.artifacts import Report
from unified_ai.ml.data import FeatureColumns, resolve_features
from unified_ai.ml.drift import columns_markdown, drift_page, drift_scores, page_reason
from unified_ai.ml.plots import markdown_image, series_plot
from unified_ai.names import DRIFT_REPORT, PRODUCTION_BATCH, TRAIN_SPLIT
from unified_ai.payloads import DriftSummary
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import current_deployment
from unified_ai.resources.mlflow_registry import MlflowRegistry
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
    import pandas as pd

DRIFT_HTML = "drift.html"
DRIFT_SHARE_PLOT = "drift_share.png"
#: How many earlier batches the drift share plot shows.
DRIFT_HISTORY_BATCHES = 30
DRIFT_REPORT_DESCRIPTION = (
    "Per-column drift (PSI, KS) of the batch against the training reference, the share of "
    "drifted columns, and an Evidently page built from a sample."
)


def build_drift_report(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, DRIFT_REPORT),
        ins={
            "production_batch": dg.AssetIn(
                key=key(project, PRODUCTION_BATCH),
                dagster_type=TABLE_OR_CHUNKS,
            )
        },
        partitions_def=batches_partitions(project),
        tags=stage_tags("monitoring"),
        description=DRIFT_REPORT_DESCRIPTION,
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"evidently", "json"},
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        mlflow: MlflowRegistry,
        production_batch: TableOrChunks,
    ):
        reader = lineage.reader(context)
        reference_path = key(project, TRAIN_SPLIT).path
        reference_version = reader.require_current(reference_path)
        reference = reader.read_value(reference_path, reference_version)
        features = resolve_features(project, reference)
        rule = project.policy.triggers.drift
        body, production_batch = _drift_statistics(project, production_batch, reference, features)
        body.update({"batch": context.partition_key, "reference_version": reference_version})
        # The Evidently page costs seconds (its import alone) while the statistics cost
        # milliseconds: a clean batch gets none unless the project asks for every Nth one.
        why = page_reason(
            body["drifted_columns"],
            batch_number=_batch_number(context, project),
            every=project.monitoring.drift_page_every,
        )
        attachments: dict[str, str | bytes] = {}
        if why is not None:
            attachments[DRIFT_HTML] = drift_page(
                reference,
                production_batch,
                features.all,
                project.monitoring.drift_report_rows,
                seed=project.split.seed,
                psi_threshold=rule.psi_threshold,
                max_drifted_share=rule.max_drifted_share,
            )
        extra = {"columns": dg.MetadataValue.md(columns_markdown(body))}
        if why is not None:
            # Drawn with the page only: a clean batch imports nothing new.
            extra.update(_drift_evidence(context, project, body, attachments))
            extra.update(_drift_page_in_mlflow(context, project, lineage, mlflow, attachments))
        return dg.Output(
            Report(body=body, attachments=attachments),
            metadata={
                **extra,
                **DriftSummary(
                    drifted_share=body["drifted_share"],
                    drifted_columns=list(body["drifted_columns"]),
                    batch=context.partition_key,
                ).metadata(),
                "html_report": DRIFT_HTML if why else "none",
                "html_report_reason": why
                or "no column drifted (monitoring.drift_page_every renders every Nth batch)",
            },
        )

    return drift_report


def _drift_statistics(
    project: ProjectConfig,
    production_batch: TableOrChunks,
    reference: "pd.DataFrame",
    features: FeatureColumns,
) -> "tuple[dict, pd.DataFrame | None]":
    """The batch's per-column drift statistics, and the rows its Evidently page would use."""
    if isinstance(production_batch, FrameChunks):
        # Larger than one chunk: the statistics are summed chunk by chunk, and the page
        # gets the rows it would sample from the whole batch.
        from unified_ai.stages.monitoring.chunked_scoring import stream_drift

        return stream_drift(
            project,
            production_batch,
            reference,
            features.numeric,
            features.categorical,
            sample_rows=project.monitoring.drift_report_rows,
        )
    body = drift_scores(
        reference,
        production_batch,
        features.numeric,
        features.categorical,
        project.policy.triggers.drift.psi_threshold,
    )
    return body, production_batch


def _drift_evidence(
    context: dg.AssetExecutionContext, project: ProjectConfig, body: dict, attachments: dict
) -> dict:
    """The drift share over recent batches as a plot (also stored), and the page in MLflow."""
    records = context.instance.fetch_materializations(
        key(project, DRIFT_REPORT), limit=DRIFT_HISTORY_BATCHES
    ).records
    points = []
    for record in reversed(records):
        materialization = record.asset_materialization
        if materialization is None or materialization.partition == context.partition_key:
            continue
        values = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        summary = DriftSummary.from_metadata(values, batch=materialization.partition or "?")
        points.append({"batch": summary.batch, "share": summary.drifted_share, "line": "batches"})
    points.append(
        {"batch": context.partition_key, "share": body["drifted_share"], "line": "batches"}
    )
    png = series_plot(
        points,
        value="share",
        group="line",
        title="Drifted share of columns",
        ylabel="share",
        threshold=project.policy.triggers.drift.max_drifted_share,
    )
    attachments[DRIFT_SHARE_PLOT] = png
    return {"drift_share_over_batches": dg.MetadataValue.md(markdown_image("drift share", png))}


def _drift_page_in_mlflow(
    context: dg.AssetExecutionContext,
    project: ProjectConfig,
    lineage: LineageStorage,
    mlflow: MlflowRegistry,
    attachments: dict,
) -> dict:
    """The drift page and plot in the deployed model's MLflow run, and a link to the page."""
    from unified_ai.io.reader import StoreReader

    # Read without recording: the deployment is where the page goes, not an input of the report.
    deployed = current_deployment(StoreReader(lineage.store()), project.name)
    if deployed is None or not deployed[1].mlflow_run_id:
        return {}
    urls = mlflow.log_report(
        deployed[1].mlflow_run_id,
        folder=f"{DRIFT_REPORT}/{context.partition_key}",
        files=attachments,
        tags={"unified_ai.last_drift_page_batch": context.partition_key},
    )
    return {"html_report_in_mlflow": dg.MetadataValue.url(urls[DRIFT_HTML])} if urls else {}


def _batch_number(context: dg.AssetExecutionContext, project: ProjectConfig) -> int | None:
    """1-based position of this batch among the project's batches (None when unknown)."""
    if not project.monitoring.drift_page_every:
        return None  # not needed: skip the partition listing
    batches = context.instance.get_dynamic_partitions(batches_partitions(project).name)
    return batches.index(context.partition_key) + 1 if context.partition_key in batches else None
