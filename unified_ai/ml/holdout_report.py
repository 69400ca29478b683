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
    holdout's rows, metrics and comparison (a holdout no metric compares models on is left out:
    see `holdout_problem`).

    Args:
        project: The project.
        parts: The holdouts by name (`static`, `recent`).
        used: The name of the holdout the gates judge on.
        why: Why that one (the policy's reason).
        candidate: The candidate model.
        champion: The current champion, None before the first deployment.
    """
    from unified_ai.ml.evaluation import evaluate

    report, probas = evaluate(project, parts[used], candidate, champion)
    body = report.to_body()
    holdouts = {used: holdout_summary(body)}
    for name, frame in parts.items():
        if name != used and holdout_problem(project, frame, candidate.classes) is None:
            other_report, _ = evaluate(project, frame, candidate, champion)
            holdouts[name] = holdout_summary(other_report.to_body())
    body["holdouts"] = {"used_for_gates": used, "reason": why, **holdouts}
    return report, probas, body


#: The fewest rows a regression holdout compares models on (an interval needs resamples).
MIN_REGRESSION_ROWS = 10


def holdout_problem(
    project: "ProjectConfig", frame: "pd.DataFrame", classes: list | None = None
) -> str | None:
    """Why no metric of the project's task compares models on these rows, or None if one does.

    Binary: both classes must be present; multiclass: at least two of the model's classes
    (and no class it does not know); regression: at least `MIN_REGRESSION_ROWS` rows whose
    targets are not all equal. The text reads after "the holdout's N rows".

    Args:
        project: The project (its task and target).
        frame: The holdout rows.
        classes: A multiclass model's class list (default: the project's).
    """
    import numpy as np

    from unified_ai.ml.targets import TargetError, encode_target
    from unified_ai.projects.tasks import REGRESSION

    if not len(frame):
        return "are none"
    try:
        y = encode_target(project, frame, classes)
    except TargetError as exc:
        return f"cannot be scored ({exc})"
    if project.task == REGRESSION:
        if len(y) < MIN_REGRESSION_ROWS:
            return f"are fewer than {MIN_REGRESSION_ROWS}"
        if not np.ptp(y) > 0:
            return "have one target value only"
        return None
    if len(np.unique(y)) < 2:
        return "have one class only"
    return None


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
    project: "ProjectConfig",
    holdout: "pd.DataFrame",
    probas: "dict[str, np.ndarray]",
    classes: list | None = None,
) -> tuple[str, dict[str, bytes]]:
    """The HTML page and the plots of the models' predictions on the gates' holdout.

    Args:
        project: The project (its task decides the page and the plots).
        holdout: The gates' holdout rows.
        probas: The models' predictions on them (`evaluate`'s).
        classes: A multiclass candidate's class list (the order of its probability columns).
    """
    from unified_ai.ml.plots import task_evaluation_plots
    from unified_ai.ml.report_html import evaluation_page
    from unified_ai.ml.targets import encode_target

    y = encode_target(project, holdout, classes)
    segments = holdout[[c for c in project.segments if c in holdout.columns]]
    page = evaluation_page(
        project.task, y, probas["candidate"], probas.get("champion"), segments, classes
    )
    plots = task_evaluation_plots(
        project.task,
        y,
        probas,
        project.evaluation.threshold,
        segments=segments,
        classes=classes,
    )
    return page, plots


def plots_markdown(plots: dict[str, bytes]) -> str:
    """The report's plots, each under its title, as markdown with inline images."""
    from unified_ai.ml.plots import PLOT_TITLES, markdown_image

    return "\n\n".join(
        f"**{PLOT_TITLES.get(name, name)}**\n\n{markdown_image(PLOT_TITLES.get(name, name), png)}"
        for name, png in plots.items()
    )
