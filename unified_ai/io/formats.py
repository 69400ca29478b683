"""Safe on-disk formats for asset values: Parquet, JSON, skops and ONNX. Never pickle.

Each value type maps to a `kind` recorded in the manifest; loading dispatches on that kind, so
a file can only ever be decoded by the reader of the kind it was written as.
"""

import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO

from unified_ai.ml.artifacts import Report, TrainedModel
from unified_ai.ml.scorer import SCORER_JSON, SCORER_REFUSED

FRAME = "frame/parquet"
JSON = "json"
MODEL = "model/skops"
#: A model from another framework (`unified_ai.ml.onnx_model`): a checked ONNX graph, verified
#: against its stored probe predictions every time it is loaded.
MODEL_ONNX = "model/onnx"
REPORT = "report/json"
#: Kinds whose decoders execute nothing from the file, so decoding may overlap verification.
PARALLEL_VERIFY_KINDS = frozenset({FRAME, JSON, REPORT})

#: Every type a stored model may instantiate, by exact fully-qualified name: what the pipelines
#: of `unified_ai.ml.training` hold for each estimator in `unified_ai.projects.schema.ESTIMATORS`
#: (scikit-learn 1.9, numpy 2). skops rebuilds a node by calling the type it names with
#: arguments from the file, so trusting a whole module (`builtins.`, `numpy.`) would let a file
#: call `exec`; a name is trusted only if it is listed here. `unified_ai_tests/io/test_formats.py`
#: trains every estimator and fails when one holds a type that is missing.
ALLOWED_MODEL_TYPES = frozenset(
    {
        # containers and scalars of fitted attributes
        "builtins.dict",
        "builtins.int",
        "builtins.list",
        "builtins.slice",
        "builtins.str",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.float64",
        "numpy.int64",
        "numpy.ndarray",
        "numpy.uint64",
        "numpy.random.PCG64",
        "numpy.random._generator.Generator",
        "numpy.random.mtrand.RandomState",
        # the pipeline and its preprocessing
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.impute._base.SimpleImputer",
        "sklearn.pipeline.Pipeline",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._label.LabelEncoder",
        # the estimators and what they hold
        "sklearn.dummy.DummyClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._tree.Tree",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.Interval",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.loss.HalfBinomialLoss",
        # multiclass classifiers
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.loss.HalfMultinomialLoss",
        # regressors, and the losses their `loss` parameter may name
        "sklearn.dummy.DummyRegressor",
        "sklearn.ensemble._forest.ExtraTreesRegressor",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.ensemble._gb.GradientBoostingRegressor",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.linear_model._ridge.Ridge",
        "sklearn.tree._classes.ExtraTreeRegressor",
        "sklearn._loss._loss.CyAbsoluteError",
        "sklearn._loss._loss.CyHalfGammaLoss",
        "sklearn._loss._loss.CyHalfPoissonLoss",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss._loss.CyHuberLoss",
        "sklearn._loss._loss.CyPinballLoss",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.LogLink",
        "sklearn._loss.loss.AbsoluteError",
        "sklearn._loss.loss.HalfGammaLoss",
        "sklearn._loss.loss.HalfPoissonLoss",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss.loss.HuberLoss",
        "sklearn._loss.loss.PinballLoss",
    }
)
#: skops node loaders those types arrive through. Others (functions, bound methods, operator
#: getters, `partial`, constructor calls from `__reduce__`) are call sites a model never needs.
_ALLOWED_LOADERS = frozenset(
    {
        "CachedNode",
        "DTypeNode",
        "DictNode",
        "JsonNode",
        "ListNode",
        "LossNode",
        "NdArrayNode",
        "ObjectNode",
        "RandomGeneratorNode",
        "RandomStateNode",
        "SliceNode",
        "TreeNode",
        "TupleNode",
        "TypeNode",
    }
)
#: The skops file protocol whose layout `model_types` reads. Older protocols name some types
#: elsewhere in a node (protocol 0 function nodes keep theirs in `content`): refused.
_SKOPS_PROTOCOL = 2


#: A stored file: its bytes, or a function that writes them into a binary file.
Payload = bytes | memoryview | Callable[[BinaryIO], None]


def payload_bytes(payload: Payload) -> bytes:
    """The bytes of a payload (runs a writer into memory)."""
    if callable(payload):
        buffer = io.BytesIO()
        payload(buffer)
        return buffer.getvalue()
    return bytes(payload)


#: Report attachments read back as text; any other attachment (a PNG plot) stays bytes.
TEXT_ATTACHMENTS = (".html", ".json", ".md", ".txt", ".csv")


