from unified_ai.ml.drift import page_reason


def test_a_clean_batch_gets_no_page_unless_every_nth_is_asked_for():
    assert page_reason([], batch_number=7, every=0) is None
    assert page_reason([], batch_number=None, every=3) is None
    assert page_reason([], batch_number=5, every=3) is None
    assert page_reason([], batch_number=6, every=3) == "batch 6 (every 3)"
    assert page_reason([], batch_number=1, every=1) == "batch 1 (every 1)"


def test_a_drifted_batch_always_gets_a_page():
    assert page_reason(["x1", "x2"], batch_number=None, every=0) == "2 column(s) drifted"
