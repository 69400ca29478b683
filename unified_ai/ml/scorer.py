"""A fitted pipeline compiled to plain arrays, so scoring a batch needs numpy and nothing else.

Loading a skops model imports skops and scikit-learn (about 1.5 s in a fresh process), which is
most of the cost of scoring a small production batch. The pipelines `unified_ai.ml.training`
builds are simple enough to evaluate with numpy: imputation, scaling and one-hot encoding,
then a logistic regression or a tree ensemble. `compile_pipeline` (in `scorer_compile`, the
only part that imports scikit-learn) turns one into a
`CompiledScorer` and keeps it only if it reproduces the pipeline's `predict_proba` on probe
rows (to `TOLERANCE`); anything it does not recognise (a custom training script's pipeline, a
native categorical split) is refused with the reason, and that model is scored by sklearn.

A compiled scorer is stored as files beside the skops file: `scorer.json` (the structure, names
and categories), `scorer.npz` (numeric arrays) and `scorer-probe.json` (the probe rows and the
probabilities the *pipeline* gave them when the model was stored). None can run code.
`CompiledScorer.from_files` refuses, in one line naming the version and the array:
an npz member that is not an expected array (extra, missing, another dtype or shape than
`scorer.json` implies), one whose decompressed size exceeds `MAX_ARRAY_BYTES` (or all of them
`MAX_SCORER_BYTES`; read from each member's header before anything is decompressed), a
non-finite statistic, coefficient, threshold or leaf, a zero scale, an out-of-range index, and a
scorer that does not reproduce the stored probe probabilities (to `TOLERANCE`): a scorer edited
apart from its pipeline is refused even in an unsigned store. A scorer stored before probe
outputs were kept raises `ScorerUnverified`; its model is then scored by the pipeline.

The stored form (file names, caps, `ScorerError`, `read_arrays`) is in `scorer_files`; this
module holds `CompiledScorer` (load, check, score) and needs numpy only.
"""

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unified_ai.ml.scorer_files import (
    CHUNK_CELLS,
    MAX_ARRAY_BYTES,
    MAX_PROBE_BYTES,
    MAX_SCORER_BYTES,
    PROBE_ROWS,
    SCORER_ARRAYS,
    SCORER_FORMAT,
    SCORER_JSON,
    SCORER_PROBE,
    SCORER_REFUSED,
    TOLERANCE,
    ScorerError,
    ScorerUnverified,
    agree_on_probe,
    array_layout,
    expit,
    json_safe,
    read_arrays,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CHUNK_CELLS",
    "MAX_ARRAY_BYTES",
    "MAX_PROBE_BYTES",
    "MAX_SCORER_BYTES",
    "PROBE_ROWS",
    "SCORER_ARRAYS",
    "SCORER_FORMAT",
    "SCORER_JSON",
    "SCORER_PROBE",
    "SCORER_REFUSED",
    "TOLERANCE",
    "CompiledScorer",
    "ScorerError",
    "ScorerUnverified",
    "check_scorer",
    "read_arrays",
]


