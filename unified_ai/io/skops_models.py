"""Which types a stored skops model may instantiate, and reading and writing those files.

A skops file is checked type by type against `ALLOWED_MODEL_TYPES` before it is parsed, so a
file can never call anything a fitted pipeline does not hold.
"""

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

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


class UnsupportedValueError(TypeError):
    """A value of a type the lineage store cannot persist safely."""


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

    # Every object of the document is a dict the decoder hands to the hook: the nodes are
    # collected as it decodes, with no second walk over the decoded tree.
    nodes: list[dict[str, Any]] = []

    def collect(item: dict[str, Any]) -> dict[str, Any]:
        if "__loader__" in item:
            nodes.append(item)
        return item

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"), object_hook=collect)
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
    for node in nodes:
        found.update(_node_types(node, unreadable))
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
