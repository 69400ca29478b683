"""The record of production batches a person excluded from training.

One JSON value in the lineage store beside the project's assets (`<project>/batch_exclusions`):
batch → reason, who and when. Every change is a new version and a pointer move, so the store's
history says who excluded or re-included what, and `training_data` names the version it
honoured in its lineage. Pure: no Dagster import.
"""

from collections.abc import Iterable

import unified_ai
from unified_ai.io.formats import serialize
from unified_ai.io.reader import StoreReader
from unified_ai.io.store import LineageStore, utc_now
from unified_ai.names import BATCH_EXCLUSIONS, EXCLUDE_ACTION


def batch_exclusions(reader: StoreReader, project: str) -> dict[str, dict[str, str]]:
    """Batch → {reason, by, at} for the batches a person excluded from training (current)."""
    path = [project, BATCH_EXCLUSIONS]
    version = reader.current_version(path)
    if version is None:
        return {}
    return dict(reader.read_value(path, version))


def set_exclusions(
    store: LineageStore,
    project: str,
    *,
    exclude: Iterable[str] = (),
    include: Iterable[str] = (),
    reason: str,
    actor: str,
) -> dict[str, dict[str, str]]:
    """Exclude batches from later training (or take them back in); returns the new record.

    Args:
        store: The lineage store.
        project: The project.
        exclude: Batches to exclude (an already excluded batch keeps its first record).
        include: Batches to use again.
        reason: Why, recorded with each newly excluded batch and on the pointer move.
        actor: Who.
    """
    current = batch_exclusions(StoreReader(store), project)
    at = utc_now()
    for batch in exclude:
        current.setdefault(batch, {"reason": reason, "by": actor, "at": at})
    for batch in include:
        current.pop(batch, None)
    path = [project, BATCH_EXCLUSIONS]
    kind, files = serialize(dict(sorted(current.items())))
    manifest = store.write_version(path, kind, files, code_version=unified_ai.__version__)
    if store.current_version(path) != manifest.version:
        store.set_current(path, manifest.version, action=EXCLUDE_ACTION, actor=actor, reason=reason)
    return current
