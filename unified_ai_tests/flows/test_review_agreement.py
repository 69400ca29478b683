"""Answers teach: model-people agreement per segment in `live_performance`, and its floor.

A batch is scored and routed, people answer through the store's one way to answer, the
labels sensor takes the answers in without any label file, `live_performance` shows the
agreement per segment value, and the performance trigger's tick asks for a retrain naming
the segment whose reviewers disagree with the model.
"""

from types import SimpleNamespace

import pandas as pd
import pytest

from unified_ai import names
from unified_ai.io.review_answers import record_review
from unified_ai_tests.flows.helpers import current, step_failures, store
from unified_ai_tests.flows.review_helpers import scored_and_routed

REVIEW = """\
  triggers:
    agreement: {floor: 0.4, min_answers: 5, cooldown_minutes: 60}
  review:
    audit_share: 1.0
    daily_cap: 30
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo]}
"""


@pytest.fixture
def answered(home, projects_dir, instance, monkeypatch):
    """Every routed item answered: north's reviewers always disagree, south's always agree."""
    _, project, batch, queue, driver = scored_and_routed(
        home, projects_dir, instance, monkeypatch, REVIEW
    )
    assert len(queue) == 30
    lineage = store(home)
    for row in queue.to_dict("records"):
        model = row["model_answer"]
        answer = model if row["region"] == "south" else str(1 - int(model))
        record_review(lineage, project, row[names.REVIEW_ID], reviewer="ana", answer=answer)
    return SimpleNamespace(project=project, batch=batch, queue=queue, driver=driver)


def _labels_tick(driver):
    return driver.tick(names.sensor_names("small")[names.LABELS])


def test_review_answers_reach_ground_truth_through_the_labels_sensor(home, instance, answered):
    batch, driver = answered.batch, answered.driver
    # No label file: the answers alone make the batch's ground truth.
    assert not (home / "inbox" / "small" / "labels" / batch).exists()
    tick = _labels_tick(driver)
    [request] = tick.requests
    assert request.partition_key == batch
    assert request.run_key.startswith(f"reviews:{batch}:")
    run = driver.launch(request, names.ingest_labels_job("small"))
    assert run.success, step_failures(run)
    _, truth = current(home, "small", f"{names.GROUND_TRUTH}/partitions/{batch}")
    assert len(truth) == 30
    assert set(truth[names.ORIGIN]) == {names.REVIEW_ORIGIN}

    # Idempotent: nothing new, nothing asked for again.
    assert _labels_tick(driver).requests == []


def test_a_restarted_labels_sensor_does_not_take_answers_in_twice(home, instance, answered):
    driver = answered.driver
    [request] = _labels_tick(driver).requests
    assert driver.launch(request, names.ingest_labels_job("small")).success
    driver.cursors.clear()  # a sensor whose cursor was reset
    assert _labels_tick(driver).requests == []  # the ground truth names these answers


def test_agreement_per_segment_is_shown_and_a_low_segment_asks_for_a_retrain(
    home, instance, answered
):
    queue, driver = answered.queue, answered.driver
    [request] = _labels_tick(driver).requests
    run = driver.launch(request, names.ingest_labels_job("small"))
    assert run.success, step_failures(run)

    [event] = run.asset_materializations_for_node(names.op_name("small", names.LIVE_PERFORMANCE))
    metadata = event.metadata
    north = int((queue["region"] == "north").sum())
    south = int((queue["region"] == "south").sum())
    agreement = metadata["agreement"].value
    assert (agreement["answers"], agreement["agreed"]) == (30, south)
    assert agreement["segments"]["region"]["north"] == {
        "answers": north,
        "agreed": 0,
        "agreement": 0.0,
    }
    assert agreement["segments"]["region"]["south"]["agreement"] == 1.0
    table = {
        (r.data["segment"], r.data["value"]): r.data
        for r in metadata["agreement_by_segment"].value.records
    }
    assert table[("region", "north")]["agreed"] == 0
    assert table[("all", "all")]["answers"] == 30
    _, stored = current(home, "small", names.LIVE_PERFORMANCE)
    assert stored["agreement"]["segments"]["region"]["north"]["answers"] == north

    tick = driver.tick(names.sensor_names("small")[names.PERFORMANCE])
    [retrain] = tick.requests
    assert retrain.job_name == names.training_loop_job("small")
    assert retrain.tags[names.ACTOR_TAG] == "agreement_trigger"
    below = retrain.tags[f"{names.EVIDENCE_TAG_PREFIX}below_floor"]
    assert below == f"region=north 0/{north} (0.00)"  # south and the whole window are fine
    assert retrain.tags[names.TRIGGER_TAG] == "agreement_below_floor"


