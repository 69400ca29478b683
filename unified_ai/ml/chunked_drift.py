"""Drift statistics of a batch read in chunks: the same numbers as `drift.drift_scores`.

Every statistic `unified_ai.ml.drift` computes against the training reference is a function of
counts of the batch's values in buckets the reference alone fixes, so chunks are merged by
adding their counts and nothing of the batch is kept:

- PSI of a numeric column: counts in the reference's decile buckets (`numeric_drift`).
- KS of a numeric column: the largest gap between the two empirical CDFs is reached at a value
  of one of the samples. Between two neighbouring distinct reference values `u[i] <= x <
  u[i+1]` the reference CDF is constant and the batch's only grows, so the gap is largest at
  `u[i]` itself (batch values `<= u[i]`) or at the last batch value below `u[i+1]` (batch values
  `< u[i+1]`); below `u[0]` and above the last value the same holds with the reference CDF 0
  and 1. Both counts per bucket are added over chunks, and each candidate gap is computed with
  the same operations as `ks_two_sample`, so the statistic (and its p-value) is identical.
- PSI of a categorical column: counts per category text (`drift._shares`), with its rule for
  columns of mixed types decided over the whole column (any chunk mixed, or chunks of
  different types, is mixed).
"""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.drift import (
    _BINS,
    _ONE_TYPE,
    _psi,
    categorical_drift,
    kolmogorov_sf,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class NumericDrift:
    """PSI and KS of one numeric column against its reference, fed chunk by chunk."""

    def __init__(self, reference: "np.ndarray"):
        import numpy as np

        reference = np.asarray(reference, dtype=float)
        self.reference = np.sort(reference[~np.isnan(reference)])
        self.rows = 0
        if not len(self.reference):
            return
        self.edges = np.unique(np.quantile(self.reference, np.linspace(0, 1, _BINS + 1)[1:-1]))
        self.unique = np.unique(self.reference)
        self.psi_counts = np.zeros(len(self.edges) + 1, dtype=np.int64)
        # Batch values by how many u are <= them (`right`) and < them (`left`): cumulated,
        # the batch values < u[i+1] and <= u[i].
        self.right = np.zeros(len(self.unique) + 1, dtype=np.int64)
        self.left = np.zeros(len(self.unique) + 1, dtype=np.int64)

    def add(self, values: "np.ndarray") -> None:
        import numpy as np

        values = np.asarray(values, dtype=float)
        values = values[~np.isnan(values)]
        self.rows += len(values)
        if not len(self.reference) or not len(values):
            return
        # Counts do not depend on the order, and sorted values are looked up twice as fast.
        values = np.sort(values)
        size = len(self.edges) + 1
        self.psi_counts += np.bincount(
            np.searchsorted(self.edges, values, side="right"), minlength=size
        )
        size = len(self.unique) + 1
        self.right += np.bincount(
            np.searchsorted(self.unique, values, side="right"), minlength=size
        )
        self.left += np.bincount(np.searchsorted(self.unique, values, side="left"), minlength=size)

    def ks(self) -> tuple[float, float]:
        """(statistic, p-value), as `drift.ks_two_sample` gives them on all the values."""
        import math

        import numpy as np

        n_ref, n_cur = len(self.reference), self.rows
        # Reference values <= u[i], and batch values <= u[i] and < u[i+1] (the last value of
        # the batch in the bucket after u[i]; u[len] is +infinity).
        ref_at = np.searchsorted(self.reference, self.unique, side="right")
        cur_at = np.cumsum(self.left)[:-1]
        cur_before_next = np.cumsum(self.right)[1:]
        below_first = int(self.right[0])  # batch values < u[0]: the reference CDF is 0 there
        gaps = [ref_at / n_ref - cur_at / n_cur, ref_at / n_ref - cur_before_next / n_cur]
        statistic = float(max(np.abs(gaps[0]).max(), np.abs(gaps[1]).max()))
        if below_first:
            statistic = max(statistic, float(abs(0 / n_ref - below_first / n_cur)))
        root = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
        return statistic, kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)

    def result(self) -> dict:
        import numpy as np

        if not len(self.reference) or not self.rows:
            return {"psi": None, "ks": None, "ks_pvalue": None}
        ref_counts = np.bincount(
            np.searchsorted(self.edges, self.reference, side="right"), minlength=len(self.edges) + 1
        )
        ks, pvalue = self.ks()
        return {
            "psi": _psi(ref_counts / ref_counts.sum(), self.psi_counts / self.psi_counts.sum()),
            "ks": ks,
            "ks_pvalue": pvalue,
        }


