"""Scoring a candidate and the champion on the same holdout.

Metrics with a paired bootstrap interval of the candidate-champion difference, per-segment
metrics and the largest gap between segments. Pure numpy/sklearn; no framework.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from unified_ai.ml.metrics import (
    binary_metrics,
    class_table,
    mape_note,
    roc_auc,
    task_metrics,
)
from unified_ai.ml.metrics import paired_bootstrap as task_bootstrap
from unified_ai.ml.metrics import segments_and_gaps as task_segments_and_gaps
from unified_ai.payloads import EvaluationReport, ModelSummary, Registration
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION, metrics_of

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from unified_ai.ml.artifacts import TrainedModel
    from unified_ai.projects.schema import ProjectConfig

__all__ = ["classification_metrics", "evaluate", "roc_auc", "score", "segments_and_gaps"]

#: The binary metrics (kept under the name their callers know).
classification_metrics = binary_metrics


def segments_and_gaps(
    y: "np.ndarray",
    proba: "np.ndarray",
    segments: "pd.DataFrame",
    threshold: float,
    gap_metric: str,
    min_segment_size: int,
) -> dict:
    """Binary per-segment metrics and the largest gap (`unified_ai.ml.metrics` for any task)."""
    return task_segments_and_gaps(
        BINARY, y, proba, segments, threshold, gap_metric, min_segment_size
    )


def paired_bootstrap(
    y: "np.ndarray",
    candidate: "np.ndarray",
    champion: "np.ndarray",
    threshold: float,
    samples: int,
    confidence: float,
    seed: int,
) -> dict:
    """Binary paired bootstrap (`unified_ai.ml.metrics.paired_bootstrap` for any task)."""
    return task_bootstrap(BINARY, y, candidate, champion, threshold, samples, confidence, seed)


@dataclass(frozen=True)
class Scored:
    """A model's predictions on the holdout (the task's shape) and its results."""

    proba: "np.ndarray"
    metrics: dict
    fairness: dict
    per_class: dict | None = None


def score(
    y: "np.ndarray",
    proba: "np.ndarray",
    segments: "pd.DataFrame",
    threshold: float,
    gap_metric: str,
    min_segment_size: int,
    *,
    task: str = BINARY,
    classes: list | None = None,
) -> Scored:
    """Metrics, per-segment metrics and (multiclass) the per-class table of one model."""
    return Scored(
        proba=proba,
        metrics=task_metrics(task, y, proba, threshold),
        fairness=task_segments_and_gaps(
            task, y, proba, segments, threshold, gap_metric, min_segment_size
        ),
        per_class=class_table(y, proba, classes) if task == MULTICLASS and classes else None,
    )


class EvaluationError(ValueError):
    """The holdout or a model cannot be evaluated for the project's task."""


def _champion_mismatch(project: "ProjectConfig", candidate, champion) -> str | None:
    """Why the champion cannot be compared with the candidate on the same rows, or None."""
    if champion.task != project.task:
        return f"the champion is a {champion.task} model and the project is now {project.task}"
    if project.task == MULTICLASS and champion.classes != candidate.classes:
        return (
            f"the champion knows classes {champion.classes} and the candidate {candidate.classes}"
        )
    return None


def _scored(
    project: "ProjectConfig",
    holdout: "pd.DataFrame",
    y: "np.ndarray",
    segments: "pd.DataFrame",
    model: "TrainedModel",
) -> Scored:
    """`model` scored on the holdout in the project's task, threshold and fairness settings."""
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import predict

    features = FeatureColumns(**model.card["features"])
    predicted = predict(model, holdout, features)
    fairness = project.policy.fairness
    return score(
        y,
        predicted,
        segments,
        project.evaluation.threshold,
        fairness.metric,
        fairness.min_segment_size,
        task=project.task,
        classes=model.classes,
    )


def _summary(project: "ProjectConfig", model: "TrainedModel", result: Scored) -> ModelSummary:
    """What the report says of one scored model: its version, registration and metrics."""
    registered = model.card.get("mlflow")
    where = f"{project.name}/candidate_model@{model.card.get('lineage_version')}: card"
    return ModelSummary(
        model_version=model.card.get("lineage_version"),
        mlflow=Registration.from_payload(registered, where=where) if registered else None,
        trained_by=model.card.get("trained_by"),
        metrics=result.metrics,
        fairness=result.fairness,
        per_class=result.per_class,
    )


