"""Per-column drift of a batch against the training reference: PSI and KS, vectorised.

Evidently's default preset takes minutes and gigabytes on a million rows; these statistics take
seconds, so every batch gets them, and Evidently renders the human page from a sample.
"""

from typing import TYPE_CHECKING

from unified_ai.lifetime import import_evidently

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_BINS = 10
#: Columns of one type, whose raw values and their text forms correspond one to one.
_ONE_TYPE = frozenset({"string", "integer", "floating", "boolean", "empty"})
_EPS = 1e-4


def _psi(expected, actual) -> float:
    import numpy as np

    expected = np.clip(expected, _EPS, None)
    actual = np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution, by whichever of its two series converges fast."""
    import math

    if lam <= 0:
        return 1.0
    if lam < 1.18:  # the theta-function form converges in a few terms for small lam
        total = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * lam**2)) for k in range(1, 8))
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / lam * total))
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return min(1.0, max(0.0, 2.0 * total))


def ks_two_sample(reference, current) -> tuple[float, float]:
    """Two-sample KS statistic and its asymptotic p-value, with numpy only.

    The statistic is exact (the largest gap between the two empirical CDFs). The p-value is
    Kolmogorov's limit with Stephens' small-sample correction of the effective size, within
    about 0.02 of scipy's `ks_2samp(method="asymp")` without importing scipy (~1 s) per batch.
    """
    import math

    import numpy as np

    a, b = np.sort(reference), np.sort(current)
    values = np.concatenate([a, b])
    gap = np.searchsorted(a, values, side="right") / len(a)
    gap -= np.searchsorted(b, values, side="right") / len(b)
    statistic = float(np.abs(gap).max())
    root = math.sqrt(len(a) * len(b) / (len(a) + len(b)))
    return statistic, kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic)


def numeric_drift(reference, current) -> dict:
    """PSI over the reference's deciles and the two-sample KS statistic of one column."""
    import numpy as np

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
    ks, pvalue = ks_two_sample(reference, current)
    return {
        "psi": _psi(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()),
        "ks": ks,
        "ks_pvalue": pvalue,
    }


def _shares(values: "pd.Series") -> "pd.Series":
    """Share of each category, compared as text, missing values as `<missing>`.

    Counted on the raw values first (a million rows, a handful of categories), then the few
    distinct values are turned into text: a value and its text form (`1` and `"1"`) merge.
    """
    import pandas as pd

    if pd.api.types.infer_dtype(values, skipna=True) not in _ONE_TYPE:
        # Mixed types: `2` and `2.0` count as one value but read "2" and "2.0" as text.
        return values.astype("string").fillna("<missing>").value_counts(normalize=True)
    counts = values.value_counts(dropna=False)
    names = ["<missing>" if pd.isna(v) else str(v) for v in counts.index]
    shares = pd.Series(counts.to_numpy(), index=pd.Index(names, dtype="string"))
    shares = shares.groupby(level=0).sum()
    return shares / shares.sum()


def categorical_drift(reference: "pd.Series", current: "pd.Series") -> dict:
    """PSI over the categories (unseen categories count as their own bucket)."""
    ref, cur = _shares(reference), _shares(current)
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


#: Reference rows a deployed model scores to give its prediction distribution (a sample).
PREDICTION_REFERENCE_ROWS = 2_000


def prediction_drift(
    task: str, reference: "np.ndarray", current: "np.ndarray", psi_threshold: float
) -> dict:
    """Drift of a model's predictions on the batch against its predictions on the reference.

    What is compared, by task: binary the positive-class probability, regression the
    predicted value (numeric: PSI over the reference's deciles and KS), multiclass the
    predicted class (categorical: PSI over the classes). The inputs are primary scores
    (`unified_ai.ml.batch_scoring.primary_score`: multiclass, the class index).
    """
    import numpy as np
    import pandas as pd

    from unified_ai.projects.tasks import MULTICLASS

    if task == MULTICLASS:
        scores = categorical_drift(
            pd.Series(np.asarray(reference, dtype=int)), pd.Series(np.asarray(current, dtype=int))
        )
        kind = "predicted class"
    else:
        scores = numeric_drift(np.asarray(reference, dtype=float), np.asarray(current, dtype=float))
        kind = "predicted value" if task == "regression" else "predicted probability"
    drifted = scores["psi"] is not None and scores["psi"] > psi_threshold
    return {**scores, "of": kind, "drifted": drifted, "reference_rows": len(reference)}


