"""Evaluation: candidate and current champion scored on the same holdout."""

import dagster as dg

from unified_ai.ml.artifacts import Report, TrainedModel
from unified_ai.ml.evaluation import (
    EvaluationError,
    model_card_markdown,
    segment_markdown,
    summary_markdown,
)
from unified_ai.ml.holdout_report import (
    evaluate_holdouts,
    holdout_problem,
    holdouts_markdown,
    plots_markdown,
    report_page_and_plots,
)
from unified_ai.ml.split import holdout_parts
from unified_ai.names import (
    CANDIDATE_MODEL,
    CANDIDATE_VERSION_METADATA,
    EVALUATION_REPORT,
    HOLDOUT_SPLIT,
    IDENTICAL_METADATA,
)
from unified_ai.payloads import EvaluationReport
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import load_champion
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import DATA_FRAME, DataFrame, asset_metadata, key, stage_tags
from unified_ai.stages.placement import stage_op_tags

HTML_ATTACHMENT = "evaluation.html"


def build_evaluation_report(project: ProjectConfig) -> dg.AssetsDefinition:
    model_key = key(project, CANDIDATE_MODEL)

    @dg.asset(
        key=key(project, EVALUATION_REPORT),
        ins={
            "candidate_model": dg.AssetIn(key=model_key),
            "holdout_split": dg.AssetIn(key=key(project, HOLDOUT_SPLIT), dagster_type=DATA_FRAME),
        },
        tags=stage_tags("evaluation"),
        description="Candidate and current champion scored on the same holdout: metrics with a "
        "bootstrap interval of the difference, per-segment metrics and gaps, and an Evidently "
        "HTML page stored beside the report.",
        metadata=asset_metadata(project),
        kinds={"evidently", "json"},
        op_tags=stage_op_tags(project, "evaluation"),
    )
    def evaluation_report(
        context: dg.AssetExecutionContext,
        lineage: LineageStorage,
        mlflow: MlflowRegistry,
        candidate_model: TrainedModel,
        holdout_split: DataFrame,
    ):
        from unified_ai.policies.holdout import RECENT, STATIC, choose_holdout

        reader = lineage.reader(context)
        candidate_model.card["lineage_version"] = reader.require_current(model_key.path)
        champion, _ = load_champion(reader, project.name)
        # Gates judge on the holdout the policy chooses; the report shows both.
        parts = dict(zip((STATIC, RECENT), holdout_parts(project, holdout_split), strict=True))
        classes = candidate_model.classes
        problem = holdout_problem(project, parts[RECENT], classes) if len(parts[RECENT]) else None
        used, why = choose_holdout(
            project.policy.beats_champion, len(parts[RECENT]), recent_problem=problem
        )
        try:
            report, probas, body = evaluate_holdouts(
                project, parts, used, why, candidate_model, champion
            )
        except EvaluationError as exc:
            raise dg.Failure(description=f"{project.name}/{EVALUATION_REPORT}: {exc}") from None
        page, plots = report_page_and_plots(project, parts[used], probas, classes)
        champion_version = (report.champion and report.champion.model_version) or "none"
        context.log.info(
            "candidate %s vs champion %s", report.candidate.model_version, champion_version
        )
        links = _log_to_mlflow(context, mlflow, project, candidate_model.card, body, page, plots)
        return dg.Output(
            Report(body=body, attachments={HTML_ATTACHMENT: page, **plots}),
            metadata={
                **_report_metadata(
                    project,
                    report,
                    body,
                    plots,
                    rows={name: len(frame) for name, frame in parts.items()},
                    champion_version=champion_version,
                ),
                **links,
            },
        )

    return evaluation_report


def _report_metadata(
    project: ProjectConfig,
    report: EvaluationReport,
    body: dict,
    plots: dict[str, bytes],
    *,
    rows: dict[str, int],
    champion_version: str,
) -> dict:
    """What the report shows in the UI and what the gates and triggers read from it."""
    holdouts = body["holdouts"]
    task = {
        "task": body.get("task") or project.task,
        **({"classes": dg.MetadataValue.json(body["classes"])} if body.get("classes") else {}),
        **(
            {"metric_notes": dg.MetadataValue.json(body["metric_notes"])}
            if body.get("metric_notes")
            else {}
        ),
        **({"champion_note": body["champion_note"]} if body.get("champion_note") else {}),
        **(
            {"per_class": dg.MetadataValue.json(body["candidate"]["per_class"])}
            if body["candidate"].get("per_class")
            else {}
        ),
    }
    return {
        **task,
        "summary": dg.MetadataValue.md(summary_markdown(body)),
        "plots": dg.MetadataValue.md(plots_markdown(plots)),
        "segments": dg.MetadataValue.md(
            segment_markdown(body, project.policy.fairness.min_segment_size)
        ),
        **{
            k: dg.MetadataValue.float(v)
            for k, v in report.candidate.metrics.items()
            if v is not None
        },
        "holdout_used_for_gates": holdouts["used_for_gates"],
        "holdout_choice": holdouts["reason"],
        "holdouts": dg.MetadataValue.md(
            holdouts_markdown(holdouts, project.policy.beats_champion.metric)
        ),
        **{f"{name}_holdout_rows": count for name, count in rows.items()},
        CANDIDATE_VERSION_METADATA: report.candidate.model_version,
        "champion_version": champion_version,
        # No gap measured counts as none, as the fairness gate reads it.
        "largest_segment_gap": float(report.candidate.largest_gap or 0.0),
        IDENTICAL_METADATA: bool((report.identical or {}).get("identical")),
        "html_report": HTML_ATTACHMENT,
    }


def _log_to_mlflow(
    context: dg.AssetExecutionContext,
    mlflow: MlflowRegistry,
    project: ProjectConfig,
    card: dict,
    body: dict,
    page: str,
    plots: dict[str, bytes],
) -> dict[str, dg.MetadataValue]:
    """Holdout metrics, the HTML page and the plots into the candidate's MLflow run.

    Also makes the model card the registered version's description. Returns the links to show.
    """
    registered = card.get("mlflow")
    if not registered:
        return {}
    metrics = {
        f"holdout_{side}_{name}": value
        for side in ("candidate", "champion")
        for name, value in ((body.get(side) or {}).get("metrics") or {}).items()
    }
    urls = mlflow.log_report(
        registered["run_id"],
        folder=f"{EVALUATION_REPORT}/{context.run_id}",
        files={HTML_ATTACHMENT: page, **plots},
        metrics=metrics,
        tags={"unified_ai.evaluated_in_dagster_run": context.run_id},
    )
    mlflow.describe_version(
        project.model_name, registered["version"], model_card_markdown(card, body)
    )
    links: dict[str, dg.MetadataValue] = {"mlflow_run_id": registered["run_id"]}
    if HTML_ATTACHMENT in urls:
        links["html_report_in_mlflow"] = dg.MetadataValue.url(urls[HTML_ATTACHMENT])
    return links


def build_evaluation_asset_defs(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_evaluation_report(project)]
