"""A fitted pipeline compiled to plain arrays, so scoring a batch needs numpy and nothing else.

Loading a skops model imports skops and scikit-learn (about 1.5 s in a fresh process), which is
most of the cost of scoring a small production batch. The pipelines `unified_ai.ml.training`
builds are simple enough to evaluate with numpy: imputation, scaling and one-hot encoding,
then a logistic regression or a tree ensemble. `compile_pipeline` turns one into a
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
"""

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: Version of the stored layout; a scorer of another format is not used (sklearn scores).
SCORER_FORMAT = 1
SCORER_JSON = "scorer.json"
SCORER_ARRAYS = "scorer.npz"
#: The probe rows and the pipeline's probabilities for them, stored at save time.
SCORER_PROBE = "scorer-probe.json"
#: Stored instead of the two files above: why the pipeline has no compiled form.
SCORER_REFUSED = "scorer-refused.txt"
#: Largest difference from the pipeline's probabilities a compiled scorer may show on the probe.
TOLERANCE = 1e-9
#: Row x tree cells evaluated at once: bounds the scorer's scratch memory (8 arrays of this
#: many 8-byte cells, about 32 MB).
CHUNK_CELLS = 500_000
#: Probe rows drawn around the training statistics to check a compiled scorer.
PROBE_ROWS = 512

#: Largest decompressed size of one stored scorer array, and of all of them together. A forest
#: of 100 deep trees on 100,000 rows needs about 50 MB per array; a pipeline whose arrays would
#: be larger is scored by sklearn (its compiled form is refused when it is stored).
MAX_ARRAY_BYTES = 128 * 2**20
MAX_SCORER_BYTES = 512 * 2**20
#: Largest stored probe file (the rows are generated from the training statistics).
MAX_PROBE_BYTES = 16 * 2**20

_TREE_ARRAYS = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value")
#: The dtype of every stored array, by name (numeric blocks' `b<i>_fill|mean|scale` are float64).
_DTYPES = {
    "coef": "float64",
    "intercept": "float64",
    "feature": "int64",
    "threshold": "float64",
    "left": "int64",
    "right": "int64",
    "missing_left": "bool",
    "is_leaf": "bool",
    "value": "float64",
    "roots": "int64",
}


class ScorerError(ValueError):
    """A pipeline cannot be compiled, or stored scorer files are malformed."""


class ScorerUnverified(ScorerError):
    """Stored scorer files carry no probe outputs to check them against.

    Scorers stored before probe outputs were kept: their model is scored by its pipeline.
    """


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
        return _expit(self.raw_score(matrix))

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
        np.savez(buffer, **self.arrays)
        spec = json.dumps(self.spec, sort_keys=True, allow_nan=False).encode()
        files = {SCORER_JSON: spec, SCORER_ARRAYS: buffer.getvalue()}
        if self.probe is not None:
            # NaN (a missing probe value) is written as null: the file is strict JSON.
            files[SCORER_PROBE] = json.dumps(_json_safe(self.probe), sort_keys=True).encode()
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
        layout = _layout(spec, where)
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
        _check(scorer, where)
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
        _agrees(self.predict_proba(inputs), expected, where, "compiled scorer")

    def check_pipeline(self, pipeline: Any, where: str) -> None:
        """Refuse a pipeline that does not give the stored probe rows their stored probabilities.

        With `check_probe`, the scorer and the pipeline of one stored model agree on the probe
        rows: neither can be edited apart from the other.
        """
        if self.probe is None:
            return
        inputs, expected = self.probe_inputs(where), self.probe_expected(where)
        _agrees(pipeline.predict_proba(inputs)[:, 1], expected, where, "model pipeline")


def _agrees(got: "np.ndarray", expected: "np.ndarray", where: str, what: str) -> None:
    import numpy as np

    got = np.asarray(got, dtype="float64")
    if got.shape != expected.shape or not np.isfinite(got).all():
        raise ScorerError(f"{where}: {what} gives non-finite scores on the stored probe rows")
    difference = float(np.abs(got - expected).max())
    if not difference <= TOLERANCE:
        raise ScorerError(
            f"{where}: {what} differs from the probabilities stored for its probe rows by "
            f"{difference:.3g} (more than {TOLERANCE:g}): the scorer and the pipeline of this "
            "model disagree"
        )


