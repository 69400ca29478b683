"""The evaluation report over both holdouts: the gates' one in full, the other summarised (pure).

Which holdout the gates judge on is a decision (`unified_ai.policies.holdout`); this module
scores the models on the holdout chosen, summarises them on the other and draws the page and
plots of the report.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from unified_ai.ml.artifacts import TrainedModel
    from unified_ai.payloads import EvaluationReport
    from unified_ai.projects.schema import ProjectConfig


def evaluate_holdouts(
    project: "ProjectConfig",
    parts: "dict[str, pd.DataFrame]",
    used: str,
    why: str,
    candidate: "TrainedModel",
    champion: "TrainedModel | None",
) -> "tuple[EvaluationReport, dict[str, np.ndarray], dict[str, Any]]":
    """(the report on the gates' holdout, its predictions per model, the body to store).

    The body is the report's, with `holdouts`: which one the gates judge on and why, and each
    holdout's rows, metrics and comparison (a holdout without both classes is left out, as no
    metric compares models on it).

    Args:
        project: The project.
        parts: The holdouts by name (`static`, `recent`).
        used: The name of the holdout the gates judge on.
        why: Why that one (the policy's reason).
        candidate: The candidate model.
        champion: The current champion, None before the first deployment.
    """
    from unified_ai.ml.data import binary_target
    from unified_ai.ml.evaluation import evaluate

    report, probas = evaluate(project, parts[used], candidate, champion)
    body = report.to_body()
    holdouts = {used: holdout_summary(body)}
    for name, frame in parts.items():
        if name != used and binary_target(project, frame).nunique() == 2:
            other_report, _ = evaluate(project, frame, candidate, champion)
            holdouts[name] = holdout_summary(other_report.to_body())
    body["holdouts"] = {"used_for_gates": used, "reason": why, **holdouts}
    return report, probas, body


def holdout_summary(body: dict) -> dict:
    """Rows, both models' metrics and their difference on one holdout."""
    champion = body.get("champion")
    return {
        "holdout_rows": body["holdout_rows"],
        "positive_rate": body["positive_rate"],
        "candidate": body["candidate"]["metrics"],
        "champion": champion["metrics"] if champion else None,
        "comparison": body.get("comparison"),
    }


def holdouts_markdown(holdouts: dict, metric: str) -> str:
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


def report_page_and_plots(
    project: "ProjectConfig", holdout: "pd.DataFrame", probas: "dict[str, np.ndarray]"
) -> tuple[str, dict[str, bytes]]:
    """The HTML page and the plots of the models' predictions on the gates' holdout."""
    from unified_ai.ml.data import binary_target
    from unified_ai.ml.plots import evaluation_plots
    from unified_ai.ml.report_html import classification_page

    y = binary_target(project, holdout).to_numpy()
    page = classification_page(
        y,
        probas["candidate"],
        probas.get("champion"),
        holdout[[c for c in project.segments if c in holdout.columns]],
    )
    return page, evaluation_plots(y, probas, project.evaluation.threshold)


def plots_markdown(plots: dict[str, bytes]) -> str:
    """The report's plots, each under its title, as markdown with inline images."""
    from unified_ai.ml.plots import EVALUATION_PLOTS, markdown_image

    return "\n\n".join(
        f"**{title}**\n\n{markdown_image(title, plots[name])}"
        for name, title in EVALUATION_PLOTS.items()
    )
