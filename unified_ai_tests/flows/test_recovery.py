"""The loop recovers from concept drift, on the default project's data, model and policy.

Deploy; the world changes (`concept:appinc`: where the applicant's income is above its median,
the lender's decision reverses); the labels arrive; the ground-truth trigger retrains on them;
the candidate beats the champion on the recent holdout and the policy deploys it; on the next
drifted batches the new model beats the old one on the same rows (the old one scores them in
the shadow).

Batches are drawn, as `unified-ai simulate` draws them, from the source rows of the holdout
split (597 rows). The policy wants 1,000 labeled production rows before the recent holdout
judges (`min_recent_rows` 300, the newest 30 % held out), more than there are distinct rows,
so the pool is cut in three disjoint parts: rows the retrain trains on, rows of the recent
holdout, and rows of the next batches, which no model ever trained on.
"""

import pytest

from unified_ai.ml.split import holdout_parts
from unified_ai.names import (
    DEPLOYMENT_COLUMN,
    ORIGIN,
    SHADOW_PREVIOUS_DEPLOYMENT,
    SHADOW_PREVIOUS_PROBA,
)
from unified_ai.project_tree import load_projects
from unified_ai_tests.flows.helpers import (
    check_results,
    current,
    project_defs,
    run_loop,
    step_failures,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver
from unified_ai_tests.flows.recovery_helpers import drifted, inputs, pool_parts, score_and_label

pytestmark = pytest.mark.slow

DEFAULT = "mortgage_approval"
COLUMN = "appinc"
DRIFT = f"concept:{COLUMN}"
# On the same 199 drifted rows, which neither model trained on, the retrained model's live
# ROC AUC beat the first model's by 0.30 when this test was written (0.81 vs 0.51, paired
# interval +0.23 to +0.37; see docs/walkthrough.md); half of that leaves room for another
# scikit-learn or platform, and no model that merely matches the old one passes.
MARGIN = 0.15


def drift_and_retrain(home, instance, defs, project):
    """Deploy, drift, label, let the ground-truth trigger retrain: (run, old deployment, parts)."""
    driver = SensorDriver(defs, instance)
    first = run_loop(defs, instance, project.name)
    assert first.success, step_failures(first)
    old_deployment, _ = current(home, project.name, "deployed_model")
    trained, held_out, unseen = pool_parts(home, project, COLUMN)

    # 700 drifted rows to train on, then 300 newer ones: the recent holdout.
    batches = drifted(project, trained, DRIFT, batches=2, rows=350, seed=1)
    newest = drifted(project, held_out, DRIFT, batches=1, rows=300, seed=3)
    score_and_label(driver, project, batches + newest)
    _, live = current(home, project.name, "live_performance")
    assert live["current"]["deployment"] == old_deployment
    assert live["current"]["labeled_rows"] == 1000

    # The ground-truth trigger asks for a retrain on the new labels, with its evidence.
    [request] = driver.tick(f"{project.name}__ground_truth_trigger").requests
    assert request.tags["unified_ai/trigger"] == "new_ground_truth"
    assert request.tags["unified_ai/evidence.new_labels"] == "1000"
    assert set(request.tags["unified_ai/evidence.batches"].split(",")) == {*batches, *newest}
    retrain = driver.launch(request, f"{project.name}__training_loop")

    # The gates judged on the recent holdout: the newest batch, never trained on.
    _, holdout = current(home, project.name, "holdout_split")
    _, train = current(home, project.name, "train_split")
    recent = holdout_parts(project, holdout)[1]
    assert len(recent) == 300 and set(recent[ORIGIN]) == set(newest)
    assert not inputs(project, recent) & inputs(project, train)
    _, report = current(home, project.name, "evaluation_report")
    holdouts = report.body["holdouts"]
    assert holdouts["used_for_gates"] == "recent", holdouts["reason"]
    assert holdouts["recent"]["holdout_rows"] == 300
    return retrain, report.body, old_deployment, driver, unseen


def test_the_loop_recovers_from_concept_drift(home, instance):
    [project] = [p for p in load_projects() if p.name == DEFAULT]
    defs = project_defs()
    retrain, report, old_deployment, driver, unseen = drift_and_retrain(
        home, instance, defs, project
    )
    name = project.name
    assert retrain.success, step_failures(retrain)
    assert all(passed for passed, _ in check_results(retrain).values()), check_results(retrain)
    recent = report["holdouts"]["recent"]
    # 0.86 vs 0.52 when this test was written.
    assert recent["candidate"]["roc_auc"] >= recent["champion"]["roc_auc"] + MARGIN

    # The policy approved it by itself (better by more than 0.005, no segment gap wider).
    new_deployment, deployment = current(home, name, "deployed_model")
    assert new_deployment != old_deployment
    assert deployment["model_version"] == report["candidate"]["model_version"]
    assert deployment["approval"]["reason"].startswith("auto-approved by policy: roc_auc +0.")
    assert deployment["deployed_by"] == "ground_truth_trigger"

    # The next drifted batches: rows neither model trained on.
    halves = [unseen.iloc[0::2], unseen.iloc[1::2]]
    fresh = [
        *drifted(project, halves[0], DRIFT, batches=1, rows=len(halves[0]), seed=5),
        *drifted(project, halves[1], DRIFT, batches=1, rows=len(halves[1]), seed=6),
    ]
    score_and_label(driver, project, fresh)
    _, train = current(home, name, "train_split")
    for batch in fresh:
        _, rows = current(home, name, f"production_batch/partitions/{batch}")
        assert not inputs(project, rows) & inputs(project, train)
        _, predictions = current(home, name, f"predictions/partitions/{batch}")
        assert set(predictions[DEPLOYMENT_COLUMN]) == {new_deployment}
        assert set(predictions[SHADOW_PREVIOUS_DEPLOYMENT]) == {old_deployment}
        assert predictions[SHADOW_PREVIOUS_PROBA].between(0, 1).all()

    # Same rows, both models: the new one's live ROC AUC is better by more than MARGIN.
    _, live = current(home, name, "live_performance")
    paired = live["paired"]
    assert paired["deployment"] == old_deployment
    assert sorted(paired["batches"]) == sorted(fresh)
    assert paired["rows"] == len(unseen)
    assert paired["difference"] >= MARGIN
    assert paired["ci_low"] > 0
