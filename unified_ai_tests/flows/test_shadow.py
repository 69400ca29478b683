"""A candidate waiting for approval is scored in the shadow, and approvers see it beside the
champion."""

import pytest

from unified_ai.projects.loader import load_project_file
from unified_ai.stages.approval.jobs import approval_run_config
from unified_ai_tests.conftest import write_project
from unified_ai_tests.flows.helpers import (
    current,
    new_source_rows,
    project_defs,
    run_loop,
    step_failures,
    store,
)
from unified_ai_tests.flows.monitoring_helpers import SensorDriver, simulate

# The first model deploys by itself; a later one only with a person's approval (it cannot
# improve by 0.5), so the second candidate waits.
WAITING_POLICY = """\
  approval:
    mode: auto
    auto_approve: {min_improvement: 0.5}
    four_eyes: false
"""


@pytest.fixture
def waiting(home, projects_dir, instance, monkeypatch):
    return waiting_candidate(home, projects_dir, instance, monkeypatch, WAITING_POLICY)


def waiting_candidate(home, projects_dir, instance, monkeypatch, extra):
    path = write_project(projects_dir, policy_extra=extra)
    monkeypatch.setenv("UNIFIED_AI_PROJECTS", str(projects_dir))
    defs = project_defs(projects_dir)
    assert run_loop(defs, instance, "small").success
    deployed = store(home).current_version(["small", "deployed_model"])
    new_source_rows(projects_dir)  # a new model, not the champion again
    second = run_loop(defs, instance, "small")
    assert second.success, step_failures(second)
    assert store(home).current_version(["small", "deployed_model"]) == deployed
    _, report = current(home, "small", "evaluation_report")
    return load_project_file(path), defs, SensorDriver(defs, instance), report.body


def score_and_label(driver) -> list[str]:
    simulate("small", "--batches", "2", "--rows", "200", "--seed", "5")
    tick = driver.tick("small__batch_sensor")
    runs = [driver.launch(request, "small__score_batch") for request in tick.requests]
    assert len(runs) == 2 and all(run.success for run in runs), [step_failures(r) for r in runs]
    simulate("small", "--labels")
    for request in driver.tick("small__labels_sensor").requests:
        labeled = driver.launch(request, "small__ingest_labels")
        assert labeled.success, step_failures(labeled)
    return [run.dagster_run.tags["dagster/partition"] for run in runs]


def test_a_waiting_candidate_is_scored_in_the_shadow_and_shown_to_approvers(
    home, instance, waiting
):
    project, defs, driver, report = waiting
    candidate = report["candidate"]["model_version"]
    champion = current(home, "small", "deployed_model")[1]["model_version"]
    assert candidate != champion

    batch, _ = score_and_label(driver)
    version, predictions = current(home, "small", f"predictions/partitions/{batch}")
    assert set(predictions["shadow_candidate_model"]) == {candidate}
    assert predictions["shadow_candidate_proba"].between(0, 1).all()
    # Only one deployment so far: no predecessor to shadow.
    assert predictions["shadow_previous_deployment"].isna().all()
    manifest = store(home).read_manifest(["small", "predictions", "partitions", batch], version)
    assert candidate in manifest.upstream["small/candidate_model"]

    _, live = current(home, "small", "live_performance")
    shadow = live["candidate"]
    assert shadow["model_version"] == candidate and shadow["rows"] == 400
    assert shadow["difference"] == pytest.approx(shadow["candidate"] - shadow["champion"])

    approved = defs.resolve_job_def("small__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project, model_version=candidate, decision="approve", approver="alice", comment="ok"
        ),
        raise_on_error=False,
    )
    assert approved.success, step_failures(approved)
    [event] = approved.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["shadow_rows"] == 400
    assert metadata["shadow_candidate_value"] == pytest.approx(shadow["candidate"])
    assert metadata["shadow_champion_value"] == pytest.approx(shadow["champion"])
    assert f"candidate {candidate} (shadow)" in metadata["shadow_comparison"]
    assert "champion (live)" in metadata["shadow_comparison"]


def test_a_rejected_candidate_is_no_longer_shadowed(home, instance, waiting):
    project, defs, driver, report = waiting
    candidate = report["candidate"]["model_version"]
    rejected = defs.resolve_job_def("small__approve").execute_in_process(
        instance=instance,
        run_config=approval_run_config(
            project, model_version=candidate, decision="reject", approver="alice", comment="no"
        ),
        raise_on_error=False,
    )
    assert rejected.success, step_failures(rejected)
    [event] = rejected.get_asset_materialization_events()
    # Nothing was scored in the shadow yet: the approval says so rather than show nothing.
    no_rows = event.materialization.metadata["shadow_comparison"].value
    assert no_rows == f"no labeled production rows scored by model {candidate} in the shadow yet"

    batch, _ = score_and_label(driver)
    _, predictions = current(home, "small", f"predictions/partitions/{batch}")
    assert predictions["shadow_candidate_model"].isna().all()
    _, live = current(home, "small", "live_performance")
    assert live["candidate"] is None


def test_a_large_batch_is_shadow_scored_on_one_sample(home, projects_dir, instance, monkeypatch):
    extra = WAITING_POLICY + "monitoring: {shadow_rows: 150}\n"
    _, _, driver, report = waiting_candidate(home, projects_dir, instance, monkeypatch, extra)
    candidate = report["candidate"]["model_version"]
    batches = score_and_label(driver)
    for batch in batches:
        _, predictions = current(home, "small", f"predictions/partitions/{batch}")
        assert len(predictions) == 200
        scored = predictions["shadow_candidate_proba"].notna()
        assert scored.sum() == 150 and set(predictions["shadow_candidate_model"]) == {candidate}
        assert predictions["proba"].notna().all()  # the live model scores every row
    _, live = current(home, "small", "live_performance")
    # Paired only where both models scored: the sampled, labeled rows.
    assert live["candidate"]["rows"] == 300
