"""How a checked compiled scorer evaluates rows: everything precomputed once, numpy only.

`ScorerPlan` is built from a scorer's `scorer.json` and arrays (formats 1 and 2 of
`unified_ai.ml.scorer_files`) when the scorer is loaded: per input column its position in
the model's matrix (numeric statistics, a category → column dict), and the trees flattened
into node arrays whose leaves point at themselves, so every tree walk has the same number of
steps and no branch. Rows reach it either as a DataFrame (`design_from_frame`, batches) or as
plain columns by name (`design_from_columns`, a request of a few rows, no pandas); both build
the design matrix with the same operations, so both give bit-for-bit the same answers.

The answer is in the task's shape (`unified_ai.projects.tasks`): binary, P(positive) per row;
multiclass, one probability per class of the model card (a class the training rows lacked is a
column of zeros); regression, the value.
"""

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from unified_ai.ml.scorer_files import CHUNK_CELLS, expit

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

BINARY = "binary_classification"
MULTICLASS = "multiclass_classification"
REGRESSION = "regression"
#: Rows x nodes up to which each row's decision at every node is computed at once and the trees
#: are then walked by one lookup per level (fastest for a request of a few rows); larger inputs
#: are walked level by level, touching only the nodes on each row's path.
ALL_NODES_CELLS = 100_000
#: Requests of up to this many rows are turned into a matrix in plain Python (faster than
#: numpy's per-call overhead for a few values).
PYTHON_ROWS = 8
#: Levels walked between checks that every tree has reached its leaf.
LEAF_CHECK_EVERY = 4


def model_outline(spec: dict[str, Any]) -> dict[str, Any]:
    """The model of `spec` in the format-2 form (a format-1 scorer is a binary classifier)."""
    model = dict(spec["model"])
    if spec["format"] == 1:
        model["outputs"] = 1
        model["link"] = "identity" if model["kind"] == "trees_mean" else "logistic"
        if model["kind"] == "trees_sum":
            model["baseline"] = [model["baseline"]]
    return model


def task_of(spec: dict[str, Any]) -> str:
    """The task a scorer answers for (format 1: binary)."""
    return BINARY if spec["format"] == 1 else str(spec["task"])


