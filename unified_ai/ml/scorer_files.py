"""The stored form of a compiled scorer: its limits, errors and the checked reading of its arrays.

The lowest layer of `unified_ai.ml.scorer` (numpy only, imported inside functions): the file
names and caps, `ScorerError`, the array layout a `scorer.json` implies and `read_arrays`,
which refuses an npz member that is not an expected array before anything is decompressed.
"""

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


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
        for name in (*TREE_ARRAYS, "roots"):
            layout[name] = (np.dtype(ARRAY_DTYPES[name]), None)
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
        lengths = {shape[0] for name, (_, shape, _) in headers.items() if name in TREE_ARRAYS}
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


def agree_on_probe(got: "np.ndarray", expected: "np.ndarray", where: str, what: str) -> None:
    """Refuse `got` unless it is finite and within `TOLERANCE` of the stored probe outputs."""
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
