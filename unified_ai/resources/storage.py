"""The lineage store as a Dagster resource, for assets that read versions other than inputs."""

from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from unified_ai.io.store import LineageStore


class LineageStorage(dg.ConfigurableResource):
    """Root of the lineage store: a local folder or an fsspec URL (s3://, gs://, ...).

    Attributes:
        root: Folder or URL.
        storage_options: fsspec options for an object store (endpoint, credentials, ...).
    """

    root: str
    storage_options: dict[str, Any] = {}
    _store: LineageStore | None = PrivateAttr(default=None)

    def store(self) -> LineageStore:
        if self._store is None:
            self._store = LineageStore(self.root, self.storage_options)
        return self._store
