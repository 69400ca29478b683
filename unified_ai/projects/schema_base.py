"""What every model of the project schema shares: the strict base model, bounds and metrics.

Pure: pydantic only, no import of anything that runs a stage.
"""

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from unified_ai.projects.tasks import ALL_METRICS, LOWER_IS_BETTER

__all__ = ["LOWER_IS_BETTER", "MAX_VALUE", "METRICS", "LiveMetric", "Metric", "SegmentMetric"]

#: Upper bounds that keep every duration representable as a `timedelta` and every count sane.
MAX_HOURS = 8760.0  # a year
MAX_MINUTES = 525_600.0  # a year
MAX_APPROVALS = 20

#: Metrics the evaluation computes for some task (`unified_ai.projects.tasks` says which task
#: computes which); policies may only refer to these, and a project only to its task's.
METRICS = ALL_METRICS
Metric = Literal[
    "roc_auc", "f1", "accuracy", "log_loss",
    "macro_f1", "roc_auc_ovr", "per_class_recall", "per_class_precision",
    "rmse", "mae", "r2", "mape",
]  # fmt: skip
#: Metrics whose gap between segments a fairness rule may bound (per task: `SEGMENT_METRICS`).
SegmentMetric = Literal[
    "roc_auc", "f1", "accuracy", "true_positive_rate", "positive_rate",
    "macro_recall", "mae", "mean_signed_error",
]  # fmt: skip
#: Metrics a live-performance trigger may watch (per task: `LIVE_METRICS`).
LiveMetric = Literal["roc_auc", "f1", "accuracy", "macro_f1", "rmse", "mae", "r2"]
#: Bound of thresholds that are not shares (RMSE in a target's units, a gap of MAE): finite.
MAX_VALUE = 1e12


class _Strict(BaseModel):
    # allow_inf_nan=False: a NaN makes every comparison false, so one `.nan` in a margin used to
    # open a gate; infinities overflow `timedelta`. regex_engine is pinned because with the Rust
    # engine `$` matches only at the very end (Python's `re` would accept a trailing newline).
    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, regex_engine="rust-regex"
    )


def _finite_values(value: Any, where: str) -> None:
    """Refuse NaN/inf anywhere inside a YAML value, and types YAML has no business producing."""
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
            raise ValueError(f"{where}: {shown} is not a finite number")
    elif isinstance(value, dict):
        for name, item in value.items():
            _finite_values(item, f"{where}.{name}")
    elif isinstance(value, list):
        for item in value:
            _finite_values(item, where)
    elif value is not None and not isinstance(value, (bool, int, str)):
        raise ValueError(f"{where}: unsupported value of type {type(value).__name__}")
