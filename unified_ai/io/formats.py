"""Safe on-disk formats for asset values: Parquet, JSON, skops and ONNX. Never pickle.

Each value type maps to a `kind` recorded in the manifest; loading dispatches on that kind, so
a file can only ever be decoded by the reader of the kind it was written as.
"""

import io
import json
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

# The skops model checks live in their own module; re-exported so existing imports keep working.
from unified_ai.io.skops_models import ALLOWED_MODEL_TYPES as ALLOWED_MODEL_TYPES
from unified_ai.io.skops_models import UnsupportedValueError as UnsupportedValueError
from unified_ai.io.skops_models import check_model_types as check_model_types
from unified_ai.io.skops_models import dump_model as dump_model
from unified_ai.io.skops_models import load_model_bytes as load_model_bytes
from unified_ai.io.skops_models import model_types as model_types
from unified_ai.lifetime import import_table_libraries
from unified_ai.ml.artifacts import Report, TrainedModel
from unified_ai.ml.onnx_export import sklearn_onnx_files
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


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=True).encode()


def serialize(value: Any) -> tuple[str, dict[str, Payload]]:
    """Encode `value` into a kind and named files."""
    import_table_libraries()
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
            # Its verified ONNX form, or why it has none: never fails storing the model.
            **sklearn_onnx_files(value, value.probe_rows),
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
        import_table_libraries()
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

    A pipeline of any task that cannot be compiled (or whose compiled form disagrees with it)
    is still stored: it is scored by sklearn, and the reason is kept with it.
    """
    from unified_ai.ml.scorer import ScorerError
    from unified_ai.ml.scorer_compile import compile_pipeline

    scorer = model.scorer
    classes = model.classes
    if scorer is None or scorer.task != model.task:
        try:
            scorer = compile_pipeline(
                model.pipeline, model.task, None if classes is None else len(classes)
            )
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
    _check_scorer_card(scorer, card, where)

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


def _check_scorer_card(scorer: Any, card: Any, where: str) -> None:
    """Refuse a scorer that answers for another task (or class count) than its model card."""
    card = card if isinstance(card, dict) else {}
    task = str(card.get("task") or "binary_classification")
    classes = card.get("classes")
    count = len(classes) if isinstance(classes, list) else None
    wanted = (task, count if task == "multiclass_classification" else None)
    if (scorer.task, scorer.class_count) != wanted:

        def said(task: str, count: int | None) -> str:
            return task if count is None else f"{task} ({count} classes)"

        raise UnsupportedValueError(
            f"{where}: compiled scorer answers for {said(scorer.task, scorer.class_count)} but "
            f"the model card says {said(*wanted)}; refusing to load it"
        )


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
