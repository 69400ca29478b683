"""What every sensor of a project shares: cursor, new events, recorded metadata.

And how files are named in a skip reason. Sensors read file listings and recorded metadata
only; every statistic is computed in runs.
"""

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg

#: How often a project's sensors are evaluated (seconds).
INTERVAL_SECONDS = 15
#: Names shown in one skip reason; the rest are counted.
LISTED = 20


def load_cursor(context: dg.SensorEvaluationContext) -> dict[str, Any]:
    """The sensor's cursor: a JSON object (empty on the first tick)."""
    return json.loads(context.cursor) if context.cursor else {}


def dump_cursor(cursor: Mapping[str, Any]) -> str:
    return json.dumps(cursor)


def new_events(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, after: int | None, limit: int = 1000
) -> Sequence[dg.EventLogRecord]:
    """Materializations of `asset_key` stored after event `after`, oldest first."""
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, after_storage_id=after),
        limit=limit,
        ascending=True,
    ).records


def metadata_values(materialization) -> dict[str, Any]:
    """The plain values of a materialization's metadata (empty without one)."""
    metadata = getattr(materialization, "metadata", None) or {}
    return {name: entry.value for name, entry in metadata.items()}


def value(values: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A recorded value; `"none"` (what assets record for no value) reads as `default`."""
    found = values.get(name)
    return default if found is None or found == "none" else found


def latest_values(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None = None
) -> dict[str, Any] | None:
    """The metadata values of the latest materialization (of one partition); None if none."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=asset_key, asset_partitions=[partition] if partition is not None else None
        ),
        limit=1,
    ).records
    return metadata_values(records[0].asset_materialization) if records else None


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def listed(names: list[str]) -> str:
    """`'a', 'b' and 3 more`: names for a skip reason, at most `LISTED` of them."""
    shown = ", ".join(repr(n) for n in names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
