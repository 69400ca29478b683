"""Evaluation: candidate and current champion scored on the same holdout."""

import dagster as dg

from unified_ai.io.reader import StoreReader
from unified_ai.names import CANDIDATE_MODEL, DEPLOYED_MODEL, EVALUATION_REPORT, HOLDOUT_SPLIT
from unified_ai.projects.schema import ProjectConfig
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key
from unified_ai.stages.placement import stage_op_tags

HTML_ATTACHMENT = "evaluation.html"


def load_champion(store: StoreReader, project: ProjectConfig) -> tuple:
    """The model the current `deployed_model` pointer names, and that deployment's version.

    Returns `(None, None)` while nothing is deployed.

    Following the pointer (not MLflow's alias, not the newest file) means a rollback is
    honoured and the exact bytes that were evaluated and deployed are compared.
    """
    deployed_path = key(project, DEPLOYED_MODEL).path
    deployed_version = store.current_version(deployed_path)
    if deployed_version is None:
        return None, None
    deployment = store.read_value(deployed_path, deployed_version)
    model_version = deployment["model_version"]
    champion = store.read_value(key(project, CANDIDATE_MODEL).path, model_version)
    champion.card["lineage_version"] = model_version
    return champion, deployed_version


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
        champion, _ = load_champion(reader, project)
        body, probas = evaluate(project, holdout_split, candidate_model, champion)
        page = classification_page(
            binary_target(project, holdout_split).to_numpy(),
            probas["candidate"],
            probas.get("champion"),
            holdout_split[[c for c in project.segments if c in holdout_split.columns]],
        )
        metrics = body["candidate"]["metrics"]
        context.log.info(
            "candidate %s vs champion %s",
            body["candidate"]["model_version"],
            body["champion"]["model_version"] if body["champion"] else "none",
        )
        return dg.Output(
            Report(body=body, attachments={HTML_ATTACHMENT: page}),
            metadata={
                "summary": dg.MetadataValue.md(summary_markdown(body)),
                **{k: dg.MetadataValue.float(v) for k, v in metrics.items() if v is not None},
                "candidate_version": body["candidate"]["model_version"],
                "champion_version": (body["champion"] or {}).get("model_version") or "none",
                "largest_segment_gap": float(body["candidate"]["fairness"]["largest"]["gap"]),
                "html_report": HTML_ATTACHMENT,
            },
        )

    return evaluation_report


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_evaluation_report(project)]
