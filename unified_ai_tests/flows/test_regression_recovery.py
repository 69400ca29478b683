"""The loop recovers a regression model from concept drift, through a real Dagster instance.

The binary walkthrough's recovery (`test_recovery.py`) for the regression task: deploy; the
world changes (`concept:x1`: where x1 is above its median, the price's dependence on the
inputs changes sign); the labels arrive; the ground-truth trigger retrains on them; the
candidate beats the champion in RMSE on the recent holdout and the policy deploys it; on the
next drifted batches, rows no model trained on, the new model's RMSE is lower than the old
one's on the same rows (the old one scores them in the shadow), with the paired interval of
the improvement above 0.

A small synthetic project (`tasks_fixtures`) with a tree regressor, which can learn the
changed relation (a linear model cannot learn a sign change at the median). The project holds
out 60 % of its 1,500 source rows: the pool `unified-ai simulate` draws batches from (900 rows)
is cut in three disjoint parts (rows the retrain trains on, rows of the recent holdout, rows of
the next batches), and the 600 rows of the old relation the retrain still trains on are
outnumbered by the 1,260 drifted ones (the loop has no training window: a retrain learns from
all its labeled rows).
"""

import pytest

from unified_ai.ml.split import holdout_parts
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ORIGIN,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.projects.loader import load_project_file
from unified_ai.projects.tasks import REGRESSION
from unified_ai_tests.flows.helpers import (
    check_results,
    current,
    project_defs,
    run_loop,
    step_failures,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver
from unified_ai_tests.flows.recovery_helpers import drifted, inputs, pool_parts, score_and_label
from unified_ai_tests.tasks_fixtures import write_regression_project

pytestmark = pytest.mark.slow

NAME = "prices"
COLUMN = "x1"
DRIFT = f"concept:{COLUMN}"
#: 1,500 source rows, 60 % held out: a 900-row pool, 300 distinct rows in each of its parts.
SOURCE_ROWS = 1500
#: Drifted labeled rows the retrain trains on (drawn from 300 distinct rows), and the newest:
#: the recent holdout is the newest 30 % of the labeled rows, here exactly the last batch.
TRAIN_BATCHES, TRAIN_ROWS, RECENT_ROWS = 3, 420, 540
LABELS = TRAIN_BATCHES * TRAIN_ROWS + RECENT_ROWS
#: Auto-approval: the candidate's RMSE must be lower by at least 0.5 (the price's noise is 4);
#: the MAE gap between regions may grow by at most 5.
POLICY = """\
  approval:
    mode: auto
    approvers: [pricing-lead]
    auto_approve: {metric: rmse, min_improvement: 0.5, max_gap_increase: 5.0}
"""
#: On the drifted rows the first model is wrong by about twice the reversed part of the price
#: on half of them; the retrained one, which still learns from some rows of the old relation,
#: by less. When this test was written: recent holdout RMSE 12.99 vs 20.45 (improvement
#: interval +6.57 to +8.22); on the next 300 unseen rows live RMSE 12.15 vs 20.94 (+7.05 to
#: +10.40). A margin of 5 in RMSE leaves room for another scikit-learn or platform, and no
#: model that merely matches the old one passes.
MARGIN = 5.0


def test_the_loop_recovers_a_regression_model_from_concept_drift(
    home, projects_dir, instance, monkeypatch
):
    # The RMSE ceiling is met by the first model (about 4.5) and by the retrained one on the
    # drifted recent holdout, which is noisier than the source (some rows of the old relation).
    path = write_regression_project(
        projects_dir, policy_extra=POLICY, rows=SOURCE_ROWS, rmse_ceiling=15.0
    )
    text = path.read_text().replace("class: Ridge", "class: HistGradientBoostingRegressor")
    path.write_text(text.replace("holdout_fraction: 0.3", "holdout_fraction: 0.6"))
    project = load_project_file(path)
    assert project.split.holdout_fraction == 0.6
    assert project.task == REGRESSION
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    driver = SensorDriver(defs, instance)

    first = run_loop(defs, instance, NAME)
    assert first.success, step_failures(first)
    old_deployment, _ = current(home, NAME, "deployed_model")
    trained, held_out, unseen = pool_parts(home, project, COLUMN)
    assert min(len(trained), len(held_out), len(unseen)) >= 290

    # 1,260 drifted rows to train on, then 540 newer ones: the recent holdout.
    batches = drifted(project, trained, DRIFT, batches=TRAIN_BATCHES, rows=TRAIN_ROWS, seed=1)
    newest = drifted(project, held_out, DRIFT, batches=1, rows=RECENT_ROWS, seed=3)
    score_and_label(driver, project, batches + newest)
    _, live = current(home, NAME, "live_performance")
    assert live["task"] == REGRESSION and live["metric"] == "rmse"
    assert live["current"]["deployment"] == old_deployment
    assert live["current"]["labeled_rows"] == LABELS

    # The ground-truth trigger asks for a retrain on the new labels, with its evidence.
    [request] = driver.tick(f"{NAME}__ground_truth_trigger").requests
    assert request.tags["unified_ai/trigger"] == "new_ground_truth"
    assert request.tags["unified_ai/evidence.new_labels"] == str(LABELS)
    assert set(request.tags["unified_ai/evidence.batches"].split(",")) == {*batches, *newest}
    retrain = driver.launch(request, f"{NAME}__training_loop")
    assert retrain.success, step_failures(retrain)
    assert all(passed for passed, _ in check_results(retrain).values()), check_results(retrain)

    # The gates judged on the recent holdout: the newest batch, never trained on.
    _, holdout = current(home, NAME, "holdout_split")
    _, train = current(home, NAME, "train_split")
    recent = holdout_parts(project, holdout)[1]
    assert len(recent) == RECENT_ROWS and set(recent[ORIGIN]) == set(newest)
    assert not inputs(project, recent) & inputs(project, train)
    _, evaluation = current(home, NAME, "evaluation_report")
    report = evaluation.body
    holdouts = report["holdouts"]
    assert holdouts["used_for_gates"] == "recent", holdouts["reason"]
    judged = holdouts["recent"]
    assert judged["holdout_rows"] == RECENT_ROWS
    # RMSE is lower-is-better: the candidate's is lower than the champion's by the margin.
    assert judged["candidate"]["rmse"] <= judged["champion"]["rmse"] - MARGIN, judged

    # The policy approved it by itself, and the loop deployed it.
    new_deployment, deployment = current(home, NAME, "deployed_model")
    assert new_deployment != old_deployment
    assert deployment["model_version"] == report["candidate"]["model_version"]
    assert deployment["approval"]["reason"].startswith("auto-approved by policy: rmse"), deployment[
        "approval"
    ]
    assert deployment["deployed_by"] == "ground_truth_trigger"

    # The next drifted batches: rows neither model trained on.
    halves = [unseen.iloc[0::2], unseen.iloc[1::2]]
    fresh = [
        *drifted(project, halves[0], DRIFT, batches=1, rows=len(halves[0]), seed=5),
        *drifted(project, halves[1], DRIFT, batches=1, rows=len(halves[1]), seed=6),
    ]
    score_and_label(driver, project, fresh)
    _, train = current(home, NAME, "train_split")
    for batch in fresh:
        _, rows = current(home, NAME, f"production_batch/partitions/{batch}")
        assert not inputs(project, rows) & inputs(project, train)
        _, predictions = current(home, NAME, f"predictions/partitions/{batch}")
        assert "proba" not in predictions
        assert set(predictions[DEPLOYMENT_COLUMN]) == {new_deployment}
        assert set(predictions[SHADOW_PREVIOUS_DEPLOYMENT]) == {old_deployment}
        # The shadow column holds the old model's predicted price.
        assert predictions[SHADOW_PREVIOUS_PROBA].notna().all()

    # Same rows, both models: difference = live - previous in RMSE, so the new model's
    # improvement is its negation, and the interval of the improvement lies above 0.
    _, live = current(home, NAME, "live_performance")
    paired = live["paired"]
    assert paired["deployment"] == old_deployment
    assert sorted(paired["batches"]) == sorted(fresh)
    assert paired["rows"] == len(unseen)
    assert -paired["difference"] >= MARGIN, paired
    assert -paired["ci_high"] > 0, paired
