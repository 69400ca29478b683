"""Evaluation: candidate and current champion scored on the same holdout."""

import dagster as dg

from unified_ai.names import CANDIDATE_MODEL, EVALUATION_REPORT, HOLDOUT_SPLIT
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import load_champion
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key
from unified_ai.stages.placement import stage_op_tags

HTML_ATTACHMENT = "evaluation.html"


def build_evaluation_report(project: ProjectConfig) -> dg.AssetsDefinition:
    model_key = key(project, CANDIDATE_MODEL)

    @dg.asset(
        key=key(project, EVALUATION_REPORT),
        ins={
            "candidate_model": dg.AssetIn(key=model_key),
            "holdout_split": dg.AssetIn(key=key(project, HOLDOUT_SPLIT)),
        },
        group_name="evaluation",
        description="Candidate and current champion scored on the same holdout: metrics with a "
        "bootstrap interval of the difference, per-segment metrics and gaps, and an Evidently "
        "HTML page stored beside the report.",
        metadata=asset_metadata(project),
        kinds={"evidently", "json"},
        op_tags=stage_op_tags(project, "evaluation"),
    )
    def evaluation_report(
        context: dg.AssetExecutionContext, lineage: LineageStorage, candidate_model, holdout_split
    ):
        from unified_ai.ml.artifacts import Report
        from unified_ai.ml.data import binary_target
        from unified_ai.ml.evaluation import evaluate, summary_markdown
        from unified_ai.ml.report_html import classification_page

        reader = lineage.reader(context)
        candidate_model.card["lineage_version"] = reader.require_current(model_key.path)
        champion, _ = load_champion(reader, project.name)
        report, probas = evaluate(project, holdout_split, candidate_model, champion)
        body = report.to_body()
        page = classification_page(
            binary_target(project, holdout_split).to_numpy(),
            probas["candidate"],
            probas.get("champion"),
            holdout_split[[c for c in project.segments if c in holdout_split.columns]],
        )
        champion_version = (report.champion and report.champion.model_version) or "none"
        context.log.info(
            "candidate %s vs champion %s", report.candidate.model_version, champion_version
        )
        return dg.Output(
            Report(body=body, attachments={HTML_ATTACHMENT: page}),
            metadata={
                "summary": dg.MetadataValue.md(summary_markdown(body)),
                **{
                    k: dg.MetadataValue.float(v)
                    for k, v in report.candidate.metrics.items()
                    if v is not None
                },
                "candidate_version": report.candidate.model_version,
                "champion_version": champion_version,
                "largest_segment_gap": float(report.candidate.largest_gap),
                "html_report": HTML_ATTACHMENT,
            },
        )

    return evaluation_report


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_evaluation_report(project)]