class UnsupportedValueError(TypeError):
    """A value of a type the lineage store cannot persist safely."""


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=True).encode()


def serialize(value: Any) -> tuple[str, dict[str, Payload]]:
    """Encode `value` into a kind and named files."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(value, preserve_index=False)
        # Written by the store straight into its staging file: no in-memory copy of the bytes.
        return FRAME, {"data.parquet": lambda handle: pq.write_table(table, handle)}
    if isinstance(value, TrainedModel) and value.onnx is not None:
        return MODEL_ONNX, _onnx_files(value)
    if isinstance(value, TrainedModel):
        return MODEL, {
            "model.skops": dump_model(value.pipeline),
            "card.json": _json_bytes(value.card),
            **_scorer_files(value),
        }
    if isinstance(value, Report):
        files: dict[str, Payload] = {"report.json": _json_bytes(value.body)}
        files.update(
            {
                name: content.encode() if isinstance(content, str) else bytes(content)
                for name, content in value.attachments.items()
            }
        )
        return REPORT, files
    if isinstance(value, (dict, list)):
        return JSON, {"payload.json": _json_bytes(value)}
    raise UnsupportedValueError(
        f"cannot store a {type(value).__name__}: supported are DataFrame, dict/list (JSON), "
        "TrainedModel (skops or ONNX) and Report"
    )


def _onnx_files(model: TrainedModel) -> dict[str, Payload]:
    """An ONNX-backed model's files; refused unless it was verified (it carries its probe)."""
    from unified_ai.ml.onnx_model import MAX_ONNX_BYTES, ONNX_FILE, ONNX_PROBE

    onnx = model.onnx
    if onnx.probe is None:
        raise UnsupportedValueError(
            "cannot store an ONNX model that was not verified against probe predictions"
        )
    if len(onnx.data) > MAX_ONNX_BYTES:
        raise UnsupportedValueError(
            f"cannot store an ONNX model of {len(onnx.data)} bytes (cap {MAX_ONNX_BYTES})"
        )
    return {ONNX_FILE: onnx.data, ONNX_PROBE: onnx.probe, "card.json": _json_bytes(model.card)}


def describe(kind: str, files: Mapping[str, Payload], *, where: str = "value") -> dict[str, Any]:
    """What the manifest records about a value at save time, beyond checksums.

    For a model: `{"model_types": [...]}`, the sorted types its file instantiates, so a load can
    refuse a file that differs from what was saved. Other kinds record nothing.
    """
    if kind == MODEL_ONNX:
        return {"scorer": "onnx"}
    if kind != MODEL:
        return {}
    recorded: dict[str, Any] = {
        "model_types": model_types(payload_bytes(files["model.skops"]), where=where)
    }
    # How production batches are scored: by the compiled scorer, or by sklearn and why.
    if SCORER_JSON in files:
        recorded["scorer"] = "compiled"
    elif SCORER_REFUSED in files:
        recorded["scorer"] = f"sklearn: {payload_bytes(files[SCORER_REFUSED]).decode()}"
    return recorded


def deserialize(
    kind: str,
    files: dict[str, bytes],
    *,
    where: str,
    recorded: Mapping[str, Any] | None = None,
) -> Any:
    """Decode files written by `serialize`.

    Args:
        kind: The kind `serialize` returned.
        files: The files' bytes by name.
        where: `asset/path@version`, the start of every error message.
        recorded: The manifest's metadata (what `describe` returned at save time).
    """
    if kind == FRAME:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.read_table(pa.BufferReader(files["data.parquet"])).to_pandas()
    if kind == JSON:
        return json.loads(files["payload.json"])
    if kind == MODEL:
        return _model(files, where=where, recorded=recorded or {})
    if kind == MODEL_ONNX:
        return _onnx_model(files, where=where)
    if kind == REPORT:
        body = json.loads(files["report.json"])
        attachments = {
            n: d.decode() if n.endswith(TEXT_ATTACHMENTS) else d
            for n, d in files.items()
            if n != "report.json"
        }
        return Report(body=body, attachments=attachments)
    raise UnsupportedValueError(f"{where}: unknown stored kind {kind!r}; refusing to load it")


