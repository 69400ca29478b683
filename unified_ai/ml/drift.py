"""Per-column drift of a batch against the training reference: PSI and KS, vectorised.

Evidently's default preset takes minutes and gigabytes on a million rows; these statistics take
seconds, so every batch gets them, and Evidently renders the human page from a sample.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

_BINS = 10
_EPS = 1e-4


def _psi(expected, actual) -> float:
    import numpy as np

    expected = np.clip(expected, _EPS, None)
    actual = np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_drift(reference, current) -> dict:
    """PSI over the reference's deciles and the two-sample KS statistic of one column."""
    import numpy as np
    from scipy.stats import ks_2samp

    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return {"psi": None, "ks": None, "ks_pvalue": None}
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, _BINS + 1)[1:-1]))
    ref_counts = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    cur_counts = np.bincount(
        np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1
    )
    ks = ks_2samp(reference, current, method="asymp")
    return {
        "psi": _psi(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()),
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }


def categorical_drift(reference: "pd.Series", current: "pd.Series") -> dict:
    """PSI over the categories (unseen categories count as their own bucket)."""
    ref = reference.astype("string").fillna("<missing>").value_counts(normalize=True)
    cur = current.astype("string").fillna("<missing>").value_counts(normalize=True)
    categories = ref.index.union(cur.index)
    return {
        "psi": _psi(
            ref.reindex(categories, fill_value=0).to_numpy(),
            cur.reindex(categories, fill_value=0).to_numpy(),
        ),
        "ks": None,
        "ks_pvalue": None,
    }


def drift_scores(
    reference: "pd.DataFrame",
    current: "pd.DataFrame",
    numeric: list[str],
    categorical: list[str],
    psi_threshold: float,
) -> dict:
    """Per-column scores, which columns drifted (PSI above the threshold) and their share."""
    columns = {}
    for column in numeric:
        columns[column] = numeric_drift(
            reference[column].to_numpy(dtype=float), current[column].to_numpy(dtype=float)
        )
    for column in categorical:
        columns[column] = categorical_drift(reference[column], current[column])
    for scores in columns.values():
        scores["drifted"] = scores["psi"] is not None and scores["psi"] > psi_threshold
    drifted = sorted(c for c, s in columns.items() if s["drifted"])
    return {
        "columns": columns,
        "drifted_columns": drifted,
        "drifted_share": len(drifted) / len(columns) if columns else 0.0,
        "psi_threshold": psi_threshold,
        "rows": len(current),
        "reference_rows": len(reference),
    }


def drift_page(
    reference: "pd.DataFrame", current: "pd.DataFrame", columns: list[str], rows: int, seed: int
) -> str:
    """Evidently's data-drift page on a sample of at most `rows` rows of each side."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def sample(frame):
        frame = frame[columns]
        return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame

    snapshot = Report([DataDriftPreset()]).run(sample(current), sample(reference))
    return snapshot.get_html_str(as_iframe=False)


def page_reason(drifted_columns: list[str], *, batch_number: int | None, every: int) -> str | None:
    """Why a batch gets an Evidently page, or None when it does not.

    A batch in which any column drifted always gets one (someone will look); otherwise every
    `every`-th batch does, when `every` is set.
    """
    if drifted_columns:
        return f"{len(drifted_columns)} column(s) drifted"
    if every and batch_number is not None and batch_number % every == 0:
        return f"batch {batch_number} (every {every})"
    return None