class CategoricalDrift:
    """PSI of one categorical column against its reference, fed chunk by chunk."""

    def __init__(self, reference: "pd.Series"):
        self.reference = reference
        self.types: set[str] = set()
        self.one_type: dict[str, int] = {}
        self.as_text: dict[str, int] = {}

    def add(self, values: "pd.Series") -> None:
        import pandas as pd

        kind = pd.api.types.infer_dtype(values, skipna=True)
        self.types.add(kind)
        if kind not in _ONE_TYPE:
            # The whole column is mixed then: only the text reading counts.
            texts = values.astype("string").fillna("<missing>").value_counts()
            for name, count in texts.items():
                self.as_text[str(name)] = self.as_text.get(str(name), 0) + int(count)
            return
        # One type: a value's text is `str(value)`, as `astype("string")` writes it, so one
        # count serves both readings of `drift._shares`.
        counts = values.value_counts(dropna=False)
        for value, count in zip(counts.index, counts.to_numpy(), strict=True):
            name = "<missing>" if pd.isna(value) else str(value)
            self.one_type[name] = self.one_type.get(name, 0) + int(count)
            self.as_text[name] = self.as_text.get(name, 0) + int(count)

    def shares(self) -> "pd.Series":
        import pandas as pd

        found = self.types - {"empty"}
        mixed = len(found) > 1 or bool(found - _ONE_TYPE)
        counts = self.as_text if mixed else self.one_type
        shares = pd.Series(counts, dtype="int64")
        shares.index = pd.Index(list(counts), dtype="string")
        shares = shares.groupby(level=0).sum()
        return shares / shares.sum()

    def result(self) -> dict:
        from unified_ai.ml import drift

        ref = drift._shares(self.reference)
        cur = self.shares()
        categories = ref.index.union(cur.index)
        return {
            "psi": _psi(
                ref.reindex(categories, fill_value=0).to_numpy(),
                cur.reindex(categories, fill_value=0).to_numpy(),
            ),
            "ks": None,
            "ks_pvalue": None,
        }


class DriftScores:
    """`drift.drift_scores` of a batch fed chunk by chunk (same columns, same numbers)."""

    def __init__(
        self,
        reference: "pd.DataFrame",
        numeric: list[str],
        categorical: list[str],
        psi_threshold: float,
    ):
        self.numeric = {c: NumericDrift(reference[c].to_numpy(dtype=float)) for c in numeric}
        self.categorical = {c: CategoricalDrift(reference[c]) for c in categorical}
        self.psi_threshold = psi_threshold
        self.reference_rows = len(reference)
        self.rows = 0

    def add(self, chunk: "pd.DataFrame") -> None:
        self.rows += len(chunk)
        for column, numeric in self.numeric.items():
            numeric.add(chunk[column].to_numpy(dtype=float))
        for column, categorical in self.categorical.items():
            categorical.add(chunk[column])

    def result(self) -> dict:
        columns: dict[str, Any] = {c: a.result() for c, a in self.numeric.items()}
        columns.update({c: a.result() for c, a in self.categorical.items()})
        for scores in columns.values():
            scores["drifted"] = scores["psi"] is not None and scores["psi"] > self.psi_threshold
        drifted = sorted(c for c, s in columns.items() if s["drifted"])
        return {
            "columns": columns,
            "drifted_columns": drifted,
            "drifted_share": len(drifted) / len(columns) if columns else 0.0,
            "psi_threshold": self.psi_threshold,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
        }


def chunked_prediction_drift(
    task: str, reference: "np.ndarray", accumulated: "NumericDrift | CategoricalDrift", psi: float
) -> dict:
    """`drift.prediction_drift` from an accumulator fed the batch's primary scores."""
    from unified_ai.projects.tasks import MULTICLASS, REGRESSION

    scores = accumulated.result()
    if task == MULTICLASS:
        kind = "predicted class"
    else:
        kind = "predicted value" if task == REGRESSION else "predicted probability"
    drifted = scores["psi"] is not None and scores["psi"] > psi
    return {**scores, "of": kind, "drifted": drifted, "reference_rows": len(reference)}


def prediction_accumulator(task: str, reference: "np.ndarray") -> "NumericDrift | CategoricalDrift":
    """What `chunked_prediction_drift` is fed: chunks of the batch's primary scores."""
    import numpy as np
    import pandas as pd

    from unified_ai.projects.tasks import MULTICLASS

    if task == MULTICLASS:
        return _ClassDrift(pd.Series(np.asarray(reference, dtype=int)))
    return NumericDrift(np.asarray(reference, dtype=float))


class _ClassDrift(CategoricalDrift):
    """Predicted class indices (floats in the primary score) counted as `prediction_drift` does."""

    def add(self, values: Any) -> None:
        import numpy as np
        import pandas as pd

        super().add(pd.Series(np.asarray(values, dtype=int)))


__all__ = [
    "CategoricalDrift",
    "DriftScores",
    "NumericDrift",
    "categorical_drift",
    "chunked_prediction_drift",
    "prediction_accumulator",
]
