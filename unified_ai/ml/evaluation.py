"""Scoring a candidate and the champion on the same holdout.

Metrics with a paired bootstrap interval of the candidate-champion difference, per-segment
metrics and the largest gap between segments. Pure numpy/sklearn; no framework.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.payloads import EvaluationReport, ModelSummary, Registration
from unified_ai.projects.schema import LOWER_IS_BETTER, METRICS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from unified_ai.ml.artifacts import TrainedModel
    from unified_ai.projects.schema import ProjectConfig

_EPS = float(__import__("sys").float_info.epsilon)  # what sklearn clips log loss with


def roc_auc(y: "np.ndarray", proba: "np.ndarray") -> float | None:
    """Area under the ROC curve via the rank-sum statistic (ties get average ranks)."""
    import numpy as np
    from scipy.stats import rankdata

    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(proba)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_metrics(y: "np.ndarray", proba: "np.ndarray", threshold: float) -> dict:
    """ROC AUC, F1, accuracy and log loss; AUC is None when only one class is present.

    Implemented with numpy so that a few hundred bootstrap resamples stay cheap.
    """
    import numpy as np

    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    predicted = proba >= threshold
    actual = y == 1
    tp = float(np.sum(predicted & actual))
    fp = float(np.sum(predicted & ~actual))
    fn = float(np.sum(~predicted & actual))
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    return {
        "roc_auc": roc_auc(y, proba),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "accuracy": float(np.mean(predicted == actual)) if len(y) else 0.0,
        "log_loss": float(-np.mean(np.where(actual, np.log(clipped), np.log(1 - clipped)))),
    }


def segment_metrics(y: "np.ndarray", proba: "np.ndarray", threshold: float) -> dict:
    """Metrics for one segment, including the rates used for fairness gaps."""
    import numpy as np

    predicted = (proba >= threshold).astype(int)
    positives = y == 1
    metrics = classification_metrics(y, proba, threshold)
    metrics.pop("log_loss")
    metrics["true_positive_rate"] = float(predicted[positives].mean()) if positives.any() else None
    metrics["positive_rate"] = float(predicted.mean()) if len(predicted) else None
    metrics["n"] = len(y)
    metrics["positives"] = int(np.sum(positives))
    return metrics


def segments_and_gaps(
    y: "np.ndarray",
    proba: "np.ndarray",
    segments: "pd.DataFrame",
    threshold: float,
    gap_metric: str,
    min_segment_size: int,
) -> dict:
    """Per-segment metrics for each segment column and the largest gap of `gap_metric`.

    Segments smaller than `min_segment_size` are reported but excluded from the gap.
    """
    by_column: dict[str, Any] = {}
    largest: dict[str, Any] = {"column": None, "gap": 0.0, "low": None, "high": None}
    for column in segments.columns:
        values = segments[column].astype("string").fillna("<missing>").to_numpy()
        groups = {}
        for value in sorted(set(values)):
            mask = values == value
            groups[value] = segment_metrics(y[mask], proba[mask], threshold)
        eligible = {
            k: v[gap_metric]
            for k, v in groups.items()
            if v["n"] >= min_segment_size and v[gap_metric] is not None
        }
        gap = None
        if len(eligible) >= 2:
            low = min(eligible, key=eligible.get)
            high = max(eligible, key=eligible.get)
            gap = float(eligible[high] - eligible[low])
            if gap >= largest["gap"]:
                largest = {"column": column, "gap": gap, "low": low, "high": high}
        by_column[column] = {"segments": groups, "gap": gap, "eligible": sorted(eligible)}
    return {"metric": gap_metric, "by_column": by_column, "largest": largest}


def paired_bootstrap(
    y: "np.ndarray",
    candidate: "np.ndarray",
    champion: "np.ndarray",
    threshold: float,
    samples: int,
    confidence: float,
    seed: int,
) -> dict:
    """Bootstrap interval of candidate - champion for each metric, resampling rows in pairs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(y)
    diffs: dict[str, list[float]] = {m: [] for m in METRICS}
    for _ in range(samples):
        idx = rng.integers(0, n, n)
        yy = y[idx]
        if len(np.unique(yy)) < 2:
            continue
        a = classification_metrics(yy, candidate[idx], threshold)
        b = classification_metrics(yy, champion[idx], threshold)
        for m in METRICS:
            diffs[m].append(a[m] - b[m])
    point_a = classification_metrics(y, candidate, threshold)
    point_b = classification_metrics(y, champion, threshold)
    alpha = (1 - confidence) / 2
    result = {}
    for m in METRICS:
        values = np.asarray(diffs[m])
        result[m] = {
            "difference": float(point_a[m] - point_b[m]),
            "ci_low": float(np.quantile(values, alpha)),
            "ci_high": float(np.quantile(values, 1 - alpha)),
            "better": "lower" if m in LOWER_IS_BETTER else "higher",
        }
    return {"confidence": confidence, "samples": len(diffs[METRICS[0]]), "metrics": result}