def _scorer_files(model: TrainedModel) -> dict[str, bytes]:
    """The model's compiled scorer files, or why it has none (`SCORER_REFUSED`).

    A pipeline that cannot be compiled (or whose compiled form disagrees with it) is still
    stored: it is scored by sklearn, and the reason is kept with it.
    """
    from unified_ai.ml.scorer import ScorerError
    from unified_ai.ml.scorer_compile import compile_pipeline

    scorer = model.scorer
    if model.task != "binary_classification":
        # The compiled form computes one positive-class probability: other tasks are scored by
        # their pipeline, and the reason is kept with the model.
        why = f"the compiled scorer covers binary classifiers; this {model.task} model is scored "
        return {SCORER_REFUSED: (why + "by scikit-learn").encode()}
    if scorer is None:
        try:
            scorer = compile_pipeline(model.pipeline)
        except ScorerError as exc:
            return {SCORER_REFUSED: str(exc).encode()}
    return scorer.to_files()


def _model(files: dict[str, bytes], *, where: str, recorded: Mapping[str, Any]) -> TrainedModel:
    """A stored model: its compiled scorer now, its skops pipeline when first used.

    The skops file's types are checked here either way, so a file that would instantiate
    anything off the allow-list is refused when it is read, not later.
    """
    from unified_ai.ml.scorer import CompiledScorer, ScorerError, ScorerUnverified

    recorded_types = recorded.get("model_types")
    card = json.loads(files["card.json"])

    def load() -> Any:
        return load_model_bytes(files["model.skops"], where=where, recorded_types=recorded_types)

    if SCORER_JSON not in files:
        return TrainedModel(pipeline=load(), card=card)
    check_model_types(files["model.skops"], where=where, recorded_types=recorded_types)
    try:
        scorer = CompiledScorer.from_files(files, where=where)
    except ScorerUnverified as exc:
        # Stored before probe outputs were kept: the pipeline scores it, and says why.
        return TrainedModel(card=card, load_pipeline=load, scorer_note=str(exc))
    except ScorerError as exc:
        raise UnsupportedValueError(f"{exc}; refusing to load it") from None

    def load_checked() -> Any:
        # The pipeline must give the probe rows what it gave them when it was stored (and the
        # scorer already does): the two paths of one model cannot disagree.
        pipeline = load()
        try:
            scorer.check_pipeline(pipeline, where)
        except ScorerError as exc:
            raise UnsupportedValueError(f"{exc}; refusing to load it") from None
        return pipeline

    return TrainedModel(card=card, scorer=scorer, load_pipeline=load_checked)


def _onnx_model(files: dict[str, bytes], *, where: str) -> TrainedModel:
    """A stored ONNX model: checked (nothing executes), then verified on its probe rows."""
    from unified_ai.ml.onnx_model import ONNX_FILE, ONNX_PROBE, OnnxError, load_verified

    if ONNX_FILE not in files or ONNX_PROBE not in files or "card.json" not in files:
        raise UnsupportedValueError(f"{where}: ONNX model version lacks its files; refusing it")
    card = json.loads(files["card.json"])
    if not isinstance(card, dict):
        raise UnsupportedValueError(f"{where}: model card is not an object; refusing it")
    try:
        onnx = load_verified(files[ONNX_FILE], files[ONNX_PROBE], card, where=where)
    except OnnxError as exc:
        raise UnsupportedValueError(str(exc)) from None
    return TrainedModel(card=card, onnx=onnx)


def load_handback(
    data: bytes,
    reported: Mapping[str, Any],
    train: Any,
    *,
    numeric: list[str],
    categorical: list[str],
    task: str,
    classes: list | None,
    where: str,
) -> Any:
    """The model a training script handed back: a skops pipeline, or a verified ONNX model.

    A script that reports `model_format: onnx` (`unified_ai.ml.onnx_model`) handed back ONNX
    bytes and its own predictions for the probe rows of `train`; the ONNX model is accepted
    only if it reproduces them. Anything else is a skops file, checked like a stored model.

    Raises:
        UnsupportedValueError: one line starting with `where`.
    """
    from unified_ai.ml.onnx_model import OnnxError, from_handback, is_onnx_handback

    if not is_onnx_handback(dict(reported)):
        return load_model_bytes(data, where=where)
    try:
        return from_handback(
            data,
            dict(reported),
            train,
            numeric=numeric,
            categorical=categorical,
            task=task,
            classes=classes,
            where=where,
        )
    except OnnxError as exc:
        raise UnsupportedValueError(str(exc)) from None


def dump_model(pipeline: Any) -> bytes:
    """Encode a fitted pipeline as skops, refusing one that could not be loaded back."""
    import skops.io as sio

    data = sio.dumps(pipeline)
    refused = [name for name in model_types(data) if name not in ALLOWED_MODEL_TYPES]
    if refused:
        raise UnsupportedValueError(
            f"cannot store a {type(pipeline).__name__} that would instantiate {refused}: "
            "they are not on the model allow-list, so it could never be loaded"
        )
    return data


