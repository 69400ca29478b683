"""Served routing's out-of-range rule: the few-row path and the array path agree."""

import math

import numpy as np

from unified_ai.policies import review_serving
from unified_ai.policies.review import TrainingProfile
from unified_ai.policies.review_serving import _PLAIN_ROWS, _beyond, _beyond_plain

PROFILE = TrainingProfile(
    ranges={"income": (1_000.0, 90_000.0), "age": (18.0, 80.0)},
    categories={"purpose": frozenset({"car", "home", "3"})},
)


def _columns(n: int) -> dict:
    rng = np.random.default_rng(7)
    income = rng.uniform(-10_000, 120_000, n)
    income[::5] = np.nan
    age = [None if i % 7 == 0 else float(a) for i, a in enumerate(rng.integers(10, 95, n))]
    purposes = ["car", "home", "boat", None, math.nan, 3, 3.0, "3", 4]
    return {
        "income": income,
        "age": age,
        "purpose": [purposes[i % len(purposes)] for i in range(n)],
        "unprofiled": list(range(n)),
    }


def test_the_few_row_path_flags_exactly_what_the_array_path_flags(monkeypatch):
    cases = {n: _columns(n) for n in (1, 7, _PLAIN_ROWS, 200)}
    plain = {n: _beyond_plain(columns, PROFILE, n) for n, columns in cases.items()}
    monkeypatch.setattr(review_serving, "_PLAIN_ROWS", -1)  # every size through numpy
    for n, columns in cases.items():
        assert plain[n] == _beyond(columns, PROFILE, n).tolist(), n
    assert any(plain[200]) and not all(plain[200])


def test_missing_values_are_never_beyond_and_unknown_categories_are():
    columns = {"income": [None, math.nan, 95_000.0], "purpose": [None, 3, "boat"]}
    assert _beyond(columns, PROFILE, 3).tolist() == [False, False, True]


def test_a_category_trained_as_a_number_is_known_in_the_models_text():
    # Training held married as 1.0/0.0 (known as "1", "0"); the endpoint serves the model's
    # text "1.0". Only a category training never had is out of range.
    profile = TrainingProfile(categories={"married": frozenset({"0", "1"})})
    columns = {"married": ["1.0", "0.0", 1.0, "1", "2.0", "yes", None, math.nan]}
    expected = [False, False, False, False, True, True, False, False]
    assert _beyond_plain(columns, profile, 8) == expected
    assert _beyond(columns, profile, 8).tolist() == expected


def test_equal_values_of_different_types_are_judged_apart():
    """Each distinct value is judged once per request; True, 1 and 1.0 are equal keys but not
    one category's text (True is "True")."""
    profile = TrainingProfile(categories={"flag": frozenset({"1"})})
    columns = {"flag": [1, True, 1.0, True, 1] * 10}
    expected = [False, True, False, True, False] * 10
    assert _beyond(columns, profile, 50).tolist() == expected


def test_the_audit_draw_of_many_rows_is_each_row_s_own():
    """`audit_draws` (many rows: the seed and batch hashed once) gives every row the number
    `audit_draw` gives it alone, so a request's few rows and a batch draw alike."""
    from unified_ai.policies.review import audit_draw, audit_draw_array, audit_draws

    rows = [0, 7, "b1:3", "serve-x:12", 10**12, 2.5, "é"]
    draw = audit_draws(42, "batch-1.csv")
    assert [draw(row) for row in rows] == [audit_draw(42, "batch-1.csv", row) for row in rows]
    assert audit_draw_array(42, "batch-1.csv", rows).tolist() == [draw(row) for row in rows]
    assert all(0 <= draw(row) < 1 for row in rows)
    assert audit_draws(43, "batch-1.csv")(7) != draw(7)
