"""How fast the loop reacts, in batches, with real sensors and runs (numbers printed, not timed).

One small project is trained once per test session; each test works on its own copy of that
trained home and Dagster instance. Batches are 100 rows; after each batch's labels are
ingested the sensor under test is evaluated once, as the daemon would on its next tick.

- A learned change ends: the rollback comes within 3 batches (the recent window decides),
  while the whole bake window still reads the deployment as the better one.
- A retrain ends without a deployment (rejected): fresh labels re-arm the ground-truth trigger
  on the first evaluation that sees `min_new_labels` rows beyond its data cut.
- A retrain on the same data rebuilds the champion: marked identical, never deployed, a
  person's approval of it refused, and a trigger says so instead of retraining.
"""

import shutil

import dagster as dg
import pandas as pd
import pytest

from unified_ai.projects.loader import load_project_file
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import current, project_defs, run_loop, step_failures, store
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

pytestmark = pytest.mark.slow

NAME = "small"
ROWS = 100
PERFORMANCE = f"{NAME}__performance_trigger"
GROUND_TRUTH = f"{NAME}__ground_truth_trigger"
DRIFT = f"{NAME}__drift_trigger"
MIN_NEW_LABELS = 200
# Later candidates deploy by themselves only when clearly better (a learned change is); the
# whole bake window is 8 batches, the recent window the default last 2 (200 paired rows).
POLICY = f"""\
  approval:
    mode: auto
    auto_approve: {{min_improvement: 0.3}}
    four_eyes: false
  triggers:
    drift: {{max_drifted_share: 0.3, cooldown_minutes: 60}}
    performance: {{floor: 0.1, window_batches: 8, min_labels: 50}}
    rollback: {{bake_window_hours: 24, margin: 0.05}}
    ground_truth: {{min_new_labels: {MIN_NEW_LABELS}, cooldown_minutes: 60}}
"""


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A home, projects folder and Dagster home with the project trained and deployed once."""
    root = tmp_path_factory.mktemp("reaction")
    with pytest.MonkeyPatch.context() as patch:
        _environment(patch, root)
        write_project(root / "projects", policy_extra=POLICY)
        (root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
            first = run_loop(project_defs(root / "projects"), instance, NAME)
            assert first.success, step_failures(first)
    return root


def _environment(patch, root):
    patch.setenv("UNIFIED_AI_HOME", str(root / "home"))
    patch.setenv("UNIFIED_AI_PROJECTS", str(root / "projects"))
    for name in ("MLFLOW_TRACKING_URI", "UNIFIED_AI_RUNTIME", "UNIFIED_AI_SIGNING_KEY"):
        patch.delenv(name, raising=False)


@pytest.fixture
def loop(trained, tmp_path, monkeypatch):
    """This test's own copy of the trained project: (root, defs, driver, instance)."""
    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    _environment(monkeypatch, root)
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        defs = project_defs(root / "projects")
        yield root, defs, SensorDriver(defs, instance), instance


def one_batch(driver: SensorDriver, *drift: str) -> str:
    """One batch of `ROWS` rows scored, then its labels ingested; returns the batch key."""
    simulate(NAME, "--batches", "1", "--rows", str(ROWS), *drift)
    [request] = driver.tick(f"{NAME}__batch_sensor").requests
    scored = driver.launch(request, f"{NAME}__score_batch")
    assert scored.success, step_failures(scored)
    simulate(NAME, "--labels")
    [labels] = driver.tick(f"{NAME}__labels_sensor").requests
    ingested = driver.launch(labels, f"{NAME}__ingest_labels")
    assert ingested.success, step_failures(ingested)
    return scored.dagster_run.tags["dagster/partition"]


def deployed(root) -> str:
    return store(root / "home").current_version([NAME, "deployed_model"])


def test_a_learned_change_that_ends_is_rolled_back_within_3_batches(loop):
    root, defs, driver, instance = loop
    v1 = deployed(root)
    # The world changes (labels reverse) and the loop learns it: v2, trained on the changed
    # data, replaces v1 by itself (better by far on the changed holdout).
    source = root / "projects" / f"{NAME}.csv"
    changed = pd.read_csv(source)
    changed["label"] = 1 - changed["label"]
    changed.to_csv(source, index=False)
    learned = run_loop(defs, instance, NAME)
    assert learned.success, step_failures(learned)
    v2 = deployed(root)
    assert v2 != v1

    # While the change lasts, v2 is right and v1 (scoring in the shadow) wrong.
    for _ in range(4):
        one_batch(driver)
        assert driver.tick(PERFORMANCE).requests == []
    # The change ends: batches drawn from the changed source, labels flipped back.
    reacted = None
    for after in range(1, 4):
        one_batch(driver, "--drift", "flip:1.0")
        tick = driver.tick(PERFORMANCE)
        if tick.requests:
            reacted = after
            break
    print(f"\nchange ends -> rollback after {reacted} batches of {ROWS} rows")
    assert reacted is not None and reacted <= 3, tick.skip
    [request] = tick.requests
    assert request.job_name == f"{NAME}__rollback"
    tags = request.tags
    assert tags["unified_ai/evidence.decided_by"] == "recent_window"
    # The whole bake window still favours v2: only the recent window saw the change end.
    assert float(tags["unified_ai/evidence.paired_difference"]) > -0.05
    assert float(tags["unified_ai/evidence.recent_paired_difference"]) < -0.05
    assert float(tags["unified_ai/evidence.recent_paired_ci_high"]) < 0
    assert int(tags["unified_ai/evidence.recent_paired_rows"]) == 2 * ROWS
    rollback = driver.launch(request)
    assert rollback.success, step_failures(rollback)
    assert deployed(root) == v1
    _, incident = current(root / "home", NAME, "incidents")
    assert "of the last 2 batches" in incident["reason"]
    assert "decided by the recent window" in incident["reason"]