def evaluate(
    project: "ProjectConfig",
    holdout: "pd.DataFrame",
    candidate: "TrainedModel",
    champion: "TrainedModel | None",
) -> tuple[EvaluationReport, dict[str, "np.ndarray"]]:
    """Score candidate (and champion, if any) on the same holdout, with the project's task.

    A champion of another task (the project changed its task), or of another class list, is
    not compared: the report names why (`champion_note`) and the candidate is judged alone.

    Returns:
        The report (`to_body()` is what is stored) and the predictions per model (for the
        HTML page and plots: the task's shape, `unified_ai.ml.metrics`).
    """
    from unified_ai.ml.targets import TargetError, encode_target

    task = project.task
    if candidate.task != task:
        raise EvaluationError(
            f"{project.name}: the candidate is a {candidate.task} model, the project {task}"
        )
    try:
        y = encode_target(project, holdout, candidate.classes)
    except TargetError as exc:
        raise EvaluationError(f"holdout: {exc}") from None
    segments = holdout[[c for c in project.segments if c in holdout.columns]]
    spec = project.evaluation

    cand = _scored(project, holdout, y, segments, candidate)
    probas = {"candidate": cand.proba}
    champion_summary, comparison, identical = None, None, None
    champion_note = _champion_mismatch(project, candidate, champion) if champion else None
    if champion is not None and champion_note is None:
        champ = _scored(project, holdout, y, segments, champion)
        champion_summary = _summary(project, champion, champ)
        comparison = task_bootstrap(
            task,
            y,
            cand.proba,
            champ.proba,
            spec.threshold,
            spec.bootstrap_samples,
            spec.confidence,
            seed=project.split.seed,
        )
        probas["champion"] = champ.proba
        identical = same_model(
            candidate.card.get("lineage_version"),
            champion.card.get("lineage_version"),
            cand.proba,
            champ.proba,
        )
    notes = {}
    if task == REGRESSION and (why := mape_note(y)):
        notes["mape"] = why
    report = EvaluationReport(
        project=project.name,
        policy_version=project.policy_version,
        holdout_rows=len(y),
        positive_rate=float(y.mean()) if len(y) and task == BINARY else None,
        threshold=spec.threshold,
        candidate=_summary(project, candidate, cand),
        champion=champion_summary,
        comparison=comparison,
        identical=identical,
        task=task,
        classes=candidate.classes,
        metric_notes=notes or None,
        champion_note=champion_note,
    )
    return report, probas


def same_model(
    candidate_version: str | None,
    champion_version: str | None,
    candidate_proba: "np.ndarray",
    champion_proba: "np.ndarray",
) -> dict:
    """Whether a candidate is the champion again: the same stored model, or equal predictions.

    Equal means every holdout probability is the same number: a retrain on the same data with
    the same seed reproduces the champion exactly, and deploying it would change nothing
    (while resetting the bake window and pairing a model with itself).
    """
    import numpy as np

    if candidate_version is not None and candidate_version == champion_version:
        return {"identical": True, "reason": f"the same stored model {candidate_version}"}
    a = np.asarray(candidate_proba, dtype=float)
    b = np.asarray(champion_proba, dtype=float)
    if len(a) and a.shape == b.shape and np.array_equal(a, b):
        return {
            "identical": True,
            "reason": f"the same predictions on all {len(a)} holdout rows",
        }
    return {"identical": False, "reason": "predictions differ on the holdout"}


def summary_markdown(body: dict) -> str:
    """A metrics table for the UI: candidate, champion and the bootstrap interval."""
    champion = body.get("champion")
    comparison = (body.get("comparison") or {}).get("metrics", {})
    level = round((body.get("comparison") or {}).get("confidence", 0.95) * 100)
    rows = [
        f"| metric | candidate | champion | difference ({level}% interval) |",
        "|---|---|---|---|",
    ]

    def fmt(value) -> str:
        return "—" if value is None else f"{value:.4f}"

    notes = body.get("metric_notes") or {}
    alone = f"not compared: {body['champion_note']}" if body.get("champion_note") else None
    for metric in metrics_of(body.get("task") or BINARY):
        cand = body["candidate"]["metrics"].get(metric)
        champ = champion["metrics"].get(metric) if champion else None
        diff = comparison.get(metric)
        if diff:
            interval = f"{diff['difference']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]"
        elif metric in notes:
            interval = notes[metric]
        else:
            interval = alone or ("no interval" if champion else "no champion yet")
        rows.append(f"| {metric} | {fmt(cand)} | {fmt(champ)} | {interval} |")
    per_class = body["candidate"].get("per_class")
    if per_class:
        rows += ["", "| class | rows | precision | recall |", "|---|---|---|---|"]
        # In the model's class order (a stored body may hold the table with sorted keys).
        order = [str(c) for c in body.get("classes") or [] if str(c) in per_class]
        order += [label for label in per_class if label not in order]
        for label in order:
            values = per_class[label]
            precision, recall = fmt(values["precision"]), fmt(values["recall"])
            rows.append(f"| {label} | {values['n']} | {precision} | {recall} |")
    largest = body["candidate"]["fairness"]["largest"]
    if largest["column"]:
        rows.append("")
        rows.append(
            f"Largest {body['candidate']['fairness']['metric']} gap: {largest['gap']:.4f} "
            f"({largest['column']}: {largest['low']} vs {largest['high']})"
        )
    return "\n".join(rows)


