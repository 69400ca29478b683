"""The project schema's training models: the estimator, the split, where training runs.

`ESTIMATORS` and `ESTIMATOR_PARAMS` let a project's estimator be checked when it loads,
without importing sklearn.
"""

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from unified_ai.projects.schema_base import _finite_values, _Strict

#: Estimators a project may name, mapped to their import path. Names are checked when the
#: project loads; sklearn itself is imported only when a model is trained.
ESTIMATORS: dict[str, str] = {
    "HistGradientBoostingClassifier": "sklearn.ensemble.HistGradientBoostingClassifier",
    "GradientBoostingClassifier": "sklearn.ensemble.GradientBoostingClassifier",
    "RandomForestClassifier": "sklearn.ensemble.RandomForestClassifier",
    "ExtraTreesClassifier": "sklearn.ensemble.ExtraTreesClassifier",
    "LogisticRegression": "sklearn.linear_model.LogisticRegression",
    "DecisionTreeClassifier": "sklearn.tree.DecisionTreeClassifier",
    # Regressors (task: regression).
    "Ridge": "sklearn.linear_model.Ridge",
    "LinearRegression": "sklearn.linear_model.LinearRegression",
    "HistGradientBoostingRegressor": "sklearn.ensemble.HistGradientBoostingRegressor",
    "GradientBoostingRegressor": "sklearn.ensemble.GradientBoostingRegressor",
    "RandomForestRegressor": "sklearn.ensemble.RandomForestRegressor",
    "ExtraTreesRegressor": "sklearn.ensemble.ExtraTreesRegressor",
    "DecisionTreeRegressor": "sklearn.tree.DecisionTreeRegressor",
}
#: The estimators that predict a value; every other one predicts classes (binary or multiclass).
REGRESSORS = frozenset(name for name in ESTIMATORS if name.endswith("Regressor")) | {
    "Ridge",
    "LinearRegression",
}

#: Constructor parameter names of each estimator (scikit-learn 1.9), so `params` can be
#: checked when the project loads without importing sklearn (~2 s) into the code location.
#: `unified_ai_tests/projects/test_limits.py` compares this table with the installed classes.
_FOREST_PARAMS = frozenset(
    {
        "bootstrap", "ccp_alpha", "class_weight", "criterion", "max_depth", "max_features",
        "max_leaf_nodes", "max_samples", "min_impurity_decrease", "min_samples_leaf",
        "min_samples_split", "min_weight_fraction_leaf", "monotonic_cst", "n_estimators",
        "n_jobs", "oob_score", "random_state", "verbose", "warm_start",
    }
)  # fmt: skip
ESTIMATOR_PARAMS: dict[str, frozenset[str]] = {
    "HistGradientBoostingClassifier": frozenset(
        {
            "categorical_features", "class_weight", "early_stopping", "interaction_cst",
            "l2_regularization", "learning_rate", "loss", "max_bins", "max_depth",
            "max_features", "max_iter", "max_leaf_nodes", "min_samples_leaf", "monotonic_cst",
            "n_iter_no_change", "random_state", "scoring", "tol", "validation_fraction",
            "verbose", "warm_start",
        }
    ),
    "GradientBoostingClassifier": frozenset(
        {
            "ccp_alpha", "criterion", "init", "learning_rate", "loss", "max_depth",
            "max_features", "max_leaf_nodes", "min_impurity_decrease", "min_samples_leaf",
            "min_samples_split", "min_weight_fraction_leaf", "n_estimators", "n_iter_no_change",
            "random_state", "subsample", "tol", "validation_fraction", "verbose", "warm_start",
        }
    ),
    "RandomForestClassifier": _FOREST_PARAMS,
    "ExtraTreesClassifier": _FOREST_PARAMS,
    "LogisticRegression": frozenset(
        {
            "C", "class_weight", "dual", "fit_intercept", "intercept_scaling", "l1_ratio",
            "max_iter", "n_jobs", "penalty", "random_state", "solver", "tol", "verbose",
            "warm_start",
        }
    ),
    "DecisionTreeClassifier": frozenset(
        {
            "ccp_alpha", "class_weight", "criterion", "max_depth", "max_features",
            "max_leaf_nodes", "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
            "min_weight_fraction_leaf", "monotonic_cst", "random_state", "splitter",
        }
    ),
    "Ridge": frozenset(
        {
            "alpha", "copy_X", "fit_intercept", "max_iter", "positive", "random_state", "solver",
            "tol",
        }
    ),
    "LinearRegression": frozenset({"copy_X", "fit_intercept", "n_jobs", "positive", "tol"}),
    "HistGradientBoostingRegressor": frozenset(
        {
            "categorical_features", "early_stopping", "interaction_cst", "l2_regularization",
            "learning_rate", "loss", "max_bins", "max_depth", "max_features", "max_iter",
            "max_leaf_nodes", "min_samples_leaf", "monotonic_cst", "n_iter_no_change",
            "quantile", "random_state", "scoring", "tol", "validation_fraction", "verbose",
            "warm_start",
        }
    ),
    "GradientBoostingRegressor": frozenset(
        {
            "alpha", "ccp_alpha", "criterion", "init", "learning_rate", "loss", "max_depth",
            "max_features", "max_leaf_nodes", "min_impurity_decrease", "min_samples_leaf",
            "min_samples_split", "min_weight_fraction_leaf", "n_estimators", "n_iter_no_change",
            "random_state", "subsample", "tol", "validation_fraction", "verbose", "warm_start",
        }
    ),
    # Regression forests take the classifiers' parameters but class_weight.
    "RandomForestRegressor": _FOREST_PARAMS - {"class_weight"},
    "ExtraTreesRegressor": _FOREST_PARAMS - {"class_weight"},
    "DecisionTreeRegressor": frozenset(
        {
            "ccp_alpha", "criterion", "max_depth", "max_features", "max_leaf_nodes",
            "min_impurity_decrease", "min_samples_leaf", "min_samples_split",
            "min_weight_fraction_leaf", "monotonic_cst", "random_state", "splitter",
        }
    ),
}  # fmt: skip


