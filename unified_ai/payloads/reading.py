"""How every payload reader refuses what it cannot read: one line, naming the field."""

from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any


class PayloadError(ValueError):
    """A stored payload lacks a field its reader needs (or is not a JSON object)."""


def _known(cls, payload: Any, where: str) -> dict[str, Any]:
    """The fields of `cls` present in `payload`; one-line error when a required one is missing."""
    if not isinstance(payload, Mapping):
        raise PayloadError(f"{where}: expected a JSON object, got {type(payload).__name__}")
    values = {f.name: payload[f.name] for f in fields(cls) if f.name in payload}
    missing = [
        f.name
        for f in fields(cls)
        if f.default is MISSING and f.default_factory is MISSING and f.name not in values
    ]
    if missing:
        raise PayloadError(f"{where}: lacks {', '.join(missing)}")
    return values
