"""A stored model as ONNX, for an edge runtime: converted, then verified before it is handed out.

An ONNX-backed model (trained by a script in another framework) is exported as it is stored
(it was verified when it was stored and again when it was loaded). A scikit-learn pipeline is
converted with skl2onnx, one graph input per feature column (numeric: float32 of shape (n, 1),
categorical: string of shape (n, 1); see `unified_ai.ml.onnx_model`), and the conversion is
kept only if onnxruntime reproduces the pipeline's predictions on probe rows: a conversion
that disagrees (skl2onnx 1.20 converts some HistGradientBoosting pipelines with a max |Δp|
of 0.33) is refused, naming the largest difference.

A scikit-learn model is also converted when it is stored (`sklearn_onnx_files`, called by the
model writer of `unified_ai.io.formats`): where the conversion verifies, its ONNX form and its
probe (`ONNX_FILE`, `ONNX_PROBE`: the files of an ONNX-backed model, read back by the same
checked loader, `load_verified`) are stored beside `model.skops`, and `unified-ai export` hands
them out without converting again; where it does not, `ONNX_REFUSED` records why, and the model
is stored all the same. It is verified on the project's probe rows (those of a training
script's hand-back, `unified_ai.ml.onnx_model.probe_rows`: real rows, which matter, since a
HistGradientBoosting conversion agrees on fresh rows and disagrees on rows that sit on its bin
thresholds), rows drawn around what the preprocessing learned (missing values, an unseen
category: `fitted_probe_rows`) and rows with every value missing. Conversion time and file size
grow with a tree ensemble's nodes (about 20 us and 39 bytes each, measured with skl2onnx 1.20):
a model over `STORE_MAX_TREE_NODES` is left for `unified-ai export` to convert on demand, so
storing a large forest stays as fast as before.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from unified_ai.ml.onnx_checks import (
    MAX_ONNX_BYTES,
    ONNX_FILE,
    ONNX_PROBE,
    ONNX_REFUSED,
    OnnxError,
    _first_line,
)
from unified_ai.ml.onnx_model import (
    OnnxModel,
    card_features,
    load_verified,
    probe_file,
    verify_against,
)

if TYPE_CHECKING:
    import pandas as pd

    from unified_ai.ml.artifacts import TrainedModel


def sklearn_to_onnx(pipeline: Any, numeric: list[str], categorical: list[str], where: str) -> bytes:
    """The pipeline converted by skl2onnx (not yet verified), or `OnnxError` in one line."""
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise OnnxError(f"{where}: converting a scikit-learn model needs skl2onnx") from None

    initial = [(c, FloatTensorType([None, 1])) for c in numeric]
    initial += [(c, StringTensorType([None, 1])) for c in categorical]
    pipeline = _string_missing_values(pipeline)
    estimator = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline
    # Probabilities as a plain (n, k) tensor, not a list of maps: what an edge runtime reads.
    options = {id(estimator): {"zipmap": False}} if hasattr(estimator, "predict_proba") else {}
    try:
        # A fixed graph name (skl2onnx draws a random one): one model always gives the same bytes,
        # so storing it twice gives one version.
        proto = convert_sklearn(
            pipeline, name="scikit-learn pipeline", initial_types=initial, options=options
        )
    except Exception as exc:  # skl2onnx has no converter for a step, or rejects a parameter
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OnnxError(f"{where}: skl2onnx cannot convert this model ({first})") from None
    return proto.SerializeToString()


def _string_missing_values(pipeline: Any) -> Any:
    """A copy whose categorical imputers treat the empty string as missing.

    skl2onnx converts a string imputer only when its missing value is a string; the ONNX model
    is fed a missing category as "" (`OnnxModel.feeds`), so the copy computes the same thing.
    """
    import copy

    pipeline = copy.deepcopy(pipeline)
    pending = [pipeline]
    while pending:
        step = pending.pop()
        pending.extend(s for _, s in getattr(step, "steps", []))
        pending.extend(t for _, t, _ in getattr(step, "transformers_", []))
        statistics = getattr(step, "statistics_", None)
        missing = getattr(step, "missing_values", None)
        is_text = statistics is not None and any(isinstance(v, str) for v in statistics)
        if is_text and isinstance(missing, float) and missing != missing:
            step.missing_values = ""
    return pipeline


def _with_missing(inputs: "pd.DataFrame") -> "pd.DataFrame":
    """The probe rows, and their head again with every value missing: the imputers are checked."""
    import numpy as np
    import pandas as pd

    blank = inputs.head(20).copy()
    for column in blank.columns:
        # Missing as `model_inputs` writes it: NaN, in a text column too.
        blank[column] = pd.Series(np.nan, index=blank.index, dtype=inputs[column].dtype)
    return pd.concat([inputs, blank], ignore_index=True)


def export_onnx(model: "TrainedModel", probe: "pd.DataFrame", *, where: str) -> bytes:
    """The model as verified ONNX bytes.

    Args:
        model: A stored model (ONNX-backed, or a scikit-learn pipeline).
        probe: Model inputs to verify a conversion on (the card's feature columns).
        where: The start of every error message.

    Raises:
        OnnxError: the conversion fails or disagrees with the pipeline (naming the largest
            difference).
    """
    if model.onnx is not None:
        return bytes(model.onnx.data)
    numeric, categorical = card_features(model.card)
    data = sklearn_to_onnx(model.pipeline, numeric, categorical, where)
    converted = OnnxModel(data, numeric=numeric, categorical=categorical, where=where)
    inputs = _with_missing(probe[[*numeric, *categorical]].reset_index(drop=True))
    n_classes = len(model.classes or [])
    # The reference is the pipeline itself (not a compiled scorer): what the model is.
    reference = _pipeline_predictions(model, inputs)
    verify_against(
        converted,
        reference,
        inputs,
        task=model.task,
        n_classes=n_classes,
        where=where,
        what="the scikit-learn pipeline's predictions",
    )
    return data


def _pipeline_predictions(model: "TrainedModel", inputs: "pd.DataFrame") -> Any:
    from unified_ai.ml.artifacts import TrainedModel

    # Without the compiled scorer, `predict` scores by the pipeline for every task.
    bare = TrainedModel(pipeline=model.pipeline, card=model.card)
    return bare.predict(inputs)


#: Tree nodes (over every tree of an ensemble) up to which a model is converted when it is
#: stored: about 1 s of conversion and 2 MB of ONNX at the measured 20 us and 39 bytes a node.
#: Linear models, boosting on a few classes and single trees are far below it; a forest on more
#: than a few thousand rows is above it (100 trees on 5,000 rows: 171,000 nodes, 2.1 s, 6.7 MB).
STORE_MAX_TREE_NODES = 50_000
#: Rows drawn around the fitted preprocessing's statistics to verify a conversion made at store
#: time, beside the project's probe rows (then 20 more with every value missing).
STORE_PROBE_ROWS = 200


def sklearn_onnx_files(model: "TrainedModel", probe: "pd.DataFrame | None") -> dict[str, bytes]:
    """The files stored beside a scikit-learn model's `model.skops`: its ONNX form, or why not.

    Converts the pipeline with skl2onnx and verifies it with onnxruntime against the pipeline's
    own predictions (the rules of a training script's hand-back: within `ABS_TOLERANCE`, naming
    the largest difference otherwise). Never raises: storing the model must not depend on its
    conversion.

    Args:
        model: The model being stored.
        probe: The project's probe rows as model inputs (`unified_ai.ml.onnx_model.probe_rows`
            of the train split); None when none came with the model, which then is not
            converted (`unified-ai export` converts it on demand, on the holdout).

    Returns:
        `{ONNX_FILE: onnx bytes, ONNX_PROBE: the probe rows and the pipeline's predictions}`
        when the conversion verifies; `{ONNX_REFUSED: one line saying why not}` otherwise
        (conversion error, the largest difference, or a model left for `unified-ai export`);
        nothing for an ONNX-backed model (stored as ONNX already).
    """
    if model.onnx is not None:
        return {}
    try:
        data, probe_bytes = _converted_at_store_time(model, probe)
    except OnnxError as exc:
        return {ONNX_REFUSED: str(exc).encode()}
    except Exception as exc:  # any surprise of a converter: the model is stored regardless
        why = f"converting to ONNX failed unexpectedly ({type(exc).__name__}: {_first_line(exc)})"
        return {ONNX_REFUSED: why.encode()}
    return {ONNX_FILE: data, ONNX_PROBE: probe_bytes}


def _converted_at_store_time(
    model: "TrainedModel", probe: "pd.DataFrame | None"
) -> tuple[bytes, bytes]:
    """(ONNX bytes, probe file) of a verified conversion, or `OnnxError` saying why not."""
    import pandas as pd

    later = "`unified-ai export` converts it on demand"
    numeric, categorical = card_features(model.card)
    columns = [*numeric, *categorical]
    if not columns:
        raise OnnxError("not converted when stored: the model card names no feature columns")
    if probe is None or len(probe) == 0:
        raise OnnxError(
            "not converted when stored: no rows of the project's data came with the model to "
            f"verify a conversion on; {later}"
        )
    absent = [c for c in columns if c not in probe.columns]
    if absent:
        raise OnnxError(f"not converted when stored: the probe rows lack columns {absent}")
    pipeline = model.pipeline
    nodes = tree_nodes(pipeline.steps[-1][1] if hasattr(pipeline, "steps") else pipeline)
    if nodes > STORE_MAX_TREE_NODES:
        raise OnnxError(
            f"not converted when stored: {nodes} tree nodes, over the {STORE_MAX_TREE_NODES} "
            f"converted when a model is stored; {later}"
        )
    frames = [probe[columns].reset_index(drop=True)]
    drawn = fitted_probe_rows(pipeline, numeric, categorical)
    if drawn is not None:  # a pipeline not built here keeps the project's rows alone
        frames.append(drawn)
    inputs = _with_missing(pd.concat(frames, ignore_index=True))
    where = _converter_versions()
    data = sklearn_to_onnx(pipeline, numeric, categorical, where)
    if len(data) > MAX_ONNX_BYTES:
        raise OnnxError(f"{where}: the ONNX model is {len(data)} bytes, over {MAX_ONNX_BYTES}")
    converted = OnnxModel(data, numeric=numeric, categorical=categorical, where=where)
    reference = _pipeline_predictions(model, inputs)
    verify_against(
        converted,
        reference,
        inputs,
        task=model.task,
        n_classes=len(model.classes or []),
        where=where,
        what="the scikit-learn pipeline's predictions",
    )
    return data, probe_file(inputs, reference)


def _converter_versions() -> str:
    """`skl2onnx X (onnx Y)`: what a stored reason was measured with (a later one may differ)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"skl2onnx {version('skl2onnx')} (onnx {version('onnx')})"
    except PackageNotFoundError:
        return "skl2onnx"