def model_types(data: bytes, *, where: str = "model") -> list[str]:
    """The sorted, fully-qualified types a skops file would instantiate, read without decoding.

    Walks the whole `schema.json` of the archive: every node's `__module__.__class__` and the
    bit generator a random generator is rebuilt with. A node that arrives through a loader no
    model uses (a function, a bound method, an operator getter, `partial`, a constructor call)
    is named with that loader, so it never matches the allow-list. Nothing is imported or
    called. A file this cannot read completely is refused.
    """
    import zipfile

    def unreadable(reason: str) -> UnsupportedValueError:
        return UnsupportedValueError(
            f"{where}: model file is not a readable skops file ({reason}); refusing to load it"
        )

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except Exception as exc:  # not a zip, no schema, bad compression, truncated, not JSON
        raise unreadable(f"{type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(schema, dict):
        raise unreadable("schema.json is not an object")
    protocol = schema.get("protocol")
    if type(protocol) is not int or protocol != _SKOPS_PROTOCOL:
        raise UnsupportedValueError(
            f"{where}: model file uses skops protocol {protocol!r}, only {_SKOPS_PROTOCOL} is "
            "understood; refusing to load it"
        )
    found: set[str] = set()
    pending: list[Any] = [schema]
    while pending:  # iterative: a deeply nested file cannot exhaust the stack
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            if "__loader__" in item:
                found.update(_node_types(item, unreadable))
            pending.extend(item.values())
    return sorted(found)


def _node_types(node: dict[str, Any], unreadable: Callable[[str], Exception]) -> list[str]:
    loader, module, name = node.get("__loader__"), node.get("__module__"), node.get("__class__")
    if not all(isinstance(part, str) and part for part in (loader, module, name)):
        raise unreadable("a node has no loader, module or class name")
    qualified = f"{module}.{name}"
    if loader not in _ALLOWED_LOADERS:
        # Recorded with its loader: a listed type reached through a call site is still refused.
        return [f"{qualified} (via {loader})"]
    if loader == "RandomGeneratorNode":
        try:
            bit_generator = json.loads(
                node["content"]["bit_generator"]["content"]["bit_generator"]["content"]
            )
        except (KeyError, TypeError, ValueError):
            raise unreadable("a random generator names no bit generator") from None
        return [qualified, f"numpy.random.{bit_generator}"]
    return [qualified]


def load_model_bytes(
    data: bytes, *, where: str, recorded_types: Sequence[str] | None = None
) -> Any:
    """Load a skops model that instantiates only allowed types (and exactly the recorded ones).

    Every type in the file is checked against `ALLOWED_MODEL_TYPES` before skops parses it;
    skops then loads it trusting exactly those names. `recorded_types` is the list `describe`
    stored in the manifest; when given, a file with any other set of types is refused.
    Versions saved before types were recorded have none and get the allow-list check only.
    """
    found = check_model_types(data, where=where, recorded_types=recorded_types)
    import skops.io as sio

    try:
        return sio.loads(data, trusted=found)
    except Exception as exc:  # anything skops rejects: a malformed node, an untrusted type
        raise UnsupportedValueError(
            f"{where}: model file cannot be loaded ({type(exc).__name__}: {_first_line(exc)}); "
            "refusing to load it"
        ) from None


def check_model_types(
    data: bytes, *, where: str, recorded_types: Sequence[str] | None = None
) -> list[str]:
    """The types a skops file would instantiate, refusing any off the allow-list or not recorded.

    Raises:
        UnsupportedValueError: naming the file and the types at fault.
    """
    found = model_types(data, where=where)
    refused = [name for name in found if name not in ALLOWED_MODEL_TYPES]
    if refused:
        raise UnsupportedValueError(
            f"{where}: model file would instantiate {refused} which are not allowed; "
            "refusing to load it"
        )
    if recorded_types is not None and (
        not isinstance(recorded_types, (list, tuple))
        or not all(isinstance(name, str) for name in recorded_types)
    ):
        raise UnsupportedValueError(
            f"{where}: manifest metadata model_types is not a list of type names; "
            "refusing to load it"
        )
    if recorded_types is not None and sorted(set(recorded_types)) != found:
        extra = sorted(set(found) - set(recorded_types))
        missing = sorted(set(recorded_types) - set(found))
        raise UnsupportedValueError(
            f"{where}: model file differs from the types recorded when it was saved "
            f"(unexpected {extra}, missing {missing}); refusing to load it"
        )
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no details"