@dataclass(frozen=True)
class CompiledScorer:
    """Preprocessing blocks and a model as arrays; `predict_proba` needs numpy only.

    Attributes:
        spec: JSON-safe structure: the input blocks (columns, imputation, scaling, one-hot
            categories) and the model kind with its aggregation.
        arrays: Numeric arrays by name (scaler statistics, coefficients, tree nodes).
        probe: `{"rows": {column: [values]}, "expected": [probabilities]}`: rows and what the
            pipeline gave them when it was compiled (None for a scorer stored without them).
    """

    spec: dict[str, Any]
    arrays: dict[str, "np.ndarray"]
    probe: dict[str, Any] | None = None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Per one-hot encoded input column, the categories the encoder knows (as text)."""
        return {
            column: list(known)
            for block in self.spec["blocks"]
            if block["kind"] == "onehot"
            for column, known in zip(block["columns"], block["categories"], strict=True)
        }

    @property
    def columns(self) -> list[str]:
        """The input columns the scorer reads, in block order."""
        return [column for block in self.spec["blocks"] for column in block["columns"]]

    def predict_proba(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """Probability of the positive class for each row of `inputs` (model inputs)."""
        matrix = self.design_matrix(inputs)
        if self.spec["model"]["kind"] == "trees_mean":
            return self._tree_values(self._tree_rows(matrix)).mean(axis=1)
        return expit(self.raw_score(matrix))

    def raw_score(self, matrix: "np.ndarray") -> "np.ndarray":
        """Log-odds of the positive class (linear and boosted models) from the input matrix."""
        import numpy as np

        model = self.spec["model"]
        if model["kind"] == "linear":
            # Infinite inputs can give NaN (inf - inf): callers refuse non-finite scores.
            with np.errstate(invalid="ignore", over="ignore"):
                return matrix @ self.arrays["coef"] + float(self.arrays["intercept"][0])
        leaves = self._tree_values(self._tree_rows(matrix))
        return float(model["baseline"]) + float(model["scale"]) * leaves.sum(axis=1)

    def _tree_rows(self, matrix: "np.ndarray") -> "np.ndarray":
        """The matrix as the trees compare it: sklearn's own trees see float32 values."""
        import numpy as np

        if self.spec["model"]["float32"]:
            return matrix.astype(np.float32).astype(np.float64)
        return matrix

    def design_matrix(self, inputs: "pd.DataFrame") -> "np.ndarray":
        """The model's input matrix: what the pipeline's preprocessing step produces."""
        import numpy as np
        import pandas as pd

        parts = []
        for index, block in enumerate(self.spec["blocks"]):
            if block["kind"] == "numeric":
                values = inputs[block["columns"]].to_numpy(dtype="float64", copy=True)
                fill = self.arrays[f"b{index}_fill"]
                missing = np.isnan(values)
                if missing.any():
                    values[missing] = np.broadcast_to(fill, values.shape)[missing]
                values -= self.arrays[f"b{index}_mean"]
                values /= self.arrays[f"b{index}_scale"]
                parts.append(values)
                continue
            for column, fill, categories in zip(
                block["columns"], block["fill"], block["categories"], strict=True
            ):
                raw = inputs[column]
                text = raw.where(raw.notna(), fill)
                if pd.api.types.infer_dtype(text, skipna=False) != "string":
                    text = text.astype(str)
                codes = pd.Categorical(text, categories=categories).codes
                encoded = np.zeros((len(inputs), len(categories)), dtype="float64")
                known = codes >= 0  # an unknown category encodes as all zeros, like sklearn's
                encoded[np.flatnonzero(known), codes[known]] = 1.0
                parts.append(encoded)
        return np.hstack(parts) if parts else np.zeros((len(inputs), 0))

    def _tree_values(self, rows: "np.ndarray") -> "np.ndarray":
        """The leaf value each tree gives each row: shape (rows, trees)."""
        import numpy as np

        a = self.arrays
        roots = a["roots"]
        out = np.empty((len(rows), len(roots)), dtype="float64")
        step = max(1, CHUNK_CELLS // max(1, len(roots)))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            node = np.broadcast_to(roots, (len(chunk), len(roots))).copy()
            line = np.arange(len(chunk))[:, None]
            for _ in range(int(self.spec["model"]["depth"])):
                leaf = a["is_leaf"][node]
                if leaf.all():
                    break
                value = chunk[line, a["feature"][node]]
                left = np.where(
                    np.isnan(value), a["missing_left"][node], value <= a["threshold"][node]
                )
                node = np.where(leaf, node, np.where(left, a["left"][node], a["right"][node]))
            out[start : start + step] = a["value"][node]
        return out

    def to_files(self) -> dict[str, bytes]:
        """The stored files."""
        import numpy as np

        buffer = io.BytesIO()
        # The arrays are numeric; the reader never unpickles (`read_arrays`).
        np.savez(buffer, allow_pickle=False, **self.arrays)
        spec = json.dumps(self.spec, sort_keys=True, allow_nan=False).encode()
        files = {SCORER_JSON: spec, SCORER_ARRAYS: buffer.getvalue()}
        if self.probe is not None:
            # NaN (a missing probe value) is written as null: the file is strict JSON.
            files[SCORER_PROBE] = json.dumps(json_safe(self.probe), sort_keys=True).encode()
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes], *, where: str) -> "CompiledScorer":
        """Read and check stored scorer files (see the module docstring for what is refused).

        Raises:
            ScorerUnverified: the files are sound but carry no probe outputs.
            ScorerError: the files are malformed, of another format, inconsistent, or disagree
                with the stored probe outputs.
        """
        try:
            spec = json.loads(files[SCORER_JSON])
        except Exception as exc:  # not JSON, missing
            raise ScorerError(f"{where}: compiled scorer is unreadable ({exc!r})") from None
        if SCORER_ARRAYS not in files:
            raise ScorerError(f"{where}: compiled scorer is unreadable ({SCORER_ARRAYS} missing)")
        layout = array_layout(spec, where)
        arrays = read_arrays(files[SCORER_ARRAYS], layout, where=where)
        probe = None
        if SCORER_PROBE in files:
            data = files[SCORER_PROBE]
            if len(data) > MAX_PROBE_BYTES:
                raise ScorerError(f"{where}: compiled scorer probe file is larger than allowed")
            try:
                probe = json.loads(data)
            except ValueError as exc:
                raise ScorerError(f"{where}: compiled scorer probe is unreadable ({exc})") from None
        scorer = cls(spec=spec, arrays=arrays, probe=probe)
        check_scorer(scorer, where)
        if probe is None:
            raise ScorerUnverified(
                f"{where}: compiled scorer has no stored probe outputs (stored before they were "
                "kept), so it cannot be checked against its pipeline; scored by the pipeline"
            )
        scorer.check_probe(where)
        return scorer

    def probe_inputs(self, where: str = "compiled scorer") -> "pd.DataFrame":
        """The stored probe rows as a frame of model inputs (missing values as NaN)."""
        import numpy as np
        import pandas as pd

        probe = self.probe
        bad = ScorerError(f"{where}: compiled scorer probe is malformed")
        if not isinstance(probe, dict) or not isinstance(probe.get("rows"), dict):
            raise bad
        rows, expected = probe["rows"], probe.get("expected")
        if (
            sorted(rows) != sorted(self.columns)
            or not isinstance(expected, list)
            or not expected
            or any(not isinstance(v, list) or len(v) != len(expected) for v in rows.values())
        ):
            raise bad
        numeric = {c for b in self.spec["blocks"] if b["kind"] == "numeric" for c in b["columns"]}
        data: dict[str, Any] = {}
        try:
            for column in self.columns:
                values = rows[column]
                if column in numeric:
                    data[column] = np.array(
                        [np.nan if v is None else float(v) for v in values], dtype="float64"
                    )
                elif all(v is None or isinstance(v, str) for v in values):
                    data[column] = np.array(
                        [np.nan if v is None else v for v in values], dtype=object
                    )
                else:
                    raise bad
        except (TypeError, ValueError):
            raise bad from None
        return pd.DataFrame(data, columns=self.columns)

    def probe_expected(self, where: str = "compiled scorer") -> "np.ndarray":
        """The probabilities the pipeline gave the probe rows when the model was stored."""
        import numpy as np

        try:
            expected = np.asarray(self.probe["expected"], dtype="float64")  # type: ignore[index]
        except (TypeError, ValueError, KeyError):
            raise ScorerError(f"{where}: compiled scorer probe is malformed") from None
        if expected.ndim != 1 or not np.isfinite(expected).all():
            raise ScorerError(f"{where}: compiled scorer probe holds non-finite probabilities")
        return expected

    def check_probe(self, where: str) -> None:
        """Refuse a scorer that does not reproduce the pipeline's stored probe probabilities."""
        inputs, expected = self.probe_inputs(where), self.probe_expected(where)
        if len(inputs) != len(expected):
            raise ScorerError(f"{where}: compiled scorer probe is malformed")
        agree_on_probe(self.predict_proba(inputs), expected, where, "compiled scorer")

    def check_pipeline(self, pipeline: Any, where: str) -> None:
        """Refuse a pipeline that does not give the stored probe rows their stored probabilities.

        With `check_probe`, the scorer and the pipeline of one stored model agree on the probe
        rows: neither can be edited apart from the other.
        """
        if self.probe is None:
            return
        inputs, expected = self.probe_inputs(where), self.probe_expected(where)
        agree_on_probe(pipeline.predict_proba(inputs)[:, 1], expected, where, "model pipeline")


def check_scorer(scorer: CompiledScorer, where: str) -> None:
    """Refuse a scorer whose structure, arrays or values are unsound (see the module docstring).

    Every index is checked before it is used, so scoring never reads out of range or loops.
    """
    spec, a = scorer.spec, scorer.arrays
    _check_arrays(a, array_layout(spec, where), where)
    try:
        width = _check_blocks(spec, a, where)
        model = spec["model"]
        if model["kind"] == "linear":
            _finite(a, "coef", where)
            _finite(a, "intercept", where)
            return
        _check_trees(model, a, width, where)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _bad(where, f"missing or malformed {exc}") from None


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
    for key in ("scale", *(("baseline",) if kind == "trees_sum" else ())):
        number = model[key]
        if type(number) not in (int, float) or not np.isfinite(number):
            raise _bad(where, f"model {key} {number!r} is not a finite number")
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