def test_fresh_labels_rearm_the_trigger_after_a_retrain_that_deployed_nothing(loop):
    root, defs, driver, instance = loop
    project = load_project_file(root / "projects" / f"{NAME}.yaml")
    v1 = deployed(root)
    for _ in range(MIN_NEW_LABELS // ROWS):
        one_batch(driver)
    [request] = driver.tick(GROUND_TRUTH).requests
    retrain = driver.launch(request, f"{NAME}__training_loop")
    assert retrain.success, step_failures(retrain)
    assert deployed(root) == v1  # not better by 0.3: it waits for a person ...
    _, report = current(root / "home", NAME, "evaluation_report")
    candidate = report.body["candidate"]["model_version"]
    rejected = defs.resolve_job_def(f"{NAME}__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project, model_version=candidate, decision="reject", approver="alice", comment="no"
        ),
        raise_on_error=False,
    )
    assert rejected.success, step_failures(rejected)  # ... who rejects it.

    # Fresh labels arrive, well within the cooldown of the retrain that deployed nothing.
    reacted = None
    for batch in range(1, 4):
        one_batch(driver)
        tick = driver.tick(GROUND_TRUTH)
        if tick.requests:
            reacted = batch
            break
        assert f"(need {MIN_NEW_LABELS})" in tick.skip
    print(f"\nretrain rejected -> fresh labels -> retrain after {reacted} batches of {ROWS} rows")
    assert reacted == MIN_NEW_LABELS // ROWS, tick.skip
    [again] = tick.requests
    assert again.tags["unified_ai/evidence.new_labels"] == str(MIN_NEW_LABELS)
    assert "re-arms at" in again.tags["unified_ai/evidence.rearmed"]


def test_a_retrain_that_rebuilds_the_champion_is_never_deployed(loop):
    root, defs, driver, instance = loop
    project = load_project_file(root / "projects" / f"{NAME}.yaml")
    v1 = deployed(root)
    # Drift without a single new label: a retrain would rebuild the champion; the trigger
    # says so instead of retraining.
    simulate(NAME, "--batches", "1", "--rows", str(ROWS), "--drift", "shift:x1=3,shift:x2=-3")
    [request] = driver.tick(f"{NAME}__batch_sensor").requests
    assert driver.launch(request, f"{NAME}__score_batch").success
    tick = driver.tick(DRIFT)
    assert tick.requests == []
    assert "a retrain would only reproduce the champion" in tick.skip

    # Retrained anyway, by hand: the candidate is the champion again.
    again = run_loop(defs, instance, NAME)
    assert again.success, step_failures(again)
    _, report = current(root / "home", NAME, "evaluation_report")
    assert report.body["identical"] == {
        "identical": True,
        "reason": f"the same predictions on all {report.body['holdout_rows']} holdout rows",
    }
    assert deployed(root) == v1
    candidate = report.body["candidate"]["model_version"]
    approved = defs.resolve_job_def(f"{NAME}__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project, model_version=candidate, decision="approve", approver="alice", comment="ok"
        ),
        raise_on_error=False,
    )
    assert not approved.success
    [failure] = step_failures(approved).values()
    assert "\n" not in failure.strip()
    assert f"candidate {candidate} is identical to the champion" in failure
    deploy = defs.resolve_job_def(f"{NAME}__deploy").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert deployed(root) == v1, step_failures(deploy)
    print("\nidentical candidate -> deployments: 0")


def test_a_retrain_whose_gate_failed_ended_without_a_deployment(loop):
    from unified_ai.stages.monitoring.triggers import _last_retrain

    root, _, _, instance = loop
    path = root / "projects" / f"{NAME}.yaml"
    path.write_text(
        path.read_text().replace("quality_floor: {roc_auc: 0.6}", "quality_floor: {roc_auc: 0.99}")
    )
    failed = run_loop(project_defs(root / "projects"), instance, NAME)
    assert not failed.success
    project = load_project_file(path)
    last = _last_retrain(instance, project, fresh=True, fresh_detail="250 rows")
    assert last.outcome == "no_deployment" and last.fresh
    assert last.detail.startswith("gate ") and "quality_floor" in last.detail
    assert last.run_id == failed.run_id
