"""Routing a batch read in chunks gives exactly what routing it whole gives."""

import numpy as np
import pandas as pd
import pytest

from unified_ai import names
from unified_ai.policies.review import route_batch
from unified_ai.policies.review_chunks import FlaggedRows, route_chunks
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY
from unified_ai_tests.policies.test_review_routing import NOW, PROFILE, _binary

ROWS = 2_000


def _batch() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    predictions = _binary(rng.random(ROWS), regions=list(rng.choice(["north", "south"], ROWS)))
    inputs = pd.DataFrame(
        {
            names.ROW_ID: predictions[names.ROW_ID],
            "x1": rng.normal(0.5, 1.5, ROWS),  # some beyond the profile's [-2, 3]
            "colour": rng.choice(["red", "blue", "green"], ROWS),  # green never trained on
        }
    )
    return predictions, inputs


def _chunks(frame: pd.DataFrame, rows: int):
    return lambda: (frame.iloc[start : start + rows] for start in range(0, len(frame), rows))


def _column_chunks(frame: pd.DataFrame, rows: int):
    """As a stored frame's chunks: of the columns asked for that the frame has."""

    def read(columns):
        held = [c for c in frame.columns if c in set(columns)]
        return (frame.iloc[start : start + rows][held] for start in range(0, len(frame), rows))

    return read


@pytest.mark.parametrize("rows", [97, 500, ROWS])
@pytest.mark.parametrize(
    "policy",
    [
        {"unsure": {"band": 0.05}, "audit_share": 0.02},
        {
            "unsure": {"band": 0.1},
            "out_of_range": True,
            "audit_share": 0.01,
            "daily_cap": 150,
            "segment_quotas": {"region": 0.6},
        },
    ],
)
def test_chunked_routing_equals_whole_routing(rows, policy):
    predictions, inputs = _batch()
    review = ReviewPolicy.model_validate(policy)
    common = {
        "review": review,
        "project": "p",
        "task": BINARY,
        "batch": "b1",
        "now": NOW,
        "segments": ["region"],
        "profile": PROFILE if review.out_of_range else None,
        "routed_today": 20,
    }
    whole = route_batch(predictions, inputs=inputs if review.out_of_range else None, **common)
    chunked = route_chunks(
        _chunks(predictions, rows),
        inputs=_column_chunks(inputs, rows) if review.out_of_range else None,
        **common,
    )
    assert len(whole.rows) > 0
    pd.testing.assert_frame_equal(whole.rows, chunked.rows)
    assert whole.flagged == chunked.flagged
    assert (whole.left_by_cap, whole.left_by_quota) == (chunked.left_by_cap, chunked.left_by_quota)


@pytest.mark.parametrize("rows", [97, ROWS])
def test_rows_flagged_as_each_chunk_is_scored_route_as_the_whole_batch(rows):
    """A scoring step hands each chunk's rows and predictions over as it makes them (the
    inputs also hold columns no rule reads): the batch is routed as when routed whole."""
    predictions, inputs = _batch()
    inputs = inputs.assign(unread=1.0)
    review = ReviewPolicy.model_validate(
        {"unsure": {"band": 0.1}, "out_of_range": True, "audit_share": 0.01, "daily_cap": 150}
    )
    rules = {"review": review, "task": BINARY, "batch": "b1"}
    rest = {"project": "p", "now": NOW, "segments": ["region"], "routed_today": 20}
    whole = route_batch(predictions, inputs=inputs, profile=PROFILE, **rules, **rest)
    flagged = FlaggedRows(**rules, profile=PROFILE)
    for start in range(0, ROWS, rows):
        flagged.add(predictions.iloc[start : start + rows], inputs.iloc[start : start + rows])
    gathered = flagged.route(**rest)
    assert gathered.rows["reasons"].str.contains("out_of_range").any()
    pd.testing.assert_frame_equal(whole.rows, gathered.rows)
    assert (whole.flagged, whole.left_by_cap) == (gathered.flagged, gathered.left_by_cap)


def test_chunked_out_of_range_needs_inputs_and_a_profile():
    predictions, _ = _batch()
    with pytest.raises(ValueError, match="out_of_range needs"):
        route_chunks(
            _chunks(predictions, 500),
            review=ReviewPolicy.model_validate({"out_of_range": True}),
            project="p",
            task=BINARY,
            batch="b1",
            now=NOW,
        )
