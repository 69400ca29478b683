"""Answers teach: answered reviews enter a batch's `ground_truth`, with who gave them."""

import dagster as dg
import pandas as pd
import pytest

from unified_ai import names
from unified_ai.io.review_answers import record_review
from unified_ai.stages.review.jobs import REVIEW_OP
from unified_ai_tests.flows.helpers import current, step_failures, store
from unified_ai_tests.flows.review_helpers import scored_and_routed

REVIEW = """\
  review:
    audit_share: 1.0
    daily_cap: 10
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo]}
"""


@pytest.fixture
def routed(home, projects_dir, instance, monkeypatch):
    """A reviewed project with one scored batch routed to people: (defs, project, batch, queue)."""
    defs, project, batch, _, _ = scored_and_routed(
        home, projects_dir, instance, monkeypatch, REVIEW
    )
    job = defs.resolve_job_def(names.route_reviews_job("small"))
    result = job.execute_in_process(instance=instance, partition_key=batch)
    assert result.success
    _, queue = current(home, "small", f"{names.REVIEW_QUEUE}/partitions/{batch}")
    assert len(queue) == 10
    return defs, project, batch, queue


def _ground_truth(defs, instance, batch: str) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def(names.ingest_labels_job("small"))
    return job.execute_in_process(instance=instance, partition_key=batch, raise_on_error=False)


def _truth_event(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    (event,) = result.asset_materializations_for_node(names.op_name("small", names.GROUND_TRUTH))
    return event


def test_answered_reviews_alone_are_a_batchs_ground_truth_with_lineage(home, instance, routed):
    defs, project, batch, queue = routed
    lineage = store(home)
    ids = list(queue[names.REVIEW_ID])
    record_review(lineage, project, ids[0], reviewer="Ana", answer="1", comment="income ok")
    record_review(lineage, project, ids[1], reviewer="bo", answer="0")
    record_review(lineage, project, ids[2], reviewer="bo", action="skip")  # no label

    result = _ground_truth(defs, instance, batch)
    assert result.success, step_failures(result)
    version, truth = current(home, "small", f"{names.GROUND_TRUTH}/partitions/{batch}")
    assert len(truth) == 2
    assert set(truth[names.ORIGIN]) == {names.REVIEW_ORIGIN}
    by_row = truth.set_index(names.ROW_ID)
    rows = list(queue[names.ROW_ID])
    assert by_row.loc[rows[0], "label"] == 1 and by_row.loc[rows[1], "label"] == 0
    assert by_row.loc[rows[0], names.REVIEWER_COLUMN] == "Ana"
    metadata = _truth_event(result).metadata
    # Counted toward the ground-truth trigger like other labels (its row count).
    assert metadata["dagster/row_count"].value == 2
    assert metadata["review_labels"].value == 2
    assert metadata["reviewers"].value == ["Ana", "bo"]
    upstream = lineage.read_manifest(
        ["small", names.GROUND_TRUTH, names.PARTITIONS, batch], version
    ).upstream
    answers = upstream[f"small/{names.REVIEWS}/partitions/{batch}"]
    assert len(answers) == 3  # every answer version the labels were decided from
    assert f"small/{names.REVIEW_QUEUE}/partitions/{batch}" in upstream


def test_an_inbox_label_wins_over_a_review_answer_for_the_same_row(home, instance, routed):
    defs, project, batch, queue = routed
    lineage = store(home)
    ids, rows = list(queue[names.REVIEW_ID]), list(queue[names.ROW_ID])
    record_review(lineage, project, ids[0], reviewer="ana", answer="1")
    record_review(lineage, project, ids[1], reviewer="ana", answer="0")
    folder = home / "inbox" / "small" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({names.ROW_ID: [rows[0], rows[5]], "label": [0, 1]}).to_csv(
        folder / batch, index=False
    )

    result = _ground_truth(defs, instance, batch)
    assert result.success, step_failures(result)
    _, truth = current(home, "small", f"{names.GROUND_TRUTH}/partitions/{batch}")
    by_row = truth.set_index(names.ROW_ID)
    assert len(truth) == 3
    assert by_row.loc[rows[0], "label"] == 0  # the label file's, not ana's 1
    assert by_row.loc[rows[0], names.ORIGIN] == names.LABEL_ORIGIN
    assert by_row.loc[rows[1], names.ORIGIN] == names.REVIEW_ORIGIN
    assert by_row.loc[rows[5], names.ORIGIN] == names.LABEL_ORIGIN
    metadata = _truth_event(result).metadata
    assert metadata["review_labels"].value == 1
    assert metadata["review_labels_overridden"].value == 1
    assert not (folder / batch).exists()  # the file was taken in


def test_no_label_file_and_no_answer_is_still_refused(home, instance, routed):
    defs, project, batch, queue = routed
    record_review(
        store(home), project, queue[names.REVIEW_ID].iloc[0], reviewer="ana", action="skip"
    )
    result = _ground_truth(defs, instance, batch)
    assert not result.success
    assert "small__ground_truth" in step_failures(result)


def test_the_launchpad_job_records_an_answer_as_a_materialization(home, instance, routed):
    from unified_ai.stages.review.jobs import review_run_config

    defs, project, batch, queue = routed
    job = defs.resolve_job_def(names.review_job("small"))
    review_id = queue[names.REVIEW_ID].iloc[0]
    config = review_run_config(project, review_id=review_id, answer="1", by="bo", comment="ok")
    result = job.execute_in_process(instance=instance, run_config=config)
    assert result.success, step_failures(result)
    [event] = instance.fetch_materializations(
        dg.AssetKey(["small", names.REVIEWS]), limit=10
    ).records
    assert event.partition_key == batch
    metadata = event.asset_materialization.metadata
    assert (metadata["reviewer"].value, metadata["answer"].value) == ("bo", "1")

    # Refused answers fail the run with the one-line reason and record nothing more.
    for refused, reason in (
        ({"review_id": review_id, "by": "ana"}, "is answered already"),
        ({"by": "eve"}, "eve may not review"),
        ({"by": "ana", "answer": "maybe"}, "a binary answer is 0 or 1"),
        ({"review_id": "nope"}, "no routed item nope"),
    ):
        other = queue[names.REVIEW_ID].iloc[1]
        values = {"review_id": other, "answer": "0", "by": "ana", **refused}
        failed = job.execute_in_process(
            instance=instance,
            run_config=review_run_config(project, **values),
            raise_on_error=False,
        )
        assert not failed.success
        assert reason in step_failures(failed)[names.op_name("small", REVIEW_OP)]

    truth_run = _ground_truth(defs, instance, batch)
    assert truth_run.success, step_failures(truth_run)
    _, truth = current(home, "small", f"{names.GROUND_TRUTH}/partitions/{batch}")
    assert list(truth[names.REVIEWER_COLUMN]) == ["bo"]