@dataclass(frozen=True)
class Scored:
    """A model's scores on the holdout."""

    proba: "np.ndarray"
    metrics: dict
    fairness: dict


def score(
    y: "np.ndarray",
    proba: "np.ndarray",
    segments: "pd.DataFrame",
    threshold: float,
    gap_metric: str,
    min_segment_size: int,
) -> Scored:
    return Scored(
        proba=proba,
        metrics=classification_metrics(y, proba, threshold),
        fairness=segments_and_gaps(y, proba, segments, threshold, gap_metric, min_segment_size),
    )


def evaluate(
    project: "ProjectConfig",
    holdout: "pd.DataFrame",
    candidate: "TrainedModel",
    champion: "TrainedModel | None",
) -> tuple[EvaluationReport, dict[str, "np.ndarray"]]:
    """Score candidate (and champion, if any) on the same holdout.

    Returns:
        The report (`to_body()` is what is stored) and the predicted probabilities per model
        (for the HTML page).
    """
    from unified_ai.ml.data import FeatureColumns, binary_target
    from unified_ai.ml.training import predict_proba

    y = binary_target(project, holdout).to_numpy()
    segments = holdout[[c for c in project.segments if c in holdout.columns]]
    spec = project.evaluation
    fairness = project.policy.fairness

    def scored(model: "TrainedModel") -> Scored:
        features = FeatureColumns(**model.card["features"])
        proba = predict_proba(model, holdout, features)
        return score(y, proba, segments, spec.threshold, fairness.metric, fairness.min_segment_size)

    def summary(model: "TrainedModel", result: Scored) -> ModelSummary:
        registered = model.card.get("mlflow")
        where = f"{project.name}/candidate_model@{model.card.get('lineage_version')}: card"
        return ModelSummary(
            model_version=model.card.get("lineage_version"),
            mlflow=Registration.from_payload(registered, where=where) if registered else None,
            trained_by=model.card.get("trained_by"),
            metrics=result.metrics,
            fairness=result.fairness,
        )

    cand = scored(candidate)
    probas = {"candidate": cand.proba}
    champion_summary, comparison, identical = None, None, None
    if champion is not None:
        champ = scored(champion)
        champion_summary = summary(champion, champ)
        comparison = paired_bootstrap(
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
    report = EvaluationReport(
        project=project.name,
        policy_version=project.policy_version,
        holdout_rows=len(y),
        positive_rate=float(y.mean()) if len(y) else None,
        threshold=spec.threshold,
        candidate=summary(candidate, cand),
        champion=champion_summary,
        comparison=comparison,
        identical=identical,
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

    for metric in METRICS:
        cand = body["candidate"]["metrics"].get(metric)
        champ = champion["metrics"].get(metric) if champion else None
        diff = comparison.get(metric)
        interval = (
            f"{diff['difference']:+.4f} [{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]"
            if diff
            else "no champion yet"
        )
        rows.append(f"| {metric} | {fmt(cand)} | {fmt(champ)} | {interval} |")
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
    lines = [
        f"| column | segment | rows | {metric} candidate | {metric} champion | "
        "roc_auc candidate | roc_auc champion |",
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
                fmt(ours.get("roc_auc")),
                fmt(other.get("roc_auc")),
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
        f"- target: `{card.get('target')}` (positive label {card.get('positive_label')!r})",
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
