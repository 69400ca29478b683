"""The lineage store as a Dagster resource: the IO manager's, and assets' readers."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from unified_ai.io.reader import StoreReader, step_log
from unified_ai.io.store import LineageStore


class LineageStorage(dg.ConfigurableResource):
    """Root of the lineage store: a local folder or an fsspec URL (s3://, gs://, ...).

    Attributes:
        root: Folder or URL.
        storage_options: fsspec options for an object store (endpoint, credentials, ...).
        signing_key: HMAC key for manifests, pointers and history ("" = unsigned). Bind it as
            `dg.EnvVar(...)`: Dagster then shows and records the variable's name, never the key.
    """

    root: str
    storage_options: dict[str, Any] = {}
    signing_key: str = ""
    _store: LineageStore | None = PrivateAttr(default=None)

    def store(self) -> LineageStore:
        if self._store is None:
            if isinstance(self.signing_key, dg.EnvVar):
                # Dagster resolves an EnvVar when it initialises the resource for a run, sensor
                # or schedule; the unresolved object would sign with the variable's name.
                raise RuntimeError(
                    "LineageStorage.store() was called on an unresolved resource definition; "
                    "use the resource Dagster passes to the asset, sensor or schedule"
                )
            self._store = LineageStore(
                self.root, self.storage_options, signing_key=self.signing_key or None
            )
        return self._store

    def reader(self, context: dg.AssetExecutionContext) -> StoreReader:
        """The store, for the step `context` runs: every value read is in its lineage.

        The IO manager writes what the reader returned into the manifest of each value the
        step stores, beside the inputs it loaded itself.
        """
        return StoreReader(self.store(), step_log(context.run_id, context.op_def.name))
