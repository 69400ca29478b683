"""Answered reviews as labels: which items count, in the task's form, and who gave them."""

import pandas as pd
import pytest

from unified_ai import names
from unified_ai.io.reader import ReadLog, StoreReader
from unified_ai.io.review_answers import answered_labels, record_review
from unified_ai.ml.label_join import join_labels, with_review_labels
from unified_ai.policies.review_answers import label_value
from unified_ai_tests.flows.review_helpers import NOW, routed_batch


@pytest.fixture
def queued(tmp_path, projects_dir):
    """A four-eyes project and a store holding one routed batch of four rows."""
    return routed_batch(tmp_path, projects_dir, [10, 11, 12, 13])


def test_only_items_answered_as_policy_asks_become_labels(queued):
    project, store, ids, predictions = queued
    log = ReadLog()
    reader = StoreReader(store, log)
    assert answered_labels(reader, project, "b1", now=NOW).empty
    assert log.upstream() == {}  # nothing used, nothing in the lineage
    record_review(store, project, ids[0], reviewer="ana", answer="1", now=NOW)
    record_review(store, project, ids[0], reviewer="Bo", answer="1", now=NOW)  # agreed
    record_review(store, project, ids[1], reviewer="ana", answer="1", now=NOW)
    record_review(store, project, ids[1], reviewer="chen", answer="0", now=NOW)  # escalated
    record_review(store, project, ids[2], reviewer="ana", answer="0", now=NOW)  # one of two

    labels = answered_labels(reader, project, "b1", now=NOW)
    assert labels.to_dict("records") == [
        {names.ROW_ID: 10, "label": 1, names.REVIEWER_COLUMN: "ana, Bo"}
    ]
    upstream = log.upstream()
    assert len(upstream[f"small/{names.REVIEWS}/partitions/b1"]) == 5
    assert f"small/{names.REVIEW_QUEUE}/partitions/b1" in upstream

    # Joined with an inbox label for another row, each row says where its label came from.
    inbox = pd.DataFrame({names.ROW_ID: [13, 10], "label": [0, 0]})
    combined, overridden = with_review_labels(inbox, labels)
    assert overridden == ["10"]  # the inbox label wins
    joined = join_labels(combined, predictions).joined.set_index(names.ROW_ID)
    assert joined.loc[10, "label"] == 0 and joined.loc[10, names.ORIGIN] == names.LABEL_ORIGIN
    alone, _ = with_review_labels(None, labels)
    assert list(alone[names.ORIGIN]) == [names.REVIEW_ORIGIN]


def test_answers_take_the_form_of_labels():
    assert label_value("binary_classification", "1") == 1
    assert label_value("regression", "2.5") == 2.5
    assert label_value("multiclass_classification", "3") == "3"