class ScorerPlan:
    """A checked scorer's spec and arrays, arranged for evaluation (see the module docstring)."""

    def __init__(self, spec: dict[str, Any], arrays: "dict[str, np.ndarray]"):
        import numpy as np

        self.task = task_of(spec)
        self.numeric: list[tuple[int, list[str], Any, Any, Any]] = []
        self.onehot: list[tuple[int, str, str, dict[str, int], list[str]]] = []
        width = 0
        for index, block in enumerate(spec["blocks"]):
            if block["kind"] == "numeric":
                fill, mean, scale = (arrays[f"b{index}_{p}"] for p in ("fill", "mean", "scale"))
                self.numeric.append((width, list(block["columns"]), fill, mean, scale))
                width += len(block["columns"])
                continue
            for column, fill, known in zip(
                block["columns"], block["fill"], block["categories"], strict=True
            ):
                lookup = {category: width + j for j, category in enumerate(known)}
                self.onehot.append((width, column, fill, lookup, list(known)))
                width += len(known)
        self.width = width
        # Per numeric column, Python floats: a request of a few rows is built without numpy.
        self.numeric_columns = [
            (start + j, name, float(fill[j]), float(mean[j]), float(scale[j]))
            for start, names, fill, mean, scale in self.numeric
            for j, name in enumerate(names)
        ]
        self.names = [n for _, n, *_ in self.numeric_columns] + [c for _, c, *_ in self.onehot]
        model = model_outline(spec)
        self.kind, self.link = model["kind"], model["link"]
        self.outputs = int(model["outputs"])
        self.classes = int(spec.get("classes") or 0)
        self.class_columns = np.asarray(spec.get("class_columns") or [], dtype="int64")
        if self.kind == "linear":
            coef = arrays["coef"]
            self.coef = coef if self.outputs == 1 else coef.reshape(self.outputs, width).T
            self.intercept = arrays["intercept"]
            return
        self.float32 = bool(model["float32"])
        self.scale = float(model["scale"])
        self.baseline = np.asarray(model.get("baseline") or [0.0], dtype="float64")
        self.depth = int(model["depth"])
        self._trees(arrays)

    def _trees(self, a: "dict[str, np.ndarray]") -> None:
        """Node arrays whose leaves are their own children: a walk may take extra steps."""
        import numpy as np

        leaf = a["is_leaf"]
        here = np.arange(len(leaf), dtype="int64")
        self.roots = a["roots"]
        self.is_leaf = leaf
        self.feature = a["feature"]
        self.threshold = a["threshold"]
        self.left = np.where(leaf, here, a["left"])
        self.right = np.where(leaf, here, a["right"])
        self.missing_right = ~a["missing_left"]
        # children[2 * node + goes_right]: one lookup per level.
        self.children = np.stack([self.left, self.right], axis=1).ravel()
        width = self.outputs if self.kind == "trees_mean" else 1
        self.value = a["value"] if width == 1 else a["value"].reshape(len(leaf), width)

    # -- inputs ----------------------------------------------------------------------------

    def design_from_frame(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """The model's input matrix for the rows of a frame of model inputs."""
        import numpy as np
        import pandas as pd

        matrix = np.zeros((len(inputs), self.width), dtype="float64")
        for start, columns, fill, mean, scale in self.numeric:
            values = inputs[columns].to_numpy(dtype="float64", copy=True)
            matrix[:, start : start + len(columns)] = _scaled(values, fill, mean, scale)
        for start, column, fill, lookup, known in self.onehot:
            raw = inputs[column]
            if pd.api.types.infer_dtype(raw, skipna=True) == "string":
                # Text and missing values (model inputs): each distinct text looked up once.
                codes, distinct = pd.factorize(raw, use_na_sentinel=True)
                table = [lookup.get(text, -1) for text in distinct]
                table.append(lookup.get(fill, -1))  # a missing value's code is -1: the fill
                found = np.asarray(table, dtype="int64")[codes]
                hit = np.flatnonzero(found >= 0)  # an unknown category: all zeros, as sklearn's
                matrix[hit, found[hit]] = 1.0
                continue
            text = raw.where(raw.notna(), fill)
            if pd.api.types.infer_dtype(text, skipna=False) != "string":
                text = text.astype(str)
            codes = pd.Categorical(text, categories=known).codes
            hit = np.flatnonzero(codes >= 0)
            matrix[hit, start + codes[hit]] = 1.0
        return matrix

    def design_from_columns(self, columns: "Mapping[str, Sequence[Any] | np.ndarray]") -> Any:
        """The same matrix from columns by name: numbers (or None), categories as text (or None).

        Raises:
            ValueError: a column is missing or the columns differ in length.
        """
        import numpy as np

        rows = _row_count(columns, self.names)
        if rows <= PYTHON_ROWS:
            return self._design_few(columns, rows)
        matrix = np.zeros((rows, self.width), dtype="float64")
        for start, names, fill, mean, scale in self.numeric:
            values = np.array([_column(columns, n) for n in names], dtype="float64").T
            matrix[:, start : start + len(names)] = _scaled(values, fill, mean, scale)
        for _, column, fill, lookup, _ in self.onehot:
            # -1: an unknown category, all zeros (as sklearn's encoder leaves it).
            found = np.array(
                [
                    lookup.get(v if type(v) is str else _category(v, fill), -1)
                    for v in _column(columns, column)
                ],
                dtype="int64",
            )
            hit = np.flatnonzero(found >= 0)
            matrix[hit, found[hit]] = 1.0
        return matrix

    def _design_few(self, columns: Mapping[str, Any], rows: int) -> "np.ndarray":
        """The matrix of a few rows, built in Python.

        The same IEEE operations as `_scaled` (missing → fill, minus the mean, divided by the
        scale), so the same numbers as the numpy path.
        """
        import numpy as np

        width = self.width
        flat = [0.0] * (rows * width)
        for row in range(rows):
            at = row * width
            for position, name, fill, mean, scale in self.numeric_columns:
                given = columns[name][row]
                number = fill if given is None else float(given)
                if number != number:
                    number = fill
                flat[at + position] = (number - mean) / scale
            for _, column, text, lookup, _ in self.onehot:
                given = columns[column][row]
                if not isinstance(given, str):
                    given = _category(given, text)
                found = lookup.get(given)
                if found is not None:
                    flat[at + found] = 1.0
        return np.array(flat, dtype="float64").reshape(rows, width)

    # -- model -----------------------------------------------------------------------------

    def score(self, matrix: "np.ndarray") -> "np.ndarray":
        """The answer in the task's shape for the rows of a design matrix."""
        import numpy as np

        out = self.model_output(matrix)
        if self.task != MULTICLASS:
            return out
        if out.ndim == 1:  # two classes from one score: P(second class)
            out = np.stack([1.0 - out, out], axis=1)
        answer = np.zeros((len(matrix), self.classes), dtype="float64")
        answer[:, self.class_columns] = out
        return answer

    def model_output(self, matrix: "np.ndarray") -> "np.ndarray":
        """The model's own probabilities (or values): one column per class the model knows."""
        import numpy as np

        if self.kind == "trees_mean":
            return self.value[self.leaves(matrix)].mean(axis=1)
        raw = self.raw(matrix)
        if self.link == "logistic":
            # `expit` without its error-state context (a few microseconds) unless exp overflows.
            if len(raw) and raw.min() > -700.0:
                return 1.0 / (1.0 + np.exp(-raw))
            return expit(raw)
        if self.link == "softmax":
            # As sklearn's softmax: subtract the row maximum, exponentiate, normalise.
            shifted = raw - raw.max(axis=1, keepdims=True)
            np.exp(shifted, out=shifted)
            shifted /= shifted.sum(axis=1, keepdims=True)
            return shifted
        return raw

    def raw(self, matrix: "np.ndarray") -> "np.ndarray":
        """Raw scores before the link: (rows,) for one output, else (rows, outputs)."""
        import numpy as np

        if self.kind == "linear":
            # Infinite inputs can give NaN (inf - inf): callers refuse non-finite scores.
            # Products summed per row (not a BLAS product): a row's score does not depend on
            # the other rows of its batch, so one row alone scores as it does in a batch.
            if not np.isfinite(matrix).all():
                with np.errstate(invalid="ignore", over="ignore"):
                    return self._linear(matrix)
            return self._linear(matrix)
        leaves = self.value[self.leaves(matrix)]
        if self.outputs == 1:
            return float(self.baseline[0]) + self.scale * leaves.sum(axis=1)
        by_output = leaves.reshape(len(matrix), -1, self.outputs).sum(axis=1)
        return self.baseline + self.scale * by_output

    def _linear(self, matrix: "np.ndarray") -> "np.ndarray":
        if self.outputs == 1:
            return (matrix * self.coef).sum(axis=1) + float(self.intercept[0])
        return (matrix[:, :, None] * self.coef).sum(axis=1) + self.intercept

    def leaves(self, matrix: "np.ndarray") -> "np.ndarray":
        """The leaf each tree sends each row to: shape (rows, trees)."""
        import numpy as np

        rows = matrix.astype(np.float32).astype(np.float64) if self.float32 else matrix
        trees = len(self.roots)
        if len(rows) * len(self.is_leaf) <= ALL_NODES_CELLS:
            return self._leaves_all_nodes(rows)
        out = np.empty((len(rows), trees), dtype="int64")
        step = max(1, CHUNK_CELLS // max(1, trees))
        for start in range(0, len(rows), step):
            out[start : start + step] = self._leaves_by_level(rows[start : start + step])
        return out

    def _leaves_all_nodes(self, rows: "np.ndarray") -> "np.ndarray":
        """Each row's way out of every node at once, then one lookup per level."""
        import numpy as np

        if len(rows) == 1:
            row = rows[0]
            values = row.take(self.feature)
            right = values > self.threshold
            if np.isnan(row).any():
                missing = np.isnan(values)
                right[missing] = self.missing_right[missing]
            step = np.where(right, self.right, self.left)
            node = self.roots
            for level in range(self.depth):
                if level and not level % LEAF_CHECK_EVERY and self.is_leaf[node].all():
                    break
                node = step[node]
            return node[None, :]
        values = rows[:, self.feature]
        right = values > self.threshold
        missing = np.isnan(values)
        if missing.any():
            right[missing] = np.broadcast_to(self.missing_right, right.shape)[missing]
        following = np.where(right, self.right, self.left)
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots)))
        for level in range(self.depth):
            if level and not level % LEAF_CHECK_EVERY and self.is_leaf[node].all():
                break
            node = np.take_along_axis(following, node, axis=1)
        return node

    def _leaves_by_level(self, rows: "np.ndarray") -> "np.ndarray":
        """Walk every tree one level at a time, touching only the nodes on each row's path."""
        import numpy as np

        flat = np.ascontiguousarray(rows).ravel()
        base = (np.arange(len(rows), dtype="int64") * rows.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots))).copy()
        nan = bool(np.isnan(flat).any())
        for level in range(self.depth):
            if level and not level % LEAF_CHECK_EVERY and self.is_leaf[node].all():
                break
            value = flat[base + self.feature[node]]
            right = value > self.threshold[node]
            if nan:
                missing = np.isnan(value)
                right[missing] = self.missing_right[node[missing]]
            node = self.children[2 * node + right]
        return node