def segment_markdown(body: dict, min_segment_size: int) -> str:
    """Candidate vs champion per segment of each segment column, for the UI.

    Per column, the two segments that make the candidate's largest gap of the policy's metric
    are in bold; segments smaller than `min_segment_size` are marked, since the gap ignores them.
    """
    candidate = body["candidate"]["fairness"]
    champion = (body.get("champion") or {}).get("fairness") or {}
    metric = candidate["metric"]
    # Beside the gap's metric, the task's headline metric (binary: ROC AUC).
    headline = metrics_of(body.get("task") or BINARY)[0]
    lines = [
        f"| column | segment | rows | {metric} candidate | {metric} champion | "
        f"{headline} candidate | {headline} champion |",
        "|---|---|---|---|---|---|---|",
    ]

    def fmt(value) -> str:
        return "—" if value is None else f"{value:.3f}"

    notes = []
    for column, result in candidate["by_column"].items():
        theirs = (champion.get("by_column") or {}).get(column, {}).get("segments", {})
        segments = result["segments"]
        worst = set()
        if result.get("gap") is not None:
            ranked = sorted(result["eligible"], key=lambda s: segments[s][metric])
            worst = {ranked[0], ranked[-1]}
        for name, ours in segments.items():
            other = theirs.get(name, {})
            small = ours["n"] < min_segment_size
            cells = [
                column,
                name + (" ⚠ small" if small else ""),
                str(ours["n"]),
                fmt(ours.get(metric)),
                fmt(other.get(metric)),
                fmt(ours.get(headline)),
                fmt(other.get(headline)),
            ]
            if name in worst:
                cells = [f"**{c}**" for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        their_gap = (champion.get("by_column") or {}).get(column, {}).get("gap")
        notes.append(
            f"- {column}: {metric} gap {fmt(result.get('gap'))} (champion {fmt(their_gap)})"
        )
    lines += ["", f"Gap between segments (bold: the candidate's largest {metric} gap):", ""]
    lines += [*notes, "", f"⚠ small: fewer than {min_segment_size} rows, excluded from the gap."]
    return "\n".join(lines)


def model_card_markdown(card: dict, body: dict) -> str:
    """The model card as markdown: what was trained on what, and how it did on the holdout."""
    candidate = body["candidate"]
    champion = body.get("champion") or {}
    lines = [
        f"**{card.get('estimator', '?')}** for project `{card.get('project', '?')}`, "
        f"lineage version `{candidate.get('model_version')}`.",
        "",
        f"- trained by: {card.get('trained_by') or '-'} (Dagster run "
        f"`{card.get('dagster_run_id') or '-'}`, runner {card.get('training_runner') or '-'})",
        f"- train split version: `{card.get('train_split_version') or '-'}`",
        f"- target: `{card.get('target')}` ({_target_note(card)})",
        f"- features: numeric {', '.join(card.get('features', {}).get('numeric', [])) or '-'}; "
        f"categorical {', '.join(card.get('features', {}).get('categorical', [])) or '-'}",
        f"- params: `{card.get('params') or {}}`",
        f"- policy: `{body.get('policy_version')}`",
        "",
        f"Holdout ({body.get('holdout_rows')} rows, threshold {body.get('threshold')}), "
        f"against champion `{champion.get('model_version') or 'none'}`:",
        "",
        summary_markdown(body),
    ]
    return "\n".join(lines)


def _target_note(card: dict) -> str:
    """What the model predicts of its target, by task."""
    task = card.get("task") or BINARY
    if task == MULTICLASS:
        return f"one of {len(card.get('classes') or [])} classes: {card.get('classes')}"
    if task == REGRESSION:
        return "a value (regression)"
    return f"positive label {card.get('positive_label')!r}"