def tree_nodes(estimator: Any) -> int:
    """Nodes over every tree of a fitted estimator (0 for a model without trees)."""
    tree = getattr(estimator, "tree_", None)
    if tree is not None:
        return int(tree.node_count)
    predictors = getattr(estimator, "_predictors", None)  # HistGradientBoosting
    if predictors is not None:
        return sum(len(p.nodes) for row in predictors for p in row)
    members = getattr(estimator, "estimators_", None)  # forests; gradient boosting (2-D)
    if members is None:
        return 0
    import numpy as np

    return sum(tree_nodes(member) for member in np.ravel(np.asarray(members, dtype=object)))


def fitted_probe_rows(
    pipeline: Any, numeric: list[str], categorical: list[str], *, seed: int = 0
) -> "pd.DataFrame | None":
    """`STORE_PROBE_ROWS` model inputs around what the preprocessing learned; None if unknown.

    Numeric columns: the scaler's mean (else the imputer's median) plus twice its scale times
    a standard normal draw; categorical: a learned category or an unseen one; 5% of every
    column missing. The draw is seeded, so a model's probe (and its stored bytes) never change.
    """
    import numpy as np
    import pandas as pd

    learned = _learned_columns(pipeline)
    if any(column not in learned for column in [*numeric, *categorical]):
        return None
    rng = np.random.default_rng(seed)
    n = STORE_PROBE_ROWS
    data: dict[str, Any] = {}
    for column in numeric:
        centre, spread = learned[column]
        values = centre + spread * 2 * rng.standard_normal(n)
        values[rng.random(n) < 0.05] = np.nan
        data[column] = values
    for column in categorical:
        choices = np.array([*learned[column], "unseen-category"], dtype=object)
        values = choices[rng.integers(0, len(choices), n)]
        values[rng.random(n) < 0.05] = np.nan
        data[column] = values
    return pd.DataFrame(data, columns=[*numeric, *categorical])


