"""Models from any framework, through ONNX: loaded safely, scored by onnxruntime, verified.

A training script (`training.script`, through Pipes) may hand back an ONNX model instead of a
skops pipeline. ONNX is a protobuf graph of standard operators: parsing it runs nothing, and
`load_onnx` refuses what could (custom operator domains, whose kernels are native libraries;
external data files, which a graph names by path; model-local functions), a file over
`MAX_ONNX_BYTES`, and a graph `onnx.checker` rejects.

How the model's input columns reach the graph (`OnnxModel.feeds`), decided by the graph's
inputs when it is loaded:

- **one input per column**: every graph input is named after a feature column of the model
  card; a string input gets the column as text (missing: empty string), a numeric one the
  column as float32/float64/int64. Inputs of rank 2 get shape (n, 1), of rank 1 shape (n,).
  This is what skl2onnx produces for a pipeline converted with one initial type per column.
- **one float tensor**: the graph has a single float (or double) input not named after a
  column, and the model has numeric features only; it gets the numeric columns, in the card's
  order, as an (n, len(numeric)) matrix. This is what onnxmltools produces for LightGBM or
  XGBoost trained on a matrix.

Anything else is refused when the model is loaded.

Outputs, by task: a classifier's probabilities are its float output of rank 2 (preferring one
named `probabilities`), or a ZipMap output (a list of {class index: p}); binary takes the
positive (last) column, multiclass needs one column per class of the card. A regressor's
value is its first float output, flattened to (n,).

A model is accepted only if it reproduces, on probe rows, the predictions its script reported
from its own framework (`verify_against`): a conversion that disagrees is refused, naming the
largest difference. The probe rows and the predictions are stored beside the model
(`ONNX_PROBE`) and checked again every time it is loaded.

onnx and onnxruntime are imported inside functions only: importing this module is cheap.
"""

import json
from typing import TYPE_CHECKING, Any

# The limits and the file checks live in their own module; re-exported so existing imports keep
# working.
from unified_ai.ml.onnx_checks import ABS_TOLERANCE as ABS_TOLERANCE
from unified_ai.ml.onnx_checks import ALLOWED_DOMAINS as ALLOWED_DOMAINS
from unified_ai.ml.onnx_checks import MAX_ONNX_BYTES as MAX_ONNX_BYTES
from unified_ai.ml.onnx_checks import MAX_ONNX_PROBE_BYTES as MAX_ONNX_PROBE_BYTES
from unified_ai.ml.onnx_checks import ONNX_FILE as ONNX_FILE
from unified_ai.ml.onnx_checks import ONNX_PROBE as ONNX_PROBE
from unified_ai.ml.onnx_checks import ONNX_PROBE_ROWS as ONNX_PROBE_ROWS
from unified_ai.ml.onnx_checks import REL_TOLERANCE as REL_TOLERANCE
from unified_ai.ml.onnx_checks import OnnxError as OnnxError
from unified_ai.ml.onnx_checks import _first_line
from unified_ai.ml.onnx_checks import check_onnx_bytes as check_onnx_bytes

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: ONNX tensor element types the feeds support: name → numpy dtype ("str" for strings).
_ELEMENT_TYPES = {1: "float32", 11: "float64", 7: "int64", 8: "str"}


