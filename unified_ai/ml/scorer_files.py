"""The stored form of a compiled scorer: its limits, errors and the checked reading of its arrays.

The lowest layer of `unified_ai.ml.scorer` (numpy only, imported inside functions): the file
names and caps, `ScorerError`, the array layout a `scorer.json` implies and `read_arrays`,
which refuses an npz member that is not an expected array before anything is decompressed.
"""

import io
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


#: Version of the stored layout written now. 1: binary classifiers only (one positive-class
#: score); 2: every task, the task and the exact size of every array recorded in `scorer.json`.
#: A scorer of a format not in `READABLE_FORMATS` is refused when it is read.
SCORER_FORMAT = 2
READABLE_FORMATS = (1, 2)
#: The tasks a format-2 scorer answers for (`unified_ai.projects.tasks` names).
SCORER_TASKS = ("binary_classification", "multiclass_classification", "regression")
#: How a model's raw outputs become its answer: the logistic function (binary scores), softmax
#: (several classes), or none (regression values, forests' mean class fractions).
LINKS = ("logistic", "softmax", "identity")
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

TREE_ARRAYS = ("feature", "threshold", "left", "right", "missing_left", "is_leaf", "value")
#: The dtype of every stored array, by name (numeric blocks' `b<i>_fill|mean|scale` are float64).
ARRAY_DTYPES = {
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


def json_safe(value: Any) -> Any:
    """NaN floats → None, recursively (strict JSON)."""
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def array_layout(spec: Any, where: str) -> "dict[str, tuple[Any, tuple[int, ...] | None]]":
    """Every array `spec` implies: name → (dtype, shape); None is a 1-D array of any length."""
    import numpy as np

    def bad(reason: str) -> ScorerError:
        return ScorerError(f"{where}: compiled scorer is inconsistent ({reason})")

    if not isinstance(spec, dict) or spec.get("format") not in READABLE_FORMATS:
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
        if spec["format"] == 1:
            _model_layout_1(layout, kind, width, bad)
        else:
            _model_layout_2(layout, spec["model"], width, bad)
    except (KeyError, TypeError, AttributeError) as exc:
        raise bad(f"missing or malformed {exc}") from None
    return layout


def _model_layout_1(layout: dict[str, Any], kind: Any, width: int, bad: Any) -> None:
    """Format 1 (binary only): tree arrays of any one length."""
    import numpy as np

    if kind == "linear":
        layout["coef"] = (np.dtype("float64"), (width,))
        layout["intercept"] = (np.dtype("float64"), (1,))
    elif kind in {"trees_mean", "trees_sum"}:
        for name in (*TREE_ARRAYS, "roots"):
            layout[name] = (np.dtype(ARRAY_DTYPES[name]), None)
    else:
        raise bad(f"model kind {kind!r}")


def _model_layout_2(layout: dict[str, Any], model: Any, width: int, bad: Any) -> None:
    """Format 2: every array's exact shape follows from `scorer.json`.

    A linear model has `outputs` coefficient rows of `width` (flattened, row by row); trees
    have `nodes` nodes in all and `trees` roots, and a mean of trees `outputs` leaf values per
    node (flattened, node by node).
    """
    import numpy as np

    kind = model["kind"]
    outputs = _count(model, "outputs", bad)
    if kind == "linear":
        layout["coef"] = (np.dtype("float64"), (width * outputs,))
        layout["intercept"] = (np.dtype("float64"), (outputs,))
        return
    if kind not in {"trees_mean", "trees_sum"}:
        raise bad(f"model kind {kind!r}")
    nodes, trees = _count(model, "nodes", bad), _count(model, "trees", bad)
    for name in TREE_ARRAYS:
        length = nodes * outputs if name == "value" and kind == "trees_mean" else nodes
        layout[name] = (np.dtype(ARRAY_DTYPES[name]), (length,))
    layout["roots"] = (np.dtype("int64"), (trees,))


def _count(model: Any, key: str, bad: Any) -> int:
    value = model[key]
    if type(value) is not int or not 1 <= value <= MAX_ARRAY_BYTES:
        raise bad(f"model {key} {value!r} is not a positive count")
    return value


def read_arrays(
    data: bytes, layout: "dict[str, tuple[Any, tuple[int, ...] | None]]", *, where: str
) -> "dict[str, np.ndarray]":
    """Decode a stored `scorer.npz`, refusing any member `layout` does not name exactly.

    Each member's `.npy` header (dtype, shape) is read and checked against `layout` and the
    size caps before any of its data is decompressed: a small file that would expand to
    gigabytes is refused without allocating them. Object arrays are never unpickled.
    """
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # not a zip, truncated
        raise ScorerError(f"{where}: compiled scorer is unreadable ({exc})") from None
    with archive:
        names = _member_names(members, layout, where)
        headers = _checked_headers(archive, members, names, layout, where)
        # Format 1 names no lengths: its tree arrays must at least agree with each other.
        lengths = {
            shape[0]
            for name, (_, shape, _) in headers.items()
            if name in TREE_ARRAYS and layout[name][1] is None
        }
        if len(lengths) > 1:
            raise ScorerError(f"{where}: compiled scorer is inconsistent (tree arrays differ)")
        arrays = {}
        for name, (member, found_shape, fortran) in headers.items():
            arrays[name] = _member_array(
                archive, member, name, found_shape, fortran, layout[name][0], where
            )
    return arrays


def _refused(where: str, name: str, reason: str) -> ScorerError:
    """The error refusing the stored array `name`, for `reason`."""
    return ScorerError(f"{where}: compiled scorer array {name!r} {reason}")


def _member_names(
    members: list[Any], layout: "dict[str, tuple[Any, tuple[int, ...] | None]]", where: str
) -> list[str]:
    """The array names of the archive's members, refused unless they are `layout`'s exactly."""
    names = [m.filename[:-4] if m.filename.endswith(".npy") else m.filename for m in members]
    extra = sorted(set(names) - set(layout))
    if extra:
        raise _refused(where, extra[0], "is not part of this scorer (an extra array)")
    if len(names) != len(set(names)):
        repeated = sorted(n for n in set(names) if names.count(n) > 1)
        raise _refused(where, repeated[0], "is stored more than once")
    missing = sorted(set(layout) - set(names))
    if missing:
        raise _refused(where, missing[0], "is missing")
    return names


def _checked_headers(
    archive: Any,
    members: list[Any],
    names: list[str],
    layout: "dict[str, tuple[Any, tuple[int, ...] | None]]",
    where: str,
) -> dict[str, tuple[Any, tuple[int, ...], bool]]:
    """The (member, shape, fortran order) of each array by name, its header checked; no data read.

    Refuses an array whose header does not match `layout` or passes a size cap, and arrays
    that together pass `MAX_SCORER_BYTES`.
    """
    headers = {}
    total = 0
    for member, name in zip(members, names, strict=True):
        dtype, shape = layout[name]
        found_shape, fortran, size = _member_header(archive, member, name, dtype, shape, where)
        total += size
        if total > MAX_SCORER_BYTES:
            raise _refused(
                where,
                name,
                f"brings the arrays to {total:,} bytes (more than {MAX_SCORER_BYTES:,})",
            )
        headers[name] = (member, found_shape, fortran)
    return headers


def _member_header(
    archive: Any,
    member: Any,
    name: str,
    dtype: Any,
    shape: tuple[int, ...] | None,
    where: str,
) -> tuple[tuple[int, ...], bool, int]:
    """(shape, fortran order, data size) of one member, refused unless its header fits."""
    try:
        with archive.open(member) as handle:
            found_shape, fortran, found_dtype = _npy_header(handle)
    except Exception as exc:  # a malformed or unreadable header
        raise _refused(where, name, f"is unreadable ({exc})") from None
    if found_dtype.hasobject:
        raise _refused(where, name, "is an object array; refusing to unpickle it")
    if found_dtype != dtype:
        raise _refused(where, name, f"has dtype {found_dtype}, expected {dtype}")
    size = math.prod(int(n) for n in found_shape) * dtype.itemsize
    if size > MAX_ARRAY_BYTES:
        raise _refused(
            where, name, f"would decompress to {size:,} bytes (more than {MAX_ARRAY_BYTES:,})"
        )
    if len(found_shape) != 1 or (shape is not None and tuple(found_shape) != shape):
        expected = "a 1-D array" if shape is None else f"shape {shape}"
        raise _refused(where, name, f"has shape {tuple(found_shape)}, expected {expected}")
    return found_shape, fortran, size


def _member_array(
    archive: Any,
    member: Any,
    name: str,
    found_shape: tuple[int, ...],
    fortran: bool,
    dtype: Any,
    where: str,
) -> "np.ndarray":
    """The data of one checked member, never reading more than its checked size."""
    import numpy as np

    size = int(found_shape[0]) * dtype.itemsize
    try:
        with archive.open(member) as handle:
            _npy_header(handle)
            raw = handle.read(size)  # never more than the checked size
    except Exception as exc:  # bad compression, a CRC mismatch
        raise _refused(where, name, f"is unreadable ({exc})") from None
    if len(raw) != size:
        raise _refused(where, name, f"is truncated ({len(raw):,} of {size:,} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(
        tuple(found_shape), order="F" if fortran else "C"
    )


def _npy_header(handle: Any) -> "tuple[tuple[int, ...], bool, np.dtype]":
    """(shape, fortran order, dtype) from the header of an `.npy` stream, nothing more read."""
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(handle)
    raise ValueError(f"npy format version {version} is not supported")


def agree_on_probe(got: "np.ndarray", expected: "np.ndarray", where: str, what: str) -> None:
    """Refuse `got` unless it is finite and within `TOLERANCE` of the stored probe outputs.

    Both are in the task's shape: (rows,) or, for a multiclass model, (rows, classes).
    """
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


def expit(raw: "np.ndarray") -> "np.ndarray":
    """The logistic function (overflow to 0 without a warning)."""
    import numpy as np

    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-raw))
