"""Safe on-disk formats for asset values: Parquet, JSON and skops. Never pickle.

Each value type maps to a `kind` recorded in the manifest; loading dispatches on that kind, so
a file can only ever be decoded by the reader of the kind it was written as.
"""

import io
import json
from collections.abc import Callable
from typing import Any, BinaryIO

from unified_ai.ml.artifacts import Report, TrainedModel

FRAME = "frame/parquet"
JSON = "json"
MODEL = "model/skops"
REPORT = "report/json"
#: Kinds whose decoders execute nothing from the file, so decoding may overlap verification.
PARALLEL_VERIFY_KINDS = frozenset({FRAME, JSON, REPORT})

#: Module prefixes a stored skops model may instantiate. Anything else is refused on load.
TRUSTED_MODEL_MODULES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


#: A stored file: its bytes, or a function that writes them into a binary file.
Payload = bytes | memoryview | Callable[[BinaryIO], None]


def payload_bytes(payload: Payload) -> bytes:
    """The bytes of a payload (runs a writer into memory)."""
    if callable(payload):
        buffer = io.BytesIO()
        payload(buffer)
        return buffer.getvalue()
    return bytes(payload)


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
    if isinstance(value, TrainedModel):
        import skops.io as sio

        return MODEL, {
            "model.skops": sio.dumps(value.pipeline),
            "card.json": _json_bytes(value.card),
        }
    if isinstance(value, Report):
        files = {"report.json": _json_bytes(value.body)}
        files.update({name: text.encode() for name, text in value.attachments.items()})
        return REPORT, files
    if isinstance(value, (dict, list)):
        return JSON, {"payload.json": _json_bytes(value)}
    raise UnsupportedValueError(
        f"cannot store a {type(value).__name__}: supported are DataFrame, dict/list (JSON), "
        "TrainedModel (skops) and Report"
    )


def deserialize(kind: str, files: dict[str, bytes], *, where: str) -> Any:
    """Decode files written by `serialize`; `where` names the version in error messages."""
    if kind == FRAME:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.read_table(pa.BufferReader(files["data.parquet"])).to_pandas()
    if kind == JSON:
        return json.loads(files["payload.json"])
    if kind == MODEL:
        return TrainedModel(
            pipeline=load_model_bytes(files["model.skops"], where=where),
            card=json.loads(files["card.json"]),
        )
    if kind == REPORT:
        body = json.loads(files["report.json"])
        attachments = {n: d.decode() for n, d in files.items() if n != "report.json"}
        return Report(body=body, attachments=attachments)
    raise UnsupportedValueError(f"{where}: unknown stored kind {kind!r}; refusing to load it")


def load_model_bytes(data: bytes, *, where: str) -> Any:
    """Load a skops model, instantiating only types from trusted modules."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_MODEL_MODULES)]
    if refused:
        raise UnsupportedValueError(
            f"{where}: model file would instantiate untrusted types {refused}; refusing to load it"
        )
    return sio.loads(data, trusted=untrusted)