class OnnxModel:
    """An ONNX model and how a frame of the model's inputs is fed to it.

    Attributes:
        data: The ONNX bytes (what is stored and exported).
        numeric: The card's numeric feature columns, in order.
        categorical: The card's categorical feature columns, in order.
        inputs: The graph inputs: (name, element dtype, rank).
        layout: "columns" (one graph input per column) or "matrix" (one float tensor).
        probe: The stored probe file (`probe_file`) once the model is verified, else None.
    """

    #: What `TrainedModel` recognises an ONNX model by (without importing this module).
    is_onnx = True

    def __init__(self, data: bytes, *, numeric: list[str], categorical: list[str], where: str):
        proto = check_onnx_bytes(data, where=where)
        self.data = bytes(data)
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.where = where
        initializers = {t.name for t in proto.graph.initializer}
        self.inputs: list[tuple[str, str, int]] = []
        for item in proto.graph.input:
            if item.name in initializers:
                continue
            tensor = item.type.tensor_type
            dtype = _ELEMENT_TYPES.get(tensor.elem_type)
            if not item.type.HasField("tensor_type") or dtype is None:
                raise OnnxError(
                    f"{where}: ONNX input {item.name!r} is not a float, int64 or string tensor; "
                    "refusing to load it"
                )
            self.inputs.append((item.name, dtype, len(tensor.shape.dim) or 2))
        columns = set(self.numeric) | set(self.categorical)
        names = [name for name, _, _ in self.inputs]
        if names and set(names) <= columns and len(names) == len(columns):
            self.layout = "columns"
        elif (
            len(self.inputs) == 1
            and self.inputs[0][1] in ("float32", "float64")
            and not self.categorical
            and self.numeric
        ):
            self.layout = "matrix"
        else:
            raise OnnxError(
                f"{where}: ONNX inputs {names} are neither one per feature column "
                f"({sorted(columns)}) nor one float tensor of the numeric features; "
                "refusing to load it"
            )
        self._session: Any = None
        self.probe: bytes | None = None

    @property
    def session(self) -> Any:
        """The onnxruntime session (CPU, no custom operator library), created on first use."""
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            try:
                self._session = ort.InferenceSession(
                    self.data, sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime refuses the graph (an unsupported opset)
                raise OnnxError(
                    f"{self.where}: onnxruntime cannot load the ONNX model "
                    f"({_first_line(exc)}); refusing to load it"
                ) from None
        return self._session

    def feeds(self, inputs: "pd.DataFrame") -> "dict[str, np.ndarray]":
        """The graph's input tensors for a frame of model inputs (see the module docstring)."""
        import numpy as np

        if self.layout == "matrix":
            name, dtype, _ = self.inputs[0]
            matrix = inputs[self.numeric].to_numpy(dtype="float64").astype(dtype)
            return {name: matrix}
        feeds = {}
        for name, dtype, rank in self.inputs:
            values = inputs[name]
            if dtype == "str":
                array = np.array(
                    ["" if v is None or v != v else str(v) for v in values], dtype=object
                )
            else:
                array = values.to_numpy(dtype="float64").astype(dtype)
            feeds[name] = array.reshape(-1, 1) if rank >= 2 else array
        return feeds

    def outputs(self, inputs: "pd.DataFrame") -> dict[str, Any]:
        """Every graph output for a frame of model inputs, by name."""
        session = self.session
        names = [o.name for o in session.get_outputs()]
        try:
            values = session.run(names, self.feeds(inputs))
        except Exception as exc:  # shapes or types the graph does not take
            raise OnnxError(
                f"{self.where}: the ONNX model cannot score these inputs ({_first_line(exc)})"
            ) from None
        return dict(zip(names, values, strict=True))

    def predict(self, inputs: "pd.DataFrame", task: str, n_classes: int = 0) -> "np.ndarray":
        """Predictions in the task's shape: binary (n,), multiclass (n, k), regression (n,)."""
        import numpy as np

        if len(inputs) == 0:
            return np.zeros((0, n_classes) if task == "multiclass_classification" else (0,))
        outputs = self.outputs(inputs)
        n = len(inputs)
        if task == "regression":
            for value in outputs.values():
                array = np.asarray(value) if isinstance(value, np.ndarray) else None
                if array is not None and array.dtype.kind == "f" and array.size == n:
                    return array.reshape(n).astype("float64")
            raise OnnxError(f"{self.where}: the ONNX model has no float output of one value a row")
        proba = _probabilities(outputs, n)
        if proba is None:
            raise OnnxError(f"{self.where}: the ONNX model has no probability output")
        if task == "binary_classification":
            if proba.shape[1] not in (1, 2):
                raise OnnxError(
                    f"{self.where}: the ONNX model gives {proba.shape[1]} probability columns "
                    "for a binary task"
                )
            return proba[:, -1].astype("float64")
        if proba.shape[1] != n_classes:
            raise OnnxError(
                f"{self.where}: the ONNX model gives {proba.shape[1]} probability columns for "
                f"{n_classes} classes"
            )
        return proba.astype("float64")


def _probabilities(outputs: dict[str, Any], n: int) -> "np.ndarray | None":
    """A classifier's (n, k) probabilities: a float tensor of rank 2, or a ZipMap output."""
    import numpy as np

    ordered = sorted(outputs.items(), key=lambda item: item[0] != "probabilities")
    for _, value in ordered:
        if (
            isinstance(value, np.ndarray)
            and value.dtype.kind == "f"
            and value.ndim == 2
            and value.shape[0] == n
        ):
            return value
        if isinstance(value, list) and len(value) == n and all(isinstance(r, dict) for r in value):
            keys = sorted(value[0]) if value else []
            return np.array([[row[k] for k in keys] for row in value], dtype="float64")
    return None


def largest_difference(got: Any, expected: Any, task: str) -> tuple[float, bool]:
    """(largest |Δ|, whether every value agrees within the tolerance for the task)."""
    import numpy as np

    got = np.asarray(got, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    if got.shape != expected.shape or not np.isfinite(got).all():
        return float("inf"), False
    if got.size == 0:
        return 0.0, True
    delta = np.abs(got - expected)
    limit = ABS_TOLERANCE + (REL_TOLERANCE * np.abs(expected) if task == "regression" else 0.0)
    return float(delta.max()), bool((delta <= limit).all())


def verify_against(
    model: OnnxModel,
    reported: Any,
    probe_rows: "pd.DataFrame",
    *,
    task: str,
    n_classes: int = 0,
    where: str,
    what: str = "the predictions its training script reported",
) -> None:
    """Refuse an ONNX model that does not reproduce `reported` on `probe_rows`.

    Raises:
        OnnxError: one line naming the largest difference (and the tolerance).
    """
    import numpy as np

    expected = np.asarray(reported, dtype="float64")
    if expected.shape[0] != len(probe_rows) or not np.isfinite(expected).all():
        raise OnnxError(
            f"{where}: {what} are not {len(probe_rows)} finite predictions for the probe rows; "
            "refusing the ONNX model"
        )
    got = model.predict(probe_rows, task, n_classes)
    difference, agrees = largest_difference(got, expected, task)
    if not agrees:
        tolerance = f"{ABS_TOLERANCE:g}" + (
            f" + {REL_TOLERANCE:g}*|value|" if task == "regression" else ""
        )
        shape = "" if got.shape == expected.shape else f" (shape {got.shape} vs {expected.shape})"
        raise OnnxError(
            f"{where}: the ONNX model disagrees with {what} on {len(probe_rows)} probe rows: "
            f"largest |Δ| {difference:.3g} (tolerance {tolerance}){shape}; refusing it"
        )


def probe_file(probe_rows: "pd.DataFrame", expected: Any) -> bytes:
    """The stored probe: the rows (missing as null) and the predictions they must get."""
    import numpy as np

    rows = {
        column: [None if v is None or v != v else _plain(v) for v in probe_rows[column]]
        for column in probe_rows.columns
    }
    values = np.asarray(expected, dtype="float64").tolist()
    return json.dumps({"rows": rows, "expected": values}, sort_keys=True).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, (int, float, str)) else str(value)


def read_probe(
    data: bytes, *, numeric: list[str], categorical: list[str], where: str
) -> "tuple[pd.DataFrame, np.ndarray]":
    """The stored probe rows as model inputs, and their expected predictions."""
    import numpy as np
    import pandas as pd

    bad = OnnxError(f"{where}: ONNX probe file is malformed; refusing to load the model")
    if len(data) > MAX_ONNX_PROBE_BYTES:
        raise OnnxError(f"{where}: ONNX probe file is over {MAX_ONNX_PROBE_BYTES} bytes")
    try:
        probe = json.loads(data)
        rows, expected = probe["rows"], np.asarray(probe["expected"], dtype="float64")
    except (ValueError, TypeError, KeyError):
        raise bad from None
    columns = [*numeric, *categorical]
    if not isinstance(rows, dict) or sorted(rows) != sorted(columns) or expected.ndim not in (1, 2):
        raise bad
    if not len(expected) or any(
        not isinstance(rows[c], list) or len(rows[c]) != len(expected) for c in columns
    ):
        raise bad
    data_columns: dict[str, Any] = {}
    try:
        for column in numeric:
            data_columns[column] = np.array(
                [np.nan if v is None else float(v) for v in rows[column]], dtype="float64"
            )
        for column in categorical:
            data_columns[column] = np.array(
                [np.nan if v is None else str(v) for v in rows[column]], dtype=object
            )
    except (TypeError, ValueError):
        raise bad from None
    return pd.DataFrame(data_columns, columns=columns), expected


def card_features(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns of a model card."""
    features = card.get("features") or {}
    return list(features.get("numeric") or []), list(features.get("categorical") or [])


def n_classes_of(card: dict[str, Any]) -> int:
    return len(card.get("classes") or [])


def load_verified(data: bytes, probe: bytes, card: dict[str, Any], *, where: str) -> OnnxModel:
    """A stored ONNX model, checked and verified against its stored probe outputs."""
    numeric, categorical = card_features(card)
    model = OnnxModel(data, numeric=numeric, categorical=categorical, where=where)
    rows, expected = read_probe(probe, numeric=numeric, categorical=categorical, where=where)
    verify_against(
        model,
        expected,
        rows,
        task=str(card.get("task") or "binary_classification"),
        n_classes=n_classes_of(card),
        where=where,
        what="the predictions stored for its probe rows",
    )
    model.probe = bytes(probe)
    return model


#: Pipes metadata a training script reports when it hands back ONNX instead of skops.
FORMAT_KEY = "model_format"
PREDICTIONS_KEY = "probe_predictions"


def probe_rows(train: "pd.DataFrame", numeric: list[str], categorical: list[str]) -> "pd.DataFrame":
    """The probe rows of a hand-back: the model inputs of the train split's first rows.

    The script and the step read the same train split version, so both derive the same rows.
    """
    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.training import model_inputs

    head = train.head(ONNX_PROBE_ROWS).reset_index(drop=True)
    return model_inputs(head, FeatureColumns(numeric=numeric, categorical=categorical))


def is_onnx_handback(reported: dict[str, Any]) -> bool:
    """Whether the script's Pipes metadata says it handed back an ONNX model."""
    return str(reported.get(FORMAT_KEY) or "").lower() == "onnx"


def from_handback(
    data: bytes,
    reported: dict[str, Any],
    train: "pd.DataFrame",
    *,
    numeric: list[str],
    categorical: list[str],
    task: str,
    classes: list | None,
    where: str,
) -> OnnxModel:
    """A verified ONNX model from a Pipes hand-back, or `OnnxError` in one line.

    Args:
        data: The bytes the script wrote where the step told it to write its model.
        reported: The script's Pipes metadata: `PREDICTIONS_KEY` holds its own framework's
            predictions for `probe_rows` (binary P(positive), multiclass rows of probabilities
            in class-index order, regression values).
        train: The train split the script read.
        numeric: The numeric feature columns the script reported.
        categorical: The categorical feature columns the script reported.
        task: The project's task.
        classes: A multiclass model's classes (the card's).
        where: The start of every error message.
    """
    import numpy as np

    model = OnnxModel(data, numeric=numeric, categorical=categorical, where=where)
    predictions = reported.get(PREDICTIONS_KEY)
    if not isinstance(predictions, list):
        raise OnnxError(
            f"{where}: the training script handed back an ONNX model but reported no "
            f"`{PREDICTIONS_KEY}` (its own predictions for the probe rows); refusing it"
        )
    rows = probe_rows(train, numeric, categorical)
    try:
        expected = np.asarray(predictions, dtype="float64")
    except (TypeError, ValueError):
        raise OnnxError(f"{where}: `{PREDICTIONS_KEY}` is not numbers; refusing it") from None
    n_classes = len(classes or [])
    verify_against(model, expected, rows, task=task, n_classes=n_classes, where=where)
    model.probe = probe_file(rows, expected)
    return model