def _scaled(values: "np.ndarray", fill: Any, mean: Any, scale: Any) -> "np.ndarray":
    """Impute, centre and scale numeric inputs in place (one sequence for every path)."""
    import numpy as np

    missing = np.isnan(values)
    if missing.any():
        values[missing] = np.broadcast_to(fill, values.shape)[missing]
    values -= mean
    values /= scale
    return values


def _column(columns: Mapping[str, Any], name: str) -> Any:
    try:
        return columns[name]
    except KeyError:
        raise ValueError(f"input column {name!r} is missing") from None


def _category(value: Any, fill: str) -> str:
    """A categorical input as the encoder sees it: text, or the fill when missing."""
    if isinstance(value, str):
        return value
    return fill if _missing(value) else str(value)


def _row_count(columns: Mapping[str, Any], names: list[str]) -> int:
    try:
        lengths = {len(columns[name]) for name in names}
    except KeyError:
        lengths = {len(_column(columns, name)) for name in names}  # names the missing one
    if len(lengths) > 1:
        raise ValueError(f"input columns differ in length ({sorted(lengths)})")
    return lengths.pop() if lengths else 0


def _missing(value: Any) -> bool:
    """None, NaN or a pandas NA: a missing category (imputed like the DataFrame path)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pandas.NA has no truth value
        return True
