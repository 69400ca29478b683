from unified_ai.ml.drift import page_reason


def test_a_clean_batch_gets_no_page_unless_every_nth_is_asked_for():
    assert page_reason([], batch_number=7, every=0) is None
    assert page_reason([], batch_number=None, every=3) is None
    assert page_reason([], batch_number=5, every=3) is None
    assert page_reason([], batch_number=6, every=3) == "batch 6 (every 3)"
    assert page_reason([], batch_number=1, every=1) == "batch 1 (every 1)"


def test_a_drifted_batch_always_gets_a_page():
    assert page_reason(["x1", "x2"], batch_number=None, every=0) == "2 column(s) drifted"


def _frames(seed: int = 0):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "a": rng.normal(size=600),
            "b": rng.normal(size=600),
            "c": rng.choice(list("xyz"), 600),
        }
    )
    current = pd.DataFrame(
        {
            "a": rng.normal(0.7, size=500),
            "b": rng.normal(size=500),
            "c": rng.choice(list("xyz"), 500, p=[0.6, 0.2, 0.2]),
        }
    )
    return reference, current


def _page_verdicts(reference, current, psi_threshold, max_drifted_share):
    from unified_ai.ml.drift import drift_snapshot

    snapshot = drift_snapshot(
        reference,
        current,
        ["a", "b", "c"],
        10_000,
        0,
        psi_threshold=psi_threshold,
        max_drifted_share=max_drifted_share,
    ).dict()
    columns, share = {}, None
    for metric in snapshot["metrics"]:
        name = metric["metric_name"]
        if name.startswith("ValueDrift("):
            column = name.split("column=")[1].split(",")[0]
            columns[column] = metric["value"]
        elif name.startswith("DriftedColumnsCount("):
            share = metric["value"]["share"]
    return columns, share


def test_the_drift_page_scores_columns_with_the_policy_psi_and_share():
    from unified_ai.ml.drift import drift_scores

    reference, current = _frames()
    for psi_threshold in (0.05, 0.2, 0.4):
        ours = drift_scores(reference, current, ["a", "b"], ["c"], psi_threshold)
        columns, share = _page_verdicts(reference, current, psi_threshold, 0.3)
        assert columns == {c: s["psi"] for c, s in ours["columns"].items()}
        assert share == ours["drifted_share"]


def test_the_page_flags_the_batch_exactly_when_the_trigger_would():
    from unified_ai.ml.drift import drift_page, drift_scores

    reference, current = _frames()
    share = drift_scores(reference, current, ["a", "b"], ["c"], 0.2)["drifted_share"]

    def headline(max_drifted_share: float) -> bool:
        page = drift_page(
            reference,
            current,
            ["a", "b", "c"],
            10_000,
            0,
            psi_threshold=0.2,
            max_drifted_share=max_drifted_share,
        )
        assert ("Dataset Drift is detected" in page) != ("Dataset Drift is NOT detected" in page)
        return "Dataset Drift is detected" in page

    # At the policy's share exactly the trigger stays quiet (it fires above it): so does the page.
    assert headline(share) is False
    assert headline(share - 0.01) is True
