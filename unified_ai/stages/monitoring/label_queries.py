"""What the labels sensor asks the instance: which batches are registered, stored, scored.

Batched (one query per `NAMES_PER_QUERY` names, `PAGE` events a query), so a tick with many
waiting labels files costs a few queries, not one per file.
"""

from dataclasses import dataclass

import dagster as dg

from unified_ai.stages.sensor_kit import latest_values, metadata_values, new_events, value

#: Batch names per query when asking which batches have predictions.
NAMES_PER_QUERY = 500
#: `predictions` events read per query.
PAGE = 1000


@dataclass(frozen=True)
class Keys:
    """What the labels sensor asks the instance about: batches and their predictions."""

    partitions: str
    predictions: dg.AssetKey
    batch: dg.AssetKey


def why_waiting(instance: dg.DagsterInstance, keys: Keys, batch: str) -> str:
    """Why a batch without predictions has none (two queries: asked for shown files only)."""
    if not instance.has_dynamic_partition(keys.partitions, batch):
        return "batch not registered"
    stored = latest_values(instance, keys.batch, batch)
    if stored is not None and value(stored, "quarantined", False):
        return "batch quarantined, never scored"
    return "batch not scored yet"


def newly_scored(instance: dg.DagsterInstance, keys: Keys, after: int) -> tuple[set[str], int]:
    """Batches scored since event `after`, and the newest event seen (one query a page)."""
    scored: set[str] = set()
    while True:
        records = new_events(instance, keys.predictions, after, limit=PAGE)
        scored.update(r.partition_key for r in records if r.partition_key)
        if records:
            after = records[-1].storage_id
        if len(records) < PAGE:
            return scored, after


def never_scored(instance: dg.DagsterInstance, keys: Keys, batches: list[str]) -> dict[str, str]:
    """Why each of `batches` (none has predictions) has none, for expiry reason files.

    One query per `NAMES_PER_QUERY` names (was the batch stored, quarantined?) and one for the
    registered batches: asked only on a tick that expires files.
    """
    if not batches:
        return {}
    registered = set(instance.get_dynamic_partitions(keys.partitions))
    quarantined: dict[str, bool] = {}
    for start in range(0, len(batches), NAMES_PER_QUERY):
        chunk = batches[start : start + NAMES_PER_QUERY]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=keys.batch, asset_partitions=chunk),
            limit=4 * len(chunk),
        ).records
        for record in records:  # newest first: the first of a batch is its latest
            if record.partition_key and record.partition_key not in quarantined:
                stored = metadata_values(record.asset_materialization)
                quarantined[record.partition_key] = bool(value(stored, "quarantined", False))
    return {
        b: "its batch never arrived"
        if b not in registered
        else "its batch arrived but was never stored"
        if b not in quarantined
        else "its batch was quarantined, never scored"
        if quarantined[b]
        else "its batch was stored but not scored"
        for b in batches
    }


def scored_among(instance: dg.DagsterInstance, keys: Keys, batches: list[str]) -> set[str]:
    """Which of `batches` have predictions: one query per `NAMES_PER_QUERY` names."""
    scored: set[str] = set()
    for start in range(0, len(batches), NAMES_PER_QUERY):
        chunk = batches[start : start + NAMES_PER_QUERY]
        limit = 4 * len(chunk)
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=keys.predictions, asset_partitions=chunk),
            limit=limit,
        ).records
        scored.update(r.partition_key for r in records if r.partition_key)
        if len(records) == limit:  # batches scored many times each: ask the rest one by one
            scored.update(
                b
                for b in chunk
                if b not in scored and latest_values(instance, keys.predictions, b) is not None
            )
    return scored
