"""Plots and tables for the UI, drawn from real scores."""

import numpy as np
import pandas as pd

from unified_ai.ml.evaluation import score, segment_markdown
from unified_ai.ml.plots import EVALUATION_PLOTS, evaluation_plots, live_metric_points

PNG = b"\x89PNG\r\n\x1a\n"


def holdout(rows: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    candidate = np.clip(y * 0.4 + rng.random(rows) * 0.5, 0, 1)
    champion = np.clip(y * 0.3 + rng.random(rows) * 0.7, 0, 1)
    region = np.where(np.arange(rows) < 15, "tiny", np.where(rng.random(rows) < 0.5, "n", "s"))
    return y, candidate, champion, pd.DataFrame({"region": region})


def test_evaluation_plots_are_small_pngs_for_both_models():
    y, candidate, champion, _ = holdout()
    plots = evaluation_plots(y, {"candidate": candidate, "champion": champion}, 0.5)
    assert set(plots) == set(EVALUATION_PLOTS)
    for png in plots.values():
        assert png.startswith(PNG) and 2_000 < len(png) < 60_000


def test_one_class_holdout_still_draws():
    plots = evaluation_plots(np.ones(30, dtype=int), {"candidate": np.linspace(0, 1, 30)}, 0.5)
    assert all(png.startswith(PNG) for png in plots.values())


def test_segment_table_bolds_the_largest_gap_and_marks_small_segments():
    y, candidate, champion, segments = holdout()
    ours = score(y, candidate, segments, 0.5, "true_positive_rate", 20)
    theirs = score(y, champion, segments, 0.5, "true_positive_rate", 20)
    body = {
        "candidate": {"fairness": ours.fairness, "extra": "tolerated"},
        "champion": {"fairness": theirs.fairness},
        "recent": {"anything": 1},
    }
    table = segment_markdown(body, min_segment_size=20)
    rows = [line for line in table.splitlines() if line.startswith("| region")]
    rows += [line for line in table.splitlines() if line.startswith("| **region")]
    assert len(rows) == 3
    tiny = next(r for r in rows if "tiny" in r)
    assert "⚠ small" in tiny and "**" not in tiny  # excluded from the gap, so never the worst
    bold = [r for r in rows if r.startswith("| **")]
    assert len(bold) == 2
    champion_tpr = theirs.fairness["by_column"]["region"]["segments"]["n"]["true_positive_rate"]
    assert f"{champion_tpr:.3f}" in next(r for r in rows if "| n |" in r or "**n**" in r)


def test_segment_table_without_champion_shows_dashes():
    y, candidate, _, segments = holdout()
    ours = score(y, candidate, segments, 0.5, "true_positive_rate", 20)
    table = segment_markdown({"candidate": {"fairness": ours.fairness}, "champion": None}, 20)
    assert "—" in table and "champion —" in table


def test_live_points_follow_each_deployment_and_the_shadow_of_its_predecessor():
    y, candidate, champion, _ = holdout(200)
    frame = pd.DataFrame(
        {
            "label": y,
            "proba": candidate,
            "deployment_version": "v2",
            "shadow_previous_deployment": "v1",
            "shadow_previous_proba": champion,
        }
    )
    old = pd.DataFrame({"label": y, "proba": champion, "deployment_version": "v1"})
    points = live_metric_points(
        [("b1", old), ("b2", frame)], metric="roc_auc", threshold=0.5, last=10
    )
    assert [(p["batch"], p["model"]) for p in points] == [
        ("b1", "v1"),
        ("b2", "v2"),
        ("b2", "v1 (shadow)"),
    ]
    assert points[0]["value"] == points[2]["value"]  # same rows, same model


def test_with_no_gap_at_all_the_two_compared_segments_are_still_bold():
    y, _, _, segments = holdout()
    perfect = np.where(y == 1, 0.9, 0.1)  # every segment has true positive rate 1.0
    ours = score(y, perfect, segments, 0.5, "true_positive_rate", 20)
    table = segment_markdown({"candidate": {"fairness": ours.fairness}}, 20)
    assert sum(line.startswith("| **") for line in table.splitlines()) == 2
