"""Dagster IO manager over the lineage store.

`handle_output` stores an immutable version, records the upstream versions this step actually
loaded, moves the asset's pointer and shows version, path and lineage in the UI.
`load_input` always resolves the upstream's *current pointer* (so a rollback is honoured, which
Dagster's own provenance does not do), verifies checksums and records what it loaded.
"""

from collections import defaultdict

import dagster as dg
from pydantic import PrivateAttr

import unified_ai
from unified_ai.io.formats import serialize
from unified_ai.resources.storage import LineageStorage

ACTOR_TAG = "unified_ai/actor"
#: Output metadata an asset sets for versions it read from the store itself (not as inputs).
LOADED_METADATA = "lineage/loaded"
POLICY_VERSION_METADATA = "unified_ai/policy_version"


def _step(context):
    """The step execution context, or None for contexts built outside a run (benchmarks)."""
    return getattr(context, "_step_context", None)


def storage_path(asset_key: dg.AssetKey, partition: str | None = None) -> list[str]:
    """Where an asset (or one partition of it) lives in the lineage store."""
    path = list(asset_key.path)
    return [*path, "partitions", partition] if partition is not None else path


def asset_label(path: list[str] | tuple[str, ...]) -> str:
    return "/".join(path)


class LineageIOManager(dg.ConfigurableIOManager):
    """Stores every asset value as a versioned, checksummed artifact with its lineage."""

    storage: dg.ResourceDependency[LineageStorage]
    _loaded: dict[tuple[str, str], dict[str, str]] = PrivateAttr(
        default_factory=lambda: defaultdict(dict)
    )

    def _step_id(self, context) -> tuple[str, str] | None:
        step = _step(context)
        return (step.run_id, step.step.key) if step is not None else None

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        path = storage_path(
            context.asset_key, context.asset_partition_key if context.has_asset_partitions else None
        )
        store = self.storage.store()
        step = _step(context)
        run_id = step.run_id if step is not None else None
        upstream = self._loaded.pop(self._step_id(context), {})
        loaded = (context.output_metadata or {}).get(LOADED_METADATA)
        if loaded is not None:
            upstream.update(getattr(loaded, "value", loaded))
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
        tags = step.dagster_run.tags if step is not None else {}
        store.set_current(
            path,
            manifest.version,
            action="materialize",
            run_id=run_id,
            actor=tags.get(ACTOR_TAG) or tags.get("dagster/user") or "dagster",
            reason="materialized by run",
            policy_version=policy_version,
        )
        context.add_output_metadata(
            {
                "lineage/version": manifest.version,
                "lineage/path": dg.MetadataValue.path(
                    str(store.version_dir(path, manifest.version))
                ),
                "lineage/upstream": dg.MetadataValue.json(upstream),
                "lineage/files": dg.MetadataValue.json(manifest.files),
            }
        )

    def load_input(self, context: dg.InputContext):
        partition = context.asset_partition_key if context.has_asset_partitions else None
        path = storage_path(context.asset_key, partition)
        store = self.storage.store()
        version = store.require_current(path)
        value = store.read_value(path, version)
        step_id = self._step_id(context)
        if step_id is not None:
            self._loaded[step_id][asset_label(path)] = version
        context.add_input_metadata({"lineage/version": version, "lineage/path": asset_label(path)})
        return value