def _json_safe(value: Any) -> Any:
    """NaN floats → None, recursively (strict JSON)."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _layout(spec: Any, where: str) -> "dict[str, tuple[Any, tuple[int, ...] | None]]":
    """Every array `spec` implies: name → (dtype, shape); None is a 1-D array of any length."""
    import numpy as np

    def bad(reason: str) -> ScorerError:
        return ScorerError(f"{where}: compiled scorer is inconsistent ({reason})")

    if not isinstance(spec, dict) or spec.get("format") != SCORER_FORMAT:
        raise bad(f"format {spec.get('format') if isinstance(spec, dict) else None!r}")
    layout: dict[str, tuple[Any, tuple[int, ...] | None]] = {}
    width = 0
    try:
        for index, block in enumerate(spec["blocks"]):
            columns = block["columns"]
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                raise bad(f"block {index} names a column that is not a string")
            if block["kind"] == "numeric":
                for part in ("fill", "mean", "scale"):
                    layout[f"b{index}_{part}"] = (np.dtype("float64"), (len(columns),))
                width += len(columns)
            elif block["kind"] == "onehot":
                categories = block["categories"]
                if not (len(block["fill"]) == len(categories) == len(columns)):
                    raise bad(f"block {index} categories do not match its columns")
                width += sum(len(c) for c in categories)
            else:
                raise bad(f"block {index} kind {block['kind']!r}")
        kind = spec["model"]["kind"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise bad(f"missing or malformed {exc}") from None
    if kind == "linear":
        layout["coef"] = (np.dtype("float64"), (width,))
        layout["intercept"] = (np.dtype("float64"), (1,))
    elif kind in {"trees_mean", "trees_sum"}:
        for name in (*_TREE_ARRAYS, "roots"):
            layout[name] = (np.dtype(_DTYPES[name]), None)
    else:
        raise bad(f"model kind {kind!r}")
    return layout


def read_arrays(
    data: bytes, layout: "dict[str, tuple[Any, tuple[int, ...] | None]]", *, where: str
) -> "dict[str, np.ndarray]":
    """Decode a stored `scorer.npz`, refusing any member `layout` does not name exactly.

    Each member's `.npy` header (dtype, shape) is read and checked against `layout` and the
    size caps before any of its data is decompressed: a small file that would expand to
    gigabytes is refused without allocating them. Object arrays are never unpickled.
    """
    import zipfile

    import numpy as np

    def refused(name: str, reason: str) -> ScorerError:
        return ScorerError(f"{where}: compiled scorer array {name!r} {reason}")

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # not a zip, truncated
        raise ScorerError(f"{where}: compiled scorer is unreadable ({exc})") from None
    with archive:
        names = [m.filename[:-4] if m.filename.endswith(".npy") else m.filename for m in members]
        extra = sorted(set(names) - set(layout))
        if extra:
            raise refused(extra[0], "is not part of this scorer (an extra array)")
        if len(names) != len(set(names)):
            repeated = sorted(n for n in set(names) if names.count(n) > 1)
            raise refused(repeated[0], "is stored more than once")
        missing = sorted(set(layout) - set(names))
        if missing:
            raise refused(missing[0], "is missing")
        headers = {}
        total = 0
        for member, name in zip(members, names, strict=True):
            dtype, shape = layout[name]
            try:
                with archive.open(member) as handle:
                    found_shape, fortran, found_dtype = _npy_header(handle)
            except Exception as exc:  # a malformed or unreadable header
                raise refused(name, f"is unreadable ({exc})") from None
            if found_dtype.hasobject:
                raise refused(name, "is an object array; refusing to unpickle it")
            if found_dtype != dtype:
                raise refused(name, f"has dtype {found_dtype}, expected {dtype}")
            if len(found_shape) != 1 or (shape is not None and tuple(found_shape) != shape):
                expected = "a 1-D array" if shape is None else f"shape {shape}"
                raise refused(name, f"has shape {tuple(found_shape)}, expected {expected}")
            size = int(found_shape[0]) * dtype.itemsize
            if size > MAX_ARRAY_BYTES:
                raise refused(
                    name, f"would decompress to {size:,} bytes (more than {MAX_ARRAY_BYTES:,})"
                )
            total += size
            if total > MAX_SCORER_BYTES:
                raise refused(
                    name, f"brings the arrays to {total:,} bytes (more than {MAX_SCORER_BYTES:,})"
                )
            headers[name] = (member, found_shape, fortran)
        lengths = {shape[0] for name, (_, shape, _) in headers.items() if name in _TREE_ARRAYS}
        if len(lengths) > 1:
            raise ScorerError(f"{where}: compiled scorer is inconsistent (tree arrays differ)")
        arrays = {}
        for name, (member, found_shape, fortran) in headers.items():
            dtype = layout[name][0]
            size = int(found_shape[0]) * dtype.itemsize
            try:
                with archive.open(member) as handle:
                    _npy_header(handle)
                    raw = handle.read(size)  # never more than the checked size
            except Exception as exc:  # bad compression, a CRC mismatch
                raise refused(name, f"is unreadable ({exc})") from None
            if len(raw) != size:
                raise refused(name, f"is truncated ({len(raw):,} of {size:,} bytes)")
            arrays[name] = np.frombuffer(raw, dtype=dtype).reshape(
                tuple(found_shape), order="F" if fortran else "C"
            )
    return arrays


def _npy_header(handle: Any) -> "tuple[tuple[int, ...], bool, np.dtype]":
    """(shape, fortran order, dtype) from the header of an `.npy` stream, nothing more read."""
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise ValueError(f"npy format version {version} is not supported")


def _expit(raw: "np.ndarray") -> "np.ndarray":
    import numpy as np

    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-raw))


def _check(scorer: CompiledScorer, where: str) -> None:
    """Refuse a scorer whose structure, arrays or values are unsound (see the module docstring).

    Every index is checked before it is used, so scoring never reads out of range or loops.
    """
    import numpy as np

    def bad(reason: str) -> ScorerError:
        return ScorerError(f"{where}: compiled scorer is inconsistent ({reason})")

    def refused(name: str, reason: str) -> ScorerError:
        return ScorerError(f"{where}: compiled scorer array {name!r} {reason}")

    spec, a = scorer.spec, scorer.arrays
    layout = _layout(spec, where)
    extra = sorted(set(a) - set(layout))
    if extra:
        raise refused(extra[0], "is not part of this scorer (an extra array)")
    total = 0
    for name, (dtype, shape) in layout.items():
        if name not in a:
            raise refused(name, "is missing")
        array = a[name]
        if not isinstance(array, np.ndarray) or array.dtype != dtype:
            raise refused(name, f"has dtype {getattr(array, 'dtype', None)}, expected {dtype}")
        if array.ndim != 1 or (shape is not None and array.shape != shape):
            expected = "a 1-D array" if shape is None else f"shape {shape}"
            raise refused(name, f"has shape {array.shape}, expected {expected}")
        if array.nbytes > MAX_ARRAY_BYTES:
            raise refused(name, f"holds {array.nbytes:,} bytes (more than {MAX_ARRAY_BYTES:,})")
        total += array.nbytes
    if total > MAX_SCORER_BYTES:
        raise bad(f"its arrays hold {total:,} bytes (more than {MAX_SCORER_BYTES:,})")

    def finite(name: str, *, nan_ok: bool = False) -> None:
        values = a[name]
        wrong = np.isinf(values) if nan_ok else ~np.isfinite(values)
        if wrong.any():
            raise refused(name, f"holds a non-finite value ({values[wrong][0]!r})")

    width = 0
    try:
        for index, block in enumerate(spec["blocks"]):
            if block["kind"] == "numeric":
                # No imputer leaves the fill NaN (missing values reach the model as NaN).
                finite(f"b{index}_fill", nan_ok=True)
                finite(f"b{index}_mean")
                finite(f"b{index}_scale")
                if (a[f"b{index}_scale"] == 0).any():
                    raise refused(f"b{index}_scale", "holds a zero scale (a division by zero)")
                width += len(block["columns"])
                continue
            for known, fill in zip(block["categories"], block["fill"], strict=True):
                if not isinstance(known, list) or not all(
                    isinstance(v, str) for v in [*known, fill]
                ):
                    raise bad(f"block {index} has a category or fill that is not a string")
            width += sum(len(c) for c in block["categories"])
        model = spec["model"]
        kind = model["kind"]
        if kind == "linear":
            finite("coef")
            finite("intercept")
            return
        nodes = len(a["is_leaf"])
        if not nodes:
            raise bad("the trees have no nodes")
        finite("threshold")
        finite("value")
        for key in ("scale", *(("baseline",) if kind == "trees_sum" else ())):
            number = model[key]
            if type(number) not in (int, float) or not np.isfinite(number):
                raise bad(f"model {key} {number!r} is not a finite number")
        if not model["scale"] > 0:
            raise bad(f"model scale {model['scale']!r} is not positive")
        if not isinstance(model["float32"], bool):
            raise bad("model float32 is not true or false")
        inner = ~a["is_leaf"]
        here = np.arange(nodes)
        # Children after their parent: every walk ends within `depth` steps, inside the arrays.
        for child in ("left", "right"):
            target = a[child][inner]
            if (target <= here[inner]).any() or (target >= nodes).any():
                raise bad(f"a {child} child index is out of order or out of range")
        if ((a["feature"] < 0) | (a["feature"] >= max(width, 1))).any():
            raise bad("a split names a column the inputs do not have")
        if ((a["roots"] < 0) | (a["roots"] >= nodes)).any() or not len(a["roots"]):
            raise bad("a tree root is out of range")
        if type(model["depth"]) is not int or not 0 <= model["depth"] <= nodes:
            raise bad("depth")
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise bad(f"missing or malformed {exc}") from None


def compile_pipeline(pipeline: Any) -> CompiledScorer:
    """Compile a fitted pipeline and check it against the pipeline on probe rows.

    Raises:
        ScorerError: naming what is not supported, or the difference the check found.
    """
    import numpy as np
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise ScorerError(f"not a preprocess + model pipeline: {type(pipeline).__name__}")
    blocks, arrays, width = _blocks(pipeline.steps[0][1])
    model, model_arrays = _model(pipeline.steps[1][1], width)
    scorer = CompiledScorer(
        spec={"format": SCORER_FORMAT, "blocks": blocks, "model": model},
        arrays={**arrays, **model_arrays},
    )
    probe = probe_rows(scorer)
    expected = pipeline.predict_proba(probe)[:, 1]
    # Large batches feed this matrix to the fitted model itself: it must be the same matrix.
    matrix = pipeline.steps[0][1].transform(probe)
    design = scorer.design_matrix(probe)
    if matrix.shape != (len(probe), width) or not np.allclose(
        design, matrix, rtol=0, atol=TOLERANCE
    ):
        raise ScorerError("compiled preprocessing differs from the pipeline's")
    if model["kind"] == "trees_sum":
        # The ensemble's constant start (prior log-odds) is read off its own decision function;
        # `_ensemble` left the baseline at 0, so `raw_score` is the trees' sum alone here.
        start = pipeline.decision_function(probe) - scorer.raw_score(design)
        if float(start.max() - start.min()) > TOLERANCE:
            raise ScorerError("the ensemble's starting prediction is not a constant")
        scorer.spec["model"]["baseline"] = float(start.mean())
    got = scorer.predict_proba(probe)
    difference = float(abs(got - expected).max())
    if not difference <= TOLERANCE:
        raise ScorerError(f"compiled scores differ from the pipeline's by {difference:.3g}")
    if not np.isfinite(expected).all():
        raise ScorerError("the pipeline gives non-finite scores on the probe rows")
    # Stored with the scorer: every load checks the scorer against what the pipeline said.
    rows = {
        column: [None if value is None or value != value else value for value in probe[column]]
        for column in probe.columns
    }
    scorer = CompiledScorer(
        spec=scorer.spec,
        arrays=scorer.arrays,
        probe={"rows": rows, "expected": [float(v) for v in expected]},
    )
    _check(scorer, "compiled scorer")
    return scorer


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
        fill = (
            np.full(n, np.nan)
            if imputer is None
            else np.asarray(imputer.statistics_, dtype="float64")
        )
        if imputer is not None and np.isnan(fill).any():
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
        arrays.update({f"b{index}_fill": fill, f"b{index}_mean": mean, f"b{index}_scale": scale})
        blocks.append({"kind": "numeric", "columns": columns})
        width += n
    return blocks, arrays, width


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def _model(model: Any, width: int) -> "tuple[dict[str, Any], dict[str, np.ndarray]]":
    import numpy as np
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    if len(getattr(model, "classes_", [])) != 2:
        raise ScorerError(f"{type(model).__name__} is not a binary classifier")
    if isinstance(model, LogisticRegression):
        coef = np.asarray(model.coef_, dtype="float64")
        if coef.shape != (1, width):
            raise ScorerError("logistic regression coefficients do not match the inputs")
        kind = {"kind": "linear"}
        return kind, {"coef": coef[0], "intercept": np.asarray(model.intercept_, dtype="float64")}
    if isinstance(model, HistGradientBoostingClassifier):
        if model.is_categorical_ is not None and np.asarray(model.is_categorical_).any():
            raise ScorerError("native categorical splits are not supported")
        trees = [_hist_tree(predictor) for [predictor] in model._predictors]
        return _ensemble(trees, kind="trees_sum", float32=False, scale=1.0)
    if isinstance(model, GradientBoostingClassifier):
        trees = [_sklearn_tree(estimator.tree_, positive=None) for [estimator] in model.estimators_]
        return _ensemble(trees, kind="trees_sum", float32=True, scale=float(model.learning_rate))
    if isinstance(model, (RandomForestClassifier, ExtraTreesClassifier)):
        trees = [_sklearn_tree(tree.tree_, positive=1) for tree in model.estimators_]
        return _ensemble(trees, kind="trees_mean", float32=True, scale=1.0)
    if isinstance(model, DecisionTreeClassifier):
        return _ensemble(
            [_sklearn_tree(model.tree_, positive=1)], kind="trees_mean", float32=True, scale=1.0
        )
    raise ScorerError(f"{type(model).__name__} has no compiled form")


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


def _sklearn_tree(tree: Any, *, positive: int | None) -> "dict[str, np.ndarray]":
    """A fitted `sklearn.tree._tree.Tree` as arrays.

    `positive` picks a class's fraction as the leaf value (classifiers); None takes the
    regression value (the stages of gradient boosting).
    """
    import numpy as np

    leaf = tree.children_left < 0
    if positive is None:
        value = tree.value[:, 0, 0].astype("float64")
    else:
        counts = tree.value[:, 0, :].astype("float64")
        total = counts.sum(axis=1)
        value = counts[:, positive] / np.where(total == 0, 1.0, total)
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
    trees: "list[dict[str, np.ndarray]]", *, kind: str, float32: bool, scale: float
) -> "tuple[dict[str, Any], dict[str, np.ndarray]]":
    """Trees concatenated into one set of node arrays, child indices made absolute."""
    import numpy as np

    if not trees:
        raise ScorerError("the ensemble has no trees")
    offsets = np.cumsum([0] + [len(t["is_leaf"]) for t in trees[:-1]])
    arrays = {}
    for name in _TREE_ARRAYS:
        parts = []
        for offset, tree in zip(offsets, trees, strict=True):
            part = tree[name]
            if name in {"left", "right"}:
                part = np.where(tree["is_leaf"], 0, part + offset)
            parts.append(part)
        arrays[name] = np.concatenate(parts)
    arrays["roots"] = offsets.astype("int64")
    depth = max(_depth(tree) for tree in trees)
    model = {"kind": kind, "float32": float32, "scale": scale, "depth": depth}
    if kind == "trees_sum":
        model["baseline"] = 0.0
    return model, arrays


def _depth(tree: "dict[str, np.ndarray]") -> int:
    """Longest root-to-leaf path, in steps."""
    depth = [0] * len(tree["is_leaf"])
    for node in range(len(depth)):  # parents come before their children
        if not tree["is_leaf"][node]:
            for child in (int(tree["left"][node]), int(tree["right"][node])):
                depth[child] = depth[node] + 1
    return max(depth)
