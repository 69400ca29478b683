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
from unified_ai.io.formats import deserialize, serialize
from unified_ai.resources.storage import LineageStorage

ACTOR_TAG = "unified_ai/actor"
POLICY_VERSION_METADATA = "unified_ai/policy_version"


def asset_label(path: list[str] | tuple[str, ...]) -> str:
    return "/".join(path)


class LineageIOManager(dg.ConfigurableIOManager):
    """Stores every asset value as a versioned, checksummed artifact with its lineage."""

    storage: dg.ResourceDependency[LineageStorage]
    _loaded: dict[tuple[str, str], dict[str, str]] = PrivateAttr(
        default_factory=lambda: defaultdict(dict)
    )

    def _step_id(self, context) -> tuple[str, str]:
        step = context.step_context
        return step.run_id, step.step.key

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        path = list(context.asset_key.path)
        store = self.storage.store()
        run_id = context.run_id
        upstream = self._loaded.pop(self._step_id(context), {})
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
        tags = context.step_context.dagster_run.tags
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
        path = list(context.asset_key.path)
        store = self.storage.store()
        version = store.require_current(path)
        manifest, files = store.read_files(path, version)
        value = deserialize(manifest.kind, files, where=f"{asset_label(path)}@{version}")
        if context.has_asset_key and context.step_context is not None:
            self._loaded[self._step_id(context)][asset_label(path)] = version
        context.add_input_metadata({"lineage/version": version, "lineage/path": asset_label(path)})
        return value
