"""Checks of a compiled scorer's structure and arrays before anything is evaluated.

Part of `unified_ai.ml.scorer` (numpy only): `check_scorer` refuses, naming the array or the
field, a scorer whose arrays are not exactly those its `scorer.json` implies, whose statistics,
coefficients, thresholds or leaves are not finite, whose indices are out of range or out of
order (every tree walk ends, inside the arrays), or whose task, classes and outputs do not fit
together.
"""

from typing import TYPE_CHECKING, Any

from unified_ai.ml.scorer_files import (
    LINKS,
    MAX_ARRAY_BYTES,
    MAX_SCORER_BYTES,
    SCORER_TASKS,
    ScorerError,
    array_layout,
)
from unified_ai.ml.scorer_plan import BINARY, MULTICLASS, model_outline

if TYPE_CHECKING:
    import numpy as np

    from unified_ai.ml.scorer import CompiledScorer


def check_scorer(scorer: "CompiledScorer", where: str) -> None:
    """Refuse a scorer whose structure, arrays or values are unsound (see the module docstring).

    Every index is checked before it is used, so scoring never reads out of range or loops.
    """
    spec, a = scorer.spec, scorer.arrays
    _check_arrays(a, array_layout(spec, where), where)
    try:
        width = _check_blocks(spec, a, where)
        if spec["format"] != 1:
            _check_task(spec, where)
        model = model_outline(spec)
        if model["kind"] == "linear":
            _finite(a, "coef", where)
            _finite(a, "intercept", where)
            return
        _check_trees(model, a, width, where)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _bad(where, f"missing or malformed {exc}") from None


def _check_task(spec: dict[str, Any], where: str) -> None:
    """Format 2: the task, its classes and the model's outputs and link fit together.

    Binary: one output (log-odds, or a forest's positive fraction); regression: one value;
    multiclass: `classes` answer columns, `class_columns` the distinct column of each class the
    model knows, and either one log-odds for two of them or one output per known class.
    """
    task, model = spec["task"], spec["model"]
    kind, link, outputs = model["kind"], model["link"], model["outputs"]
    if task not in SCORER_TASKS:
        raise _bad(where, f"task {task!r}")
    if link not in LINKS:
        raise _bad(where, f"link {link!r}")
    if task != MULTICLASS:
        wanted = "identity" if task != BINARY or kind == "trees_mean" else "logistic"
        if outputs != 1 or link != wanted:
            raise _bad(where, f"a {task} model with {outputs} outputs and link {link!r}")
        return
    classes, columns = spec["classes"], spec["class_columns"]
    if type(classes) is not int or not 2 <= classes <= 100_000:
        raise _bad(where, f"classes {classes!r}")
    if (
        not isinstance(columns, list)
        or not all(type(c) is int and 0 <= c < classes for c in columns)
        or len(set(columns)) != len(columns)
        or len(columns) < 2
    ):
        raise _bad(where, "class_columns are not distinct columns of the classes")
    if kind == "trees_mean":
        fits = link == "identity" and outputs == len(columns)
    elif outputs == 1:
        fits = link == "logistic" and len(columns) == 2
    else:
        fits = link == "softmax" and outputs == len(columns)
    if not fits:
        raise _bad(where, f"{outputs} outputs with link {link!r} for {len(columns)} classes")


def _bad(where: str, reason: str) -> ScorerError:
    return ScorerError(f"{where}: compiled scorer is inconsistent ({reason})")


def _refused(where: str, name: str, reason: str) -> ScorerError:
    return ScorerError(f"{where}: compiled scorer array {name!r} {reason}")


def _finite(a: "dict[str, np.ndarray]", name: str, where: str, *, nan_ok: bool = False) -> None:
    import numpy as np

    values = a[name]
    wrong = np.isinf(values) if nan_ok else ~np.isfinite(values)
    if wrong.any():
        raise _refused(where, name, f"holds a non-finite value ({values[wrong][0]!r})")


