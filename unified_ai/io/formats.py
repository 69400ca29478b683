"""Safe on-disk formats for asset values: Parquet, JSON and skops. Never pickle.

Each value type maps to a `kind` recorded in the manifest; loading dispatches on that kind, so
a file can only ever be decoded by the reader of the kind it was written as.
"""

import io
import json
from typing import Any

from unified_ai.ml.artifacts import Report, TrainedModel

FRAME = "frame/parquet"
JSON = "json"
MODEL = "model/skops"
REPORT = "report/json"

#: Module prefixes a stored skops model may instantiate. Anything else is refused on load.
TRUSTED_MODEL_MODULES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class UnsupportedValueError(TypeError):
    """A value of a type the lineage store cannot persist safely."""


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=True).encode()


def serialize(value: Any) -> tuple[str, dict[str, bytes]]:
    """Encode `value` into a kind and named files."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        buffer = io.BytesIO()
        value.to_parquet(buffer, index=False)
        return FRAME, {"data.parquet": buffer.getvalue()}
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
        import pandas as pd

        return pd.read_parquet(io.BytesIO(files["data.parquet"]))
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
