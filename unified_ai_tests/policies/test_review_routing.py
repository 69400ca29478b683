"""Review routing: every rule (band, out of range, unseen category, audit, cap, quotas) alone."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from unified_ai import names
from unified_ai.policies.review import (
    AUDIT,
    OUT_OF_RANGE,
    QUEUE_COLUMNS,
    SHADOW_DISAGREEMENT,
    UNSEEN_CATEGORY,
    UNSURE,
    TrainingProfile,
    audit_draw,
    review_id,
    route_batch,
)
from unified_ai.projects.schema_review import ReviewPolicy
from unified_ai.projects.tasks import BINARY, MULTICLASS, REGRESSION

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)


def _binary(proba, regions=None) -> pd.DataFrame:
    proba = np.asarray(proba, dtype="float64")
    n = len(proba)
    return pd.DataFrame(
        {
            names.ROW_ID: [f"r{i}" for i in range(n)],
            "region": regions if regions is not None else ["north"] * n,
            "proba": proba,
            "prediction": (proba >= 0.5).astype(int),
            names.DEPLOYMENT_COLUMN: "dep1",
            "model_version": "m1",
            names.SHADOW_PREVIOUS_DEPLOYMENT: None,
            names.SHADOW_PREVIOUS_PROBA: np.nan,
            names.SHADOW_CANDIDATE_MODEL: None,
            names.SHADOW_CANDIDATE_PROBA: np.nan,
        }
    )


def _route(predictions, review: dict, task=BINARY, **kwargs):
    return route_batch(
        predictions,
        review=ReviewPolicy.model_validate(review),
        project="p",
        task=task,
        batch=kwargs.pop("batch", "b1"),
        now=NOW,
        segments=["region"],
        **kwargs,
    )


def _routed(routing) -> list[str]:
    return list(routing.rows[names.ROW_ID])


def test_binary_band_routes_rows_near_the_threshold_on_both_sides():
    routing = _route(_binary([0.05, 0.41, 0.5, 0.59, 0.61, 0.95]), {"unsure": {"band": 0.1}})
    # 0.41 is 0.09 from 0.5: inside the band; 0.61 is 0.11 away: outside.
    assert _routed(routing) == ["r1", "r2", "r3"]
    assert set(routing.rows["reasons"]) == {UNSURE}
    assert routing.flagged[UNSURE] == 3
    row = routing.rows.iloc[0]
    assert row["model_answer"] == "0" and row["model_score"] == pytest.approx(0.41)
    assert "within 0.1 of 0.5" in row["detail"]
    assert row["due_at"] - row["routed_at"] == timedelta(hours=24)
    assert list(routing.rows.columns) == [*QUEUE_COLUMNS[:3], "region", *QUEUE_COLUMNS[3:]]


def test_binary_band_is_around_the_projects_threshold():
    routing = _route(_binary([0.2, 0.5, 0.75]), {"unsure": {"band": 0.06}}, threshold=0.7)
    assert _routed(routing) == ["r2"]
    assert routing.rows.iloc[0]["model_answer"] == "1"  # the stored prediction is the answer


def test_multiclass_top_probability_below_the_bound():
    frame = pd.DataFrame(
        {
            names.ROW_ID: ["a", "b", "c"],
            "prediction": ["x", "y", "z"],
            "proba": [0.9, 0.4, 0.55],
            "proba_0": [0.9, 0.3, 0.2],
            "proba_1": [0.05, 0.4, 0.25],
            "proba_2": [0.05, 0.3, 0.55],
            names.SHADOW_PREVIOUS_DEPLOYMENT: "dep0",
            names.SHADOW_PREVIOUS_PROBA: [0.0, 2.0, np.nan],
            names.SHADOW_CANDIDATE_MODEL: None,
            names.SHADOW_CANDIDATE_PROBA: np.nan,
        }
    )
    routing = _route(
        frame, {"unsure": {"top_probability_below": 0.6}}, task=MULTICLASS, classes=["x", "y", "z"]
    )
    assert _routed(routing) == ["b", "c"]
    first, second = routing.rows.iloc[0], routing.rows.iloc[1]
    assert first["model_answer"] == "y" and first["shadow_answer"] == "z"
    assert first["shadow_model"] == "dep0"
    assert second["shadow_answer"] is None and second["shadow_model"] is None


def _regression(values, previous=None, candidate=None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            names.ROW_ID: list(range(n)),
            "prediction": np.asarray(values, dtype="float64"),
            names.SHADOW_PREVIOUS_DEPLOYMENT: "dep0",
            names.SHADOW_PREVIOUS_PROBA: np.nan if previous is None else previous,
            names.SHADOW_CANDIDATE_MODEL: "cand",
            names.SHADOW_CANDIDATE_PROBA: np.nan if candidate is None else candidate,
        }
    )


def test_regression_outside_the_declared_range():
    routing = _route(
        _regression([5.0, 50.0, 150.0, 100.0]), {"unsure": {"outside": [10, 100]}}, task=REGRESSION
    )
    assert _routed(routing) == [0, 2]
    # The furthest outside comes first when the cap makes a choice.
    capped = _route(
        _regression([5.0, 50.0, 150.0]),
        {"unsure": {"outside": [10, 100]}, "daily_cap": 1},
        task=REGRESSION,
    )
    assert _routed(capped) == [2]


def test_regression_shadow_disagreement_with_either_shadow():
    frame = _regression(
        [10.0, 10.0, 10.0, 10.0],
        previous=[10.5, 30.0, np.nan, 10.0],
        candidate=[np.nan, 10.0, 25.0, 10.0],
    )
    routing = _route(frame, {"unsure": {"shadow_disagreement_above": 5}}, task=REGRESSION)
    assert _routed(routing) == [1, 2]
    assert set(routing.rows["reasons"]) == {SHADOW_DISAGREEMENT}
    # The shadow's answer is the candidate's when it scored the row, else the previous one's.
    assert list(routing.rows["shadow_model"]) == ["cand", "cand"]
    assert list(routing.rows["shadow_score"]) == [10.0, 25.0]
    assert "differs by more than 5" in routing.rows.iloc[1]["detail"]


def _inputs(x1, colour) -> pd.DataFrame:
    return pd.DataFrame(
        {names.ROW_ID: [f"r{i}" for i in range(len(x1))], "x1": x1, "colour": colour}
    )


PROFILE = TrainingProfile.of(
    pd.DataFrame({"x1": [-2.0, 0.0, 3.0], "colour": ["red", "blue", None], "n": [1, 2, 3]}),
    numeric=["x1"],
    categorical=["colour", "n"],
)


def test_training_profile():
    assert PROFILE.ranges == {"x1": (-2.0, 3.0)}
    assert PROFILE.categories == {
        "colour": frozenset({"red", "blue"}),
        "n": frozenset({"1", "2", "3"}),
    }


def test_out_of_range_numbers_beyond_the_training_range():
    inputs = _inputs([-2.0, 3.0, 3.01, -9.0, np.nan], ["red"] * 5)
    routing = _route(_binary([0.1] * 5), {"out_of_range": True}, inputs=inputs, profile=PROFILE)
    # The bounds themselves were seen; a missing value is not out of range.
    assert _routed(routing) == ["r2", "r3"]
    assert set(routing.rows["reasons"]) == {OUT_OF_RANGE}
    assert "x1=3.01 outside the training range" in routing.rows.iloc[0]["detail"]


def test_unseen_categories():
    inputs = _inputs([0.0] * 4, ["red", "pink", None, "blue"])
    # Rows are matched by row id, not by position.
    routing = _route(
        _binary([0.1] * 4), {"out_of_range": True}, inputs=inputs.iloc[::-1], profile=PROFILE
    )
    assert _routed(routing) == ["r1"]
    assert routing.rows.iloc[0]["reasons"] == UNSEEN_CATEGORY
    assert "'pink' never seen in training" in routing.rows.iloc[0]["detail"]


def test_unseen_category_compares_numbers_by_their_class_key():
    profile = TrainingProfile.of(pd.DataFrame({"n": [1, 2]}), numeric=[], categorical=["n"])
    inputs = pd.DataFrame({names.ROW_ID: ["r0", "r1"], "n": [2.0, 7.0]})
    routing = _route(_binary([0.1, 0.1]), {"out_of_range": True}, inputs=inputs, profile=profile)
    assert _routed(routing) == ["r1"]


def test_the_training_profile_puts_each_distinct_category_as_text_once(monkeypatch):
    """A train split of many rows holds a few categories: its cost is not one per row."""
    from unified_ai.policies import review

    frame = pd.DataFrame({"n": [1, 2.0, "2", None] * 500, "c": pd.Categorical(["a", "b"] * 1000)})
    calls = []
    real = review.class_key
    monkeypatch.setattr(review, "class_key", lambda v: calls.append(v) or real(v))
    profile = TrainingProfile.of(frame, numeric=[], categorical=["n", "c"])
    assert profile.categories == {"n": frozenset({"1", "2"}), "c": frozenset({"a", "b"})}
    assert len(calls) <= 5  # 1, 2.0, "2" (or fewer), "a", "b": not 4,000


def test_out_of_range_needs_inputs_and_a_profile():
    with pytest.raises(ValueError, match="out_of_range needs"):
        _route(_binary([0.1]), {"out_of_range": True})


def test_a_row_with_several_reasons_lists_them_most_serious_first():
    inputs = _inputs([9.0], ["pink"])
    routing = _route(
        _binary([0.5]),
        {"unsure": {"band": 0.1}, "out_of_range": True, "audit_share": 1.0},
        inputs=inputs,
        profile=PROFILE,
    )
    assert routing.rows.iloc[0]["reasons"] == "out_of_range,unseen_category,unsure,audit"
    assert routing.counts() == {
        OUT_OF_RANGE: 1, UNSEEN_CATEGORY: 1, UNSURE: 1, SHADOW_DISAGREEMENT: 0, AUDIT: 1
    }  # fmt: skip


def test_audit_share_is_seeded_and_near_its_share():
    frame = _binary(np.full(4000, 0.01))
    first = _route(frame, {"audit_share": 0.05})
    again = _route(frame, {"audit_share": 0.05})
    assert _routed(first) == _routed(again)  # a rerun routes the same rows
    assert 0.04 * 4000 < len(first.rows) < 0.06 * 4000
    assert set(first.rows["reasons"]) == {AUDIT}
    other_seed = _route(frame, {"audit_share": 0.05, "seed": 7})
    other_batch = _route(frame, {"audit_share": 0.05}, batch="b2")
    assert _routed(other_seed) != _routed(first)
    assert _routed(other_batch) != _routed(first)
    # The draw is the row's, not its position's: shuffled rows, same routed set.
    shuffled = _route(frame.sample(frac=1.0, random_state=1), {"audit_share": 0.05})
    assert set(_routed(shuffled)) == set(_routed(first))
    assert 0.0 <= audit_draw(0, "b1", "r0") < 1.0


def test_daily_cap_counts_what_was_routed_earlier_today():
    frame = _binary([0.5, 0.52, 0.45, 0.3, 0.58])
    review = {"unsure": {"band": 0.1}, "daily_cap": 10}
    assert len(_route(frame, review).rows) == 4
    capped = _route(frame, review, routed_today=8)
    # The two least sure rows: 0.5 and 0.52 (ties broken by the seeded draw).
    assert _routed(capped) == ["r0", "r1"]
    assert capped.left_by_cap == 2 and capped.left_by_quota == 0
    full = _route(frame, review, routed_today=12)
    assert full.rows.empty and full.left_by_cap == 4
    assert list(full.rows.columns) == [*QUEUE_COLUMNS[:3], "region", *QUEUE_COLUMNS[3:]]


def test_the_cap_takes_the_most_serious_reason_first():
    inputs = _inputs([0.0, 0.0, 9.0], ["red", "red", "red"])
    routing = _route(
        _binary([0.5, 0.5, 0.9]),
        {"unsure": {"band": 0.1}, "out_of_range": True, "daily_cap": 1},
        inputs=inputs,
        profile=PROFILE,
    )
    assert _routed(routing) == ["r2"]


def test_segment_quota_as_a_count():
    regions = ["north"] * 6 + ["south"] * 2
    routing = _route(
        _binary([0.5] * 8, regions), {"audit_share": 1.0, "segment_quotas": {"region": 3}}
    )
    assert sorted(routing.rows["region"]) == ["north"] * 3 + ["south"] * 2
    assert routing.left_by_quota == 3 and routing.left_by_cap == 0


def test_segment_quota_as_a_share_of_what_the_batch_routes():
    regions = ["north"] * 9 + ["south"] * 1
    review = {"audit_share": 1.0, "segment_quotas": {"region": 0.5}, "daily_cap": 4}
    routing = _route(_binary([0.5] * 10, regions), review)
    # Room for 4: north may take half of it (2), south has 1: three routed, not four norths.
    assert sorted(routing.rows["region"]) == ["north", "north", "south"]
    assert routing.left_by_quota == 7 and routing.left_by_cap == 0


def test_segment_quota_treats_missing_values_as_one_group():
    regions = [None, None, None, "south"]
    routing = _route(
        _binary([0.5] * 4, regions), {"audit_share": 1.0, "segment_quotas": {"region": 1}}
    )
    assert len(routing.rows) == 2


def test_routing_is_deterministic_under_quotas_and_cap():
    rng = np.random.default_rng(0)
    frame = _binary(rng.random(500), list(rng.choice(["a", "b", "c"], 500)))
    review = {
        "unsure": {"band": 0.2},
        "audit_share": 0.1,
        "daily_cap": 50,
        "segment_quotas": {"region": 0.4},
    }
    first, again = _route(frame, review), _route(frame, review)
    pd.testing.assert_frame_equal(first.rows, again.rows)
    assert len(first.rows) == 50
    assert first.rows["region"].value_counts().max() <= 20


def test_review_ids_are_stable_and_distinct():
    assert review_id("p", "b1", "r1") == review_id("p", "b1", "r1")
    assert (
        len({review_id("p", "b1", "r1"), review_id("p", "b2", "r1"), review_id("q", "b1", "r1")})
        == 3
    )
    routing = _route(_binary([0.5]), {"unsure": {"band": 0.1}})
    assert routing.rows.iloc[0][names.REVIEW_ID] == review_id("p", "b1", "r0")


def test_a_rule_of_another_task_is_refused_when_routing():
    with pytest.raises(ValueError, match=r"unsure\.band: a binary_classification rule.*regression"):
        _route(_regression([1.0]), {"unsure": {"band": 0.1}}, task=REGRESSION)


def test_a_time_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="time zone"):
        route_batch(
            _binary([0.5]),
            review=ReviewPolicy(audit_share=1.0),
            project="p",
            task=BINARY,
            batch="b",
            now=datetime(2026, 1, 1),
        )


def test_an_empty_batch_routes_nothing():
    routing = _route(_binary([]), {"unsure": {"band": 0.1}, "audit_share": 0.5})
    assert routing.rows.empty and routing.counts()[UNSURE] == 0


def test_the_audit_sample_under_a_cap_does_not_lean_toward_the_threshold():
    rng = np.random.default_rng(3)
    proba = rng.random(3000)
    routing = _route(_binary(proba), {"audit_share": 1.0, "daily_cap": 300})
    chosen = routing.rows["model_score"]
    # A random tenth of the rows: its spread is the batch's, not the rows nearest 0.5.
    assert chosen.min() < 0.05 and chosen.max() > 0.95
    assert abs(chosen.mean() - proba.mean()) < 0.05
