"""Dagster IO manager over the lineage store.

`handle_output` stores an immutable version whose manifest records everything the step read
from the store (its inputs, loaded here, and what it read through `LineageStorage.reader`),
moves the asset's pointer and shows version, path and lineage in the UI. `load_input` always
resolves the upstream's *current pointer* (so a rollback is honoured, which Dagster's own
provenance does not do) and verifies checksums.
"""

import dagster as dg

import unified_ai
from unified_ai.io.formats import serialize
from unified_ai.io.reader import ReadLog, step_log
from unified_ai.names import (
    FILES_METADATA,
    MATERIALIZE_ACTION,
    PARTITIONS,
    PATH_METADATA,
    POLICY_VERSION_METADATA,
    UPSTREAM_METADATA,
    VERSION_METADATA,
    actor_of,
)
from unified_ai.resources.storage import LineageStorage


def _step_context(context: dg.InputContext | dg.OutputContext):
    """The step's execution context, or None for contexts built outside a run (benchmarks)."""
    try:
        return context.step_context
    except dg.DagsterInvariantViolationError:
        return None


def _read_log(context: dg.InputContext | dg.OutputContext) -> ReadLog | None:
    step = _step_context(context)
    return step_log(step.run_id, step.step.key) if step is not None else None


def storage_path(asset_key: dg.AssetKey, partition: str | None = None) -> list[str]:
    """Where an asset (or one partition of it) lives in the lineage store."""
    path = list(asset_key.path)
    return [*path, PARTITIONS, partition] if partition is not None else path


class LineageIOManager(dg.ConfigurableIOManager):
    """Stores every asset value as a versioned, checksummed artifact with its lineage."""

    storage: dg.ResourceDependency[LineageStorage]

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        path = storage_path(
            context.asset_key, context.asset_partition_key if context.has_asset_partitions else None
        )
        store = self.storage.store()
        step = _step_context(context)
        run_id = step.run_id if step is not None else None
        log = _read_log(context)
        # Every output of the step gets all of its reads (a step may store several assets).
        upstream = log.upstream() if log is not None else {}
        policy_version = (context.definition_metadata or {}).get(POLICY_VERSION_METADATA)
        kind, files = serialize(obj)
        manifest = store.write_version(
            path,
            kind,
            files,
            run_id=run_id,
            code_version=unified_ai.__version__,
            policy_version=policy_version,
            upstream=upstream,
        )
        store.set_current(
            path,
            manifest.version,
            action=MATERIALIZE_ACTION,
            run_id=run_id,
            actor=actor_of(step.dagster_run.tags if step is not None else {}),
            reason="materialized by run",
            policy_version=policy_version,
        )
        context.add_output_metadata(
            {
                VERSION_METADATA: manifest.version,
                PATH_METADATA: dg.MetadataValue.path(
                    str(store.version_dir(path, manifest.version))
                ),
                UPSTREAM_METADATA: dg.MetadataValue.json(upstream),
                FILES_METADATA: dg.MetadataValue.json(manifest.files),
            }
        )

    def load_input(self, context: dg.InputContext):
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = storage_path(context.asset_key, partition)
        store = self.storage.store()
        version = store.require_current(path)
        value = store.read_value(path, version)
        log = _read_log(context)
        if log is not None:
            log.add(path, version)
        context.add_input_metadata({VERSION_METADATA: version, PATH_METADATA: "/".join(path)})
        return value
