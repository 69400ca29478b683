"""A stored model as ONNX, for an edge runtime: converted, then verified before it is handed out.

An ONNX-backed model (trained by a script in another framework) is exported as it is stored
(it was verified when it was stored and again when it was loaded). A scikit-learn pipeline is
converted with skl2onnx, one graph input per feature column (numeric: float32 of shape (n, 1),
categorical: string of shape (n, 1); see `unified_ai.ml.onnx_model`), and the conversion is
kept only if onnxruntime reproduces the pipeline's predictions on probe rows: a conversion
that disagrees (skl2onnx 1.20 converts some HistGradientBoosting pipelines with a max |Δp|
of 0.33) is refused, naming the largest difference.
"""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.onnx_model import OnnxError, OnnxModel, card_features, verify_against

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
        proto = convert_sklearn(pipeline, initial_types=initial, options=options)
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
