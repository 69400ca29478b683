"""Compiling a fitted scikit-learn pipeline to a `CompiledScorer` (see `unified_ai.ml.scorer`).

Every built-in estimator of every task compiles (from sklearn's public fitted attributes:
`coef_`, `intercept_`, `estimators_`, `tree_`, and HistGradientBoosting's `_predictors`):
linear models (a logistic or multinomial regression, ridge or least squares), boosted trees
(a sum per output and a constant start read off the model, then the logistic function, softmax
or nothing), forests and single trees (the mean of the leaves' class fractions or values).

The only part of the scorer that imports scikit-learn (inside its functions): scoring, loading
and checking a stored scorer need numpy only. `probe_rows` draws the rows a compiled scorer is
checked on against its pipeline.
"""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.scorer import (
    SCORER_FORMAT,
    TOLERANCE,
    CompiledScorer,
    ScorerError,
    check_scorer,
)
from unified_ai.ml.scorer_files import PROBE_ROWS, TREE_ARRAYS
from unified_ai.ml.scorer_plan import BINARY, MULTICLASS, REGRESSION

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def compile_pipeline(
    pipeline: Any, task: str = BINARY, classes: int | None = None
) -> CompiledScorer:
    """Compile a fitted pipeline and check it against the pipeline on probe rows.

    Args:
        pipeline: A fitted preprocess + model pipeline.
        task: The model's task (`unified_ai.projects.tasks`).
        classes: A multiclass model's number of classes on its model card (its pipeline
            learnt class indices into that list and may lack some).

    Raises:
        ScorerError: naming what is not supported, or the difference the check found.
    """
    import numpy as np
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ScorerError(f"not a preprocess + model pipeline: {type(pipeline).__name__}")
    blocks, arrays, width = _blocks(pipeline.steps[0][1])
    estimator = pipeline.steps[1][1]
    spec: dict[str, Any] = {"format": SCORER_FORMAT, "task": task, "blocks": blocks}
    spec.update(_task_fields(estimator, task, classes))
    model, model_arrays = _model(estimator, width, task)
    spec["model"] = model
    scorer = CompiledScorer(spec=spec, arrays={**arrays, **model_arrays})
    probe = probe_rows(scorer)
    expected = scorer.estimator_output(pipeline, probe)
    # Large batches feed this matrix to the fitted model itself: it must be the same matrix.
    matrix = pipeline.steps[0][1].transform(probe)
    design = scorer.design_matrix(probe)
    if matrix.shape != (len(probe), width) or not np.allclose(
        design, matrix, rtol=0, atol=TOLERANCE
    ):
        raise ScorerError("compiled preprocessing differs from the pipeline's")
    if model["kind"] == "trees_sum":
        scorer = _with_baseline(scorer, pipeline, probe, design)
    got = scorer.predict(probe)
    if not np.isfinite(expected).all():
        raise ScorerError("the pipeline gives non-finite scores on the probe rows")
    difference = float(np.abs(got - expected).max())
    if not difference <= TOLERANCE:
        raise ScorerError(f"compiled scores differ from the pipeline's by {difference:.3g}")
    # Stored with the scorer: every load checks the scorer against what the pipeline said.
    rows = {
        column: [None if value is None or value != value else value for value in probe[column]]
        for column in probe.columns
    }
    scorer = CompiledScorer(
        spec=scorer.spec,
        arrays=scorer.arrays,
        probe={"rows": rows, "expected": expected.tolist()},
    )
    check_scorer(scorer, "compiled scorer")
    return scorer


def _task_fields(estimator: Any, task: str, classes: int | None) -> dict[str, Any]:
    """`classes` and `class_columns` of a multiclass scorer (nothing for the other tasks)."""
    import numpy as np

    if task == REGRESSION:
        if hasattr(estimator, "classes_"):
            raise ScorerError(f"{type(estimator).__name__} is a classifier, not a regressor")
        return {}
    known = list(getattr(estimator, "classes_", []))
    if task == BINARY:
        if len(known) != 2:
            raise ScorerError(f"{type(estimator).__name__} is not a binary classifier")
        return {}
    if task != MULTICLASS:
        raise ScorerError(f"task {task!r} has no compiled form")
    if classes is None or classes < 2:
        raise ScorerError("a multiclass model card without its classes")
    if len(known) < 2 or not all(
        isinstance(c, (int, np.integer)) and 0 <= c < classes for c in known
    ):
        raise ScorerError("the model's classes are not indices into the model card's classes")
    return {"classes": int(classes), "class_columns": [int(c) for c in known]}