def _check_arrays(a: "dict[str, np.ndarray]", layout: dict[str, Any], where: str) -> None:
    """Exactly the arrays `layout` names, each of its dtype and shape, within the caps."""
    import numpy as np

    extra = sorted(set(a) - set(layout))
    if extra:
        raise _refused(where, extra[0], "is not part of this scorer (an extra array)")
    total = 0
    for name, (dtype, shape) in layout.items():
        if name not in a:
            raise _refused(where, name, "is missing")
        array = a[name]
        if not isinstance(array, np.ndarray) or array.dtype != dtype:
            raise _refused(
                where, name, f"has dtype {getattr(array, 'dtype', None)}, expected {dtype}"
            )
        if array.ndim != 1 or (shape is not None and array.shape != shape):
            expected = "a 1-D array" if shape is None else f"shape {shape}"
            raise _refused(where, name, f"has shape {array.shape}, expected {expected}")
        if array.nbytes > MAX_ARRAY_BYTES:
            raise _refused(
                where, name, f"holds {array.nbytes:,} bytes (more than {MAX_ARRAY_BYTES:,})"
            )
        total += array.nbytes
    if total > MAX_SCORER_BYTES:
        raise _bad(where, f"its arrays hold {total:,} bytes (more than {MAX_SCORER_BYTES:,})")


def _check_blocks(spec: dict[str, Any], a: "dict[str, np.ndarray]", where: str) -> int:
    """Sound preprocessing blocks; the width of the matrix they make."""
    width = 0
    for index, block in enumerate(spec["blocks"]):
        if block["kind"] == "numeric":
            # No imputer leaves the fill NaN (missing values reach the model as NaN).
            _finite(a, f"b{index}_fill", where, nan_ok=True)
            _finite(a, f"b{index}_mean", where)
            _finite(a, f"b{index}_scale", where)
            if (a[f"b{index}_scale"] == 0).any():
                raise _refused(where, f"b{index}_scale", "holds a zero scale (a division by zero)")
            width += len(block["columns"])
            continue
        for known, fill in zip(block["categories"], block["fill"], strict=True):
            if not isinstance(known, list) or not all(isinstance(v, str) for v in [*known, fill]):
                raise _bad(where, f"block {index} has a category or fill that is not a string")
        width += sum(len(c) for c in block["categories"])
    return width


def _check_trees(model: dict[str, Any], a: "dict[str, np.ndarray]", width: int, where: str) -> None:
    """Finite tree values and numbers; every child, feature and root index in range."""
    import numpy as np

    kind = model["kind"]
    nodes = len(a["is_leaf"])
    if not nodes:
        raise _bad(where, "the trees have no nodes")
    _finite(a, "threshold", where)
    _finite(a, "value", where)
    numbers = [("scale", model["scale"])]
    if kind == "trees_sum":
        baseline = model["baseline"]
        if not isinstance(baseline, list) or len(baseline) != model["outputs"]:
            raise _bad(where, "model baseline does not have one number per output")
        numbers += [("baseline", number) for number in baseline]
    for key, number in numbers:
        if type(number) not in (int, float) or not np.isfinite(number):
            raise _bad(where, f"model {key} {number!r} is not a finite number")
    if kind == "trees_sum" and len(a["roots"]) % model["outputs"]:
        raise _bad(where, "the trees are not a whole number of rounds of one per output")
    if not model["scale"] > 0:
        raise _bad(where, f"model scale {model['scale']!r} is not positive")
    if not isinstance(model["float32"], bool):
        raise _bad(where, "model float32 is not true or false")
    inner = ~a["is_leaf"]
    here = np.arange(nodes)
    # Children after their parent: every walk ends within `depth` steps, inside the arrays.
    for child in ("left", "right"):
        target = a[child][inner]
        if (target <= here[inner]).any() or (target >= nodes).any():
            raise _bad(where, f"a {child} child index is out of order or out of range")
    if ((a["feature"] < 0) | (a["feature"] >= max(width, 1))).any():
        raise _bad(where, "a split names a column the inputs do not have")
    if ((a["roots"] < 0) | (a["roots"] >= nodes)).any() or not len(a["roots"]):
        raise _bad(where, "a tree root is out of range")
    if type(model["depth"]) is not int or not 0 <= model["depth"] <= nodes:
        raise _bad(where, "depth")