def _learned_columns(pipeline: Any) -> dict[str, Any]:
    """Per input column: (centre, spread) of a numeric one, or a categorical one's categories.

    Read from the built-in preprocessing (`unified_ai.ml.training.build_pipeline`): a column
    transformer of imputer + scaler and imputer + one-hot blocks.
    """
    learned: dict[str, Any] = {}
    preprocess = pipeline.steps[0][1] if hasattr(pipeline, "steps") else None
    for _, block, columns in getattr(preprocess, "transformers_", []):
        steps = [step for _, step in getattr(block, "steps", [])] or [block]
        imputer = next((s for s in steps if hasattr(s, "statistics_")), None)
        scaler = next((s for s in steps if hasattr(s, "scale_") and hasattr(s, "mean_")), None)
        encoder = next((s for s in steps if hasattr(s, "categories_")), None)
        for j, column in enumerate(columns if isinstance(columns, (list, tuple)) else []):
            if encoder is not None:
                learned[column] = [str(c) for c in encoder.categories_[j] if c == c]
            elif scaler is not None and scaler.mean_ is not None and scaler.scale_ is not None:
                learned[column] = (float(scaler.mean_[j]), float(scaler.scale_[j]) or 1.0)
            elif imputer is not None:
                centre = float(imputer.statistics_[j])
                learned[column] = (centre, max(1.0, abs(centre)))
    return learned


def refusal_still_holds(note: str) -> bool:
    """Whether a stored `ONNX_REFUSED` reason is what converting again would give now.

    skl2onnx converts one model to the same graph every time, so a conversion that failed or
    disagreed when the model was stored fails again under the same skl2onnx and onnx (and a
    check on the holdout alone could miss the rows it disagreed on). A model left unconverted
    (`not converted when stored: ...`), an unexpected failure, or a reason from other converter
    versions is converted again.
    """
    return note.startswith(f"{_converter_versions()}: ")


def stored_onnx(files: Mapping[str, bytes], card: dict[str, Any], *, where: str) -> bytes:
    """The ONNX form stored beside a scikit-learn model, checked and verified, as bytes.

    Read like an ONNX-backed model (`load_verified`): size-capped, parsed and checked without
    running anything, then run on its stored probe rows, which must get the predictions the
    pipeline gave them when the model was stored.

    Raises:
        OnnxError: the stored files are unsafe, damaged or disagree with their probe.
    """
    return bytes(load_verified(files[ONNX_FILE], files[ONNX_PROBE], card, where=where).data)