#: The name under which our PSI is registered with Evidently, so its page computes what we do.
PAGE_STATTEST = "unified_ai_psi"


def _register_page_stattest() -> str:
    """Register our PSI (same bins, same `>` rule as `drift_scores`) as an Evidently stat test."""
    from evidently.legacy.calculations.stattests.registry import (
        StatTest,
        StatTestNotFoundError,
        get_registered_stattest,
        register_stattest,
    )
    from evidently.legacy.core import ColumnType

    try:
        get_registered_stattest(PAGE_STATTEST, ColumnType.Numerical)
        return PAGE_STATTEST
    except StatTestNotFoundError:
        pass

    def psi(reference, current, feature_type, threshold):
        if feature_type == ColumnType.Numerical:
            score = numeric_drift(reference.to_numpy(dtype=float), current.to_numpy(dtype=float))[
                "psi"
            ]
        else:
            score = categorical_drift(reference, current)["psi"]
        score = 0.0 if score is None else score
        return score, score > threshold

    register_stattest(
        StatTest(
            name=PAGE_STATTEST,
            display_name="PSI (project policy)",
            allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical],
        ),
        default_impl=psi,
    )
    return PAGE_STATTEST


def drift_snapshot(
    reference: "pd.DataFrame",
    current: "pd.DataFrame",
    columns: list[str],
    rows: int,
    seed: int,
    *,
    psi_threshold: float,
    max_drifted_share: float,
):
    """Evidently's data-drift report on a sample of at most `rows` rows of each side.

    It uses the project's own rule: our PSI per column with the policy's threshold, and the
    policy's drifted share, so page and trigger agree (exactly when the batch is not sampled).
    """
    import math

    import_evidently()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def sample(frame):
        frame = frame[columns]
        return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame

    preset = DataDriftPreset(
        method=_register_page_stattest(),
        threshold=psi_threshold,
        # Evidently flags the dataset when share >= drift_share; the trigger fires only above
        # the policy's share, so the page's bound is the next float up.
        drift_share=math.nextafter(max_drifted_share, math.inf),
    )
    return Report([preset]).run(sample(current), sample(reference))


def drift_page(
    reference: "pd.DataFrame",
    current: "pd.DataFrame",
    columns: list[str],
    rows: int,
    seed: int,
    *,
    psi_threshold: float,
    max_drifted_share: float,
) -> str:
    """The self-contained HTML page of `drift_snapshot`."""
    snapshot = drift_snapshot(
        reference,
        current,
        columns,
        rows,
        seed,
        psi_threshold=psi_threshold,
        max_drifted_share=max_drifted_share,
    )
    return snapshot.get_html_str(as_iframe=False)


def columns_markdown(body: dict) -> str:
    """Per-column PSI, KS and drift flag of a drift report body, drifted columns first."""
    threshold = body.get("psi_threshold")
    lines = [f"| column | PSI (drifts above {threshold}) | KS | KS p-value | drifted |"]
    lines.append("|---|---|---|---|---|")

    def fmt(value) -> str:
        return "—" if value is None else f"{value:.4f}"

    columns = body.get("columns", {})
    order = sorted(columns, key=lambda c: (not columns[c].get("drifted"), c))
    for column in order:
        scores = columns[column]
        drifted = bool(scores.get("drifted"))
        cells = [
            column,
            fmt(scores.get("psi")),
            fmt(scores.get("ks")),
            fmt(scores.get("ks_pvalue")),
            "**yes**" if drifted else "no",
        ]
        if drifted:
            cells[0] = f"**{column}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
