"""Monitoring: the deployed model's live metrics over its labeled batches (`live_performance`).

Computed by `unified_ai.ml.live` and read by the trigger sensors, which decide on them. With
`policy.review`, the agreement between the model and the people who reviewed its predictions
is measured too (`unified_ai.ml.agreement`), overall and per segment value.
"""

from typing import Any

import dagster as dg

from unified_ai.ml.agreement import AGREEMENT_METADATA, agreement_report
from unified_ai.ml.live import live_report
from unified_ai.ml.plots import live_metric_markdown
from unified_ai.names import DEPLOYED_MODEL, GROUND_TRUTH, LIVE_PERFORMANCE
from unified_ai.payloads import LiveSummary
from unified_ai.projects.schema import ProjectConfig
from unified_ai.projects.tasks import MULTICLASS
from unified_ai.queries import labeled_batches, read_deployment, rollback_target
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key, stage_tags
from unified_ai.stages.monitoring.scoring import recorded_classes, waiting_candidate_version
from unified_ai.stages.placement import stage_op_tags

#: How many of the newest labeled batches the live metric plot shows.
LIVE_PLOT_BATCHES = 30


def build_live_performance(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(
        key=key(project, LIVE_PERFORMANCE),
        deps=[key(project, GROUND_TRUTH)],
        tags=stage_tags("monitoring"),
        description="The deployed model's live metrics over the policy window of labeled "
        "batches, per segment; against its predecessor and a waiting candidate on the same "
        "rows (shadow scores, paired bootstrap interval). Read by the trigger sensors.",
        metadata=asset_metadata(project),
        op_tags=stage_op_tags(project, "monitoring"),
        kinds={"json"},
    )
    def live_performance(context: dg.AssetExecutionContext, lineage: LineageStorage):
        reader = lineage.reader(context)
        rule = project.policy.triggers.performance
        deployment = reader.require_current(key(project, DEPLOYED_MODEL).path)
        manifest = read_deployment(reader, project.name, deployment)
        batches = labeled_batches(reader, project.name)
        previous = rollback_target(reader, project.name, deployment)
        classes = None
        if project.task == MULTICLASS:
            # Labels are indexed into the deployed model's classes (its `proba_<i>` columns),
            # read from its card: the model itself is not needed (nor loaded).
            classes = recorded_classes(reader, project, manifest.model_version)
        report = live_report(
            batches,
            deployment,
            metric=rule.metric,
            window=rule.window_batches,
            threshold=project.evaluation.threshold,
            segments=project.segments,
            min_segment_size=project.policy.fairness.min_segment_size,
            bootstrap_samples=project.evaluation.bootstrap_samples,
            confidence=project.evaluation.confidence,
            gap_metric=project.policy.fairness.metric,
            shadow_deployment=None if previous is None else previous[0],
            shadow_candidate=waiting_candidate_version(context, reader, project, manifest),
            recent_paired=project.policy.triggers.rollback.recent_batches,
            recent_current=rule.recent_batches,
            task=project.task,
            classes=classes,
        )
        report["current"]["deployed_at"] = manifest.deployed_at
        summary = LiveSummary.from_report(report, deployed_at=manifest.deployed_at)
        metadata = summary.metadata()
        plot = live_metric_markdown(
            batches,
            metric=rule.metric,
            threshold=project.evaluation.threshold,
            floor=rule.floor,
            last=LIVE_PLOT_BATCHES,
            task=project.task,
            classes=classes,
        )
        metadata["metric_over_batches"] = dg.MetadataValue.md(plot)
        if project.policy.review is not None:
            report["agreement"] = _agreement(project, batches, deployment)
            metadata.update(agreement_metadata(report["agreement"]))
        return dg.Output(report, metadata=metadata)

    return live_performance


def _agreement(project: ProjectConfig, batches: list, deployment: str) -> dict[str, Any]:
    """Model-people agreement of the deployment over its last reviewed batches."""
    rule = project.policy.triggers.agreement
    return agreement_report(
        batches,
        deployment,
        task=project.task,
        segments=project.segments,
        window=rule.window_batches,
        tolerance=rule.tolerance,
    )


def agreement_metadata(agreement: dict[str, Any]) -> dict[str, Any]:
    """The agreement as metadata: the JSON the agreement trigger reads, and a table per segment.

    The table has one row for all reviewed rows and one per segment value, with the answers,
    how many agree with the model and the share.
    """
    rows = [("all", "all", agreement)]
    for column, values in agreement["segments"].items():
        rows.extend((column, value, counts) for value, counts in values.items())
    columns = ["segment", "value", "answers", "agreed", "agreement"]
    records = [
        dg.TableRecord(
            {
                "segment": column,
                "value": value,
                "answers": counts["answers"],
                "agreed": counts["agreed"],
                "agreement": _rounded(counts["agreement"]),
            }
        )
        for column, value, counts in rows
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name=c) for c in columns])
    return {
        AGREEMENT_METADATA: dg.MetadataValue.json(agreement),
        "agreement_answers": agreement["answers"],
        "agreement_share": _rounded(agreement["agreement"]) if agreement["answers"] else "none",
        "agreement_by_segment": dg.MetadataValue.table(records=records, schema=schema),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
