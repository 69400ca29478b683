"""`POST /v1/projects/{project}/reviews`: answers behind the labels token, checked by policy."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from unified_ai import names
from unified_ai.io.formats import serialize
from unified_ai.io.review_answers import answers_of, find_item
from unified_ai.io.store import LineageStore
from unified_ai.policies.review import route_batch
from unified_ai.policies.review_answers import ANSWERED
from unified_ai.projects.loader import load_project_file
from unified_ai.serving.app import ServeOptions, create_app
from unified_ai.serving.auth import TokenGuard
from unified_ai_tests.conftest import write_project
from unified_ai_tests.serving.helpers import AUTH, TOKEN, call, running

FAST = {"poll_seconds": 0.1, "retry_seconds": 0.5, "flush_seconds": 0.3}
REVIEW = """\
  review:
    audit_share: 1.0
    due_after: 2h
    reviewers: [group:risk]
    groups: {risk: [ana, bo]}
"""


@pytest.fixture
def queued(tmp_path, projects_dir):
    """A reviewed project and a store with one routed batch of three rows: (project, store, ids)."""
    project = load_project_file(write_project(projects_dir, policy_extra=REVIEW))
    proba = np.array([0.2, 0.55, 0.9])
    predictions = pd.DataFrame(
        {
            names.ROW_ID: ["b1:0", "b1:1", "b1:2"],
            "region": ["north", "south", "north"],
            "proba": proba,
            "prediction": (proba >= 0.5).astype(int),
            "model_version": "m1",
        }
    )
    routing = route_batch(
        predictions,
        review=project.policy.review,
        project=project.name,
        task=project.task,
        batch="b1",
        now=datetime.now(timezone.utc),
        segments=project.segments,
    )
    store = LineageStore(tmp_path / "store")
    path = [project.name, names.REVIEW_QUEUE, names.PARTITIONS, "b1"]
    manifest = store.write_version(path, *serialize(routing.rows))
    store.set_current(path, manifest.version, action=names.MATERIALIZE_ACTION)
    return project, store, list(routing.rows[names.REVIEW_ID])


def _app(project, store, tmp_path, token=TOKEN):
    inbox = tmp_path / "inbox" / project.name
    return create_app(project, store, str(inbox), ServeOptions(**FAST), TokenGuard(token))


def test_an_answer_is_recorded_with_who_and_why(tmp_path, queued):
    project, store, ids = queued
    with running(_app(project, store, tmp_path)) as url:
        reviews = f"{url}/v1/projects/small/reviews"
        body = {"review_id": ids[0], "answer": 1, "by": "Ana", "comment": "income verified"}
        status, answer, _ = call(reviews, "POST", body, headers=AUTH)
        assert status == 200, answer
        assert answer["state"] == ANSWERED
        assert (answer["answer"], answer["by"], answer["row_id"]) == ("1", "Ana", "b1:0")
        (recorded,) = answers_of(store, "small", "b1")
        assert (recorded.reviewer, recorded.comment) == ("Ana", "income verified")
        assert find_item(store, project, ids[0]).agreed == "1"

        # The second answer to the same item is refused: it is answered already.
        again = {"review_id": ids[0], "answer": "0", "by": "bo"}
        status, refused, _ = call(reviews, "POST", again, headers=AUTH)
        assert status == 409 and refused["detail"] == f"item {ids[0]} is answered already"


def test_refusals_are_one_line_and_record_nothing(tmp_path, queued):
    project, store, ids = queued
    with running(_app(project, store, tmp_path)) as url:
        reviews = f"{url}/v1/projects/small/reviews"

        def refused(body, headers=AUTH):
            status, answer, _ = call(reviews, "POST", body, headers=headers)
            return status, answer["detail"]

        good = {"review_id": ids[1], "answer": "0", "by": "bo"}
        status, detail = refused(good, headers={})
        assert status == 401 and "need a token" in detail
        assert refused({**good, "review_id": "nope"}) == (404, "small: no routed item nope")
        status, detail = refused({**good, "by": "eve"})
        assert (status, detail) == (403, "eve may not review small items")
        status, detail = refused({**good, "answer": "approve"})
        assert status == 422 and "a binary answer is 0 or 1" in detail
        status, detail = refused({**good, "answer": True})
        assert status == 422 and "give the answer as text or a number" in detail
        status, detail = refused({**good, "extra": 1})
        assert status == 422 and "unknown field(s) ['extra']" in detail
        status, detail = refused({"review_id": ids[1], "answer": "0"})
        assert status == 422 and "'by'" in detail
        assert "\n" not in detail
        assert answers_of(store, "small", "b1") == []


def test_without_a_token_reviews_are_disabled(tmp_path, queued):
    project, store, ids = queued
    with running(_app(project, store, tmp_path, token="")) as url:
        body = {"review_id": ids[0], "answer": "1", "by": "ana"}
        status, answer, _ = call(f"{url}/v1/projects/small/reviews", "POST", body, headers=AUTH)
        assert status == 403 and answer["detail"].startswith("reviews are disabled")
    assert answers_of(store, "small", "b1") == []
