"""Building and fitting the sklearn pipeline a project declares."""

import importlib
from typing import TYPE_CHECKING, Any

from unified_ai.ml.data import FeatureColumns, resolve_features
from unified_ai.ml.targets import MULTICLASS, class_list, encode_target
from unified_ai.projects.schema import ESTIMATORS

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.projects.schema import EstimatorSpec, ProjectConfig


class TrainingError(RuntimeError):
    """The estimator spec cannot be built or fitted."""


def build_estimator(spec: "EstimatorSpec") -> Any:
    """Instantiate the estimator named in `spec` with its params."""
    module_name, _, class_name = ESTIMATORS[spec.class_name].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**spec.params)
    except TypeError as exc:
        raise TrainingError(
            f"estimator.params: {spec.class_name} rejects its params: {exc}"
        ) from None


def build_pipeline(spec: "EstimatorSpec", features: FeatureColumns) -> Any:
    """Preprocessing (impute + scale numerics, impute + one-hot categoricals) and the model."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    transformers = []
    if features.numeric:
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        transformers.append(("numeric", numeric, features.numeric))
    if features.categorical:
        categorical = Pipeline(
            [
                ("impute", SimpleImputer(strategy="most_frequent")),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", categorical, features.categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop")
    return Pipeline([("preprocess", preprocess), ("model", build_estimator(spec))])


def model_inputs(frame: "pd.DataFrame", features: FeatureColumns) -> "pd.DataFrame":
    """The feature columns, with categoricals as strings so encoders see one type."""
    import numpy as np
    import pandas as pd

    inputs = frame[features.all].copy()
    for column in features.categorical:
        values = inputs[column]
        text = _numbers_as_text(values)
        if text is None:
            present = values.notna().to_numpy()
            text = values.to_numpy(dtype=object, copy=True)
            text[~present] = np.nan
            if pd.api.types.infer_dtype(values, skipna=True) != "string":  # text stays as it is
                text[present] = values[present].astype(str).to_numpy(dtype=object)
        inputs[column] = pd.Series(text, index=values.index, dtype=object)
    return inputs


def _numbers_as_text(values: "pd.Series") -> Any:
    """A numeric column's values as `astype(str)` text (missing: NaN), or None if not numeric.

    Each distinct value is put as text once (a categorical feature has a few over many rows).
    A float column holding -0.0 takes the general path: factorizing would merge it with 0.0,
    whose text differs.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(values.dtype, np.dtype) or values.dtype.kind not in "biuf":
        return None  # text, objects and pandas' own dtypes (nullable, category)
    numbers = values.to_numpy()
    if numbers.dtype.kind == "f" and bool((np.signbit(numbers) & (numbers == 0)).any()):
        return None
    codes, uniques = pd.factorize(numbers, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[:-1] = pd.Series(uniques, dtype=numbers.dtype).astype(str).to_numpy(dtype=object)
    table[-1] = np.nan  # a missing value's code is -1
    return table[codes]


def fit(project: "ProjectConfig", train: "pd.DataFrame") -> tuple[Any, FeatureColumns]:
    """Fit the project's pipeline on `train`; returns the pipeline and its feature columns."""
    features = resolve_features(project, train)
    missing = [c for c in features.all if c not in train.columns]
    if missing:
        raise TrainingError(f"features missing from the training split: {missing}")
    pipeline = build_pipeline(project.estimator, features)
    # Multiclass models learn class indices (`encode_target`): their probability columns are
    # then in the order of the class list the model card records (`task_card`).
    target = encode_target(project, train)
    try:
        pipeline.fit(model_inputs(train, features), target)
    except (ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise TrainingError(f"{project.estimator.class_name} failed to fit: {first}") from None
    return pipeline, features


def predict_proba(model: Any, frame: "pd.DataFrame", features: FeatureColumns) -> Any:
    """Probability of the positive class for each row.

    `model` is a `TrainedModel` (scored by its compiled scorer when it has one and the batch is
    small, see `TrainedModel.predict_proba`) or a fitted pipeline.
    """
    from unified_ai.ml.artifacts import TrainedModel

    inputs = model_inputs(frame, features)
    if isinstance(model, TrainedModel):
        return model.predict_proba(inputs)
    return model.predict_proba(inputs)[:, 1]


def task_card(project: "ProjectConfig", train: "pd.DataFrame") -> dict[str, Any]:
    """What a model card records of the task: the task and, for multiclass, the class list.

    Every later reader of the model (evaluation, scoring, serving, labels) indexes classes by
    this list, so a class the project declares later does not shift the model's columns.
    """
    card: dict[str, Any] = {"task": project.task}
    if project.task == MULTICLASS:
        card["classes"] = class_list(project, train)
    return card


def predict(model: Any, frame: "pd.DataFrame", features: FeatureColumns) -> Any:
    """The model's predictions in its task's shape (see `unified_ai.ml.metrics`).

    Binary: the positive-class probability per row; multiclass: a row of probabilities per row,
    in the model card's class order; regression: the predicted value. A bare pipeline (no card)
    is a binary classifier.
    """
    from unified_ai.ml.artifacts import TrainedModel

    if isinstance(model, TrainedModel):
        return model.predict(model_inputs(frame, features))
    return predict_proba(model, frame, features)