class EstimatorSpec(_Strict):
    """An sklearn estimator by name, with its constructor parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # The enum makes `dg check yaml` (which checks the JSON schema) catch an unknown name too.
    class_name: str = Field(alias="class", json_schema_extra={"enum": list(ESTIMATORS)})
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("class_name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ESTIMATORS:
            raise ValueError(f"unknown estimator {value!r} (known: {', '.join(ESTIMATORS)})")
        return value

    @field_validator("params")
    @classmethod
    def _valid_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # Names are checked here rather than when training starts, so a typo fails the code
        # location instead of a run an hour later. An unknown class was reported already.
        class_name = info.data.get("class_name")
        if class_name is not None:
            valid = ESTIMATOR_PARAMS[class_name]
            unknown = sorted(set(value) - valid)
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                noun = "parameter" if len(unknown) == 1 else "parameters"
                raise ValueError(
                    f"{class_name} has no {noun} {names} (valid: {', '.join(sorted(valid))})"
                )
        for name, item in value.items():
            _finite_values(item, name)
        return value


class SplitSpec(_Strict):
    """Deterministic, stratified train/holdout split."""

    holdout_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="numpy accepts 0..2**32-1")


#: The batch window when a project sets neither `window_batches` nor `window_days`.
DEFAULT_WINDOW_BATCHES = 20


class ProductionData(_Strict):
    """Which labeled production rows join the project's source in `training_data`.

    A production row is a row of a stored `production_batch` joined by row id with its label
    from `ground_truth`. Quarantined batches never join; nor do batches excluded by a person
    (`unified-ai exclude`, or `unified-ai impact --pause` on a batch) or whose columns no longer
    match the project: each is named, with why, in the asset's metadata. The window is the
    newest `window_batches` labeled batches, or those stored in the last `window_days` days
    (give one, not both); of their rows at most `max_rows`, the newest, are kept.
    """

    include: bool = True
    recent_holdout_fraction: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="the newest share of the production rows, held out (never trained on) as "
        "the recent holdout; 0: none",
    )
    window_batches: int | None = Field(default=None, ge=1, le=100_000)
    window_days: float | None = Field(default=None, gt=0.0, le=3650.0)
    max_rows: int = Field(default=100_000, ge=1, le=100_000_000)

    @model_validator(mode="after")
    def _one_window(self) -> "ProductionData":
        if self.window_batches is not None and self.window_days is not None:
            raise ValueError("give window_batches or window_days, not both")
        return self

    @property
    def batches(self) -> int | None:
        """The batch window in effect: `window_batches`, else 20 when no day window is set."""
        if self.window_batches is not None:
            return self.window_batches
        return None if self.window_days is not None else DEFAULT_WINDOW_BATCHES


class TrainingSpec(_Strict):
    """Where training runs, and which production rows it learns from.

    `in_process` fits inside the Dagster step. `pipes` runs a training script as an external
    process through Dagster Pipes: a subprocess locally, its own pod (with the `training`
    stage's resources) on Kubernetes. The default script,
    `unified_ai.stages.training.external_train`, trains the project's estimator; `script` names
    another one (relative to the project file).
    """

    runner: Literal["in_process", "pipes"] = "in_process"
    script: str | None = None
    image: str | None = Field(default=None, description="pod image (k8s); default: the code's")
    production_data: ProductionData = ProductionData()