def _with_baseline(
    scorer: CompiledScorer, pipeline: Any, probe: "pd.DataFrame", design: "np.ndarray"
) -> CompiledScorer:
    """The scorer with the ensemble's constant start (prior log-odds, or the mean target).

    Read off the pipeline's raw prediction on the probe rows: `_ensemble` left the baseline at
    0, so `raw_score` is the trees' sum alone here.
    """
    import numpy as np

    raw = (
        pipeline.predict(probe) if scorer.task == REGRESSION else pipeline.decision_function(probe)
    )
    start = np.asarray(raw, dtype="float64") - scorer.raw_score(design)
    if start.ndim == 1:
        start = start[:, None]
    spread = start.max(axis=0) - start.min(axis=0)
    if not (np.isfinite(spread).all() and float(spread.max()) <= TOLERANCE):
        raise ScorerError("the ensemble's starting prediction is not a constant")
    spec = {**scorer.spec, "model": {**scorer.spec["model"]}}
    spec["model"]["baseline"] = [float(v) for v in start.mean(axis=0)]
    return CompiledScorer(spec=spec, arrays=scorer.arrays)


def probe_rows(scorer: CompiledScorer, rows: int = PROBE_ROWS, seed: int = 0) -> "pd.DataFrame":
    """Rows around the training statistics, with missing values and unknown categories."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {}
    for index, block in enumerate(scorer.spec["blocks"]):
        if block["kind"] == "numeric":
            mean = scorer.arrays[f"b{index}_mean"]
            scale = scorer.arrays[f"b{index}_scale"]
            fill = scorer.arrays[f"b{index}_fill"]
            for j, column in enumerate(block["columns"]):
                centre = mean[j] if mean[j] != 0 else fill[j]
                spread = scale[j] if scale[j] != 1 else max(1.0, abs(fill[j]))
                values = centre + spread * rng.standard_normal(rows) * 2
                values[rng.random(rows) < 0.05] = np.nan
                data[column] = values
        else:
            for column, categories in zip(block["columns"], block["categories"], strict=True):
                choices = np.array([*categories, "unseen-category"], dtype=object)
                values = choices[rng.integers(0, len(choices), rows)]
                values[rng.random(rows) < 0.05] = np.nan
                data[column] = values
    frame = pd.DataFrame(data)
    return frame.astype({c: object for c in frame.columns if frame[c].dtype == object})


def _blocks(preprocess: Any) -> "tuple[list[dict[str, Any]], dict[str, np.ndarray], int]":
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if not isinstance(preprocess, ColumnTransformer) or preprocess.remainder != "drop":
        raise ScorerError("preprocessing is not a ColumnTransformer that drops the rest")
    blocks: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    width = 0
    for name, transformer, columns in preprocess.transformers_:
        if transformer == "drop" or name == "remainder":
            continue
        steps = (
            [step for _, step in transformer.steps]
            if isinstance(transformer, Pipeline)
            else [transformer]
        )
        columns = list(columns)
        if not all(isinstance(c, str) for c in columns):
            raise ScorerError(f"block {name} selects columns by position")
        imputer = steps.pop(0) if steps and isinstance(steps[0], SimpleImputer) else None
        if imputer is not None and (imputer.add_indicator or not _is_nan(imputer.missing_values)):
            raise ScorerError(f"block {name}: imputer marks or replaces other values than NaN")
        index = len(blocks)
        if len(steps) == 1 and isinstance(steps[0], OneHotEncoder):
            encoder = steps[0]
            if (
                encoder.handle_unknown != "ignore"
                or encoder.drop_idx_ is not None
                or encoder.min_frequency is not None
                or encoder.max_categories is not None
                or encoder.sparse_output
            ):
                raise ScorerError(f"block {name}: one-hot options other than the defaults used")
            categories = [[str(c) for c in cats] for cats in encoder.categories_]
            if any([str(c) for c in cats] != list(cats) for cats in encoder.categories_):
                raise ScorerError(f"block {name}: categories that are not strings")
            fill = (
                [None] * len(columns) if imputer is None else [str(v) for v in imputer.statistics_]
            )
            if None in fill:
                raise ScorerError(f"block {name}: categorical missing values are not imputed")
            blocks.append(
                {"kind": "onehot", "columns": columns, "fill": fill, "categories": categories}
            )
            width += sum(len(c) for c in categories)
            continue
        scaler = steps.pop(0) if steps and isinstance(steps[0], StandardScaler) else None
        if steps:
            raise ScorerError(f"block {name}: step {type(steps[0]).__name__} is not supported")
        n = len(columns)
        numeric_fill = (
            np.full(n, np.nan)
            if imputer is None
            else np.asarray(imputer.statistics_, dtype="float64")
        )
        if imputer is not None and np.isnan(numeric_fill).any():
            raise ScorerError(f"block {name}: an imputer dropped an all-missing column")
        mean = (
            np.zeros(n)
            if scaler is None or scaler.mean_ is None
            else scaler.mean_.astype("float64")
        )
        scale = (
            np.ones(n)
            if scaler is None or scaler.scale_ is None
            else scaler.scale_.astype("float64")
        )
        arrays.update(
            {f"b{index}_fill": numeric_fill, f"b{index}_mean": mean, f"b{index}_scale": scale}
        )
        blocks.append({"kind": "numeric", "columns": columns})
        width += n
    return blocks, arrays, width


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _model(model: Any, width: int, task: str) -> "tuple[dict[str, Any], dict[str, np.ndarray]]":
    """The fitted final estimator as arrays: a linear model or trees (summed or averaged)."""
    import numpy as np
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    forests = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier)

    name = type(model).__name__
    known = len(getattr(model, "classes_", [])) if task != REGRESSION else 1
    if isinstance(model, (LogisticRegression, Ridge, LinearRegression)):
        return _linear(model, width, task, known)
    if isinstance(model, (HistGradientBoostingClassifier, HistGradientBoostingRegressor)):
        if model.is_categorical_ is not None and np.asarray(model.is_categorical_).any():
            raise ScorerError("native categorical splits are not supported")
        trees = [_hist_tree(p) for predictors in model._predictors for p in predictors]
        rounds = len(model._predictors[0]) if model._predictors else 1
        return _ensemble(
            trees, kind="trees_sum", float32=False, scale=1.0, outputs=rounds, task=task
        )
    if isinstance(model, (GradientBoostingClassifier, GradientBoostingRegressor)):
        trees = [_sklearn_tree(e.tree_, classes=None) for row in model.estimators_ for e in row]
        outputs = int(model.estimators_.shape[1])
        scale = float(model.learning_rate)
        return _ensemble(
            trees, kind="trees_sum", float32=True, scale=scale, outputs=outputs, task=task
        )
    single = (DecisionTreeClassifier, DecisionTreeRegressor)
    if isinstance(model, (*forests, ExtraTreesRegressor, *single)):
        fitted: list[Any] = [model] if isinstance(model, single) else list(model.estimators_)
        if getattr(model, "n_outputs_", 1) != 1:
            raise ScorerError(f"{name} predicts several targets")
        # Binary: the positive class's fraction; multiclass: every class's; regression: value.
        classes = None if task == REGRESSION else (1 if task == BINARY else known)
        trees = [_sklearn_tree(tree.tree_, classes=classes) for tree in fitted]
        outputs = known if task == MULTICLASS else 1
        return _ensemble(
            trees, kind="trees_mean", float32=True, scale=1.0, outputs=outputs, task=task
        )
    raise ScorerError(f"{name} has no compiled form")


def _linear(
    model: Any, width: int, task: str, known: int
) -> "tuple[dict[str, Any], dict[str, np.ndarray]]":
    """Coefficients as (outputs x width), flattened; one output unless several classes."""
    import numpy as np

    coef = np.atleast_2d(np.asarray(model.coef_, dtype="float64"))
    intercept = np.atleast_1d(np.asarray(model.intercept_, dtype="float64"))
    outputs = 1 if task != MULTICLASS or known == 2 else known
    if coef.shape != (outputs, width) or intercept.shape != (outputs,):
        raise ScorerError(f"{type(model).__name__} coefficients do not match the inputs")
    link = "identity" if task == REGRESSION else ("logistic" if outputs == 1 else "softmax")
    model_spec = {"kind": "linear", "outputs": outputs, "link": link}
    return model_spec, {"coef": coef.ravel(), "intercept": intercept}


def _hist_tree(predictor: Any) -> "dict[str, np.ndarray]":
    import numpy as np

    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    return {
        "feature": np.where(leaf, 0, nodes["feature_idx"]).astype("int64"),
        "threshold": nodes["num_threshold"].astype("float64"),
        "left": nodes["left"].astype("int64"),
        "right": nodes["right"].astype("int64"),
        "missing_left": nodes["missing_go_to_left"].astype(bool),
        "is_leaf": leaf,
        "value": nodes["value"].astype("float64"),
    }


def _sklearn_tree(tree: Any, *, classes: int | None) -> "dict[str, np.ndarray]":
    """A fitted `sklearn.tree._tree.Tree` as arrays.

    `classes` None takes the regression value (regressors, and the stages of gradient
    boosting); 1 the positive class's fraction (binary); more, every class's fraction per
    node, node by node.
    """
    import numpy as np

    leaf = tree.children_left < 0
    if classes is None:
        value = tree.value[:, 0, 0].astype("float64")
    else:
        counts = tree.value[:, 0, :].astype("float64")
        total = counts.sum(axis=1, keepdims=True)
        fractions = counts / np.where(total == 0, 1.0, total)
        value = fractions[:, 1] if classes == 1 else fractions.ravel()
    missing = getattr(tree, "missing_go_to_left", np.zeros(len(leaf), dtype=bool))
    return {
        "feature": np.where(leaf, 0, tree.feature).astype("int64"),
        "threshold": tree.threshold.astype("float64"),
        "left": np.where(leaf, 0, tree.children_left).astype("int64"),
        "right": np.where(leaf, 0, tree.children_right).astype("int64"),
        "missing_left": np.asarray(missing).astype(bool),
        "is_leaf": leaf,
        "value": value,
    }


def _ensemble(
    trees: "list[dict[str, np.ndarray]]",
    *,
    kind: str,
    float32: bool,
    scale: float,
    outputs: int,
    task: str,
) -> "tuple[dict[str, Any], dict[str, np.ndarray]]":
    """Trees concatenated into one set of node arrays, child indices made absolute.

    A sum of trees with several outputs holds them round by round, one tree per output in
    each; a mean of trees holds `outputs` leaf values per node.
    """
    import numpy as np

    if not trees:
        raise ScorerError("the ensemble has no trees")
    offsets = np.cumsum([0] + [len(t["is_leaf"]) for t in trees[:-1]])
    arrays = {}
    for name in TREE_ARRAYS:
        parts = []
        for offset, tree in zip(offsets, trees, strict=True):
            part = tree[name]
            if name in {"left", "right"}:
                part = np.where(tree["is_leaf"], 0, part + offset)
            parts.append(part)
        arrays[name] = np.concatenate(parts)
    arrays["roots"] = offsets.astype("int64")
    depth = max(_depth(tree) for tree in trees)
    nodes = len(arrays["is_leaf"])
    if kind == "trees_mean" or task == REGRESSION:
        link = "identity"
    else:
        link = "logistic" if outputs == 1 else "softmax"
    model: dict[str, Any] = {
        "kind": kind,
        "float32": float32,
        "scale": scale,
        "depth": depth,
        "outputs": outputs,
        "link": link,
        "nodes": nodes,
        "trees": len(trees),
    }
    if kind == "trees_sum":
        model["baseline"] = [0.0] * outputs
    return model, arrays


def _depth(tree: "dict[str, np.ndarray]") -> int:
    """Longest root-to-leaf path, in steps."""
    depth = [0] * len(tree["is_leaf"])
    for node in range(len(depth)):  # parents come before their children
        if not tree["is_leaf"][node]:
            for child in (int(tree["left"][node]), int(tree["right"][node])):
                depth[child] = depth[node] + 1
    return max(depth)
