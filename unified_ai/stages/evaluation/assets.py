"""Evaluation: candidate and current champion scored on the same holdout."""

import dagster as dg

from unified_ai.names import (
    CANDIDATE_MODEL,
    CANDIDATE_VERSION_METADATA,
    EVALUATION_REPORT,
    HOLDOUT_SPLIT,
    IDENTICAL_METADATA,
)
from unified_ai.projects.schema import ProjectConfig
from unified_ai.queries import load_champion
from unified_ai.resources.mlflow_registry import MlflowRegistry
from unified_ai.resources.storage import LineageStorage
from unified_ai.stages.common import asset_metadata, key, stage_tags
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
        candidate_model,
        holdout_split,
    ):
        from unified_ai.ml.artifacts import Report
        from unified_ai.ml.data import binary_target
        from unified_ai.ml.evaluation import evaluate, segment_markdown, summary_markdown
        from unified_ai.ml.plots import EVALUATION_PLOTS, evaluation_plots, markdown_image
        from unified_ai.ml.report_html import classification_page
        from unified_ai.ml.split import holdout_parts
        from unified_ai.policies.holdout import RECENT, STATIC, choose_holdout

        reader = lineage.reader(context)
        candidate_model.card["lineage_version"] = reader.require_current(model_key.path)
        champion, _ = load_champion(reader, project.name)
        # Gates judge on the holdout the policy chooses; the report shows both.
        parts = dict(zip((STATIC, RECENT), holdout_parts(project, holdout_split), strict=True))
        classes = binary_target(project, parts[RECENT]).nunique()
        used, why = choose_holdout(project.policy.beats_champion, len(parts[RECENT]), classes)
        gate_frame = parts[used]
        report, probas = evaluate(project, gate_frame, candidate_model, champion)
        body = report.to_body()
        holdouts = {used: _holdout_summary(body)}
        other = RECENT if used == STATIC else STATIC
        if binary_target(project, parts[other]).nunique() == 2:
            other_report, _ = evaluate(project, parts[other], candidate_model, champion)
            holdouts[other] = _holdout_summary(other_report.to_body())
        body["holdouts"] = {"used_for_gates": used, "reason": why, **holdouts}
        y = binary_target(project, gate_frame).to_numpy()
        page = classification_page(
            y,
            probas["candidate"],
            probas.get("champion"),
            gate_frame[[c for c in project.segments if c in gate_frame.columns]],
        )
        plots = evaluation_plots(y, probas, project.evaluation.threshold)
        champion_version = (report.champion and report.champion.model_version) or "none"
        context.log.info(
            "candidate %s vs champion %s", report.candidate.model_version, champion_version
        )
        links = _log_to_mlflow(context, mlflow, project, candidate_model.card, body, page, plots)
        return dg.Output(
            Report(body=body, attachments={HTML_ATTACHMENT: page, **plots}),
            metadata={
                "summary": dg.MetadataValue.md(summary_markdown(body)),
                "plots": dg.MetadataValue.md(
                    "\n\n".join(
                        f"**{title}**\n\n{markdown_image(title, plots[name])}"
                        for name, title in EVALUATION_PLOTS.items()
                    )
                ),
                "segments": dg.MetadataValue.md(
                    segment_markdown(body, project.policy.fairness.min_segment_size)
                ),
                **{
                    k: dg.MetadataValue.float(v)
                    for k, v in report.candidate.metrics.items()
                    if v is not None
                },
                "holdout_used_for_gates": used,
                "holdout_choice": why,
                "holdouts": dg.MetadataValue.md(
                    _holdouts_markdown(body["holdouts"], project.policy.beats_champion.metric)
                ),
                "static_holdout_rows": len(parts[STATIC]),
                "recent_holdout_rows": len(parts[RECENT]),
                CANDIDATE_VERSION_METADATA: report.candidate.model_version,
                "champion_version": champion_version,
                "largest_segment_gap": float(report.candidate.largest_gap),
                IDENTICAL_METADATA: bool((report.identical or {}).get("identical")),
                "html_report": HTML_ATTACHMENT,
                **links,
            },
        )

    return evaluation_report


def _holdout_summary(body: dict) -> dict:
    """Rows, both models' metrics and their difference on one holdout."""
    champion = body.get("champion")
    return {
        "holdout_rows": body["holdout_rows"],
        "positive_rate": body["positive_rate"],
        "candidate": body["candidate"]["metrics"],
        "champion": champion["metrics"] if champion else None,
        "comparison": body.get("comparison"),
    }


def _holdouts_markdown(holdouts: dict, metric: str) -> str:
    """Candidate and champion on the static and the recent holdout, the gates' one marked."""

    def fmt(value) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    lines = [
        f"Gates judge on the **{holdouts['used_for_gates']}** holdout: {holdouts['reason']}.",
        "",
        f"| holdout | rows | candidate {metric} | champion {metric} | difference [interval] |",
        "|---|---|---|---|---|",
    ]
    for name in ("static", "recent"):
        part = holdouts.get(name)
        if part is None:
            lines.append(f"| {name} | 0 | n/a | n/a | n/a |")
            continue
        champion = part["champion"] or {}
        diff = ((part["comparison"] or {}).get("metrics") or {}).get(metric) or {}
        interval = (
            f"{diff['difference']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]"
            if diff.get("difference") is not None
            else "n/a"
        )
        lines.append(
            f"| {name} | {part['holdout_rows']} | {fmt(part['candidate'].get(metric))} | "
            f"{fmt(champion.get(metric))} | {interval} |"
        )
    return "\n".join(lines)


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
    from unified_ai.ml.evaluation import model_card_markdown

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


def build(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    return [build_evaluation_report(project)]
