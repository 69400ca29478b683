"""Routing gathered while a batch is scored in chunks: a failure fails the queue, not the
predictions, and a gathering that cannot start leaves the queue to the stored predictions."""

import numpy as np
import pytest

from unified_ai import names
from unified_ai.io.reader import StoreReader
from unified_ai.io.store import LineageStore
from unified_ai.projects.loader import load_project_file
from unified_ai.stages.review.gathered import GatheredRouting
from unified_ai_tests.conftest import write_project
from unified_ai_tests.policies.test_review_routing import NOW, _binary

REVIEW = """\
  review:
    unsure: {band: 0.1}
    audit_share: 0.05
"""


class _Model:
    task = "binary_classification"
    card = {"task": task, "features": {"numeric": ["x1"]}}


@pytest.fixture
def gathering(tmp_path):
    project = load_project_file(write_project(tmp_path / "projects", policy_extra=REVIEW))
    reader = StoreReader(LineageStore(tmp_path / "store"))
    return GatheredRouting(reader, project, "b1")


def test_rows_are_gathered_chunk_by_chunk_and_routed(gathering):
    rng = np.random.default_rng(1)
    predictions = _binary(rng.random(400))
    add = gathering.watch(_Model())
    assert add is not None
    for start in range(0, 400, 150):
        chunk = predictions.iloc[start : start + 150]
        add(chunk, chunk)
    routing = gathering.route(project="small", now=NOW, review=None, inputs="ignored")
    unsure = predictions["proba"].sub(0.5).abs() <= 0.1
    assert unsure.sum() > 0
    # Every unsure row is routed (no cap): the rows were kept from each chunk as it came.
    assert set(predictions.loc[unsure, names.ROW_ID]) <= set(routing.rows[names.ROW_ID])


def test_a_rule_failing_on_a_chunk_fails_the_routing_not_the_scoring(gathering):
    add = gathering.watch(_Model())
    assert add is not None
    broken = _binary([0.5, 0.9]).drop(columns=["proba"])
    add(broken, broken)  # no exception: the predictions' chunk is still stored
    with pytest.raises(ValueError, match="routing failed: KeyError"):
        gathering.route(project="small", now=NOW)


def test_a_gathering_that_cannot_start_leaves_the_queue_to_the_stored_predictions(gathering):
    class Unreadable:
        @property
        def card(self):
            raise OSError("card.json: no such file")

    assert gathering.watch(Unreadable()) is None
    assert gathering.rows is None
    with pytest.raises(ValueError, match="not scored in chunks"):
        gathering.route(project="small", now=NOW)
