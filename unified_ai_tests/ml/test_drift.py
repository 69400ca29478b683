import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.drift import categorical_drift, drift_scores, numeric_drift


@pytest.fixture
def reference():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=5000),
            "b": rng.normal(size=5000),
            "c": rng.choice(["x", "y", "z"], size=5000),
        }
    )


def test_same_distribution_does_not_drift(reference):
    rng = np.random.default_rng(1)
    current = pd.DataFrame(
        {
            "a": rng.normal(size=2000),
            "b": rng.normal(size=2000),
            "c": rng.choice(["x", "y", "z"], size=2000),
        }
    )
    result = drift_scores(reference, current, ["a", "b"], ["c"], psi_threshold=0.2)
    assert result["drifted_columns"] == [] and result["drifted_share"] == 0.0
    assert result["columns"]["a"]["psi"] < 0.05


def test_shifted_column_and_new_category_drift(reference):
    rng = np.random.default_rng(2)
    current = pd.DataFrame(
        {
            "a": rng.normal(2, 1, size=2000),
            "b": rng.normal(size=2000),
            "c": rng.choice(["x", "w"], size=2000),
        }
    )
    result = drift_scores(reference, current, ["a", "b"], ["c"], psi_threshold=0.2)
    assert result["drifted_columns"] == ["a", "c"]
    assert result["drifted_share"] == pytest.approx(2 / 3)
    assert result["columns"]["a"]["ks"] > 0.5 and result["columns"]["a"]["ks_pvalue"] < 1e-6


def test_missing_values_are_ignored_and_all_missing_is_not_drift():
    scores = numeric_drift(np.array([1.0, 2.0, np.nan]), np.array([np.nan, np.nan]))
    assert scores == {"psi": None, "ks": None, "ks_pvalue": None}
    assert categorical_drift(pd.Series(["a", None]), pd.Series(["a", None]))["psi"] == 0.0


@pytest.mark.parametrize(
    ("sizes", "shift"),
    [
        ((1000, 200), 0.0),
        ((1000, 200), 0.2),
        ((5000, 50), 0.3),
        ((30, 40), 0.5),
        ((2000, 2000), 0.05),
    ],
)
def test_ks_agrees_with_scipy_without_importing_it(sizes, shift):
    from scipy.stats import ks_2samp

    from unified_ai.ml.drift import ks_two_sample

    rng = np.random.default_rng(3)
    for _ in range(5):
        reference, current = rng.normal(size=sizes[0]), rng.normal(shift, 1, size=sizes[1])
        expected = ks_2samp(reference, current, method="asymp")
        statistic, pvalue = ks_two_sample(reference, current)
        assert statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, abs=0.02)


def test_drift_scores_do_not_import_scipy(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, pandas as pd\n"
        "from unified_ai.ml.drift import drift_scores\n"
        "f = pd.DataFrame({'a': np.arange(100.0), 'c': ['x'] * 100})\n"
        "drift_scores(f, f, ['a'], ['c'], psi_threshold=0.2)\n"
        "print('scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b", None, "a"],
        [1, 2, "1", None, 2.0],  # mixed: 2 and 2.0 read differently as text
        [True, False, True],
        [1.5, 2.0, np.nan],
        [3, 3, 4],
    ],
)
def test_category_shares_are_those_of_the_values_as_text(values):
    from unified_ai.ml.drift import _shares

    series = pd.Series(values, dtype=object)
    as_text = series.astype("string").fillna("<missing>").value_counts(normalize=True)
    pd.testing.assert_series_equal(
        _shares(series).sort_index(), as_text.sort_index(), check_names=False, check_dtype=False
    )