def test_without_a_floor_agreement_is_measured_and_nothing_retrains(
    home, projects_dir, instance, monkeypatch
):
    extra = REVIEW.replace("floor: 0.4, ", "")
    _, project, _, queue, driver = scored_and_routed(
        home, projects_dir, instance, monkeypatch, extra
    )
    lineage = store(home)
    for row in queue.head(6).to_dict("records"):
        wrong = str(1 - int(row["model_answer"]))
        record_review(lineage, project, row[names.REVIEW_ID], reviewer="bo", answer=wrong)
    [request] = _labels_tick(driver).requests
    run = driver.launch(request, names.ingest_labels_job("small"))
    assert run.success, step_failures(run)
    [event] = run.asset_materializations_for_node(names.op_name("small", names.LIVE_PERFORMANCE))
    assert event.metadata["agreement_share"].value == 0.0
    tick = driver.tick(names.sensor_names("small")[names.PERFORMANCE])
    assert tick.requests == []
    assert "no agreement floor" in tick.skip


def test_a_batch_with_only_skips_asks_for_nothing(home, projects_dir, instance, monkeypatch):
    _, project, _, queue, driver = scored_and_routed(
        home, projects_dir, instance, monkeypatch, REVIEW
    )
    record_review(
        store(home), project, queue[names.REVIEW_ID].iloc[0], reviewer="ana", action="skip"
    )
    tick = _labels_tick(driver)
    assert tick.requests == []
    assert "without an answered item" in tick.skip


def test_answers_after_a_label_file_keep_the_files_labels(
    home, projects_dir, instance, monkeypatch
):
    _, project, batch, queue, driver = scored_and_routed(
        home, projects_dir, instance, monkeypatch, REVIEW
    )
    _, predictions = current(home, "small", f"{names.PREDICTIONS}/partitions/{batch}")
    unrouted = [r for r in predictions[names.ROW_ID] if r not in set(queue[names.ROW_ID])][:3]
    folder = home / "inbox" / "small" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({names.ROW_ID: unrouted, "label": [0, 1, 0]}).to_csv(folder / batch, index=False)
    [by_file] = _labels_tick(driver).requests
    assert by_file.run_key.startswith("labels:")
    assert driver.launch(by_file, names.ingest_labels_job("small")).success

    first = queue.iloc[0]
    record_review(store(home), project, first[names.REVIEW_ID], reviewer="bo", answer="1")
    [by_answers] = _labels_tick(driver).requests
    assert by_answers.run_key.startswith(f"reviews:{batch}:")
    run = driver.launch(by_answers, names.ingest_labels_job("small"))
    assert run.success, step_failures(run)
    _, truth = current(home, "small", f"{names.GROUND_TRUTH}/partitions/{batch}")
    by_row = truth.set_index(names.ROW_ID)
    assert len(truth) == 4  # the file's three labels are kept beside the answer
    assert set(by_row.loc[unrouted, names.ORIGIN]) == {names.LABEL_ORIGIN}
    assert by_row.loc[first[names.ROW_ID], names.ORIGIN] == names.REVIEW_ORIGIN
